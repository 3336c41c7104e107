"""Item cold start: a share of the items is held out of training entirely, with all their interactions.

The warm interactions are split per user at random (train/valid/test); every interaction with a
cold item goes to test. Evaluation then has two settings on the same split:

* ``"warm"``: truth = test interactions with warm items, ranked among warm items;
* ``"cold"``: truth = interactions with cold items, ranked among cold items only (zero-shot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.splitting.splits import Split, random_split

__all__ = ["ItemColdSplit", "item_cold_start_split"]


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

    def exclude(self, setting: str) -> sp.csr_matrix:
        """Items never to recommend: the user's train and valid items plus every item of the other setting."""
        _check_setting(setting)
        seen = (self.split.matrix("train") + self.split.matrix("valid")).tocsr()
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
