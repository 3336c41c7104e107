"""What selection is scored on: a validation part and how a candidate is fitted for it.

:func:`~crossrec.selection.select` needs three things from its data, the :class:`Validation`
protocol: fit a candidate on the training part only, list the users that have validation truth, and
return one per-user validation metric of a fitted model. Three kinds of data provide it:

* :class:`Holdout` - a training and a validation user x item matrix (any
  :class:`~crossrec.models.Recommender` candidate, or a custom ``fit``);
* :class:`SequenceHoldout` - ordered training histories and each user's next items (sequence models);
* :class:`~crossrec.transfer.TransferData` - a target split with its sources (transfer strategies).

:func:`split_users` cuts the validation users into a part that chooses and a part that confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from crossrec.metrics.ranking import per_user_metric
from crossrec.models.sequences import Sequences, evaluate_next_items

__all__ = ["Holdout", "SequenceHoldout", "Validation", "parse_metric", "split_users"]


@runtime_checkable
class Validation(Protocol):
    """Data that candidates can be fitted on and scored on, validation only (never test)."""

    def fit_candidate(self, candidate: Any) -> Any:
        """Fit ``candidate`` on the training part (validation may drive early stopping); return the
        fitted model. The candidate itself is a template and is not changed."""
        ...

    def validation_users(self) -> np.ndarray:
        """Sorted indices of the users with at least one validation item."""
        ...

    def per_user(
        self, model: Any, metric: str, users: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(users, values)``: ``metric`` (e.g. ``"ndcg@10"``) of ``model`` on validation for each
        of ``users`` (default: every user with validation items), in user order."""
        ...


def parse_metric(metric: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; the error says what a metric looks like."""
    name, _, k = metric.partition("@")
    if not name or not k.isdigit() or int(k) <= 0:
        raise ValueError(
            f"metric must look like 'ndcg@10' (a name, '@' and a positive cut-off), got {metric!r}"
        )
    return name, int(k)


def split_users(users: np.ndarray, confirm: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``users`` at random into ``(selection, confirmation)`` parts, both sorted.

    ``confirm`` is the share held out for confirmation (``0``: every user selects, the confirmation
    part is empty). The same users, share and seed always give the same parts.
    """
    users = np.unique(np.asarray(users, dtype=np.int64))
    if not 0.0 <= confirm < 1.0:
        raise ValueError(f"confirm must be in [0, 1), got {confirm}")
    if confirm == 0.0:
        return users, users[:0]
    n_confirm = int(round(confirm * len(users)))
    if n_confirm == 0 or n_confirm == len(users):
        raise ValueError(
            f"confirm={confirm} of {len(users)} validation users leaves one part empty; "
            "use a share that keeps users on both sides, or confirm=0"
        )
    order = np.random.default_rng(seed).permutation(len(users))
    return np.sort(users[order[n_confirm:]]), np.sort(users[order[:n_confirm]])


def _fit_copy(candidate: Any, fit: Callable[[Any], Any]) -> Any:
    """``fit`` on a clone of ``candidate`` when it can be cloned (the template stays unfitted)."""
    clone = getattr(candidate, "clone", None)
    return fit(clone() if callable(clone) else candidate)


@dataclass(frozen=True)
class Holdout:
    """A training part and a validation part as user x item matrices.

    Attributes
    ----------
    train
        What candidates are fitted on; also what validation rankings exclude unless ``exclude``.
    valid
        Validation truth.
    exclude
        Items never ranked for each user on validation (default: ``train``).
    fit
        How to fit a candidate (default: ``candidate.clone().fit(train, valid)``).
    seed
        Seed of the random tie-breaking in validation rankings.
    """

    train: sp.csr_matrix
    valid: sp.csr_matrix
    exclude: sp.csr_matrix | None = None
    fit: Callable[[Any], Any] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", sp.csr_matrix(self.train))
        object.__setattr__(self, "valid", sp.csr_matrix(self.valid))
        if self.train.shape != self.valid.shape:
            raise ValueError(f"train {self.train.shape} and valid {self.valid.shape} differ in shape")
        if self.exclude is not None:
            object.__setattr__(self, "exclude", sp.csr_matrix(self.exclude))
            if self.exclude.shape != self.valid.shape:
                raise ValueError(f"exclude {self.exclude.shape} and valid {self.valid.shape} differ in shape")

    def fit_candidate(self, candidate: Any) -> Any:
        if self.fit is not None:
            return self.fit(candidate)
        return _fit_copy(candidate, lambda model: model.fit(self.train, self.valid))

    def validation_users(self) -> np.ndarray:
        return np.flatnonzero(np.diff(self.valid.indptr) > 0)

    def per_user(
        self, model: Any, metric: str, users: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        parse_metric(metric)
        exclude = self.train if self.exclude is None else self.exclude
        return per_user_metric(model, self.valid, exclude, metric, users=users, seed=self.seed)


@dataclass(frozen=True)
class SequenceHoldout:
    """Ordered training histories and each user's next items, for sequence models.

    Candidates are fitted with ``fit(train, valid)`` and scored "next items": each user's
    ranking after their ``train`` history against their ``valid`` items (history items excluded
    unless ``exclude_history`` is false). Carve both from the training part
    (``train, valid = part.split_last(...)``), never from test.
    """

    train: Sequences
    valid: Sequences
    exclude_history: bool = True

    def __post_init__(self) -> None:
        if self.train.n_users != self.valid.n_users or self.train.n_items != self.valid.n_items:
            raise ValueError(
                f"train ({self.train.n_users} users x {self.train.n_items} items) and valid "
                f"({self.valid.n_users} x {self.valid.n_items}) must cover the same users and items"
            )

    def fit_candidate(self, candidate: Any) -> Any:
        return _fit_copy(candidate, lambda model: model.fit(self.train, self.valid))

    def validation_users(self) -> np.ndarray:
        return np.flatnonzero(self.valid.lengths() > 0)

    def per_user(
        self, model: Any, metric: str, users: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        name, k = parse_metric(metric)
        result = evaluate_next_items(
            model, self.train, self.valid, exclude_history=self.exclude_history, metrics=[name], ks=[k]
        )
        frame = result.per_user
        if users is not None:
            frame = frame[np.isin(frame["user"].to_numpy(), np.asarray(users, dtype=np.int64))]
        return frame["user"].to_numpy(), frame[metric].to_numpy()
