"""A domain: one platform's users, items, interactions and side information."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary

__all__ = ["AttributeKind", "Domain"]

#: Modalities an attribute can be tagged with (see :mod:`crossrec.features`).
AttributeKind = str  # one of "category", "tags", "number", "text", "vector"


@dataclass(frozen=True)
class Domain:
    """Everything crossrec knows about one recommendation domain.

    Attributes
    ----------
    name
        Domain (platform) name, e.g. ``"ml-100k"``.
    users, items
        Vocabularies; index ``i`` is row ``i`` everywhere.
    interactions
        Interactions with indices into ``users`` and ``items``.
    user_features, item_features
        Optional tables with one row per vocabulary entry, in vocabulary order
        (``len(item_features) == len(items)``). Column kinds are in ``*_feature_kinds``.
    """

    name: str
    users: Vocabulary
    items: Vocabulary
    interactions: Interactions
    user_features: pd.DataFrame | None = None
    item_features: pd.DataFrame | None = None
    user_feature_kinds: dict[str, AttributeKind] = field(default_factory=dict)
    item_feature_kinds: dict[str, AttributeKind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        inter = self.interactions
        if len(inter) and (inter.user.max() >= len(self.users) or inter.user.min() < 0):
            raise ValueError(f"domain {self.name!r}: user index out of range of its vocabulary")
        if len(inter) and (inter.item.max() >= len(self.items) or inter.item.min() < 0):
            raise ValueError(f"domain {self.name!r}: item index out of range of its vocabulary")
        for label, table, vocab in (
            ("user_features", self.user_features, self.users),
            ("item_features", self.item_features, self.items),
        ):
            if table is not None and len(table) != len(vocab):
                raise ValueError(
                    f"domain {self.name!r}: {label} has {len(table)} rows but the vocabulary has {len(vocab)}"
                )

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (
            f"Domain({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={len(self.interactions)})"
        )

    def subset(self, rows: np.ndarray) -> Domain:
        """The same domain restricted to some interactions, re-indexed so no user or item is empty.

        Side tables follow their vocabularies.
        """
        inter = self.interactions.take(rows)
        user_keep = np.unique(inter.user)
        item_keep = np.unique(inter.item)
        user_map = np.full(self.n_users, -1, dtype=np.int64)
        user_map[user_keep] = np.arange(len(user_keep))
        item_map = np.full(self.n_items, -1, dtype=np.int64)
        item_map[item_keep] = np.arange(len(item_keep))
        return Domain(
            name=self.name,
            users=Vocabulary(self.users.lookup(user_keep)),
            items=Vocabulary(self.items.lookup(item_keep)),
            interactions=Interactions(
                user_map[inter.user], item_map[inter.item], inter.value, inter.timestamp
            ),
            user_features=None
            if self.user_features is None
            else self.user_features.iloc[user_keep].reset_index(drop=True),
            item_features=None
            if self.item_features is None
            else self.item_features.iloc[item_keep].reset_index(drop=True),
            user_feature_kinds=dict(self.user_feature_kinds),
            item_feature_kinds=dict(self.item_feature_kinds),
        )
