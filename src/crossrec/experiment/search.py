"""Hyperparameter search with Optuna over the space declared in the experiment file.

Every trial fits on the target's training part and is scored on its validation part only;
the sampler is seeded, so the same file and seed give the same trials."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crossrec._extras import require_extra
from crossrec.experiment.build import build_strategy
from crossrec.selection import Candidate, Trial, select
from crossrec.transfer.base import TransferData

if TYPE_CHECKING:
    from crossrec.experiment.config import ExperimentConfig, SearchDimension

__all__ = ["SearchResult", "apply_params", "suggest", "tune"]


@dataclass
class SearchResult:
    """Best parameters (``model.x`` / ``transfer.y`` keys), its validation score, every trial (its
    parameters, validation score and fit seconds) and the search's total seconds."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_params": self.best_params,
            "best_score": self.best_score,
            "trials": self.trials,
            "seconds": self.seconds,
        }


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
    """Search ``config.search.space`` for the strategy (``none`` = target-only) on validation.

    Optuna proposes (ask/tell, seeded TPE); :func:`crossrec.selection.select` fits and scores each
    proposal, records its time and stops starting trials after ``timeout_seconds``.
    """
    require_extra("tune", "hyperparameter search (the experiment's [search] table)")
    import optuna

    search = config.search
    assert search is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    asked: list[Any] = []
    target_only = strategy in (None, "none")
    # a target-only search has no transfer parameters: their dimensions would only add noise
    space = {k: d for k, d in search.space.items() if not (target_only and k.startswith("transfer."))}

    def proposals() -> Iterator[Candidate]:
        for _ in range(search.n_trials):
            trial = study.ask()
            asked.append(trial)
            params = {name: suggest(trial, name, dimension) for name, dimension in space.items()}
            model_params, transfer_params = apply_params(params)
            if target_only:
                transfer_params = {}
            chosen = build_strategy(config, strategy, model_params, transfer_params)
            yield Candidate(chosen, name=f"trial {trial.number}", params=params)

    started = time.perf_counter()

    def tell(result: Trial) -> None:
        study.tell(asked[-1], result.score)
        if console is not None:
            budget = "" if search.timeout_seconds is None else f" of {search.timeout_seconds:g} s"
            spent = f"{result.seconds:.1f} s; {time.perf_counter() - started:.0f} s{budget} spent"
            console.print(
                f"search trial {asked[-1].number + 1}/{search.n_trials}: {result.params} "
                f"valid {search.metric} {result.score:.4f} ({spent})",
                highlight=False,
            )

    selection = select(
        proposals(), data, metric=search.metric, budget_seconds=search.timeout_seconds, on_trial=tell
    )
    trials = [
        {"number": t.number, "params": t.params, "value": t.score, "seconds": t.seconds}
        for t in selection.trials
    ]
    return SearchResult(
        best_params=dict(selection.best.params),
        best_score=selection.score,
        trials=trials,
        seconds=selection.seconds,
    )
