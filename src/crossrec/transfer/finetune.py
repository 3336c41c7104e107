"""Fine-tune: pretrain on the source(s), then continue on the target with parts frozen, a lower
learning rate for transferred weights, or only a head trained.

With several sources, ID tables (BPR-MF, LightGCN) come from every source with a positive weight
(aligned and averaged by weight); a two-tower model's feature towers cannot be averaged across
separately trained models, so ``finetune`` refuses a two-tower model with more than one weighted
source (``content`` trains one model on all of them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from crossrec.models.base import Recommender
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.mf import BPRMF
from crossrec.models.two_tower import TwoTower
from crossrec.transfer._tables import pretrain
from crossrec.transfer.base import SourceData, TransferData, TransferStrategy, register_strategy
from crossrec.transfer.warm_start import check_embedding_transfer, transferred_init

__all__ = ["FineTune"]

_TABLES = {"user": "user_embedding", "item": "item_embedding"}


@register_strategy
class FineTune(TransferStrategy):
    """Pretrain on each source, carry every transferable weight to the target model (ID rows
    through the links, other parameters such as feature towers by name), then fine-tune.

    Parameters
    ----------
    model
        Embedding model.
    freeze
        Parts kept fixed while fine-tuning: ``"user"``, ``"item"`` (ID tables) or any other
        parameter-name prefix (e.g. ``"item_tower"``).
    transferred_lr_scale
        Learning-rate multiplier for transferred weights (``0`` freezes all of them).
    head_only
        Freeze the transferred model and train only a linear head on the user side.
    """

    name = "finetune"
    transfers_from_artifact = True

    def __init__(
        self,
        model: Recommender | None = None,
        freeze: Sequence[str] = (),
        transferred_lr_scale: float = 0.1,
        head_only: bool = False,
    ) -> None:
        self.model = model if model is not None else BPRMF(optim={"progress": False})
        self.freeze = tuple(freeze)
        self.transferred_lr_scale = transferred_lr_scale
        self.head_only = head_only

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data) or check_embedding_transfer(self, data)
        if reason is None and isinstance(self.model, TwoTower):
            used = [s.name for s in data.sources if s.weight > 0]
            if len(used) > 1:
                return (
                    f"finetune carries a two-tower model's feature towers from one pretrained model, and "
                    f"{len(used)} sources have a positive weight ({', '.join(used)}): towers trained "
                    "apart cannot be averaged. Weight one source (the others 0), or use content (one "
                    "model on every source), warm_start or joint"
                )
        return reason

    def pretrain_source(self, source: SourceData, seed: int) -> Recommender:
        """``model`` fitted on the source (10% per-user holdout)."""
        return pretrain(self.model, source, seed, f"pretrain on {source.name}")

    def _fit(self, data: TransferData) -> Recommender:
        sources = [s for s in data.sources if s.weight > 0] or list(data.sources)
        data = dataclasses.replace(data, sources=tuple(sources))
        pretrained = [self.pretrain_source(s, data.seed) for s in data.sources]
        users, items = transferred_init(data, pretrained, fold_in=True, seed=data.seed)
        state = {}
        # ID tables come from every source (aligned, weighted); other parameters from the heaviest one
        module = getattr(pretrained[int(np.argmax([s.weight for s in data.sources]))], "_module", None)
        if module is not None:
            state = {k: v.detach().numpy() for k, v in module.state_dict().items()}
        init = EmbeddingInit(
            user=users,
            item=items,
            transferred_lr_scale=self.transferred_lr_scale,
            state=state,
            freeze=tuple(_TABLES.get(part, part) for part in self.freeze),
            head=self.head_only,
        )
        inputs = FitInputs(init=init, label="finetune on target")
        return self.model.clone().fit_with(data.train, data.valid, inputs)
