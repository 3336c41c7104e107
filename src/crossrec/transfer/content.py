"""The ``content`` strategy: transfer through item attributes, with no linked entities at all.

A :class:`~crossrec.models.two_tower.TwoTower` is trained on the source domain(s) with the item
attributes the sources and the target share (same column names and kinds), so every domain's items go
through the same fitted encoders. With several sources one model trains on all of them at once (their
users and items kept apart, each source's interactions weighted by its weight). Target items are
then scored zero-shot by the item tower from their attributes; target users are represented by their
target training items (fold-in or mean of those items' vectors) or by their own attributes through
the user tower.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.domain import Domain
from crossrec.features.table import FeatureTable
from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.two_tower import TwoTower, UserRepresentation
from crossrec.splitting.splits import Split
from crossrec.transfer.base import (
    STRATEGY_REGISTRY,
    TransferData,
    TransferStrategy,
    register_strategy,
    shared_schema,
)

__all__ = ["ContentTransfer", "content_transfer", "shared_schema"]


def _default_model() -> TwoTower:
    return TwoTower(id_dropout=0.5, modality_dropout=0.1, optim={"progress": False})


@register_strategy
class ContentTransfer(TransferStrategy):
    """Zero-shot transfer through shared item attributes (see the module docstring).

    Parameters
    ----------
    model
        The two-tower model trained on the source (default: ``TwoTower(id_dropout=0.5)``; a high
        ID dropout makes the item tower rely on attributes, which is all the target has).
    user_representation
        ``"fold_in"`` (default), ``"mean"`` or ``"attributes"`` (see :meth:`TwoTower.transfer`).
    holdout
        Share of the source interactions held out for early stopping.
    """

    name = "content"

    def __init__(
        self,
        model: TwoTower | None = None,
        user_representation: UserRepresentation = "fold_in",
        holdout: float = 0.1,
    ) -> None:
        if model is not None and not isinstance(model, TwoTower):
            raise TypeError(f"the content strategy needs a TwoTower model, got {type(model).__name__}")
        self.model = model if model is not None else _default_model()
        self.user_representation = user_representation
        self.holdout = holdout

    def _used(self, data: TransferData) -> list:
        """The sources the model is trained on: those with a positive weight."""
        return [s for s in data.sources if s.weight > 0]

    def _columns(self, data: TransferData, side: Literal["item", "user"]) -> dict[str, str]:
        """Attribute columns the target shares with *every* used source (same name and kind)."""
        used = self._used(data)
        if not used:
            return {}
        shared = shared_schema(used[0].domain, data.target, side)
        for source in used[1:]:
            theirs = shared_schema(source.domain, data.target, side)
            shared = {column: kind for column, kind in shared.items() if theirs.get(column) == kind}
        return shared

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data)
        if reason is not None:
            return reason
        used = self._used(data)
        if data.target is None or not used or any(s.domain is None for s in used):
            return "it needs the source and target domains with their item attributes"
        shared = self._columns(data, "item")
        wanted = self.model.item_modalities
        if wanted is not None:
            missing = [c for c in wanted if c not in shared]
            if missing:
                return (
                    f"item attributes {missing} are not shared by source and target (shared: {list(shared)})"
                )
        if not shared:
            if len(used) > 1:
                each = {s.name: list(shared_schema(s.domain, data.target, "item")) for s in used}
                return (
                    "the sources share no item attribute with the target that all of them have (one item "
                    f"tower encodes every source's items); each shares: {each}. Give the sources a common "
                    "attribute, or weight out (0) the sources without it"
                )
            return "source and target share no item attribute (same column name and kind)"
        if self.user_representation == "attributes" and not self._columns(data, "user"):
            return "user_representation='attributes' needs user attributes shared by source and target"
        return None

    def _fit(self, data: TransferData) -> Recommender:
        """One two-tower model on every used source at once: the sources' user x item matrices side by
        side on the diagonal (their users and items stay apart), their attribute rows stacked, each
        source's interactions weighted by its weight in the loss."""
        used = self._used(data)
        assert data.target is not None
        item_columns = self.model.item_modalities or list(self._columns(data, "item"))
        model = self.model.clone()
        model.item_modalities = list(item_columns)
        user_table = None
        target_users = None
        if self.user_representation == "attributes":
            user_columns = self.model.user_modalities or list(self._columns(data, "user"))
            model.user_modalities = list(user_columns)
            user_table = _stacked([s.domain for s in used], "user", user_columns)
            target_users = FeatureTable.from_domain(data.target, "user", user_columns)
        elif self.model.user_modalities is None:
            model.user_modalities = []  # users of the target are folded in: source attributes are not needed
        parts = [s.holdout(self.holdout, seed=data.seed) for s in used]
        train = sp.block_diag([p[0] for p in parts], format="csr", dtype=np.float32)
        valid = sp.block_diag([p[1] for p in parts], format="csr", dtype=np.float32)
        train.sort_indices()
        weights = None
        if len({s.weight for s in used}) > 1:  # CSR order: each source's rows are one block
            per_row = np.concatenate(
                [np.full(p[0].shape[0], s.weight, np.float32) for s, p in zip(used, parts, strict=True)]
            )
            weights = np.repeat(per_row, np.diff(train.indptr)).astype(np.float32)
        inputs = FitInputs(
            item_features=_stacked([s.domain for s in used], "item", item_columns),
            user_features=user_table,
            weights=weights,
            label=f"content: {model.name} on {', '.join(s.name for s in used)}",
        )
        model.fit_with(train, valid, inputs)
        return model.transfer(
            FeatureTable.from_domain(data.target, "item", item_columns),
            data.train,
            user_features=target_users,
            user_representation=self.user_representation,
        )

    def baseline(self) -> TransferStrategy:
        """Target-only two-tower with ID embeddings (the content model's towers, no source)."""
        model = self.model.clone()
        model.item_ids = model.user_ids = True
        return STRATEGY_REGISTRY["none"](model=model)


def _stacked(domains: list, side: Literal["item", "user"], columns: list[str]) -> FeatureTable:
    """The attribute rows of several domains one after the other (ids prefixed by the domain)."""
    tables = [FeatureTable.from_domain(domain, side, columns) for domain in domains]
    if len(tables) == 1:
        return tables[0]
    frame = pd.concat([t.frame[columns] for t in tables], ignore_index=True)
    ids = np.concatenate(
        [
            np.asarray([f"{d.name}:{i}" for i in t.ids], dtype=object)
            for d, t in zip(domains, tables, strict=True)
        ]
    )
    return FeatureTable(frame, tables[0].kinds, ids, side)


def content_transfer(
    source: Domain,
    target: Domain,
    split: Split,
    *,
    model: TwoTower | None = None,
    user_representation: UserRepresentation = "fold_in",
    seed: int = 0,
) -> TwoTower:
    """Train ``model`` on ``source`` and return it transferred to ``target`` (zero-shot, no links).

    Shorthand for ``ContentTransfer(model, user_representation).fit(TransferData(...))``.
    """
    data = TransferData.from_domains(target, split, [source], link_items=None, link_users=None, seed=seed)
    fitted = ContentTransfer(model=model, user_representation=user_representation).fit(data)
    assert isinstance(fitted, TwoTower)
    return fitted
