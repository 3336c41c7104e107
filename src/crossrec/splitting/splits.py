"""Train/validation/test splits of a domain's interactions, seeded and saved with each run.

Protocols (all pure functions of the interactions and a seed):

* :func:`random_split` - per-user random ratio split (RecBole ``RS`` + ``RO``), default 80/10/10;
* :func:`leave_one_out_split` - per user, the last interaction (by time, or a random one) is the
  test item and the one before it the validation item;
* :func:`temporal_split` - one global time cut: the earliest interactions train, the latest test;
* :func:`cold_start_split` - a sample of users keeps only ``n_train`` training interactions, the rest
  of theirs is held out; every other user's interactions all train;
* :func:`predefined_split` - train/valid/test given by the user.

Every :class:`Split` checks on construction that indices are in range and that every user with
validation or test interactions has training data, so no protocol can silently produce a user
that no model could score from its own history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from crossrec.data._ratios import ratio_parts
from crossrec.data.interactions import Interactions

__all__ = [
    "PARTS",
    "Split",
    "cold_start_split",
    "leave_one_out_split",
    "predefined_split",
    "random_split",
    "temporal_split",
]

#: Names of the three parts of a split.
PARTS: tuple[str, str, str] = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """A split of one domain's interactions; indices refer to that domain's vocabularies.

    Attributes
    ----------
    train, valid, test
        Interaction sets (disjoint for every built-in protocol).
    n_users, n_items
        Sizes of the domain's vocabularies (every matrix built from the split has this shape).
    protocol
        Name of the protocol that made the split (e.g. ``"random_ratio"``), for reports.
    seed
        Seed that made it.
    params
        The protocol's other arguments (ratios, ``n_train``, ...), saved with the split.

    Raises
    ------
    ValueError
        When an index is out of range, or a user has validation/test interactions but no
        training interaction (unless ``params["cold_users"]`` is true: a split that evaluates users
        known only from a source domain, e.g. :meth:`UserColdSplit.served_split`).
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    n_users: int
    n_items: int
    protocol: str = "random_ratio"
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in PARTS:
            part: Interactions = getattr(self, name)
            if len(part) == 0:
                continue
            if part.user.min() < 0 or part.user.max() >= self.n_users:
                raise ValueError(f"split {name!r}: user index outside [0, {self.n_users})")
            if part.item.min() < 0 or part.item.max() >= self.n_items:
                raise ValueError(f"split {name!r}: item index outside [0, {self.n_items})")
        if self.allows_cold_users:
            return
        has_train = self.train.n_per_user(self.n_users) > 0
        for name in ("valid", "test"):
            held_out_users = np.unique(getattr(self, name).user)
            orphans = held_out_users[~has_train[held_out_users]]
            if len(orphans):
                raise ValueError(
                    f"split ({self.protocol}) leaves {len(orphans)} user(s) with {name} interactions but "
                    f"no training data (user indices {orphans[:5].tolist()}...); drop those users or "
                    "choose a protocol that keeps a training interaction per user"
                )

    @property
    def allows_cold_users(self) -> bool:
        """Whether validation/test may hold users with no training interaction (``params["cold_users"]``)."""
        return bool(self.params.get("cold_users", False))

    def matrix(self, part: str) -> sp.csr_matrix:
        """Binary user x item matrix of ``"train"``, ``"valid"`` or ``"test"``."""
        if part not in PARTS:
            raise ValueError(f"unknown split part {part!r}; choose from {list(PARTS)}")
        return getattr(self, part).to_csr(self.n_users, self.n_items)

    def fingerprint(self) -> str:
        """Stable hash of the split's contents; runs on the same split share it."""
        digest = hashlib.sha256()
        for name in PARTS:
            part: Interactions = getattr(self, name)
            order = np.lexsort((part.item, part.user))
            digest.update(part.user[order].tobytes())
            digest.update(part.item[order].tobytes())
            digest.update(b"|")
        digest.update(f"{self.n_users}x{self.n_items}".encode())
        return digest.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Protocol, seed, parameters, sizes and fingerprint, as saved in ``split.json``."""
        return {
            "protocol": self.protocol,
            "seed": self.seed,
            "params": self.params,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "sizes": {name: len(getattr(self, name)) for name in PARTS},
            "fingerprint": self.fingerprint(),
        }

    def save(self, folder: str | Path) -> None:
        """Write ``train/valid/test.parquet`` and ``split.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in PARTS:
            part: Interactions = getattr(self, name)
            columns = {"user": part.user, "item": part.item, "value": part.value}
            if part.timestamp is not None:
                columns["timestamp"] = part.timestamp
            pq.write_table(pa.table(columns), folder / f"{name}.parquet")
        (folder / "split.json").write_text(json.dumps(self.describe(), indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> Split:
        """Read a split written by :meth:`save`; the fingerprint is checked against ``split.json``."""
        folder = Path(folder)
        meta_path = folder / "split.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no split.json in {folder}: not a saved split")
        meta = json.loads(meta_path.read_text())
        parts = {}
        for name in PARTS:
            table = pq.read_table(folder / f"{name}.parquet").to_pydict()
            parts[name] = Interactions(
                np.asarray(table["user"], dtype=np.int64),
                np.asarray(table["item"], dtype=np.int64),
                np.asarray(table["value"], dtype=np.float32),
                np.asarray(table["timestamp"], dtype=np.int64) if "timestamp" in table else None,
            )
        split = cls(
            n_users=meta["n_users"],
            n_items=meta["n_items"],
            protocol=meta["protocol"],
            seed=meta["seed"],
            params=meta.get("params", {}),
            **parts,
        )
        expected = meta.get("fingerprint")
        if expected is not None and expected != split.fingerprint():
            raise ValueError(f"split in {folder} does not match its recorded fingerprint {expected}")
        return split


def _check_not_empty(interactions: Interactions) -> None:
    if len(interactions) == 0:
        raise ValueError("cannot split an empty interaction set")


def _rank_within_user(user: np.ndarray, sort_key: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Order grouping rows by user (ascending ``sort_key`` within a user) and each row's 0-based rank."""
    order = np.lexsort((sort_key, user))
    users_sorted = user[order]
    counts = np.bincount(users_sorted, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[users_sorted]
    return order, rank


def _time_or_noise(interactions: Interactions, rng: np.random.Generator, by_time: bool) -> np.ndarray:
    """Sort key: timestamp with seeded random tie-breaking, or pure noise."""
    noise = rng.random(len(interactions))
    if not by_time:
        return noise
    if interactions.timestamp is None:
        raise ValueError("this protocol orders by time but the interactions have no timestamp column")
    # timestamps dominate; noise only breaks ties between equal timestamps
    order = np.lexsort((noise, interactions.timestamp))
    key = np.empty(len(order), dtype=np.float64)
    key[order] = np.arange(len(order))
    return key


def random_split(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 2022,
) -> Split:
    """Per-user random ratio split (RecBole's ``RS: [0.8, 0.1, 0.1]`` with order ``RO``).

    Each user's interactions are shuffled and cut by the ratios, with RecBole's rounding:
    validation and test get ``int(ratio * n)``, a part whose share is below one interaction
    still gets one while training keeps more than one, and training gets the rest, so every
    user keeps at least one training interaction.
    """
    if len(ratios) != 3 or min(ratios) < 0 or not np.isclose(sum(ratios), 1.0):
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    _check_not_empty(interactions)
    rng = np.random.default_rng(seed)
    order, rank = _rank_within_user(interactions.user, rng.random(len(interactions)), n_users)
    n = np.bincount(interactions.user, minlength=n_users)[interactions.user[order]]
    part = ratio_parts(rank, n, ratios)
    train, valid, test = (interactions.take(order[part == k]) for k in range(3))
    return Split(
        train,
        valid,
        test,
        n_users,
        n_items,
        protocol="random_ratio",
        seed=seed,
        params={"ratios": list(ratios)},
    )


def leave_one_out_split(
    interactions: Interactions, n_users: int, n_items: int, *, by_time: bool = True, seed: int = 2022
) -> Split:
    """Leave-one-out: each user's last interaction is the test item, the one before it validation.

    Parameters
    ----------
    by_time
        Hold out the latest interactions (ties broken at random with ``seed``); when ``False``,
        hold out random ones.

    Notes
    -----
    A user with two interactions gives one to test and none to validation; a user with one
    interaction only trains. Every user therefore keeps a training interaction.
    """
    _check_not_empty(interactions)
    rng = np.random.default_rng(seed)
    key = _time_or_noise(interactions, rng, by_time)
    order, rank = _rank_within_user(interactions.user, key, n_users)
    n = np.bincount(interactions.user, minlength=n_users)[interactions.user[order]]
    from_end = n - 1 - rank
    part = np.zeros(len(order), dtype=np.int64)
    part[(from_end == 0) & (n >= 2)] = 2
    part[(from_end == 1) & (n >= 3)] = 1
    train, valid, test = (interactions.take(order[part == k]) for k in range(3))
    protocol = "leave_one_out_time" if by_time else "leave_one_out_random"
    return Split(
        train, valid, test, n_users, n_items, protocol=protocol, seed=seed, params={"by_time": by_time}
    )


def temporal_split(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    drop_users_without_train: bool = False,
    seed: int = 2022,
) -> Split:
    """Global temporal split: cut the timeline at the timestamps that leave ``ratios`` of interactions
    before each cut.

    Interactions at a cut timestamp all go to the later part, so no part contains an interaction
    later than one of the next part.

    Parameters
    ----------
    drop_users_without_train
        Users whose first interaction is after the first cut have no training data. By default
        that is an error naming them; with ``True`` their validation/test interactions are dropped
        (the count is recorded in ``params["dropped_interactions"]``).
    seed
        Recorded only: the split is deterministic.
    """
    if len(ratios) != 3 or min(ratios) < 0 or not np.isclose(sum(ratios), 1.0):
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    _check_not_empty(interactions)
    if interactions.timestamp is None:
        raise ValueError("temporal_split needs timestamps but the interactions have no timestamp column")
    time = interactions.timestamp
    sorted_time = np.sort(time)
    n = len(time)
    cut_valid = sorted_time[min(int(np.floor(ratios[0] * n)), n - 1)]
    cut_test = sorted_time[min(int(np.floor((ratios[0] + ratios[1]) * n)), n - 1)]
    part = np.where(time < cut_valid, 0, np.where(time < cut_test, 1, 2))
    if ratios[2] == 0:
        part[part == 2] = 1
    dropped = 0
    if drop_users_without_train:
        has_train = np.bincount(interactions.user[part == 0], minlength=n_users) > 0
        orphan = (part > 0) & ~has_train[interactions.user]
        dropped = int(orphan.sum())
        part[orphan] = -1
    train, valid, test = (interactions.take(np.flatnonzero(part == k)) for k in range(3))
    params = {"ratios": list(ratios), "cut_valid": int(cut_valid), "cut_test": int(cut_test)}
    params["dropped_interactions"] = dropped
    return Split(train, valid, test, n_users, n_items, protocol="temporal", seed=seed, params=params)


def cold_start_split(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    *,
    n_train: int = 3,
    fraction: float = 0.2,
    valid_fraction: float = 0.5,
    candidates: np.ndarray | None = None,
    by_time: bool = True,
    seed: int = 2022,
) -> Split:
    """Cold-start users: a sample of users keeps only ``n_train`` training interactions.

    A ``fraction`` of the eligible users (those among ``candidates`` with more than ``n_train``
    interactions) is drawn with ``seed``. Each sampled user keeps its first ``n_train``
    interactions (by time, or random ones) for training; the rest are held out, for validation
    for a ``valid_fraction`` of the sampled users and for test for the others. Every other user's
    interactions all go to training, so evaluation covers only the cold users.

    Parameters
    ----------
    n_train
        Training interactions left to each cold user (e.g. 1, 3 or 5); at least 1.
    candidates
        User indices that may be made cold (e.g. users linked to the source domain); default all.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be at least 1 so that cold users keep training data, got {n_train}")
    if not 0 < fraction <= 1 or not 0 <= valid_fraction < 1:
        raise ValueError(
            f"need 0 < fraction <= 1 and 0 <= valid_fraction < 1, got {fraction}, {valid_fraction}"
        )
    _check_not_empty(interactions)
    rng = np.random.default_rng(seed)
    counts = np.bincount(interactions.user, minlength=n_users)
    eligible = counts > n_train
    if candidates is not None:
        in_pool = np.zeros(n_users, dtype=bool)
        in_pool[np.asarray(candidates, dtype=np.int64)] = True
        eligible &= in_pool
    pool = np.flatnonzero(eligible)
    if len(pool) == 0:
        raise ValueError(f"no candidate user has more than n_train={n_train} interactions to hold out")
    n_cold = max(1, round(fraction * len(pool)))
    cold = rng.permutation(pool)[:n_cold]
    n_valid_users = round(valid_fraction * n_cold)
    role = np.zeros(n_users, dtype=np.int64)  # 0 warm, 1 cold-valid, 2 cold-test
    role[cold[:n_valid_users]] = 1
    role[cold[n_valid_users:]] = 2
    key = _time_or_noise(interactions, rng, by_time)
    order, rank = _rank_within_user(interactions.user, key, n_users)
    user_role = role[interactions.user[order]]
    part = np.where((user_role == 0) | (rank < n_train), 0, user_role)
    train, valid, test = (interactions.take(order[part == k]) for k in range(3))
    params = {
        "n_train": n_train,
        "fraction": fraction,
        "valid_fraction": valid_fraction,
        "by_time": by_time,
        "n_cold_users": int(n_cold),
    }
    return Split(
        train, valid, test, n_users, n_items, protocol=f"cold_start_{n_train}", seed=seed, params=params
    )


def predefined_split(
    train: Interactions, valid: Interactions, test: Interactions, n_users: int, n_items: int
) -> Split:
    """A split given by the user (e.g. files shipped with a benchmark), checked like any other."""
    return Split(train, valid, test, n_users, n_items, protocol="predefined", seed=0)
