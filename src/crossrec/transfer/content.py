"""The ``content`` strategy: transfer through item attributes, with no linked entities at all.

A :class:`~crossrec.models.two_tower.TwoTower` is trained on the source domain(s) with the item
attributes the sources and the target share (same column names and kinds), so every domain's items go
through the same fitted encoders. With several sources one model trains on all of them at once (their
users and items kept apart, each source's interactions weighted by its weight). Target items are
then scored zero-shot by the item tower from their attributes; target users are represented by their
target training items (fold-in or mean of those items' vectors) or by their own attributes through
the user tower. A source artifact's two-tower (``transfer --from``) is moved as it is.
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
from crossrec.transfer._tables import pretrain
from crossrec.transfer.base import (
    STRATEGY_REGISTRY,
    SourceData,
    TransferData,
    TransferNotPossibleError,
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
    transfers_from_artifact = True

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

    def _used(self, data: TransferData) -> list[SourceData]:
        """The sources the model is trained on: those with a positive weight."""
        return [s for s in data.sources if s.weight > 0]

    def _columns(self, data: TransferData, side: Literal["item", "user"]) -> dict[str, str]:
        """Attribute columns the target shares with *every* used source (same name and kind); for a
        source artifact's two-tower, the columns its encoders read that the target has."""
        given = data.sources[0].model if data.sources else None
        if isinstance(given, TwoTower) and data.target is not None:  # a source artifact's two-tower
            encoders = given.encoders_.get(side)
            kinds_t = data.target.item_feature_kinds if side == "item" else data.target.user_feature_kinds
            kinds_s = {} if encoders is None else encoders.kinds
            return {column: kind for column, kind in kinds_s.items() if kinds_t.get(column) == kind}
        used = self._used(data)
        if not used:
            return {}
        shared = shared_schema(used[0].domain, data.target, side)
        for source in used[1:]:
            theirs = shared_schema(source.domain, data.target, side)
            shared = {column: kind for column, kind in shared.items() if theirs.get(column) == kind}
        return shared

    def _schema_mismatch(self, data: TransferData) -> str | None:
        """Why a given source two-tower cannot encode the target's items (its item tower's columns
        must all be target attributes of the same kind), or ``None``."""
        given = data.sources[0].model
        if not isinstance(given, TwoTower) or data.target is None:
            return None
        encoders = given.encoders_.get("item")
        if encoders is None:
            return "the source artifact's two-tower has no item attributes to move to the target"
        kinds_t = data.target.item_feature_kinds
        wrong = {c: (k, kinds_t.get(c, "missing")) for c, k in encoders.kinds.items() if kinds_t.get(c) != k}
        if wrong:
            shown = ", ".join(f"{c} ({k} in the source, {t} in the target)" for c, (k, t) in wrong.items())
            return (
                f"the source artifact's item tower encodes attributes the target does not have with the "
                f"same kind: {shown}; pretrain the source on the attributes both share"
            )
        return None

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data)
        if reason is not None:
            return reason
        if data.sources[0].model is not None and not isinstance(data.sources[0].model, TwoTower):
            return (
                f"it needs a two_tower source model, the source artifact holds {data.sources[0].model.name!r}"
            )
        reason = self._schema_mismatch(data)
        if reason is not None:
            return reason
        used = self._used(data)
        if len(used) > 1 and any(s.model is not None for s in used):
            return (
                "with several sources it trains one two-tower on all of them at once, so it cannot start "
                "from source artifacts; transfer one artifact, or give the sources' data"
            )
        if data.target is None or not used or any(s.domain is None and s.model is None for s in used):
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

    def _configured(self, item_columns: list[str], user_columns: list[str] | None) -> TwoTower:
        model = self.model.clone()
        model.item_modalities = list(item_columns)
        if user_columns is not None:
            model.user_modalities = list(user_columns)
        elif self.model.user_modalities is None:
            model.user_modalities = []  # users of the target are folded in: source attributes are not needed
        return model

    def pretrain_source(
        self,
        source: SourceData,
        seed: int,
        item_columns: list[str] | None = None,
        user_columns: list[str] | None = None,
    ) -> Recommender:
        """The two-tower fitted on the source's item attributes (``item_columns``; default: the
        model's ``item_modalities`` or every source item attribute), ``holdout`` for early stopping."""
        if source.model is not None:
            return pretrain(self.model, source, seed, "")  # checks the family; the schema is checked above
        if source.domain is None or source.domain.item_features is None:
            raise TransferNotPossibleError(f"content: source {source.name!r} has no item attributes")
        columns = item_columns or self.model.item_modalities or list(source.domain.item_feature_kinds)
        model = self._configured(columns, user_columns)
        inputs = FitInputs(
            item_features=FeatureTable.from_domain(source.domain, "item", columns),
            user_features=None
            if not user_columns
            else FeatureTable.from_domain(source.domain, "user", user_columns),
        )
        return pretrain(
            model,
            source,
            seed,
            f"content: {model.name} on {source.name}",
            holdout=self.holdout,
            inputs=inputs,
        )

    def _fit(self, data: TransferData) -> Recommender:
        used = self._used(data)
        if len(used) > 1:
            return self._fit_several(data, used)
        source = used[0] if used else data.sources[0]
        assert data.target is not None
        item_columns = self.model.item_modalities or list(self._columns(data, "item"))
        user_columns = None
        target_users = None
        if self.user_representation == "attributes":
            user_columns = self.model.user_modalities or list(self._columns(data, "user"))
            target_users = FeatureTable.from_domain(data.target, "user", user_columns)
        model = self.pretrain_source(source, data.seed, item_columns, user_columns)
        assert isinstance(model, TwoTower)
        if source.model is not None:
            item_columns = model.encoders_["item"].columns
        return model.transfer(
            FeatureTable.from_domain(data.target, "item", item_columns),
            data.train,
            user_features=target_users,
            user_representation=self.user_representation,
        )

    def _fit_several(self, data: TransferData, used: list[SourceData]) -> Recommender:
        """One two-tower model on every used source at once: the sources' user x item matrices side by
        side on the diagonal (their users and items stay apart), their attribute rows stacked, each
        source's interactions weighted by its weight in the loss."""
        assert data.target is not None
        item_columns = self.model.item_modalities or list(self._columns(data, "item"))
        user_columns, user_table, target_users = None, None, None
        if self.user_representation == "attributes":
            user_columns = self.model.user_modalities or list(self._columns(data, "user"))
            user_table = _stacked([s.domain for s in used], "user", user_columns)
            target_users = FeatureTable.from_domain(data.target, "user", user_columns)
        model = self._configured(item_columns, user_columns)
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
