"""``crossrec train EXPERIMENT --nproc N``: an experiment's target-only training run data-parallel.

The model is built as the single-process run builds it (:func:`crossrec.experiment.runner.build_model`:
the same class, parameters and :class:`~crossrec.training.optim.OptimConfig`, seed and threads of the
experiment), trained by :func:`crossrec.distributed.train_distributed` with the same early stopping on
validation, and evaluated on test with the experiment's ``[evaluation]`` metrics. A ``[search]``
section runs as on one process: Optuna (TPE, seeded by the experiment) proposes ``model.*`` values,
each trial trains data-parallel and is scored on validation only (``search.metric``), and the best
trial's parameters train the final model. What the data-parallel path cannot do is refused by name.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from crossrec._extras import require_extra
from crossrec.distributed import DATA_PARALLEL_MODELS, DistributedResult, DistributedTrainConfig
from crossrec.experiment.config import ExperimentConfig
from crossrec.experiment.runner import build_model
from crossrec.experiment.search import SearchResult, apply_params, suggest

__all__ = ["DistributedExperimentResult", "distributed_run_config", "run_experiment_distributed"]


@dataclass
class DistributedExperimentResult:
    """The final run and, with ``[search]``, every trial (validation scores, seconds)."""

    result: DistributedResult
    search: SearchResult | None = None


def _refusals(config: ExperimentConfig) -> list[str]:
    problems = []
    if config.model.name not in DATA_PARALLEL_MODELS:
        problems.append(
            f"model {config.model.name!r}: --nproc trains {', '.join(DATA_PARALLEL_MODELS)} (two_tower: "
            "an ID user tower and item IDs plus the item attribute columns in item_modalities); run it "
            "without --nproc"
        )
    if config.split.protocol != "random":
        problems.append(f"split.protocol {config.split.protocol!r}: --nproc supports the random split")
    if config.data.max_users is not None:
        problems.append("data.max_users: --nproc trains on the whole target (remove max_users)")
    if config.search is not None and config.search.space:
        other = sorted(key for key in config.search.space if not key.startswith("model."))
        if other:
            problems.append(f"search.space keys {other}: `train` searches model.* parameters only")
        if "WORLD_SIZE" in os.environ:
            problems.append(
                "[search] under an external torchrun: use `crossrec train EXPERIMENT --nproc N`, which "
                "starts the ranks of every trial itself (or pass --no-search)"
            )
    return problems


def distributed_run_config(
    config: ExperimentConfig, nproc: int, model_params: dict[str, Any] | None = None, **overrides: Any
) -> DistributedTrainConfig:
    """The data-parallel run of ``config``'s model (search overrides in ``model_params``)."""
    problems = _refusals(config)
    if problems:
        raise ValueError("cannot run this experiment with --nproc: " + "; ".join(problems))
    model = build_model(config, model_params)
    settings: dict[str, Any] = {
        "builtin": config.data.builtin, "data_dir": config.data.data_dir, "bundle": config.data.bundle,
        "domain": config.data.target, "split_ratios": config.split.ratios, "split_seed": config.seed,
        "model": config.model.name, "params": model.get_params(),
        "metrics": tuple(config.evaluation.metrics), "ks": tuple(config.evaluation.ks),
        "output": config.output_dir / f"{config.name}-nproc{nproc}",
    }  # fmt: skip
    return DistributedTrainConfig(**(settings | overrides))


def run_experiment_distributed(
    config: ExperimentConfig, nproc: int, *, console: Any = None
) -> DistributedExperimentResult:
    """Search (with ``[search]``) and train ``config``'s model on ``nproc`` ranks, then evaluate on test."""
    from crossrec.distributed import train_distributed

    final = distributed_run_config(config, nproc)
    search = config.search
    if search is None or not search.space:
        return DistributedExperimentResult(train_distributed(final, nproc))
    require_extra("tune", "hyperparameter search (the experiment's [search] table)")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    seconds: dict[int, float] = {}

    def objective(trial: Any) -> float:
        params = {name: suggest(trial, name, dimension) for name, dimension in search.space.items()}
        model_params, _ = apply_params(params)
        run = distributed_run_config(
            config, nproc, model_params, output=final.output / "search" / f"trial-{trial.number}",
            work_dir=final.data_folder, evaluate_test=False, selection_metric=search.metric,
        )  # fmt: skip
        started = time.perf_counter()
        result = train_distributed(run, nproc)
        seconds[trial.number] = time.perf_counter() - started
        assert result.valid_score is not None
        if console is not None:
            console.print(f"trial {trial.number}: {params} valid {search.metric} {result.valid_score:.4f}")
        return result.valid_score

    study.optimize(objective, n_trials=search.n_trials, timeout=search.timeout_seconds)
    trials = [
        {"number": t.number, "params": t.params, "value": t.value, "seconds": seconds.get(t.number)}
        for t in study.trials
    ]
    found = SearchResult(
        best_params=dict(study.best_params), best_score=float(study.best_value), trials=trials
    )
    best, _ = apply_params(found.best_params)
    result = train_distributed(distributed_run_config(config, nproc, best, work_dir=final.data_folder), nproc)
    return DistributedExperimentResult(result, found)
