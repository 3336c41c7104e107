"""Full ranking over all items, vectorised in batches of users (the evaluation hot path).

Each batch of users is ranked by :func:`crossrec.ranking.rank_users` (the exact top-k kernel shared
with models, artifacts and serving; dot-product scorers take their cost-chosen exact path), skipping
the excluded items and breaking ties by a seeded per-user scramble. Hits are read from a reusable
boolean buffer; metrics are computed once, on the whole hit matrix. An optional sampled mode ranks
each user's relevant items among ``n`` sampled negatives only, for comparison with papers that report
it; full ranking is the default and the honest number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from crossrec.metrics.accuracy import accuracy_metrics, parse_metric_names
from crossrec.ranking import FactorScorer, Scorer, dense_top_k, rank_users, tie_salts, to_scratch, top_k

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_METRICS",
    "FactorScorer",
    "RankingResult",
    "Scorer",
    "evaluate_ranking",
    "hit_matrix",
    "per_user_metric",
    "top_k",
]

DEFAULT_METRICS: tuple[str, ...] = ("recall", "precision", "ndcg", "hit", "mrr", "map")
DEFAULT_KS: tuple[int, ...] = (10, 20)


def _flat_positions(matrix: sp.csr_matrix, start: int, stop: int, n_items: int) -> torch.Tensor:
    """Flat indices ``row * n_items + column`` of rows ``start:stop`` (rows renumbered from 0)."""
    lo, hi = matrix.indptr[start], matrix.indptr[stop]
    counts = np.diff(matrix.indptr[start : stop + 1])
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), counts)
    return torch.from_numpy(rows * n_items + matrix.indices[lo:hi].astype(np.int64))


def hit_matrix(recommendations: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean matrix: is ``recommendations[u, i]`` in row ``u`` of ``truth``? (``-1`` never is)."""
    truth = sp.csr_matrix(truth)
    n_items = truth.shape[1]
    if truth.nnz == 0:
        return np.zeros(recommendations.shape, dtype=bool)
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    truth_keys = np.sort(rows * n_items + truth.indices)
    rec_keys = np.arange(recommendations.shape[0], dtype=np.int64)[:, None] * n_items + recommendations
    found = np.minimum(np.searchsorted(truth_keys, rec_keys), len(truth_keys) - 1)
    return (truth_keys[found] == rec_keys) & (recommendations >= 0)


@dataclass(frozen=True)
class RankingResult:
    """Per-user results of a full-ranking evaluation.

    Attributes
    ----------
    per_user
        One row per evaluated user (column ``user`` holds the user index), one column per metric.
    recommendations
        ``(n_evaluated_users, max_k)`` item indices, best first, aligned with ``per_user``
        (``-1`` pads lists of users with fewer admissible items than ``max_k``).
    hits
        ``(n_evaluated_users, max_k)`` booleans: is the recommended item relevant.
    """

    per_user: pd.DataFrame
    recommendations: np.ndarray
    hits: np.ndarray

    def mean(self) -> dict[str, float]:
        """Mean of every metric over evaluated users."""
        return {c: float(self.per_user[c].mean()) for c in self.per_user.columns if c != "user"}


def evaluate_ranking(
    scorer: Scorer,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int | None = None,
    users: np.ndarray | None = None,
    sampled_negatives: int | None = None,
    seed: int = 0,
    ranker: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
) -> RankingResult:
    """Rank all items for every user with test items and compute per-user metrics.

    Parameters
    ----------
    scorer
        Function from user indices to dense scores over all items.
    truth
        Binary user x item matrix of relevant (held-out) items.
    exclude
        User x item matrix of items never to recommend (the user's training items, and
        validation items when testing).
    metrics, ks
        Metric names and cut-offs (see :mod:`crossrec.metrics.accuracy`).
    batch_size
        Users scored at once; memory is about ``2 * batch_size * n_items`` floats. By default
        about 16 MB of float32 scores per batch (a scorer allocates them anew for each batch, so
        small batches stay in cache); a :class:`FactorScorer` reuses one ~80 MB bfloat16 buffer,
        and larger batches make its matrix products more efficient.
    users
        Restrict evaluation to these users (default: every user with at least one relevant item).
    sampled_negatives
        When set (e.g. 100), rank each user's relevant items among this many items sampled
        uniformly (seeded) from those that are neither relevant nor excluded, instead of among
        all items. Only for comparison with papers that use sampled metrics.
    seed
        Seed of the negative sampling and of the tie-breaking (``None`` is not accepted here:
        evaluation never lets item numbering decide ties).
    ranker
        Replaces :func:`crossrec.ranking.rank_users` for each batch (same signature and return), e.g.
        a :mod:`crossrec.rerank` stage's ``rank_users``: per-user metrics are then those of its
        lists. Not with ``sampled_negatives``.

    Raises
    ------
    ValueError
        On unknown metrics, bad cut-offs, mismatched shapes, an empty evaluation set, or a
        scorer that returns the wrong shape or NaN.
    """
    pairs = parse_metric_names(metrics, ks)
    max_k = max(k for _, k in pairs)
    truth = sp.csr_matrix(truth)
    n_users, n_items = truth.shape
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != truth.shape:
            raise ValueError(f"exclude matrix has shape {exclude.shape}, truth has {truth.shape}")
    if batch_size is None:  # ~16 MB of float32 scores from a scorer; ~80 MB of bfloat16 on the factor path
        cells = 40_000_000 if isinstance(scorer, FactorScorer) else 4_000_000
        batch_size = max(16, min(4096, cells // max(1, n_items)))
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if sampled_negatives is not None and sampled_negatives <= 0:
        raise ValueError(f"sampled_negatives must be positive, got {sampled_negatives}")
    if ranker is not None and sampled_negatives is not None:
        raise ValueError("a ranker (re-ranking) works on full rankings: drop sampled_negatives or the ranker")
    n_relevant_all = np.diff(truth.indptr)
    candidates = np.flatnonzero(n_relevant_all > 0)
    if users is not None:
        candidates = np.intersect1d(candidates, np.asarray(users, dtype=np.int64))
    if len(candidates) == 0:
        raise ValueError(
            "no user has a relevant item in the evaluation set (empty test set): nothing to evaluate"
        )
    truth_rows = truth[candidates]
    exclude_rows = exclude[candidates] if exclude is not None else None
    generator = torch.Generator().manual_seed(seed)

    k = min(max_k, n_items)
    factor_path = isinstance(scorer, FactorScorer) and sampled_negatives is None
    if isinstance(scorer, FactorScorer) and scorer.n_items != n_items:
        raise ValueError(f"scorer ranks {scorer.n_items} items, the evaluation matrices have {n_items}")
    recommendations = np.empty((len(candidates), k), dtype=np.int64)
    hits = np.empty(recommendations.shape, dtype=bool)
    buffer = torch.zeros(min(batch_size, len(candidates)) * n_items, dtype=torch.bool)
    workspace = scorer.workspace(min(batch_size, len(candidates))) if factor_path else None
    for start in range(0, len(candidates), batch_size):
        stop = min(start + batch_size, len(candidates))
        batch_exclude = exclude_rows[start:stop] if exclude_rows is not None else None
        flat_truth = _flat_positions(truth_rows, start, stop, n_items)
        batch_users = candidates[start:stop]
        if sampled_negatives is None:
            _, items = (ranker or rank_users)(
                scorer, batch_users, k, batch_exclude, n_items=n_items, seed=seed, workspace=workspace
            )
        else:
            scores = to_scratch(scorer(batch_users))
            if tuple(scores.shape) != (stop - start, n_items):
                raise ValueError(
                    f"scorer returned shape {tuple(scores.shape)}, expected {(stop - start, n_items)}"
                )
            flat_exclude = (
                _flat_positions(exclude_rows, start, stop, n_items) if exclude_rows is not None else None
            )
            scores = _restrict_to_sample(scores, flat_truth, flat_exclude, sampled_negatives, generator)
            _, items = dense_top_k(scores, k, batch_exclude, salts=tie_salts(batch_users, seed))
        # hits: mark relevant items in a reusable flat buffer, read the recommended ones, clear
        missing = items < 0
        items_t = torch.from_numpy(np.where(missing, 0, items))
        buffer.index_fill_(0, flat_truth, True)
        batch_hits = buffer.view(-1, n_items)[: stop - start].gather(1, items_t).numpy()
        buffer.index_fill_(0, flat_truth, False)
        recommendations[start:stop] = items
        hits[start:stop] = batch_hits & ~missing
    if hits.shape[1] < max_k:  # fewer items than the largest K: pad lists with no item
        pad = max_k - hits.shape[1]
        hits = np.pad(hits, ((0, 0), (0, pad)))
        recommendations = np.pad(recommendations, ((0, 0), (0, pad)), constant_values=-1)
    values_by_name = accuracy_metrics(hits, n_relevant_all[candidates], metrics, ks)
    per_user = pd.DataFrame({"user": candidates, **values_by_name})
    return RankingResult(per_user=per_user, recommendations=recommendations, hits=hits)


def _restrict_to_sample(
    scores: torch.Tensor,
    flat_truth: torch.Tensor,
    flat_exclude: torch.Tensor | None,
    n_negatives: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Scores with every item but the relevant ones and ``n_negatives`` sampled others at -inf."""
    keys = torch.rand(scores.shape, generator=generator)
    keys.view(-1).index_fill_(0, flat_truth, 2.0)
    if flat_exclude is not None:
        keys.view(-1).index_fill_(0, flat_exclude, 2.0)
    negatives = torch.topk(keys, min(n_negatives, scores.shape[1]), dim=1, largest=False).indices
    restricted = torch.full_like(scores, -torch.inf)
    restricted.scatter_(1, negatives, torch.gather(scores, 1, negatives))
    restricted.view(-1)[flat_truth] = scores.view(-1)[flat_truth]
    return restricted


def per_user_metric(
    scorer: Scorer | Any,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None,
    metric: str = "ndcg@10",
    users: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(users, values)``: one metric (e.g. ``"ndcg@10"``) of every user with relevant items, in user
    order (restricted to ``users`` when given). ``scorer`` may also be a fitted model: its
    ``scorer()`` is used."""
    if not isinstance(scorer, FactorScorer) and callable(getattr(scorer, "scorer", None)):
        scorer = scorer.scorer()
    name, _, k = metric.partition("@")
    if not k.isdigit():
        raise ValueError(f"metric must look like 'ndcg@10', got {metric!r}")
    result = evaluate_ranking(scorer, truth, exclude, metrics=[name], ks=[int(k)], users=users, seed=seed)
    return result.per_user["user"].to_numpy(), result.per_user[metric].to_numpy()
