"""Paired validation comparison of two fitted models: the negative-transfer guard's evidence.

:func:`compare` scores both models on the same validation users and reports the mean per-user
difference with a paired bootstrap interval. Give it the confirmation users of a
:class:`~crossrec.selection.Selection` to get an interval that the choice of the model did not see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.selection.validation import Validation

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    """Model vs reference on the same users (paired).

    Attributes
    ----------
    metric
        The per-user metric compared.
    score, reference_score
        Means over the users.
    difference, ci_low, ci_high
        Mean paired difference (model - reference) and its bootstrap confidence interval.
    n_users
        Users compared.
    """

    metric: str
    score: float
    reference_score: float
    difference: float
    ci_low: float
    ci_high: float
    n_users: int

    @property
    def significant(self) -> bool:
        """The interval lies above zero."""
        return self.ci_low > 0

    @classmethod
    def of_values(
        cls,
        metric: str,
        values: np.ndarray,
        reference_values: np.ndarray,
        *,
        n_resamples: int = 2000,
        seed: int = 0,
    ) -> Comparison:
        """From per-user values aligned by user."""
        values = np.asarray(values, dtype=np.float64)
        reference_values = np.asarray(reference_values, dtype=np.float64)
        if values.shape != reference_values.shape or values.ndim != 1 or len(values) == 0:
            raise ValueError(
                f"paired values must be two non-empty vectors of one length, got {values.shape} "
                f"and {reference_values.shape}"
            )
        low, high = paired_bootstrap_ci(values, reference_values, n_resamples=n_resamples, seed=seed)
        return cls(
            metric=metric,
            score=float(values.mean()),
            reference_score=float(reference_values.mean()),
            difference=float((values - reference_values).mean()),
            ci_low=low,
            ci_high=high,
            n_users=len(values),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    model: Any,
    reference: Any,
    data: Validation,
    *,
    metric: str = "ndcg@10",
    users: np.ndarray | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Paired comparison of two fitted models on ``data``'s validation part (``users`` only, when
    given: e.g. :attr:`Selection.confirmation_users`)."""
    scored, values = data.per_user(model, metric, users)
    _, reference_values = data.per_user(reference, metric, scored)
    return Comparison.of_values(metric, values, reference_values, n_resamples=n_resamples, seed=seed)
