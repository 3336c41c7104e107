"""Vocabularies: explicit maps between raw user/item ids and contiguous integer indices."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["Vocabulary"]


class Vocabulary:
    """An ordered set of raw ids (strings) with vectorised lookups in both directions.

    Index ``i`` is the row of the id in every matrix and embedding table built on this
    vocabulary. Raw ids are kept as strings so that ids from different platforms never
    collide by accident.

    Parameters
    ----------
    ids
        The raw ids, unique, in index order.
    """

    __slots__ = ("_index",)

    def __init__(self, ids: Iterable[object]) -> None:
        index = pd.Index(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=object))
        index = index.astype(str)
        if not index.is_unique:
            duplicated = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"vocabulary ids must be unique; duplicated: {duplicated}")
        self._index = index

    @classmethod
    def from_values(cls, values: Iterable[object]) -> Vocabulary:
        """Build a vocabulary of the distinct values, sorted, so that it is reproducible."""
        unique = pd.unique(pd.Series(np.asarray(values, dtype=object)).astype(str))
        return cls(np.sort(unique))

    @property
    def ids(self) -> np.ndarray:
        """Raw ids in index order (object array of str)."""
        return self._index.to_numpy(dtype=object)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw: object) -> bool:
        return str(raw) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __hash__(self) -> int:  # pragma: no cover - vocabularies are not dict keys
        return hash(tuple(self._index[:16]))

    def __repr__(self) -> str:
        return f"Vocabulary(n={len(self)})"

    def index(self, raw: Iterable[object] | np.ndarray, *, missing: str = "raise") -> np.ndarray:
        """Indices of raw ids.

        Parameters
        ----------
        raw
            Raw ids.
        missing
            ``"raise"`` (default) raises ``KeyError`` naming unknown ids; ``"minus_one"``
            returns -1 for them.
        """
        values = pd.Index(np.asarray(list(raw) if not isinstance(raw, np.ndarray) else raw, dtype=object))
        positions = self._index.get_indexer(values.astype(str)).astype(np.int64)
        if missing == "raise" and (positions < 0).any():
            unknown = values[positions < 0][:5].tolist()
            raise KeyError(f"unknown ids (first {len(unknown)}): {unknown}")
        return positions

    def lookup(self, indices: np.ndarray) -> np.ndarray:
        """Raw ids at the given indices."""
        return self._index.to_numpy(dtype=object)[np.asarray(indices, dtype=np.int64)]
