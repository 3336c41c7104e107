"""The validated settings of a data-parallel run, and what rank 0 reports back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crossrec.models.base import get_model_class
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.training.optim import OptimConfig

__all__ = ["DATA_PARALLEL_MODELS", "DistributedResult", "DistributedTrainConfig"]

#: Models that train data-parallel.
DATA_PARALLEL_MODELS: tuple[str, ...] = ("bpr_mf", "lightgcn", "two_tower")

#: Keys of the earlier run files and where their settings went.
_MOVED = {
    "bpr": "params (model arguments) and params.optim (optimiser settings)",
    "lightgcn": "params (model arguments) and params.optim (optimiser settings)",
    "two_tower": "params (model arguments) and params.optim (optimiser settings)",
    "num_threads": "params.optim.threads",
    "eval_every": "params.optim.eval_every",
    "checkpoint_every": "params.optim.checkpoint_every",
    "progress": "params.optim.progress",
}


class DistributedTrainConfig(BaseModel):
    """A distributed training run: data, model, evaluation and output (validated once, here).

    The model is built exactly as a single-process run builds it, ``get_model_class(model)(**params)``,
    so its :class:`~crossrec.training.optim.OptimConfig` (``params["optim"]``: optimizer, learning rate,
    batches, epochs, early stopping on validation, seed, ...) is the one every rank trains with.
    """

    model_config = ConfigDict(extra="forbid")

    builtin: Literal["movielens-cdr"] | None = Field(
        None, description="Train on a built-in dataset's target."
    )
    data_dir: Path | None = Field(None, description="Cache folder of built-in datasets.")
    bundle: Path | None = Field(None, description="A bundle folder from `crossrec ingest`.")
    domain: str | None = Field(
        None, description="Domain of the bundle to train on (default: its first target)."
    )
    split_ratios: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Per-user train/valid/test."
    )
    split_seed: int = Field(2022, description="Seed of the split.")
    model: Literal["bpr_mf", "lightgcn", "two_tower"] = Field("bpr_mf", description="Model to train.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The model's constructor arguments (e.g. dim, layers), optimiser settings under 'optim'.",
    )
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="Process-group backend; auto: nccl when CUDA is available, else gloo."
    )
    metrics: tuple[str, ...] = Field(("ndcg", "recall", "hit"), description="Test metrics.")
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs of the test metrics.")
    eval_users: int | None = Field(
        None, ge=1, description="Evaluate a seeded sample of this many test users."
    )
    selection_metric: str | None = Field(
        None, description="Also score the trained model on validation with this metric (e.g. for search)."
    )
    evaluate_test: bool = Field(True, description="Rank the test users (off for validation-only trials).")
    resume: bool = Field(False, description="Continue from output/checkpoint when it exists.")
    output: Path = Field(
        Path("runs/distributed"), description="Run folder: model/, checkpoint/, result.json."
    )
    work_dir: Path | None = Field(None, description="Where the split arrays go (default output/data).")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, values: Any) -> Any:
        if isinstance(values, dict):
            moved = {key: _MOVED[key] for key in values if key in _MOVED}
            if moved:
                where = "; ".join(f"{key} -> {target}" for key, target in moved.items())
                raise ValueError(f"these settings moved: {where}")
        return values

    @model_validator(mode="after")
    def _consistent(self) -> DistributedTrainConfig:
        if (self.builtin is None) == (self.bundle is None):
            raise ValueError("give exactly one of builtin (e.g. 'movielens-cdr') or bundle (a folder)")
        if len(self.split_ratios) != 3 or not np.isclose(sum(self.split_ratios), 1.0):
            raise ValueError(f"split_ratios must be three shares summing to 1, got {self.split_ratios}")
        model = self.build_model()
        if self.model == "two_tower":
            from crossrec.distributed.two_tower import check_data_parallel

            check_data_parallel(model)
        return self

    def build_model(self) -> EmbeddingRecommender:
        """A fresh, unfitted model of this run (what every rank trains)."""
        try:
            model = get_model_class(self.model)(**self.params)
        except (TypeError, ValidationError) as error:
            raise ValueError(f"model {self.model!r} params {self.params}: {error}") from None
        assert isinstance(model, EmbeddingRecommender)
        return model

    @property
    def optim(self) -> OptimConfig:
        """The model's resolved optimiser settings."""
        return self.build_model().optim

    @property
    def item_columns(self) -> list[str]:
        """Item attribute columns of a two-tower run (none: item IDs only)."""
        return list(self.params.get("item_modalities") or []) if self.model == "two_tower" else []

    @property
    def data_folder(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.output / "data"


@dataclass
class DistributedResult:
    """What a run wrote (rank 0's view; also ``output/result.json``)."""

    output: Path
    world_size: int
    backend: str
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    evaluated_users: int = 0
    model_path: Path | None = None
    model: str = "bpr_mf"
    best_epoch: int = 0
    best_valid: float = float("-inf")
    stop_reason: str = ""
    still_improving: bool = False
    stopped: str = ""
    valid_score: float | None = None

    @classmethod
    def load(cls, output: str | Path) -> DistributedResult:
        """Read ``output/result.json``."""
        payload = json.loads((Path(output) / "result.json").read_text())
        payload["output"] = Path(payload["output"])
        payload["model_path"] = Path(payload["model_path"]) if payload.get("model_path") else None
        return cls(**{name: payload[name] for name in cls.__dataclass_fields__ if name in payload})
