"""The one optimiser configuration of every gradient-trained model and of every trainer.

:class:`OptimConfig` holds how a model is trained (step rule, learning rate, batches, epochs, early
stopping, negatives, seed, threads, progress, checkpoints), never what the model is (sizes, layers,
dropout). Models take it as ``optim=`` (``BPRMF(dim=64, optim=OptimConfig(learning_rate=5e-3))`` or a
dict from an experiment file, ``optim={"learning_rate": 5e-3}``); the single-process trainers
(:func:`crossrec.training.train_embedding_model`, the lean BPR-MF step of
:mod:`crossrec.training.fast_bpr`, the sequence models' loop) and the data-parallel ones
(:mod:`crossrec.distributed`) all read the same fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Optimizer", "OptimConfig", "merge_optim"]

#: Step rules: Adam (dense moments), plain SGD, or the lean row-wise AdaGrad of BPR-MF.
Optimizer = Literal["adam", "sgd", "rowwise_adagrad"]


class OptimConfig(BaseModel):
    """How a gradient model is trained (validated, frozen).

    Fields a model does not use must stay at their defaults (the model says which when one is set);
    a model's own defaults (e.g. the two-tower's sampled softmax with 16 negatives) are its
    ``default_optim``, which the fields given here override.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Optimizer = Field(
        "adam",
        description=(
            "Step rule: 'adam', 'sgd', or 'rowwise_adagrad' (BPR-MF only: the lean closed-form step of "
            "crossrec.training.fast_bpr, one accumulator per row; needs loss 'bpr' and one negative)."
        ),
    )
    learning_rate: float = Field(1e-3, gt=0, description="Step size of the optimizer.")
    l2: float = Field(
        0.0,
        ge=0,
        description=(
            "L2 regularisation: a penalty on the embedding rows each step uses (pairwise models), "
            "Adam weight decay (sequence models)."
        ),
    )
    batch_size: int = Field(
        2048, ge=1, description="Interactions (pairwise models) or sequences per step; global over ranks."
    )
    epochs: int = Field(200, ge=1, description="Most passes over the training data.")
    patience: int = Field(
        10, ge=1, description="Validation evaluations without improvement before training stops."
    )
    eval_every: int = Field(1, ge=1, description="Epochs between validation evaluations.")
    valid_metric: str = Field(
        "ndcg@10", description="Validation metric of early stopping, 'name@k' (e.g. 'recall@20')."
    )
    loss: Literal["bpr", "softmax"] = Field(
        "bpr",
        description=(
            "'bpr' (pairwise) or 'softmax' (sampled softmax over the negatives; sequence models: "
            "a full softmax over the catalogue)."
        ),
    )
    negatives: int = Field(1, ge=1, description="Uniform negative items per positive (pairwise models).")
    reject_positives: bool = Field(
        True, description="Redraw negatives that are training positives of the user (pairwise models)."
    )
    seed: int = Field(0, description="Seed of initialisation, shuffling, negatives and dropout.")
    threads: int | None = Field(
        None, ge=1, description="torch threads while training (None keeps torch's; data-parallel: 1 a rank)."
    )
    progress: bool = Field(True, description="Show progress (a bar; one line per epoch on rank 0).")
    checkpoint_every: int = Field(
        1, ge=1, description="Epochs between checkpoints, when a checkpoint folder is given."
    )

    @field_validator("valid_metric")
    @classmethod
    def _metric_at_k(cls, value: str) -> str:
        name, _, k = value.partition("@")
        if not name or not k.isdigit() or int(k) < 1:
            raise ValueError(f"valid_metric must look like 'ndcg@10', got {value!r}")
        return value

    @property
    def metric_name(self) -> str:
        """``"ndcg"`` of ``"ndcg@10"``."""
        return self.valid_metric.split("@")[0]

    @property
    def metric_k(self) -> int:
        """``10`` of ``"ndcg@10"``."""
        return int(self.valid_metric.split("@")[1])


def merge_optim(*layers: OptimConfig | Mapping[str, Any] | None) -> OptimConfig:
    """One :class:`OptimConfig` from layers, later ones winning field by field.

    A mapping contributes its keys; an :class:`OptimConfig` the fields that were set on it
    (``OptimConfig(learning_rate=0.01)`` overrides only the learning rate). The result has every
    field set, so it rebuilds itself exactly (``clone``, ``save``/``load``).
    """
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if isinstance(layer, OptimConfig):
            values.update(layer.model_dump(exclude_unset=True))
        elif isinstance(layer, Mapping):
            values.update(layer)
        else:
            raise TypeError(f"optim must be an OptimConfig or a mapping, got {type(layer).__name__}")
    return OptimConfig.model_validate(OptimConfig().model_dump() | values)
