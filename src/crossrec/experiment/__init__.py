"""crossrec.experiment: experiment files (TOML) validated into typed settings, hyperparameter
search on validation, and the runner behind ``crossrec train`` and ``crossrec transfer``."""

from crossrec.experiment.config import (
    DataConfig,
    EvaluationConfig,
    ExperimentConfig,
    ExperimentFileError,
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
    build_model,
    build_strategy,
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
    "load_domains",
    "load_experiment",
    "make_split",
    "prepare",
    "run_experiment",
    "tune",
]
