"""Item cold start: a share of the items is held out of training entirely, with all their interactions.

The warm interactions are split per user at random (train/valid/test); every interaction with a
cold item goes to test. Evaluation then has two settings on the same split:

* ``"warm"``: truth = test interactions with warm items, ranked among warm items;
* ``"cold"``: truth = interactions with cold items, ranked either among cold items only
  (``ranked_among="cold"``) or among all items (``ranked_among="all"``: every item the user has not
  trained or validated on is a candidate; only the user's own warm test items are left out, so a warm
  item they did consume is not counted as a miss).

For transfer, a cold item must be cold in every source too: :func:`isolate_cold_items` drops the
cold items, and every source item sharing a cold item's id or normalised title, from the sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.splitting.splits import Split, random_split

__all__ = [
    "RANKED_AMONG",
    "ColdSources",
    "ItemColdSplit",
    "isolate_cold_items",
    "item_cold_start_split",
    "normalized_titles",
]

RankedAmong = Literal["cold", "all"]
#: Candidate sets of the cold setting.
RANKED_AMONG: tuple[str, ...] = ("cold", "all")


@dataclass(frozen=True)
class ItemColdSplit:
    """A split whose test part holds both warm test interactions and all cold-item interactions.

    Attributes
    ----------
    split
        Train/valid hold warm items only; test holds warm test plus every cold-item interaction.
    cold_items
        Indices of the held-out items.
    """

    split: Split
    cold_items: np.ndarray

    @property
    def is_cold(self) -> np.ndarray:
        """``(n_items,)`` bool."""
        mask = np.zeros(self.split.n_items, dtype=bool)
        mask[self.cold_items] = True
        return mask

    def truth(self, setting: str) -> sp.csr_matrix:
        """Test matrix restricted to warm or cold items."""
        test = self.split.matrix("test")
        return _keep_columns(test, ~self.is_cold if setting == "warm" else self.is_cold, setting)

    def exclude(self, setting: str, ranked_among: RankedAmong = "cold") -> sp.csr_matrix:
        """Items never to recommend: the user's train and valid items, plus the non-candidates.

        ``setting="warm"``: every cold item (warm items are ranked among warm items).
        ``setting="cold"``: with ``ranked_among="cold"`` every warm item; with ``"all"`` only the
        user's own warm test items (all other items stay candidates).
        """
        _check_setting(setting)
        if ranked_among not in RANKED_AMONG:
            raise ValueError(f"ranked_among must be one of {RANKED_AMONG}, got {ranked_among!r}")
        seen = (self.split.matrix("train") + self.split.matrix("valid")).tocsr()
        if setting == "cold" and ranked_among == "all":
            out = (seen + self.truth("warm")).tocsr()
            out.data[:] = 1.0
            return out
        other = np.flatnonzero(self.is_cold if setting == "warm" else ~self.is_cold)
        n_users = self.split.n_users
        blocked = sp.csr_matrix(
            (
                np.ones(n_users * len(other), dtype=np.float32),
                np.tile(other, n_users),
                np.arange(n_users + 1) * len(other),
            ),
            shape=seen.shape,
        )
        out = (seen + blocked).tocsr()
        out.data[:] = 1.0
        return out


def _check_setting(setting: str) -> None:
    if setting not in ("warm", "cold"):
        raise ValueError(f"setting must be 'warm' or 'cold', got {setting!r}")


def _keep_columns(matrix: sp.csr_matrix, keep: np.ndarray, setting: str) -> sp.csr_matrix:
    _check_setting(setting)
    out = matrix.tocsr(copy=True)
    out.data = out.data * keep[out.indices]
    out.eliminate_zeros()
    return out


def item_cold_start_split(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    *,
    fraction: float = 0.2,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 2022,
) -> ItemColdSplit:
    """Hold out a random ``fraction`` of items (all their interactions go to test).

    Parameters
    ----------
    interactions, n_users, n_items
        One domain's interactions and vocabulary sizes.
    fraction
        Share of items made cold.
    ratios
        Per-user random split of the warm interactions (:func:`crossrec.evaluation.random_split`).
    seed
        Seed of the item draw and of the warm split.

    Notes
    -----
    Cold-item interactions of users left without any warm training interaction are dropped
    (no model could score such users from their own history).
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    items_present = np.unique(interactions.item)
    n_cold = max(1, round(fraction * len(items_present)))
    cold_items = np.sort(rng.permutation(items_present)[:n_cold])
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold_items] = True
    cold_rows = is_cold[interactions.item]
    warm = random_split(
        interactions.take(np.flatnonzero(~cold_rows)), n_users, n_items, ratios=ratios, seed=seed
    )
    has_train = warm.train.n_per_user(n_users) > 0
    cold_part = interactions.take(np.flatnonzero(cold_rows & has_train[interactions.user]))
    split = Split(
        train=warm.train,
        valid=warm.valid,
        test=Interactions.concat([warm.test, cold_part]),
        n_users=n_users,
        n_items=n_items,
        protocol="item_cold_start",
        seed=seed,
        params={"fraction": fraction, "ratios": list(ratios), "n_cold_items": int(n_cold)},
    )
    return ItemColdSplit(split=split, cold_items=cold_items)


def normalized_titles(titles: Sequence[object] | np.ndarray | pd.Series) -> np.ndarray:
    """Titles without case, accents or punctuation, single-spaced (``""`` for a missing title).

    The same rule as :func:`crossrec.data.normalize.title_sql`, for titles already in memory.
    """
    series = pd.Series(np.asarray(titles, dtype=object)).where(lambda values: values.notna(), "")
    folded = series.astype(str).str.normalize("NFKD").str.replace(r"[\u0300-\u036f]", "", regex=True)
    return folded.str.lower().str.replace(r"[\W_]+", " ", regex=True).str.strip().to_numpy(dtype=object)


@dataclass(frozen=True)
class ColdSources:
    """Source domains with every trace of the target's cold items removed.

    Attributes
    ----------
    sources
        The sources without the dropped items and their interactions (re-indexed).
    dropped
        One row per source: ``source``, ``items_dropped``, ``by_id``, ``by_title``,
        ``interactions_dropped``.
    """

    sources: list[Domain]
    dropped: pd.DataFrame


def isolate_cold_items(
    cold: ItemColdSplit,
    target: Domain,
    sources: Sequence[Domain],
    *,
    title_column: str | None = "title",
    match_ids: bool = True,
) -> ColdSources:
    """Drop the target's cold items from every source, so they are cold there too.

    Parameters
    ----------
    cold
        The target's item cold-start split.
    target
        The target domain (its item ids and, for ``title_column``, its item features).
    sources
        Source domains.
    title_column
        Item feature column holding titles: a source item whose normalised title equals a cold item's
        is dropped (``None``: titles are not compared). Empty titles never match.
    match_ids
        Also drop source items with the same raw id as a cold item.

    Returns
    -------
    ColdSources
        Sources restricted to interactions with the remaining items, and what was dropped.
    """
    cold_ids = {str(value) for value in target.items.lookup(cold.cold_items)}
    cold_titles: set[str] = set()
    if title_column is not None:
        if target.item_features is None or title_column not in target.item_features.columns:
            raise ValueError(
                f"target {target.name!r} has no item column {title_column!r} to compare titles by; "
                "pass title_column=None to compare ids only"
            )
        titles = normalized_titles(target.item_features[title_column].to_numpy(object)[cold.cold_items])
        cold_titles = {title for title in titles if title}
    kept: list[Domain] = []
    report = []
    for source in sources:
        ids = np.asarray(source.items.ids, dtype=object).astype(str)
        by_id = np.isin(ids, list(cold_ids)) if match_ids else np.zeros(len(ids), dtype=bool)
        by_title = np.zeros(len(ids), dtype=bool)
        if cold_titles:
            if source.item_features is None or title_column not in source.item_features.columns:
                raise ValueError(f"source {source.name!r} has no item column {title_column!r}")
            source_titles = normalized_titles(source.item_features[title_column].to_numpy(object))
            by_title = np.isin(source_titles, list(cold_titles))
        drop = by_id | by_title
        rows = np.flatnonzero(~drop[source.interactions.item])
        kept.append(source.subset(rows))
        report.append(
            {
                "source": source.name,
                "items_dropped": int(drop.sum()),
                "by_id": int(by_id.sum()),
                "by_title": int(by_title.sum()),
                "interactions_dropped": int(len(source.interactions) - len(rows)),
            }
        )
    return ColdSources(kept, pd.DataFrame(report))
