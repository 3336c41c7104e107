"""User cold start with no target history at all: a seeded share of the users linked to a source
domain has every target interaction held out.

Those *cold* users are known only through their source-domain profile. Each is drawn (seeded) into
either the validation or the test group (``holdout="users"``, the default: the two groups are
disjoint, so selection never sees a test user), or every cold user is in both, with half of her
interactions in each (``holdout="interactions"``, the papers' EMCDR/PTUPCDR-style variant; test then
excludes her validation items). Every other user is *warm*: her interactions are split per user at
random (:func:`~crossrec.splitting.random_split`) into an ordinary :class:`Split`, which is what
models fit on. Cold users have no row in that split's training part, so a transfer strategy that
fits on it cannot have seen them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.splitting.splits import Split, random_split

__all__ = ["COLD_PARTS", "UserColdSplit", "user_cold_start_split"]

#: The two held-out parts of cold users.
COLD_PARTS: tuple[str, str] = ("valid", "test")

Holdout = Literal["users", "interactions"]


def _check_part(part: str) -> None:
    if part not in COLD_PARTS:
        raise ValueError(f"cold users have parts {list(COLD_PARTS)}, got {part!r}")


@dataclass(frozen=True)
class UserColdSplit:
    """Warm users' ordinary split plus the held-out target interactions of cold users.

    Attributes
    ----------
    split
        Train/valid/test of the warm users only (an ordinary :class:`Split`); models fit on its
        training part.
    cold_valid, cold_test
        Target interactions of the cold users in the validation and the test part.
    valid_users, test_users
        Sorted indices of the cold users evaluated on each part (disjoint when
        ``holdout="users"``, equal when ``holdout="interactions"``).
    holdout
        How cold users were divided between validation and test.
    """

    split: Split
    cold_valid: Interactions
    cold_test: Interactions
    valid_users: np.ndarray
    test_users: np.ndarray
    holdout: Holdout = "users"

    def __post_init__(self) -> None:
        cold = self.cold_users
        for name, part in (("valid", self.cold_valid), ("test", self.cold_test)):
            if len(part) and (part.user.min() < 0 or part.user.max() >= self.n_users):
                raise ValueError(f"cold {name} part: user index outside [0, {self.n_users})")
            if len(part) and (part.item.min() < 0 or part.item.max() >= self.n_items):
                raise ValueError(f"cold {name} part: item index outside [0, {self.n_items})")
        leaked = np.intersect1d(cold, self.split.train.user)
        if len(leaked):
            raise ValueError(
                f"{len(leaked)} cold user(s) have target training interactions (user indices "
                f"{leaked[:5].tolist()}): a cold user must have none"
            )

    @property
    def n_users(self) -> int:
        return self.split.n_users

    @property
    def n_items(self) -> int:
        return self.split.n_items

    @property
    def cold_users(self) -> np.ndarray:
        """Every cold user (validation and test groups)."""
        return np.union1d(self.valid_users, self.test_users)

    @property
    def warm_users(self) -> np.ndarray:
        """Users with target training interactions."""
        return np.unique(self.split.train.user)

    def users(self, part: str) -> np.ndarray:
        """Cold users evaluated on ``part`` (``"valid"`` or ``"test"``)."""
        _check_part(part)
        return self.valid_users if part == "valid" else self.test_users

    def truth(self, part: str) -> sp.csr_matrix:
        """``(n_users, n_items)`` binary matrix of the cold users' relevant items in ``part``."""
        _check_part(part)
        interactions = self.cold_valid if part == "valid" else self.cold_test
        return interactions.to_csr(self.n_users, self.n_items)

    def exclude(self, part: str) -> sp.csr_matrix:
        """Items never ranked for cold users in ``part``: none at validation (they have no
        history); at test, the validation items of users evaluated on both parts."""
        _check_part(part)
        if part == "valid" or self.holdout == "users":
            return sp.csr_matrix((self.n_users, self.n_items), dtype=np.float32)
        return self.truth("valid")

    def served_split(self) -> Split:
        """The split a run on cold users trains, selects and reports on: the warm users' training
        part, the cold users' validation part and their test part.

        Everything that takes a :class:`Split` (the selection loop, the guard, ``evaluate_model``,
        run folders) then judges on the cold users: validation ranks exclude nothing they have (they
        have no history), and test excludes their validation items (``holdout="interactions"``).
        """
        return Split(
            self.split.train,
            self.cold_valid,
            self.cold_test,
            self.n_users,
            self.n_items,
            protocol="user_cold_start",
            seed=self.split.seed,
            params={
                "cold_users": True,
                "holdout": self.holdout,
                "n_cold_valid_users": int(len(self.valid_users)),
                "n_cold_test_users": int(len(self.test_users)),
            },
        )

    def describe(self) -> dict[str, Any]:
        """Protocol, sizes and the warm split's description (for run records)."""
        return {
            "protocol": "user_cold_start",
            "holdout": self.holdout,
            "n_cold_valid_users": int(len(self.valid_users)),
            "n_cold_test_users": int(len(self.test_users)),
            "n_warm_users": int(len(self.warm_users)),
            "sizes": {"cold_valid": len(self.cold_valid), "cold_test": len(self.cold_test)},
            "warm_split": self.split.describe(),
        }


def user_cold_start_split(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    *,
    linked_users: np.ndarray,
    fraction: float = 0.2,
    valid_fraction: float = 0.5,
    holdout: Holdout = "users",
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    min_interactions: int = 2,
    seed: int = 2022,
) -> UserColdSplit:
    """Make a seeded share of the linked users cold: all their target interactions are held out.

    Parameters
    ----------
    interactions, n_users, n_items
        The target domain's interactions and vocabulary sizes (duplicate pairs are merged).
    linked_users
        Target indices of users known in a source domain; only they can be cold.
    fraction
        Share of the eligible linked users (those with at least ``min_interactions`` target
        interactions) made cold.
    valid_fraction
        ``holdout="users"``: share of the cold users in the validation group (the rest is the test
        group). ``holdout="interactions"``: share of each cold user's interactions in validation
        (rounded down; an odd remainder goes to either part with probability 1/2).
    holdout
        ``"users"`` (validation and test users disjoint) or ``"interactions"``.
    ratios
        Per-user train/valid/test ratios of the warm users' interactions.
    min_interactions
        Target interactions a linked user needs to be eligible (at least 2 with
        ``holdout="interactions"``, so that both parts get one).
    seed
        Seed of the cold draw, the validation/test division and the warm split.

    Raises
    ------
    ValueError
        On out-of-range arguments, or when no linked user is eligible.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1) so that warm users remain, got {fraction}")
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    if holdout not in ("users", "interactions"):
        raise ValueError(f"holdout must be 'users' or 'interactions', got {holdout!r}")
    if min_interactions < (2 if holdout == "interactions" else 1):
        raise ValueError(
            f"min_interactions={min_interactions} is too small for holdout={holdout!r} "
            "(each evaluated part needs an interaction)"
        )
    if len(interactions) == 0:
        raise ValueError("no target interactions to split")
    keys = np.unique(interactions.user * np.int64(n_items) + interactions.item)
    merged = Interactions(keys // n_items, keys % n_items, np.ones(len(keys), np.float32))
    linked = np.unique(np.asarray(linked_users, dtype=np.int64))
    if len(linked) and (linked.min() < 0 or linked.max() >= n_users):
        raise ValueError(f"linked_users hold indices outside [0, {n_users})")
    counts = merged.n_per_user(n_users)
    eligible = linked[counts[linked] >= min_interactions]
    if len(eligible) == 0:
        raise ValueError(
            f"no linked user has at least {min_interactions} target interactions: nobody can be made "
            f"cold (linked users: {len(linked)})"
        )
    rng = np.random.default_rng(seed)
    n_cold = max(1, round(fraction * len(eligible)))
    cold = rng.permutation(eligible)[:n_cold]
    is_cold = np.zeros(n_users, dtype=bool)
    is_cold[cold] = True
    cold_rows = is_cold[merged.user]
    warm = random_split(merged.take(np.flatnonzero(~cold_rows)), n_users, n_items, ratios, seed=seed)

    held = merged.take(np.flatnonzero(cold_rows))
    if holdout == "users":
        n_valid = min(max(1, round(valid_fraction * n_cold)), n_cold - 1) if n_cold > 1 else 0
        valid_users, test_users = np.sort(cold[:n_valid]), np.sort(cold[n_valid:])
        in_valid = np.isin(held.user, valid_users)
    else:
        order = np.lexsort((rng.random(len(held)), held.user))
        users_sorted = held.user[order]
        rank = np.empty(len(held), dtype=np.int64)
        rank[order] = np.arange(len(held)) - np.searchsorted(users_sorted, users_sorted, side="left")
        n_held = counts[held.user]
        extra = (rng.random(n_users) < 0.5)[held.user]
        share = np.floor(valid_fraction * n_held).astype(np.int64)
        remainder = (valid_fraction * n_held - share) > 0
        n_valid_rows = np.clip(share + (remainder & extra), 1, n_held - 1)
        in_valid = rank < n_valid_rows
        valid_users = test_users = np.sort(cold)
    return UserColdSplit(
        split=warm,
        cold_valid=held.take(np.flatnonzero(in_valid)),
        cold_test=held.take(np.flatnonzero(~in_valid)),
        valid_users=valid_users,
        test_users=test_users,
        holdout=holdout,
    )
