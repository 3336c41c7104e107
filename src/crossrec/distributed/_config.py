"""The validated settings of a data-parallel run, and what rank 0 reports back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossrec.distributed.autograd import GradientTrainConfig
from crossrec.distributed.lightgcn import LightGCNTrainConfig
from crossrec.distributed.two_tower import TwoTowerTrainConfig
from crossrec.training.fast_bpr import FastBPRConfig

__all__ = ["DATA_PARALLEL_MODELS", "DistributedResult", "DistributedTrainConfig"]

#: Model name -> the config field holding its settings.
DATA_PARALLEL_MODELS: dict[str, str] = {"bpr_mf": "bpr", "lightgcn": "lightgcn", "two_tower": "two_tower"}


class DistributedTrainConfig(BaseModel):
    """A distributed training run: data, model, evaluation and output (validated once, here)."""

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
    model: Literal["bpr_mf", "lightgcn", "two_tower"] = Field(
        "bpr_mf", description="Model to train data-parallel; its settings are in the field of that name."
    )
    bpr: FastBPRConfig = Field(default_factory=FastBPRConfig, description="BPR-MF settings (model bpr_mf).")
    lightgcn: LightGCNTrainConfig = Field(
        default_factory=LightGCNTrainConfig, description="LightGCN settings (model lightgcn)."
    )
    two_tower: TwoTowerTrainConfig = Field(
        default_factory=TwoTowerTrainConfig, description="Two-tower settings (model two_tower)."
    )
    num_threads: int = Field(1, ge=1, description="torch threads per rank (use more ranks for more cores).")
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="Process-group backend; auto: nccl when CUDA is available, else gloo."
    )
    metrics: tuple[str, ...] = Field(("ndcg", "recall", "hit"), description="Test metrics.")
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs of the test metrics.")
    eval_users: int | None = Field(
        None, ge=1, description="Evaluate a seeded sample of this many test users."
    )
    eval_every: int = Field(0, ge=0, description="Epochs between validation NDCG@10 records (0: never).")
    checkpoint_every: int = Field(0, ge=0, description="Epochs between rank-0 checkpoints (0: only the end).")
    resume: bool = Field(False, description="Continue from output/checkpoint when it exists.")
    output: Path = Field(
        Path("runs/distributed"), description="Run folder: model/, checkpoint/, result.json."
    )
    work_dir: Path | None = Field(None, description="Where the split arrays go (default output/data).")
    progress: bool = Field(True, description="Print one line per epoch on rank 0.")

    @model_validator(mode="after")
    def _consistent(self) -> DistributedTrainConfig:
        if (self.builtin is None) == (self.bundle is None):
            raise ValueError("give exactly one of builtin (e.g. 'movielens-cdr') or bundle (a folder)")
        if len(self.split_ratios) != 3 or not np.isclose(sum(self.split_ratios), 1.0):
            raise ValueError(f"split_ratios must be three shares summing to 1, got {self.split_ratios}")
        for model, name in DATA_PARALLEL_MODELS.items():
            settings = getattr(self, name)
            if model != self.model and settings != type(settings)():
                raise ValueError(
                    f"settings [{name}] are for model {model!r} but model is {self.model!r}: "
                    f"set model = {model!r} or leave [{name}] out"
                )
        return self

    @property
    def settings(self) -> FastBPRConfig | GradientTrainConfig:
        """The trained model's settings (``bpr``, ``lightgcn`` or ``two_tower``)."""
        return getattr(self, DATA_PARALLEL_MODELS[self.model])

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

    @classmethod
    def load(cls, output: str | Path) -> DistributedResult:
        """Read ``output/result.json``."""
        payload = json.loads((Path(output) / "result.json").read_text())
        payload["output"] = Path(payload["output"])
        payload["model_path"] = Path(payload["model_path"]) if payload.get("model_path") else None
        return cls(**{name: payload[name] for name in cls.__dataclass_fields__ if name in payload})
