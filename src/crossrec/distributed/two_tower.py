"""Data-parallel two-tower model: replicated towers, dense gradients all-reduced by DDP.

What is supported
-----------------
* The user tower is an **ID tower** (a user ID embedding through the fusion); user attributes are not
  supported (``user_modalities`` must stay empty).
* The item tower has an item ID embedding plus, optionally, the item attribute columns named in
  ``item_modalities`` (category, tags, number, text, vector columns), read from the bundle's
  ``items.parquet`` or the built-in dataset's target items by
  :func:`crossrec.distributed.prepare_data`, encoded as
  :class:`crossrec.models.two_tower.TwoTower` does (encoders fitted on items with training
  interactions, identically on every rank).
* Not supported: attribute-only towers (``item_ids``/``user_ids = false``), warm starts and transfer.

Why a dense all-reduce
----------------------
A step evaluates both towers over the whole domain, as the single-process trainer does, so the fusion
and modality-head parameters, shared by every user or item, have dense gradients that must be summed
over ranks in any design. The ID tables' gradients are row-sparse, but the optimizer is Adam with dense
moments (as in :func:`crossrec.training.train_embedding_model`): every row moves at every step, so the
replicas need the full table gradient, and sparse gradients would force a different optimizer
(``SparseAdam``'s lazy updates) and a different model from the one-process run. One
``DistributedDataParallel`` all-reduce of all parameters keeps every replica equal to the one-process
update at a cost of ``(users + items) x dim`` floats per step. For catalogues where that, or the
full-domain tower pass, is too expensive, the better design computes towers for the batch's entities
only and keeps the ID tables sharded (TorchRec-style row-wise sharding); it is not implemented here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._context import RankContext
from crossrec.distributed.autograd import AutogradTrainer, GradientTrainConfig
from crossrec.features.table import FeatureTable

__all__ = ["TwoTowerTrainConfig", "two_tower_trainer"]


class TwoTowerTrainConfig(GradientTrainConfig):
    """Two-tower settings of the data-parallel trainer (ID user tower; item IDs plus item attributes)."""

    hidden: int = Field(128, ge=1, description="Hidden size of each tower's fusion.")
    fusion: Literal["concat", "gated", "attention"] = Field("concat", description="How a tower fuses.")
    item_modalities: tuple[str, ...] = Field(
        (), description="Item attribute columns for the item tower (empty: item IDs only)."
    )
    user_modalities: tuple[str, ...] = Field(
        (), description="Must stay empty: the data-parallel user tower is ID-only."
    )
    text_encoder: Literal["tfidf", "minilm"] = Field("tfidf", description="Encoder of text columns.")
    text_dim: int = Field(64, ge=1, description="Width of encoded text.")
    log_numbers: tuple[str, ...] = Field((), description="Number columns to log-transform.")
    category_min_count: int = Field(1, ge=1, description="Rarer categories share one code.")
    max_tags: int = Field(1000, ge=1, description="Most frequent tags kept per tags column.")
    text_cache_dir: str | None = Field(None, description="Cache of sentence embeddings (minilm).")
    modality_dropout: float = Field(0.1, ge=0, lt=1, description="Training-time attribute dropout.")
    id_dropout: float = Field(0.2, ge=0, lt=1, description="Training-time ID dropout (with attributes).")
    id_residual: bool = Field(False, description="Add each tower's ID embedding to its fused output.")
    learning_rate: float = Field(5e-3, gt=0, description="Adam learning rate.")
    loss: Literal["bpr", "softmax"] = Field("softmax", description="Pairwise BPR or sampled softmax.")
    n_negatives: int = Field(16, ge=1, description="Uniform negatives per positive.")

    @field_validator("user_modalities")
    @classmethod
    def _no_user_attributes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value:
            raise ValueError(
                f"user_modalities={list(value)}: data-parallel two-tower training has an ID-only user "
                "tower (user attributes are not supported); leave user_modalities empty, or train "
                "without --nproc"
            )
        return value

    def model_params(self) -> dict[str, object]:
        params = super().model_params()
        for key in ("item_modalities", "user_modalities", "log_numbers"):
            params[key] = list(params[key])
        return params


def two_tower_trainer(
    settings: TwoTowerTrainConfig,
    train: InteractionArrays,
    item_features: FeatureTable | None,
    context: RankContext,
) -> AutogradTrainer:
    """A two-tower replica on this rank; ``item_features`` holds the ``item_modalities`` columns."""
    from crossrec.models.two_tower import TwoTower

    if settings.item_modalities and item_features is None:
        raise ValueError(
            f"item_modalities={list(settings.item_modalities)} but no item features were prepared"
        )
    model = TwoTower(**settings.model_params())
    module = model.build_module(
        train.to_csr(), item_features=item_features if settings.item_modalities else None
    )
    return AutogradTrainer(model, module, settings, train, context)
