"""The negative-transfer guard and ``auto``: every transfer is compared with the target-only
baseline on the same split's validation part, per user, and the better one is kept."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crossrec.metrics import paired_bootstrap_ci, per_user_metric
from crossrec.models.base import Recommender
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


def _fit_timed(strategy: TransferStrategy, data: TransferData) -> tuple[Recommender, float]:
    started = time.perf_counter()
    model = strategy.fit(data)
    return model, time.perf_counter() - started


def guarded_transfer(
    strategy: TransferStrategy,
    data: TransferData,
    *,
    baseline: Recommender | None = None,
    metric: str = "ndcg@10",
    require_significant: bool = False,
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
    n_resamples, seed
        Paired bootstrap settings.
    console
        A Rich console (or anything with ``print``) to report the decision on.
    """
    transfer_model, transfer_seconds = _fit_timed(strategy, data)
    baseline_seconds = 0.0
    if baseline is None:
        baseline, baseline_seconds = _fit_timed(strategy.baseline(), data)
    users, transfer_values = per_user_metric(transfer_model, data.valid, data.train, metric)
    _, baseline_values = per_user_metric(baseline, data.valid, data.train, metric, users=users)
    difference = transfer_values - baseline_values
    low, high = paired_bootstrap_ci(transfer_values, baseline_values, n_resamples=n_resamples, seed=seed)
    keep = low > 0 if require_significant else difference.mean() > 0
    result = GuardResult(
        strategy=strategy.label,
        kept="transfer" if keep else "baseline",
        model=transfer_model if keep else baseline,
        transfer_model=transfer_model,
        baseline_model=baseline,
        metric=metric,
        transfer_score=float(transfer_values.mean()),
        baseline_score=float(baseline_values.mean()),
        difference=float(difference.mean()),
        ci_low=low,
        ci_high=high,
        n_users=len(users),
        seconds={"transfer": transfer_seconds, "baseline": baseline_seconds},
    )
    if console is not None:
        console.print(result.describe())
    return result


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


@dataclass
class AutoResult:
    """What ``auto`` tried, skipped and kept."""

    guard: GuardResult
    tried: list[dict[str, Any]]
    skipped: list[dict[str, str]]

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
    seed: int = 0,
    console: Any = None,
) -> AutoResult:
    """Try every candidate the data allows, keep the best on validation, then guard it against
    the target-only baseline (``baseline``, default: target-only EASE, or ItemKNN when the
    catalogue is too large for EASE)."""
    from crossrec.models.item_based import EASE, ItemKNN
    from crossrec.transfer.target_only import TargetOnly

    candidates = list(candidates) if candidates is not None else default_candidates()
    tried, skipped = [], []
    best: tuple[float, TransferStrategy, Recommender, float] | None = None
    for candidate in candidates:
        reason = candidate.check(data)
        if reason is not None:
            skipped.append({"strategy": candidate.label, "reason": reason})
            continue
        try:
            model, seconds = _fit_timed(candidate, data)
        except (TransferNotPossibleError, ValueError) as error:
            skipped.append({"strategy": candidate.label, "reason": str(error)})
            continue
        _, values = per_user_metric(model, data.valid, data.train, metric)
        score = float(values.mean())
        tried.append({"strategy": candidate.label, f"valid_{metric}": score, "train_seconds": seconds})
        if console is not None:
            console.print(f"auto: {candidate.label} valid {metric} {score:.4f} ({seconds:.1f} s)")
        if best is None or score > best[0]:
            best = (score, candidate, model, seconds)
    if best is None:
        raise TransferNotPossibleError(
            "auto: no transfer strategy can run on this data: "
            + "; ".join(f"{s['strategy']}: {s['reason']}" for s in skipped)
        )
    if baseline is None:
        baseline = TargetOnly(EASE() if data.n_items <= EASE().max_columns else ItemKNN())
    baseline_model, baseline_seconds = _fit_timed(baseline, data)
    _, score_strategy, model, seconds = best

    class _Fitted(TransferStrategy):  # reuse the already fitted winner inside the guard
        name = score_strategy.name

        def __init__(self) -> None:
            self.model = score_strategy.model

        def _fit(self, data: TransferData) -> Recommender:
            return model

    guard = guarded_transfer(
        _Fitted(), data, baseline=baseline_model, metric=metric, require_significant=require_significant,
        seed=seed, console=console,
    )  # fmt: skip
    guard.seconds = {"transfer": seconds, "baseline": baseline_seconds}
    return AutoResult(guard=guard, tried=tried, skipped=skipped)
