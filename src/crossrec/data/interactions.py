"""Columnar interaction arrays: one row per (user, item) event, never a Python object per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Interactions"]


@dataclass(frozen=True)
class Interactions:
    """Interactions of one domain as parallel numpy arrays.

    Attributes
    ----------
    user, item
        ``int64`` indices into the domain's user and item :class:`~crossrec.data.Vocabulary`.
    value
        ``float32`` strength of each interaction (1.0 for implicit feedback, the rating for explicit).
    timestamp
        ``int64`` seconds since the epoch, or ``None`` when the source has no time.
    """

    user: np.ndarray
    item: np.ndarray
    value: np.ndarray
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.user)
        object.__setattr__(self, "user", np.asarray(self.user, dtype=np.int64))
        object.__setattr__(self, "item", np.asarray(self.item, dtype=np.int64))
        object.__setattr__(self, "value", np.asarray(self.value, dtype=np.float32))
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", np.asarray(self.timestamp, dtype=np.int64))
        lengths = {len(self.item), len(self.value), n}
        if self.timestamp is not None:
            lengths.add(len(self.timestamp))
        if len(lengths) != 1:
            raise ValueError(f"interaction columns differ in length: {sorted(lengths)}")

    @classmethod
    def empty(cls, with_time: bool = False) -> Interactions:
        zeros = np.zeros(0, dtype=np.int64)
        return cls(zeros, zeros, np.zeros(0, np.float32), zeros if with_time else None)

    @classmethod
    def concat(cls, parts: list[Interactions]) -> Interactions:
        if not parts:
            return cls.empty()
        has_time = all(p.timestamp is not None for p in parts)
        return cls(
            np.concatenate([p.user for p in parts]),
            np.concatenate([p.item for p in parts]),
            np.concatenate([p.value for p in parts]),
            np.concatenate([p.timestamp for p in parts]) if has_time else None,  # type: ignore[misc]
        )

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array."""
        return Interactions(
            self.user[rows],
            self.item[rows],
            self.value[rows],
            None if self.timestamp is None else self.timestamp[rows],
        )

    def to_csr(self, n_users: int, n_items: int, *, binary: bool = True) -> sp.csr_matrix:
        """User x item sparse matrix; duplicates are summed (or set to 1 when ``binary``)."""
        data = np.ones(len(self), dtype=np.float32) if binary else self.value
        matrix = sp.csr_matrix((data, (self.user, self.item)), shape=(n_users, n_items), dtype=np.float32)
        matrix.sum_duplicates()
        if binary:
            matrix.data[:] = 1.0
        return matrix

    def n_per_user(self, n_users: int) -> np.ndarray:
        return np.bincount(self.user, minlength=n_users)

    def n_per_item(self, n_items: int) -> np.ndarray:
        return np.bincount(self.item, minlength=n_items)
