"""The negative-transfer guard and ``auto``: every transfer is compared with the target-only
baseline on the same split's validation part, per user, and the better one is kept. Fitting and
scoring go through :func:`crossrec.selection.select`; the paired evidence is a
:class:`crossrec.selection.Comparison`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossrec.metrics import per_user_metric
from crossrec.models.base import Recommender
from crossrec.models.gradient import GradientRecommender
from crossrec.selection import Comparison, NoTrialSucceededError, Selection, Trial, select
from crossrec.transfer.base import (
    STRATEGY_REGISTRY,
    TransferData,
    TransferNotPossibleError,
    TransferStrategy,
    _load_optional_strategies,
)

__all__ = [
    "AutoResult",
    "GuardResult",
    "auto_transfer",
    "candidates_for",
    "default_candidates",
    "guarded_transfer",
    "per_user_metric",
]


@dataclass
class GuardResult:
    """Outcome of one guarded transfer.

    Attributes
    ----------
    strategy
        Label of the transfer (``strategy:model``).
    kept
        ``"transfer"`` or ``"baseline"``: which model the guard keeps.
    model
        The kept fitted model.
    transfer_model, baseline_model
        Both fitted models.
    metric
        Validation metric compared (per user, paired).
    transfer_score, baseline_score
        Validation means.
    difference, ci_low, ci_high
        Mean paired difference (transfer - baseline) and its bootstrap confidence interval.
    seconds
        Training seconds of the transfer and of the baseline.
    """

    strategy: str
    kept: str
    model: Recommender
    transfer_model: Recommender
    baseline_model: Recommender
    metric: str
    transfer_score: float
    baseline_score: float
    difference: float
    ci_low: float
    ci_high: float
    n_users: int
    seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the console and the run log."""
        return (
            f"negative-transfer guard: {self.strategy} valid {self.metric} {self.transfer_score:.4f} vs "
            f"target-only {self.baseline_score:.4f}; per-user difference {self.difference:+.4f} "
            f"[95% CI {self.ci_low:+.4f}, {self.ci_high:+.4f}] over {self.n_users} users -> keeping the "
            f"{'transfer' if self.kept == 'transfer' else 'target-only baseline'}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "kept": self.kept,
            "metric": self.metric,
            "transfer_valid": self.transfer_score,
            "baseline_valid": self.baseline_score,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_users": self.n_users,
            "train_seconds": self.seconds,
        }


def _decide(
    label: str,
    transfer: Trial,
    baseline_model: Recommender,
    baseline_values: np.ndarray,
    *,
    metric: str,
    require_significant: bool,
    n_resamples: int,
    seed: int,
    baseline_seconds: float,
    console: Any,
) -> GuardResult:
    """Keep the transfer or the baseline from their paired per-user validation values."""
    comparison = Comparison.of_values(
        metric, transfer.values, baseline_values, n_resamples=n_resamples, seed=seed
    )
    keep = comparison.significant if require_significant else comparison.difference > 0
    result = GuardResult(
        strategy=label,
        kept="transfer" if keep else "baseline",
        model=transfer.model if keep else baseline_model,
        transfer_model=transfer.model,
        baseline_model=baseline_model,
        metric=metric,
        transfer_score=comparison.score,
        baseline_score=comparison.reference_score,
        difference=comparison.difference,
        ci_low=comparison.ci_low,
        ci_high=comparison.ci_high,
        n_users=comparison.n_users,
        seconds={"transfer": transfer.seconds, "baseline": baseline_seconds},
    )
    if console is not None:
        console.print(result.describe())
    return result


def guarded_transfer(
    strategy: TransferStrategy,
    data: TransferData,
    *,
    baseline: Recommender | None = None,
    metric: str = "ndcg@10",
    require_significant: bool = False,
    users: np.ndarray | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    console: Any = None,
) -> GuardResult:
    """Fit ``strategy`` and its target-only baseline on the same split; keep the better on validation.

    Parameters
    ----------
    strategy
        The transfer to guard.
    data
        Target split and sources.
    baseline
        An already fitted target-only model to compare with (default: fit ``strategy.baseline()``).
    metric
        Per-user validation metric, e.g. ``"ndcg@10"``.
    require_significant
        Keep the transfer only when the interval's lower bound is above zero (default: when the
        mean difference is positive).
    users
        Judge on these validation users only (e.g. the cold users the model will serve).
    n_resamples, seed
        Paired bootstrap settings.
    console
        A Rich console (or anything with ``print``) to report the decision on.
    """
    fitted = [strategy] if baseline is not None else [strategy.baseline(), strategy]
    chosen = select(fitted, data, metric=metric, users=users, keep_models=True)
    transfer = chosen.trials[-1]
    if baseline is None:
        reference = chosen.trials[0]
        baseline, baseline_values, baseline_seconds = reference.model, reference.values, reference.seconds
    else:
        baseline_values, baseline_seconds = data.per_user(baseline, metric, chosen.users)[1], 0.0
    return _decide(
        strategy.label, transfer, baseline, baseline_values, metric=metric,
        require_significant=require_significant, n_resamples=n_resamples, seed=seed,
        baseline_seconds=baseline_seconds, console=console,
    )  # fmt: skip


def default_candidates(model: Recommender | None = None) -> list[TransferStrategy]:
    """The strategies ``auto`` tries: every registered strategy with its default model and, where
    it applies, with ``model`` and a few proven model choices (EASE and ItemKNN joint, BPR-MF
    warm start and mapping)."""
    from crossrec.models.item_based import ItemKNN

    _load_optional_strategies()
    candidates: list[TransferStrategy] = []
    for name, cls in sorted(STRATEGY_REGISTRY.items()):
        if name == "none":
            continue
        if model is not None:
            with contextlib.suppress(TypeError):
                candidates.append(cls(model=model.clone()))
        candidates.append(cls())
    candidates.append(STRATEGY_REGISTRY["joint"](model=ItemKNN()))
    if "mapping" in STRATEGY_REGISTRY:
        candidates.append(STRATEGY_REGISTRY["mapping"](bridge="meta"))
    unique: dict[str, TransferStrategy] = {}
    for candidate in candidates:
        unique.setdefault(repr(candidate), candidate)
    return list(unique.values())


def candidates_for(
    model: Recommender, *, other_families: bool = False
) -> tuple[list[TransferStrategy], list[dict[str, str]]]:
    """What ``auto`` tries for an experiment whose model is ``model``: every registered strategy
    built around ``model`` (and, with ``other_families``, :func:`default_candidates`' other models
    too; one per label, closed-form models before gradient-trained ones so that a time budget
    reaches the cheap ones), plus ``{"strategy", "reason"}`` for each strategy that cannot take
    ``model``."""
    _load_optional_strategies()
    candidates: list[TransferStrategy] = []
    skipped: list[dict[str, str]] = []
    for name, cls in sorted(STRATEGY_REGISTRY.items()):
        if name == "none":
            continue
        try:
            candidates.append(cls(model=model.clone()))
        except TypeError as error:
            skipped.append({"strategy": f"{name}:{model.name}", "reason": str(error).splitlines()[0]})
    if other_families:
        candidates += default_candidates(model)
    unique: dict[str, TransferStrategy] = {}
    for candidate in candidates:  # one candidate per label: the experiment's model's comes first
        unique.setdefault(candidate.label, candidate)
    # cheap closed-form families first, so a time budget is spent on them before gradient training
    ordered = sorted(
        unique.values(), key=lambda c: isinstance(getattr(c, "model", None), GradientRecommender)
    )
    return ordered, skipped


@dataclass
class AutoResult:
    """What ``auto`` tried, skipped and kept."""

    guard: GuardResult
    tried: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    selection: Selection | None = None

    @property
    def model(self) -> Recommender:
        return self.guard.model


def auto_transfer(
    data: TransferData,
    *,
    candidates: Sequence[TransferStrategy] | None = None,
    baseline: TransferStrategy | None = None,
    metric: str = "ndcg@10",
    require_significant: bool = False,
    users: np.ndarray | None = None,
    budget_seconds: float | None = None,
    seed: int = 0,
    console: Any = None,
    on_start: Callable[[int, int, str], None] | None = None,
) -> AutoResult:
    """Try every candidate the data allows, keep the best on validation, then guard it against
    the target-only baseline (``baseline``, default: target-only EASE, or ItemKNN when the
    catalogue is too large for EASE).

    ``users`` restricts selection and the guard to those validation users; ``budget_seconds``
    stops trying further candidates once spent (see :func:`crossrec.selection.select`); those not
    started are listed in :attr:`AutoResult.skipped` with the reason. ``on_start(number, total,
    label)`` is called before each candidate is fitted (progress).
    """
    from crossrec.models.item_based import EASE, ItemKNN
    from crossrec.transfer.target_only import TargetOnly

    candidates = list(candidates) if candidates is not None else default_candidates()
    runnable, skipped = [], []
    for candidate in candidates:
        reason = candidate.check(data)
        if reason is None:
            runnable.append(candidate)
        else:
            skipped.append({"strategy": candidate.label, "reason": reason})

    def report(trial: Trial) -> None:
        if console is not None and trial.ok:
            console.print(f"auto: {trial.name} valid {metric} {trial.score:.4f} ({trial.seconds:.1f} s)")

    def announced() -> Iterator[TransferStrategy]:
        for number, candidate in enumerate(runnable):
            if on_start is not None:
                on_start(number, len(runnable), candidate.label)
            yield candidate

    try:
        if not runnable:
            raise NoTrialSucceededError("nothing to try", [])
        chosen = select(
            announced(), data, metric=metric, users=users, budget_seconds=budget_seconds,
            on_trial=report, skip=(TransferNotPossibleError, ValueError),
        )  # fmt: skip
    except NoTrialSucceededError as error:
        skipped += [{"strategy": t.name, "reason": t.reason} for t in error.trials]
        raise TransferNotPossibleError(
            "auto: no transfer strategy can run on this data: "
            + "; ".join(f"{s['strategy']}: {s['reason']}" for s in skipped)
        ) from None
    skipped += [{"strategy": t.name, "reason": t.reason} for t in chosen.trials if not t.ok]
    if len(chosen.trials) < len(runnable):
        spent = f"not started: the time budget of {budget_seconds:g} s was spent"
        skipped += [{"strategy": c.label, "reason": spent} for c in runnable[len(chosen.trials) :]]
    tried = [
        {"strategy": t.name, f"valid_{metric}": t.score, "train_seconds": t.seconds, "params": t.params}
        for t in chosen.trials
        if t.ok
    ]
    if baseline is None:
        baseline = TargetOnly(EASE() if data.n_items <= EASE().max_columns else ItemKNN())
    reference = select([baseline], data, metric=metric, users=chosen.users)
    guard = _decide(
        chosen.best.name, chosen.best, reference.model, reference.best.values, metric=metric,
        require_significant=require_significant, n_resamples=2000, seed=seed,
        baseline_seconds=reference.best.seconds, console=console,
    )  # fmt: skip
    return AutoResult(guard=guard, tried=tried, skipped=skipped, selection=chosen)
