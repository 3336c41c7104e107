"""Evaluate a model on the cold users of a :class:`~crossrec.splitting.UserColdSplit` (users with no
target training interaction): full ranking over every target item (the default), and optionally the
papers' sampled protocol (:func:`crossrec.metrics.sampled.sampled_interaction_metrics`).

Full ranking excludes nothing at validation (cold users have no history) and, at test, the validation
items of users evaluated on both parts; ties are broken by the seeded per-user scramble of
:mod:`crossrec.ranking`, so a constant scorer lands at chance whatever the item numbering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.sampled import sampled_interaction_metrics
from crossrec.ranking.recommend import Scorer
from crossrec.ranking.topk import FactorScorer
from crossrec.splitting.cold_users import UserColdSplit

__all__ = ["ColdUserEvaluation", "cold_user_forbidden", "evaluate_cold_users"]


@dataclass(frozen=True)
class ColdUserEvaluation:
    """Per-user full-ranking metrics and, when asked for, per-interaction sampled metrics.

    Attributes
    ----------
    part
        ``"valid"`` or ``"test"``.
    per_user
        One row per evaluated cold user (column ``user``), one column per metric.
    sampled
        One row per held-out interaction (``user``, ``item``, ``rank``, ``mrr``, ``ndcg@k``,
        ``hit@k``), or ``None``.
    """

    part: str
    per_user: pd.DataFrame
    sampled: pd.DataFrame | None = None

    def mean(self) -> dict[str, float]:
        """Means over users (full ranking) and over interactions (``sampled_*``)."""
        out = {c: float(self.per_user[c].mean()) for c in self.per_user.columns if c != "user"}
        if self.sampled is not None:
            for column in self.sampled.columns:
                if column not in ("user", "item", "rank"):
                    out[f"sampled_{column}"] = float(self.sampled[column].mean())
        return out


def cold_user_forbidden(cold: UserColdSplit) -> sp.csr_matrix:
    """Every target interaction of every user in any part (what a sampled negative may not be)."""
    split = cold.split
    total = (
        split.matrix("train")
        + split.matrix("valid")
        + split.matrix("test")
        + cold.truth("valid")
        + cold.truth("test")
    )
    total = sp.csr_matrix(total)
    total.data[:] = 1.0
    return total


def evaluate_cold_users(
    model: Any,
    cold: UserColdSplit,
    part: str = "test",
    *,
    metrics: Sequence[str] = ("ndcg", "recall", "hit", "mrr"),
    ks: Sequence[int] = (10,),
    sampled_negatives: int | None = None,
    seed: int = 0,
) -> ColdUserEvaluation:
    """Rank every target item for the cold users of ``part`` and compute per-user metrics.

    Parameters
    ----------
    model
        A fitted recommender (its ``scorer()`` is used) or a scorer.
    cold
        The cold-user split.
    part
        ``"valid"`` (selection) or ``"test"`` (the reported figure).
    metrics, ks
        Full-ranking metrics and cut-offs (RecBole's definitions; MRR truncated at K).
    sampled_negatives
        Also run the sampled protocol with this many negatives per interaction (999 in the papers);
        its NDCG and Hit use the largest of ``ks``.
    seed
        Tie-breaking seed and seed of the sampled negatives (the same for every model).
    """
    users = cold.users(part)
    if len(users) == 0:
        raise ValueError(f"the cold-user split has no {part} users to evaluate")
    scorer: Scorer = (
        model.scorer() if not isinstance(model, FactorScorer) and hasattr(model, "scorer") else model
    )
    truth = cold.truth(part)
    result = evaluate_ranking(
        scorer, truth, cold.exclude(part), metrics=metrics, ks=ks, users=users, seed=seed
    )
    sampled = None
    if sampled_negatives is not None:
        keep = np.zeros(truth.shape[0], dtype=np.float32)
        keep[users] = 1.0
        restricted = sp.csr_matrix(sp.diags(keep) @ truth)
        restricted.eliminate_zeros()
        sampled = sampled_interaction_metrics(
            scorer,
            restricted,
            cold_user_forbidden(cold),
            n_negatives=sampled_negatives,
            k=max(ks),
            seed=seed,
        )
    return ColdUserEvaluation(part=part, per_user=result.per_user, sampled=sampled)
