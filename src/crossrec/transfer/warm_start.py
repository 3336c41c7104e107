"""Warm start: linked target entities start from their source vectors, the rest from the
source vectors' distribution; the target model is then fine-tuned."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from crossrec.models.base import Recommender
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.fold_in import fold_in_users
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.mf import BPRMF
from crossrec.transfer._tables import combine_tables, pretrain
from crossrec.transfer.base import SourceData, TransferData, TransferStrategy, register_strategy
from crossrec.transfer.links import Links

__all__ = ["WarmStart", "fold_in_users", "transferred_init", "warm_start_table"]


def warm_start_table(source_vectors: np.ndarray, links: Links, n_target: int, *, seed: int = 0) -> np.ndarray:
    """Initial ``(n_target, dim)`` table for the target domain.

    Linked rows copy their source vector. Unlinked rows are drawn from a normal distribution
    with the per-dimension mean and standard deviation of the source vectors, so they live on
    the same scale as the transferred ones.
    """
    rng = np.random.default_rng(seed)
    mean = source_vectors.mean(axis=0)
    std = source_vectors.std(axis=0) + 1e-8
    table = (rng.standard_normal((n_target, source_vectors.shape[1])) * std + mean).astype(np.float32)
    if len(links):
        table[links.target] = source_vectors[links.source]
    return table


def transferred_init(
    data: TransferData, pretrained: list[Recommender], *, fold_in: bool = True, seed: int = 0
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(user_table, item_table)`` for the target from models pretrained on each source.

    Items (users) linked to a source start from that source's vectors; with several sources the
    tables are aligned and averaged by source weight (see :func:`combine_tables`). Without user
    links and with ``fold_in``, users are folded in next to the transferred item vectors.
    """
    item_tables, item_masks, user_tables, user_masks, item_w, user_w = [], [], [], [], [], []
    for source, model in zip(data.sources, pretrained, strict=True):
        if source.n_item_links:
            item_tables.append(
                warm_start_table(model.item_vectors(), source.item_links, data.n_items, seed=seed)
            )
            mask = np.zeros(data.n_items, bool)
            mask[source.item_links.target] = True
            item_masks.append(mask)
            item_w.append(source.weight)
        if source.n_user_links:
            user_tables.append(
                warm_start_table(model.user_vectors(), source.user_links, data.n_users, seed=seed)
            )
            mask = np.zeros(data.n_users, bool)
            mask[source.user_links.target] = True
            user_masks.append(mask)
            user_w.append(source.weight)
    items = combine_tables(item_tables, item_masks, item_w) if item_tables else None
    users = combine_tables(user_tables, user_masks, user_w) if user_tables else None
    if users is None and items is not None and fold_in:
        users = fold_in_users(items, data.train)
    return users, items


def check_embedding_transfer(strategy: TransferStrategy, data: TransferData) -> str | None:
    """Shared check of strategies that move ID vectors: an embedding model and some links."""
    if not isinstance(strategy.model, EmbeddingRecommender):
        return (
            f"it moves user/item vectors, and {type(strategy.model).__name__} has none; "
            "use an embedding model such as BPRMF or LightGCN"
        )
    if not (data.has_item_links or data.has_user_links):
        return "no source shares items or users with the target (no links to carry vectors across)"
    return None


@register_strategy
class WarmStart(TransferStrategy):
    """Pretrain the model on each source; linked target users/items start from their source
    vectors, the rest from the source distribution (users folded in when only items are
    linked); then fine-tune everything on the target with early stopping on validation.

    Parameters
    ----------
    model
        Embedding model (its configuration is used for pretraining and fine-tuning).
    fold_in
        Start unlinked users next to the transferred item vectors (implicit-ALS fold-in).
    transferred_lr_scale
        Learning-rate multiplier for the transferred tables while fine-tuning.
    pretrain_params
        Overrides of the model's parameters for pretraining on the sources (e.g. a larger batch and
        learning rate on a big source: ``{"optim": {"batch_size": 8192, "learning_rate": 5e-3}}``;
        a nested table such as ``optim`` updates the model's own settings key by key).
    """

    name = "warm_start"
    transfers_from_artifact = True

    def __init__(
        self,
        model: Recommender | None = None,
        fold_in: bool = True,
        transferred_lr_scale: float = 1.0,
        pretrain_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model if model is not None else BPRMF(optim={"progress": False})
        self.fold_in = fold_in
        self.transferred_lr_scale = transferred_lr_scale
        self.pretrain_params = dict(pretrain_params) if pretrain_params else None
        self._source_model()  # unknown overrides fail here, before any training

    def _source_model(self) -> Recommender:
        """The configuration pretrained on each source: ``model`` with ``pretrain_params`` applied."""
        if not self.pretrain_params:
            return self.model
        params = self.model.get_params()
        unknown = sorted(set(self.pretrain_params) - set(params))
        if unknown:
            raise ValueError(
                f"warm_start pretrain_params {unknown} are not parameters of {type(self.model).__name__} "
                f"(it has {sorted(params)}"
                + (
                    "; optimiser settings go under 'optim', e.g. {'optim': {'batch_size': 8192}})"
                    if "optim" in params
                    else ")"
                )
            )
        merged = dict(params)
        for key, value in self.pretrain_params.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                value = {**merged[key], **value}
            merged[key] = value
        return type(self.model)(**merged)

    def check(self, data: TransferData) -> str | None:
        return super().check(data) or check_embedding_transfer(self, data)

    def pretrain_source(self, source: SourceData, seed: int) -> Recommender:
        """``model`` with ``pretrain_params``, fitted on the source (10% per-user holdout)."""
        return pretrain(self._source_model(), source, seed, f"pretrain on {source.name}")

    def _fit(self, data: TransferData) -> Recommender:
        pretrained = [self.pretrain_source(s, data.seed) for s in data.sources]
        users, items = transferred_init(data, pretrained, fold_in=self.fold_in, seed=data.seed)
        init = EmbeddingInit(user=users, item=items, transferred_lr_scale=self.transferred_lr_scale)
        target = self.model.clone()
        return target.fit_with(data.train, data.valid, FitInputs(init=init, label="warm start: fine-tune"))
