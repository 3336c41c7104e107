"""crossrec.experiment: experiment files (TOML) validated into typed settings, hyperparameter
search on validation, and the runner behind ``crossrec train``, ``crossrec transfer`` and
``crossrec demo`` (one model, or several model families each guarded against its own target-only
model)."""

from crossrec.experiment.build import build_model, build_strategy
from crossrec.experiment.config import (
    DataConfig,
    EvaluationConfig,
    ExperimentConfig,
    ExperimentFileError,
    FamilyConfig,
    GuardConfig,
    ModelConfig,
    SearchConfig,
    SearchDimension,
    SplitConfig,
    TransferConfig,
    load_experiment,
)
from crossrec.experiment.runner import (
    ExperimentResult,
    item_categories,
    load_domains,
    make_split,
    prepare,
    run_experiment,
)
from crossrec.experiment.search import SearchResult, apply_params, tune

__all__ = [
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "ExperimentFileError",
    "ExperimentResult",
    "FamilyConfig",
    "GuardConfig",
    "ModelConfig",
    "SearchConfig",
    "SearchDimension",
    "SearchResult",
    "SplitConfig",
    "TransferConfig",
    "apply_params",
    "build_model",
    "build_strategy",
    "item_categories",
    "load_domains",
    "load_experiment",
    "make_split",
    "prepare",
    "run_experiment",
    "tune",
]
