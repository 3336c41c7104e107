"""Hyperparameter search with Optuna over the space declared in the experiment file.

Every trial fits on the target's training part and is scored on its validation part only;
the sampler is seeded, so the same file and seed give the same trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crossrec._extras import require_extra
from crossrec.transfer.base import TransferData
from crossrec.transfer.guard import per_user_metric

if TYPE_CHECKING:
    from crossrec.experiment.config import ExperimentConfig, SearchDimension

__all__ = ["SearchResult", "apply_params", "suggest", "tune"]


@dataclass
class SearchResult:
    """Best parameters (``model.x`` / ``transfer.y`` keys), its validation score, and all trials."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"best_params": self.best_params, "best_score": self.best_score, "trials": self.trials}


def apply_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``{"model.reg": 1, "transfer.domain_weight": 0.2}`` into model and transfer overrides;
    deeper keys nest (``"model.optim.learning_rate"`` -> ``{"optim": {"learning_rate": ...}}``)."""
    model: dict[str, Any] = {}
    transfer: dict[str, Any] = {}
    for key, value in params.items():
        head, _, rest = key.partition(".")
        target = model if head == "model" else transfer if head == "transfer" else None
        if target is None:
            continue
        *parents, leaf = rest.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return model, transfer


def suggest(trial: Any, name: str, dimension: SearchDimension) -> Any:
    """One Optuna suggestion for a declared dimension."""
    if dimension.choices is not None:
        return trial.suggest_categorical(name, dimension.choices)
    if dimension.integer:
        return trial.suggest_int(
            name, int(dimension.low), int(dimension.high), log=dimension.log, step=int(dimension.step or 1)
        )
    return trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log, step=dimension.step)


def tune(
    config: ExperimentConfig, data: TransferData, *, strategy: str | None = None, console: Any = None
) -> SearchResult:
    """Search ``config.search.space`` for the strategy (``none`` = target-only) on validation."""
    require_extra("tune", "hyperparameter search (the experiment's [search] table)")
    import optuna

    from crossrec.experiment.runner import build_strategy

    search = config.search
    assert search is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))

    def objective(trial: Any) -> float:
        params = {name: suggest(trial, name, dimension) for name, dimension in search.space.items()}
        model_params, transfer_params = apply_params(params)
        if strategy in (None, "none"):
            transfer_params = {}
        chosen = build_strategy(config, strategy, model_params, transfer_params)
        model = chosen.fit(data)
        _, values = per_user_metric(model, data.valid, data.train, search.metric)
        score = float(values.mean())
        if console is not None:
            console.print(f"trial {trial.number}: {params} valid {search.metric} {score:.4f}")
        return score

    study.optimize(objective, n_trials=search.n_trials, timeout=search.timeout_seconds)
    trials = [{"number": t.number, "params": t.params, "value": t.value} for t in study.trials]
    return SearchResult(
        best_params=dict(study.best_params), best_score=float(study.best_value), trials=trials
    )
