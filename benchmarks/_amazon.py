"""Loader of the amazon-disencdr format: ``<A>_<B>/{train,test}.txt`` hold domain A's side of pair
(A, B) and ``<B>_<A>/`` domain B's, tab-separated ``user<TAB>item<TAB>1``, with the same user ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.transfer.links import Links

__all__ = ["load_amazon_pair"]


def _read(folder: Path) -> pd.DataFrame:
    frames = [
        pd.read_csv(folder / name, sep="\t", header=None, names=["user", "item", "value"], dtype=str)
        for name in ("train.txt", "test.txt")
        if (folder / name).is_file()
    ]
    if not frames:
        raise FileNotFoundError(f"{folder} holds neither train.txt nor test.txt")
    return pd.concat(frames, ignore_index=True).drop_duplicates(["user", "item"])


def _domain(name: str, frame: pd.DataFrame) -> Domain:
    users = Vocabulary(sorted(frame.user.unique()))
    items = Vocabulary(sorted(frame.item.unique()))
    interactions = Interactions(
        users.index(frame.user.to_numpy()), items.index(frame.item.to_numpy()), np.ones(len(frame))
    )
    return Domain(name=name, users=users, items=items, interactions=interactions)


def load_amazon_pair(root: str | Path, source: str, target: str) -> tuple[Domain, Domain, Links]:
    """``(source_domain, target_domain, user_links)`` of one amazon-disencdr pair (all interactions,
    train and test files together; the benchmark makes its own split). Users are linked by id."""
    root = Path(root)
    source_domain = _domain(source, _read(root / f"{source}_{target}"))
    target_domain = _domain(target, _read(root / f"{target}_{source}"))
    return source_domain, target_domain, Links.by_shared_ids(source_domain.users, target_domain.users)
