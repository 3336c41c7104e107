"""Several sources: per-source weights chosen on validation, each source's contribution, and the
rejection of a source that hurts.

* :func:`choose_source_weights` tries weight vectors (each source at each of ``levels``; a full grid
  for a few sources, coordinate ascent beyond) with :func:`crossrec.selection.select` and keeps the
  best on validation. A level of ``0`` drops the source, so a source that only adds noise ends at 0.
* :func:`source_contribution` fits the mix at its given weights, the mix without each source
  (leave-one-source-out) and each source alone, and reports the paired per-user validation
  differences with bootstrap 95% intervals (the evaluation layer adds the same on test).
* :func:`guarded_sources` chains them with the negative-transfer guard: the weights (``"auto"``, or
  the given ones) are chosen on one part of the validation users; on the other part every source
  must earn its place (:func:`test_sources`: the mix with it beats the mix without it, by default
  with a 95% interval above zero, else it is dropped at weight 0), and the kept mix is guarded
  against the target-only model. Every step reads validation only.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from crossrec.models.base import Recommender
from crossrec.selection import Candidate, Comparison, Selection, select
from crossrec.selection.validation import split_users
from crossrec.transfer.base import TransferData, TransferNotPossibleError, TransferStrategy
from crossrec.transfer.guard import GuardResult, guarded_transfer

__all__ = [
    "DEFAULT_LEVELS",
    "MultiSourceResult",
    "SourceContribution",
    "SourceWeighted",
    "SourceWeighting",
    "choose_source_weights",
    "guarded_sources",
    "source_contribution",
    "test_sources",
    "with_weights",
]

#: Weight levels tried for each source by default (``0`` drops it).
DEFAULT_LEVELS: tuple[float, ...] = (0.0, 0.5, 1.0)


def with_weights(data: TransferData, weights: Mapping[str, float]) -> TransferData:
    """``data`` with the sources re-weighted by name; sources whose weight is 0 are left out."""
    unknown = sorted(set(weights) - {s.name for s in data.sources})
    if unknown:
        raise ValueError(f"weights name unknown sources {unknown}; sources: {[s.name for s in data.sources]}")
    sources = []
    for source in data.sources:
        weight = float(weights.get(source.name, source.weight))
        if weight < 0 or not np.isfinite(weight):
            raise ValueError(f"source {source.name!r}: weight must be a finite number >= 0, got {weight}")
        if weight > 0:
            sources.append(dataclasses.replace(source, weight=weight))
    return dataclasses.replace(data, sources=tuple(sources))


def _weights_label(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={weight:g}" for name, weight in weights.items())


class SourceWeighted(TransferStrategy):
    """``strategy`` fitted with the sources re-weighted (``weights`` by source name; 0 leaves a source
    out). What :func:`choose_source_weights` selects among and what the guard keeps."""

    name = "source_weighted"

    def __init__(self, strategy: TransferStrategy, weights: Mapping[str, float]) -> None:
        self.strategy = strategy
        self.weights = {str(k): float(v) for k, v in weights.items()}

    @property
    def model(self) -> Recommender:  # type: ignore[override]
        return self.strategy.model

    def check(self, data: TransferData) -> str | None:
        return self.strategy.check(with_weights(data, self.weights))

    def _fit(self, data: TransferData) -> Recommender:
        return self.strategy.fit(with_weights(data, self.weights))

    def baseline(self) -> TransferStrategy:
        return self.strategy.baseline()

    def clone(self) -> SourceWeighted:
        return SourceWeighted(self.strategy.clone(), self.weights)

    @property
    def label(self) -> str:
        return f"{self.strategy.label} ({_weights_label(self.weights)})"  # no [..]: Rich reads it as markup


@dataclass
class SourceWeighting:
    """What :func:`choose_source_weights` tried and kept.

    Attributes
    ----------
    given
        Source name -> the weight it had before (the sources file's, default 1).
    weights
        Source name -> the chosen weight (0: dropped).
    levels
        The weight levels tried for each source.
    selection
        The last :class:`~crossrec.selection.Selection` (every trial; with coordinate ascent, the
        trials of all rounds are in :attr:`trials`).
    trials
        Every tried weight vector with its validation score, in order.
    search
        ``"grid"`` or ``"coordinate"``.
    """

    given: dict[str, float]
    weights: dict[str, float]
    levels: tuple[float, ...]
    selection: Selection
    trials: list[dict[str, Any]] = field(default_factory=list)
    search: str = "grid"

    @property
    def metric(self) -> str:
        return self.selection.metric

    @property
    def dropped(self) -> list[str]:
        """Sources whose chosen weight is 0."""
        return [name for name, weight in self.weights.items() if weight == 0]

    @property
    def score(self) -> float:
        return max(t["score"] for t in self.trials)

    def describe(self) -> str:
        chosen = ", ".join(
            f"{name} {weight:g}{' (dropped)' if weight == 0 else ''}" for name, weight in self.weights.items()
        )
        return (
            f"source weights chosen on validation {self.metric} ({len(self.trials)} weightings tried, "
            f"{self.search}): {chosen}; valid {self.metric} {self.score:.4f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": "auto",
            "metric": self.metric,
            "search": self.search,
            "levels": list(self.levels),
            "given": self.given,
            "chosen": self.weights,
            "dropped": self.dropped,
            f"valid_{self.metric}": self.score,
            "trials": self.trials,
        }


def _grid(names: Sequence[str], levels: Sequence[float]) -> list[dict[str, float]]:
    vectors = [dict(zip(names, combo, strict=True)) for combo in itertools.product(levels, repeat=len(names))]
    return [v for v in vectors if any(w > 0 for w in v.values())]


def choose_source_weights(
    strategy: TransferStrategy,
    data: TransferData,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    metric: str = "ndcg@10",
    users: np.ndarray | None = None,
    max_candidates: int = 27,
    rounds: int = 2,
    console: Any = None,
) -> SourceWeighting:
    """Choose each source's weight for ``strategy`` on validation (never test).

    Every weight vector over ``levels`` (all sources at 0 excluded: that is the target-only model,
    which the guard compares with) is fitted and scored with :func:`crossrec.selection.select`
    when there are at most ``max_candidates`` of them; beyond that, coordinate ascent: from the given
    weights, each source in turn takes the level that scores best with the others fixed, for
    ``rounds`` passes. A source whose data only adds noise ends at weight 0.

    The weights multiply the strategy's own source weight (e.g. joint's ``domain_weight``).
    """
    names = [s.name for s in data.sources]
    if not names:
        raise ValueError("choosing source weights needs at least one source")
    levels = tuple(sorted({float(level) for level in levels}))
    if not levels or levels[0] < 0 or not any(level > 0 for level in levels):
        raise ValueError(f"weight levels must be >= 0 with at least one above 0, got {list(levels)}")
    given = {s.name: float(s.weight) for s in data.sources}
    trials: list[dict[str, Any]] = []

    def run(vectors: list[dict[str, float]]) -> Selection:
        candidates = [
            Candidate(SourceWeighted(strategy, v), name=_weights_label(v), params={"weights": v})
            for v in vectors
        ]
        chosen = select(candidates, data, metric=metric, users=users)
        trials.extend(
            {"weights": v, "score": t.score, "seconds": t.seconds}
            for v, t in zip(vectors, chosen.trials, strict=True)
        )
        return chosen

    if len(levels) ** len(names) - 1 <= max_candidates:
        vectors = _grid(names, levels)
        chosen = run(vectors)
        best, search = vectors[chosen.best_index], "grid"
    else:
        best, search = dict(given), "coordinate"
        chosen = None
        for _ in range(rounds):
            for name in names:
                vectors = [
                    v for v in ({**best, name: level} for level in levels) if any(w > 0 for w in v.values())
                ]
                chosen = run(vectors)
                best = vectors[chosen.best_index]
        assert chosen is not None
    result = SourceWeighting(given, best, levels, chosen, trials, search)
    if console is not None:
        console.print(result.describe(), highlight=False)
    return result


@dataclass
class SourceContribution:
    """Leave-one-source-out and each-source-alone fits, compared on validation.

    Attributes
    ----------
    weights
        Source name -> the weight of the mix whose contributions are measured.
    metric
        The per-user validation metric.
    models
        Variant name -> fitted model: ``"all sources"``, ``"without <source>"``, ``"only <source>"``
        and ``"target only"`` (the strategy's baseline).
    rows
        Two per source (one with a single source): ``effect`` ``"leave_one_out"`` (the mix minus the
        mix without the source) or ``"alone"`` (the source alone minus target-only), with the paired
        validation difference and its 95% interval.
    users
        The validation users compared.
    """

    weights: dict[str, float]
    metric: str
    models: dict[str, Recommender] = field(repr=False)
    rows: list[dict[str, Any]]
    users: np.ndarray = field(repr=False)
    selection: Selection | None = field(default=None, repr=False)

    def harmful(self) -> list[str]:
        """Sources whose leave-one-source-out validation difference is negative (the mix is better
        without them); with one source, a source worse alone than target-only."""
        effect = "leave_one_out" if len(self.weights) > 1 else "alone"
        return [r["source"] for r in self.rows if r["effect"] == effect and r["valid_difference"] < 0]

    def describe(self) -> list[str]:
        return [
            f"source contribution: {r['source']} {r['effect'].replace('_', '-')} ({r['model']} - "
            f"{r['reference']}): valid {self.metric} {r['valid_difference']:+.4f} "
            f"[95% CI {r['valid_ci_low']:+.4f}, {r['valid_ci_high']:+.4f}]"
            for r in self.rows
        ]


def _variants(weights: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Variant name -> weights: the mix, the mix without each source, each source alone."""
    names = list(weights)
    out = {"all sources": dict(weights)}
    if len(names) > 1:
        out |= {f"without {n}": {**weights, n: 0.0} for n in names}
    out |= {f"only {n}": {m: (weights[n] if m == n else 0.0) for m in names} for n in names}
    return out


def source_contribution(
    strategy: TransferStrategy,
    data: TransferData,
    *,
    weights: Mapping[str, float] | None = None,
    metric: str = "ndcg@10",
    users: np.ndarray | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> SourceContribution:
    """Each source's contribution to ``strategy`` on validation.

    Fits (through :func:`crossrec.selection.select`, every model kept) the mix at ``weights``
    (default: the sources' own weights), the mix without each source, each source alone and the
    target-only baseline, and compares them per user: leave-one-source-out = mix - mix without the
    source; alone = the source alone - target-only. Variants with the same weights are fitted once.
    """
    weights = dict(weights) if weights is not None else {s.name: float(s.weight) for s in data.sources}
    positive = {name: w for name, w in weights.items() if w > 0}
    if not positive:
        raise ValueError("source contribution needs at least one source with a positive weight")
    variants = _variants(positive)
    unique: dict[tuple[float, ...], str] = {}
    for name, vector in variants.items():
        unique.setdefault(tuple(vector[n] for n in positive), name)
    candidates: list[Any] = [Candidate(strategy.baseline(), name="target only")]
    candidates += [Candidate(SourceWeighted(strategy, variants[name]), name=name) for name in unique.values()]
    chosen = select(candidates, data, metric=metric, users=users, keep_models=True)
    fitted = {t.name: t for t in chosen.trials}
    models, values = {}, {}
    for name, vector in variants.items():
        trial = fitted[unique[tuple(vector[n] for n in positive)]]
        models[name], values[name] = trial.model, trial.values
    models["target only"], values["target only"] = fitted["target only"].model, fitted["target only"].values
    rows = []
    for source in positive:
        pairs = [("alone", f"only {source}", "target only")]
        if len(positive) > 1:
            pairs.insert(0, ("leave_one_out", "all sources", f"without {source}"))
        for effect, model, reference in pairs:
            comparison = Comparison.of_values(
                metric, values[model], values[reference], n_resamples=n_resamples, seed=seed
            )
            rows.append(
                {
                    "source": source,
                    "weight": positive[source],
                    "effect": effect,
                    "model": model,
                    "reference": reference,
                    f"valid_{metric}": comparison.score,
                    f"valid_reference_{metric}": comparison.reference_score,
                    "valid_difference": comparison.difference,
                    "valid_ci_low": comparison.ci_low,
                    "valid_ci_high": comparison.ci_high,
                    "n_valid_users": comparison.n_users,
                }
            )
    return SourceContribution(dict(positive), metric, models, rows, chosen.users, chosen)


def test_sources(
    strategy: TransferStrategy,
    data: TransferData,
    weights: Mapping[str, float],
    *,
    users: np.ndarray,
    keep: Literal["significant", "positive"] = "significant",
    metric: str = "ndcg@10",
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Backward elimination of sources on validation ``users`` (best: users that did not choose the
    weights): the mix at ``weights`` is compared per user with the mix without each of its sources;
    the source whose removal costs least is dropped when mixing it in is not better (``keep =
    "positive"``: the mean difference is not above 0; ``"significant"``: the 95% interval is not above
    0), and the test repeats on the rest until every source passes or one is left (whether that one
    beats target-only is the guard's decision). Returns the kept weights and every test made."""
    kept = {name: float(w) for name, w in weights.items() if w > 0}
    tests: list[dict[str, Any]] = []
    for round_number in itertools.count():
        if len(kept) < 2:
            break
        candidates = [Candidate(SourceWeighted(strategy, kept), name="mix")]
        candidates += [Candidate(SourceWeighted(strategy, {**kept, n: 0.0}), name=n) for n in kept]
        fitted = select(candidates, data, metric=metric, users=users, keep_models=False)
        mix = fitted.trials[0].values
        rows = []
        for trial in fitted.trials[1:]:
            comparison = Comparison.of_values(metric, mix, trial.values, n_resamples=n_resamples, seed=seed)
            passes = comparison.ci_low > 0 if keep == "significant" else comparison.difference > 0
            rows.append(
                {
                    "round": round_number, "source": trial.name, "weight": kept[trial.name],
                    "difference": comparison.difference, "ci_low": comparison.ci_low,
                    "ci_high": comparison.ci_high, "n_users": comparison.n_users, "passes": passes,
                    "dropped": False,
                }
            )  # fmt: skip
        tests += rows
        failing = [r for r in rows if not r["passes"]]
        if not failing:
            break
        worst = min(failing, key=lambda r: r["difference"])
        worst["dropped"] = True
        del kept[worst["source"]]
    return {name: kept.get(name, 0.0) for name in weights}, tests


@dataclass
class MultiSourceResult:
    """What :func:`guarded_sources` chose: the weights, the contributions, the dropped sources and the
    guard's decision on the kept mix.

    Attributes
    ----------
    guard
        The negative-transfer guard on the kept mix (against target-only).
    weights
        Source name -> kept weight (0: dropped).
    weighting
        The weights chosen on validation (``weights="auto"``).
    contribution
        Each source's contribution at the given weights (all validation users).
    source_tests
        The held-out tests of :func:`test_sources` (one row per source and round).
    """

    guard: GuardResult
    weights: dict[str, float]
    weighting: SourceWeighting | None = None
    contribution: SourceContribution | None = None
    source_tests: list[dict[str, Any]] = field(default_factory=list)
    keep: str = "significant"

    @property
    def model(self) -> Recommender:
        return self.guard.model

    @property
    def dropped(self) -> list[str]:
        return [n for n, w in self.weights.items() if w == 0]

    def describe(self) -> list[str]:
        """Lines for the console: weights, each dropped source and why, the guard's decision."""
        lines = []
        if self.weighting is not None:
            lines.append(self.weighting.describe())
        lines += self.contribution.describe() if self.contribution is not None else []
        metric = self.guard.metric
        for name in self.dropped:
            test = next((t for t in self.source_tests if t["source"] == name and t["dropped"]), None)
            if test is not None:
                rule = (
                    "its 95% interval is not above 0" if self.keep == "significant" else "it is not above 0"
                )
                why = (
                    f"mixing it in changes valid {metric} by {test['difference']:+.4f} [95% CI "
                    f"{test['ci_low']:+.4f}, {test['ci_high']:+.4f}] on {test['n_users']} held-out "
                    f"validation users; {rule}"
                )
            elif self.weighting is not None and self.weighting.weights.get(name) == 0:
                why = f"weight 0 chosen on validation {metric}"
            else:
                why = "weight 0"
            lines.append(f"negative-transfer guard: source {name!r} dropped ({why})")
        lines.append(self.guard.describe())
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "dropped": self.dropped,
            "keep_sources": self.keep,
            "source_tests": self.source_tests,
            **({"weighting": self.weighting.to_dict()} if self.weighting is not None else {}),
        }


def guarded_sources(
    strategy: TransferStrategy,
    data: TransferData,
    *,
    weights: str | Mapping[str, float] | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    contribution: bool = True,
    keep: Literal["significant", "positive", "all"] = "significant",
    confirm: float = 0.5,
    metric: str = "ndcg@10",
    require_significant: bool = False,
    users: np.ndarray | None = None,
    seed: int = 0,
    console: Any = None,
) -> MultiSourceResult:
    """Weights, contributions, harmful-source rejection and the guard for a multi-source transfer.

    The validation users are cut at random (``seed``) into a part that chooses the weights and a
    ``confirm`` share that tests them: on those held-out users every source must earn its place in
    the mix (:func:`test_sources`: a source is dropped, weight 0, unless mixing it in is better -
    significantly with ``keep="significant"``), and the guard compares the kept mix with the
    target-only model. Test is never read.

    Parameters
    ----------
    strategy, data
        The transfer and its target split with every source.
    weights
        ``"auto"``: chosen on validation (:func:`choose_source_weights` over ``levels``); a mapping
        or ``None`` (the sources' own weights): taken as given, then tested like chosen ones.
    contribution
        Measure every source's contribution at the given weights (:func:`source_contribution`,
        every validation user; a description, not a decision).
    keep
        ``"significant"`` (default), ``"positive"`` or ``"all"`` (no source test).
    confirm
        Share of the validation users held out from choosing the weights (0: everyone chooses and
        tests; the tests are then biased towards keeping).
    metric, require_significant, users, seed
        The guard's settings (see :func:`~crossrec.transfer.guarded_transfer`).
    console
        Where to print the weights, each dropped source and the decision.
    """
    given = {s.name: float(s.weight) for s in data.sources}
    if isinstance(weights, Mapping):
        given |= {str(k): float(v) for k, v in weights.items()}
    elif weights not in (None, "auto"):
        raise ValueError(
            f"weights must be 'auto', None or a mapping of source name to weight, got {weights!r}"
        )
    if keep not in ("significant", "positive", "all"):
        raise ValueError(f"keep must be 'significant', 'positive' or 'all', got {keep!r}")
    reason = strategy.check(data)
    if reason is not None:  # before any training, naming e.g. a source that shares nothing
        raise TransferNotPossibleError(f"strategy {strategy.name!r} cannot run on this data: {reason}")
    pool = np.asarray(data.validation_users(), dtype=np.int64)
    if users is not None:
        pool = np.intersect1d(pool, np.asarray(users, dtype=np.int64))
    choosing, testing = split_users(pool, confirm, seed) if confirm > 0 else (pool, pool)
    base = with_weights(data, given) if isinstance(weights, Mapping) else data
    measured = (
        source_contribution(strategy, base, metric=metric, users=pool, seed=seed) if contribution else None
    )
    weighting = None
    if weights == "auto":
        weighting = choose_source_weights(strategy, data, levels=levels, metric=metric, users=choosing)
        kept = dict(weighting.weights)
    else:
        kept = dict(given)
    tests: list[dict[str, Any]] = []
    if keep != "all":
        kept, tests = test_sources(strategy, data, kept, users=testing, keep=keep, metric=metric, seed=seed)
    guard = guarded_transfer(
        SourceWeighted(strategy, kept), data, metric=metric, require_significant=require_significant,
        users=testing, seed=seed,
    )  # fmt: skip
    result = MultiSourceResult(guard, kept, weighting, measured, tests, keep)
    if console is not None:
        for line in result.describe():
            console.print(line, highlight=False)
    return result
