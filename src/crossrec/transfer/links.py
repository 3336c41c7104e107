"""Links between domains: which source entity is the same as which target entity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossrec.data.vocabulary import Vocabulary

__all__ = ["Links"]


@dataclass(frozen=True)
class Links:
    """Parallel index arrays: ``source[k]`` in the source domain is ``target[k]`` in the target.

    Each target index appears at most once.
    """

    source: np.ndarray
    target: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", np.asarray(self.source, dtype=np.int64))
        object.__setattr__(self, "target", np.asarray(self.target, dtype=np.int64))
        if self.source.shape != self.target.shape:
            raise ValueError("links need as many source as target indices")
        if len(np.unique(self.target)) != len(self.target):
            raise ValueError("a target entity is linked to more than one source entity")

    @classmethod
    def by_shared_ids(cls, source: Vocabulary, target: Vocabulary) -> Links:
        """Link entities whose raw ids are equal in both vocabularies (e.g. movie titles)."""
        source_index = source.index(target.ids, missing="minus_one")
        linked = np.flatnonzero(source_index >= 0)
        return cls(source=source_index[linked], target=linked)

    def __len__(self) -> int:
        return len(self.target)

    def coverage(self, n_target: int) -> float:
        """Share of target entities that have a source counterpart."""
        return len(self) / n_target if n_target else 0.0
