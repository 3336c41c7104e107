"""The one select-on-validation loop: fit every candidate, score it on validation, keep the best.

Every trial is recorded (name, parameters, validation score, fit and scoring seconds), and so is the
total time. Selection can be restricted to a user subset (e.g. a cold-user slice), can hold a share
of the validation users out for confirmation (the kept candidate is then also scored on users that
did not choose it), can stop starting trials after a time budget, and reports each trial to a
callback as it finishes. Candidates may be produced lazily (a generator): an adaptive search (Optuna's
ask/tell) proposes the next candidate after the callback has seen the last score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from crossrec.selection.validation import Validation, parse_metric, split_users

__all__ = ["Candidate", "NoTrialSucceededError", "Selection", "Trial", "describe_candidate", "select"]


@dataclass(frozen=True)
class Candidate:
    """A candidate with an explicit name and parameters for the trial table (e.g. a search trial's
    suggested values); :func:`select` fits ``value`` and records ``name`` / ``params``."""

    value: Any
    name: str | None = None
    params: Mapping[str, Any] | None = None


@dataclass
class Trial:
    """One fitted and scored candidate.

    Attributes
    ----------
    number
        Position in the order the candidates were tried (0-based).
    name, params
        What was tried (``strategy:model`` label or model name, and its constructor arguments).
    score
        Mean validation metric over the selection users (``nan`` when the fit failed).
    seconds, cpu_seconds
        Wall and process CPU seconds of the fit.
    score_seconds
        Seconds spent scoring it on validation.
    status, reason
        ``"ok"``, or ``"failed"`` with the first line of the error (only for the error types given
        to :func:`select` as ``skip``).
    candidate
        The candidate as given (unfitted template).
    model
        The fitted model (kept for the best trial, for all with ``keep_models=True``).
    values
        Per-user validation values over :attr:`Selection.users` (``None`` when failed).
    """

    number: int
    name: str
    params: dict[str, Any]
    score: float
    seconds: float
    cpu_seconds: float = 0.0
    score_seconds: float = 0.0
    status: Literal["ok", "failed"] = "ok"
    reason: str = ""
    candidate: Any = field(default=None, repr=False)
    model: Any = field(default=None, repr=False)
    values: np.ndarray | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def row(self) -> dict[str, Any]:
        """The trial as a JSON-ready dict."""
        return {
            "number": self.number,
            "name": self.name,
            "params": self.params,
            "score": None if math.isnan(self.score) else self.score,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "score_seconds": self.score_seconds,
            "status": self.status,
            **({"reason": self.reason} if self.reason else {}),
        }


class NoTrialSucceededError(ValueError):
    """Every candidate failed; ``trials`` holds the failures and their reasons."""

    def __init__(self, message: str, trials: list[Trial]) -> None:
        super().__init__(message)
        self.trials = trials


@dataclass
class Selection:
    """What :func:`select` tried and kept.

    Attributes
    ----------
    metric
        The validation metric, e.g. ``"ndcg@10"``.
    trials
        Every trial in the order tried (failed ones included).
    best_index
        Index into ``trials`` of the kept trial (highest score; the earliest on ties).
    users
        The validation users that chose (the selection part).
    confirmation_users
        Validation users held out from choosing (empty unless ``confirm > 0``).
    confirmation_values
        The kept model's per-user values over ``confirmation_users`` (``None`` when empty).
    seconds
        Total wall time of the selection (fits, scoring, confirmation).
    budget_exhausted
        Whether the time budget stopped the selection before every candidate was tried.
    """

    metric: str
    trials: list[Trial]
    best_index: int
    users: np.ndarray
    confirmation_users: np.ndarray
    confirmation_values: np.ndarray | None
    seconds: float
    budget_exhausted: bool = False

    @property
    def best(self) -> Trial:
        return self.trials[self.best_index]

    @property
    def model(self) -> Any:
        """The kept fitted model."""
        return self.best.model

    @property
    def candidate(self) -> Any:
        """The kept candidate (unfitted template)."""
        return self.best.candidate

    @property
    def score(self) -> float:
        """The kept candidate's mean validation metric on the selection users."""
        return self.best.score

    @property
    def confirmation_score(self) -> float | None:
        """The kept candidate's mean on the confirmation users (not used to choose it)."""
        values = self.confirmation_values
        return None if values is None else float(values.mean())

    @property
    def fit_seconds(self) -> float:
        """Seconds spent fitting, summed over the trials."""
        return float(sum(t.seconds for t in self.trials))

    def table(self) -> list[dict[str, Any]]:
        """One JSON-ready row per trial."""
        return [trial.row() for trial in self.trials]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: metric, kept trial, users, times and the trial table."""
        return {
            "metric": self.metric,
            "best": self.best.row(),
            "n_users": len(self.users),
            "n_confirmation_users": len(self.confirmation_users),
            "confirmation_score": self.confirmation_score,
            "seconds": self.seconds,
            "fit_seconds": self.fit_seconds,
            "budget_exhausted": self.budget_exhausted,
            "trials": self.table(),
        }


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a parameter value (models become ``{"name": ..., **params}``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    get_params = getattr(value, "get_params", None)
    if callable(get_params):
        return {"name": getattr(value, "name", type(value).__name__), **_plain(get_params())}
    return repr(value)


def describe_candidate(candidate: Any) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` of a candidate for the trial table: a strategy's ``label`` or a model's
    ``name``, and its constructor arguments (``get_params()``) made JSON-ready."""
    if isinstance(candidate, Candidate):
        name, params = describe_candidate(candidate.value)
        return (
            candidate.name if candidate.name is not None else name,
            _plain(dict(candidate.params)) if candidate.params is not None else params,
        )
    label = getattr(candidate, "label", None)
    name = label if isinstance(label, str) else getattr(candidate, "name", None)
    get_params = getattr(candidate, "get_params", None)
    params = _plain(get_params()) if callable(get_params) else {}
    return (name if isinstance(name, str) else type(candidate).__name__), params


def select(
    candidates: Iterable[Any],
    data: Validation,
    *,
    metric: str = "ndcg@10",
    users: np.ndarray | None = None,
    confirm: float = 0.0,
    budget_seconds: float | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    skip: tuple[type[Exception], ...] = (),
    keep_models: bool = False,
    seed: int = 0,
) -> Selection:
    """Fit every candidate on ``data``'s training part, score it on validation, keep the best.

    Parameters
    ----------
    candidates
        Models, strategies or :class:`Candidate` wrappers, in the order to try; may be a generator
        (it is advanced only after the previous trial was reported to ``on_trial``).
    data
        A :class:`~crossrec.selection.Validation`: :class:`~crossrec.selection.Holdout`,
        :class:`~crossrec.selection.SequenceHoldout` or :class:`~crossrec.transfer.TransferData`.
    metric
        Per-user validation metric to maximise, e.g. ``"ndcg@10"``.
    users
        Score only these users (those of them with validation items), e.g. a cold-user slice.
    confirm
        Share of those validation users held out from choosing (seeded); the kept candidate is
        scored on them afterwards (:attr:`Selection.confirmation_values`), so an interval reported
        on them is not biased by the choice.
    budget_seconds
        Start no new trial once this many seconds have passed (the first trial always runs).
    on_trial
        Called with each :class:`Trial` as soon as it is scored (progress, logging, a search's
        ``tell``).
    skip
        Error types that mark a trial failed (recorded with the reason) instead of stopping.
    keep_models
        Keep every fitted model on its trial (default: only the best one's, to save memory).
    seed
        Seed of the selection/confirmation cut.

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        No candidate, no validation user to score, or a bad ``metric`` / ``confirm``.
    NoTrialSucceededError
        Every trial failed with one of the ``skip`` errors.
    """
    started = time.perf_counter()
    parse_metric(metric)
    if budget_seconds is not None and budget_seconds <= 0:
        raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
    pool = np.asarray(data.validation_users(), dtype=np.int64)
    if users is not None:
        pool = np.intersect1d(pool, np.asarray(users, dtype=np.int64))
    if len(pool) == 0:
        raise ValueError(
            "no user to select on: none of the chosen users has validation items"
            if users is not None
            else "the validation part is empty: selection needs validation items (never test)"
        )
    chosen_users, confirmation_users = split_users(pool, confirm, seed)
    trials: list[Trial] = []
    best: Trial | None = None
    exhausted = False
    iterator = iter(candidates)
    while True:
        if budget_seconds is not None and trials and time.perf_counter() - started >= budget_seconds:
            exhausted = len(trials) < len(candidates) if isinstance(candidates, Sized) else True
            break
        try:
            item = next(iterator)
        except StopIteration:
            break
        trial = _run_trial(len(trials), item, data, metric, chosen_users, skip)
        trials.append(trial)
        if on_trial is not None:
            on_trial(trial)
        if trial.ok and (best is None or trial.score > best.score):
            if best is not None and not keep_models:
                best.model = None
            best = trial
        elif not keep_models:
            trial.model = None
    if not trials:
        raise ValueError("no candidate to select from")
    if best is None:
        reasons = "; ".join(f"{t.name}: {t.reason}" for t in trials)
        raise NoTrialSucceededError(f"every candidate failed: {reasons}", trials)
    confirmation_values = None
    if len(confirmation_users):
        _, confirmation_values = data.per_user(best.model, metric, confirmation_users)
    return Selection(
        metric=metric,
        trials=trials,
        best_index=trials.index(best),
        users=chosen_users,
        confirmation_users=confirmation_users,
        confirmation_values=confirmation_values,
        seconds=time.perf_counter() - started,
        budget_exhausted=exhausted,
    )


def _run_trial(
    number: int,
    item: Any,
    data: Validation,
    metric: str,
    users: np.ndarray,
    skip: tuple[type[Exception], ...],
) -> Trial:
    name, params = describe_candidate(item)
    candidate = item.value if isinstance(item, Candidate) else item
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        model = data.fit_candidate(candidate)
    except skip as error:
        return Trial(
            number, name, params, math.nan, time.perf_counter() - started,
            time.process_time() - cpu_started, status="failed",
            reason=(str(error).splitlines() or [type(error).__name__])[0], candidate=candidate,
        )  # fmt: skip
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    scoring = time.perf_counter()
    scored_users, values = data.per_user(model, metric, users)
    if len(scored_users) != len(users):
        raise RuntimeError(f"{name}: validation scored {len(scored_users)} of {len(users)} selection users")
    return Trial(
        number, name, params, float(np.mean(values)), seconds, cpu_seconds,
        time.perf_counter() - scoring, candidate=candidate, model=model, values=values,
    )  # fmt: skip
