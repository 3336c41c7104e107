"""Evaluate a model on a split (per-user tables, beyond-accuracy, slices) and compare models.

:func:`evaluate_model` ranks every item for every user of the evaluated part and returns a
:class:`ModelEvaluation`; :func:`evaluate_recommendations` builds the same object from saved
top-K lists (used to recompute a run folder); :func:`compare_models` turns several evaluations on
the same split into paired differences with bootstrap intervals, Wilcoxon and Holm-adjusted p-values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.evaluation.slices import DEFAULT_ACTIVITY_EDGES, activity_buckets, slice_table
from crossrec.metrics import beyond
from crossrec.metrics.accuracy import accuracy_metrics, parse_metric_names, rating_errors
from crossrec.metrics.ranking import DEFAULT_KS, DEFAULT_METRICS, Scorer, evaluate_ranking, hit_matrix
from crossrec.metrics.significance import bootstrap_mean_ci, holm, wilcoxon_p
from crossrec.rerank import Reranker
from crossrec.splitting.splits import Split

__all__ = [
    "ModelEvaluation",
    "RatingPredictor",
    "compare_models",
    "evaluate_model",
    "evaluate_recommendations",
    "model_intervals",
]

#: Predicts explicit ratings for parallel arrays of user and item indices.
RatingPredictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ModelEvaluation:
    """One model evaluated on one part of one split.

    Attributes
    ----------
    per_user
        Column ``user`` plus one column per per-user metric (``ndcg@10``, ``novelty@10``, ...).
    summary
        Mean of every per-user column, plus list-level metrics (``coverage@K``, ``gini@K``) and,
        with a rating predictor, overall ``rmse``/``mae``.
    slices
        Slice table (see :func:`crossrec.evaluation.slices.slice_table`): activity buckets, user
        groups and head/tail items.
    recommendations
        ``(n_users, max_k)`` top-K item indices aligned with ``per_user`` (``-1`` = empty slot).
    part, split_fingerprint
        Which part of which split was evaluated.
    metrics, ks
        Accuracy metric names and cut-offs.
    sampled_negatives
        ``None`` for full ranking, else the number of sampled negatives.
    seconds
        Wall time of the evaluation.
    """

    per_user: pd.DataFrame
    summary: dict[str, float]
    slices: pd.DataFrame
    recommendations: np.ndarray
    part: str
    split_fingerprint: str
    metrics: tuple[str, ...]
    ks: tuple[int, ...]
    sampled_negatives: int | None = None
    seconds: float = 0.0
    info: dict[str, object] = field(default_factory=dict)

    @property
    def metric_columns(self) -> list[str]:
        """Per-user metric column names."""
        return [c for c in self.per_user.columns if c != "user"]


def _exclusion(split: Split, part: str) -> sp.csr_matrix:
    if part == "valid":
        return split.matrix("train")
    if part == "test":
        return (split.matrix("train") + split.matrix("valid")).tocsr()
    raise ValueError(f"part must be 'valid' or 'test', got {part!r}")


def evaluate_model(
    scorer: Scorer,
    split: Split,
    *,
    part: str = "test",
    metrics: Sequence[str] = DEFAULT_METRICS,
    ks: Sequence[int] = DEFAULT_KS,
    item_categories: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    user_groups: Mapping[str, np.ndarray] | None = None,
    rating_predictor: RatingPredictor | None = None,
    head_fraction: float = 0.2,
    activity_edges: Sequence[int] = DEFAULT_ACTIVITY_EDGES,
    sampled_negatives: int | None = None,
    users: np.ndarray | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    rerank: Reranker | None = None,
) -> ModelEvaluation:
    """Full-ranking evaluation of ``scorer`` on ``part`` of ``split``.

    Items seen in training (and in validation when ``part="test"``) are never recommended.

    Parameters
    ----------
    scorer
        User indices -> dense ``(n, n_items)`` scores; pass ``model.scorer()`` so that embedding
        models are ranked by the faster exact :class:`~crossrec.ranking.topk.FactorScorer` path.
    split
        The split; its training part gives item popularity and user activity.
    part
        ``"test"`` or ``"valid"``.
    metrics, ks
        Accuracy metrics and cut-offs.
    item_categories
        Optional integer category code per item, for ``ild_category@K``.
    item_embeddings
        Optional ``(n_items, dim)`` vectors, for ``ild_embedding@K``.
    user_groups
        Optional slice name -> boolean array over all users (e.g. ``{"linked": is_linked}``).
    rating_predictor
        Optional ``(users, items) -> ratings`` for RMSE/MAE on the part's interaction values.
    head_fraction
        Share of most popular training items that are "head" items (the rest is the long tail).
    activity_edges
        Lower edges of the user-activity buckets.
    sampled_negatives
        Rank among this many sampled negatives instead of all items (for comparison with papers).
    users
        Evaluate only these users.
    batch_size, seed
        Users scored per batch; seed of negative sampling.
    rerank
        Optional :mod:`crossrec.rerank` stage: every metric is then that of the re-ranked lists.
    """
    started = time.perf_counter()
    ranking = evaluate_ranking(
        scorer,
        split.matrix(part),
        _exclusion(split, part),
        metrics=metrics,
        ks=ks,
        batch_size=batch_size,
        users=users,
        sampled_negatives=sampled_negatives,
        seed=seed,
        ranker=None if rerank is None else rerank.rank_users,
    )
    return _finish(
        ranking.per_user,
        ranking.recommendations,
        ranking.hits,
        split,
        part=part,
        metrics=metrics,
        ks=ks,
        item_categories=item_categories,
        item_embeddings=item_embeddings,
        user_groups=user_groups,
        rating_predictor=rating_predictor,
        head_fraction=head_fraction,
        activity_edges=activity_edges,
        sampled_negatives=sampled_negatives,
        started=started,
    )


def evaluate_recommendations(
    recommendations: np.ndarray,
    users: np.ndarray,
    split: Split,
    *,
    part: str = "test",
    metrics: Sequence[str] = DEFAULT_METRICS,
    ks: Sequence[int] = DEFAULT_KS,
    item_categories: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    user_groups: Mapping[str, np.ndarray] | None = None,
    head_fraction: float = 0.2,
    activity_edges: Sequence[int] = DEFAULT_ACTIVITY_EDGES,
    sampled_negatives: int | None = None,
) -> ModelEvaluation:
    """Evaluate saved top-K lists (``recommendations[i]`` is the list of ``users[i]``).

    Same metrics and slices as :func:`evaluate_model`; ``max(ks)`` must not exceed the list length.
    """
    started = time.perf_counter()
    pairs = parse_metric_names(metrics, ks)
    recommendations = np.asarray(recommendations, dtype=np.int64)
    users = np.asarray(users, dtype=np.int64)
    if recommendations.ndim != 2 or len(recommendations) != len(users):
        raise ValueError(f"recommendations {recommendations.shape} do not align with {len(users)} users")
    if max(k for _, k in pairs) > recommendations.shape[1]:
        raise ValueError(f"saved lists have {recommendations.shape[1]} items, fewer than the largest K")
    truth = split.matrix(part)[users]
    n_relevant = np.diff(truth.indptr)
    if len(users) == 0 or np.any(n_relevant == 0):
        raise ValueError(f"every listed user needs a relevant item in the {part} part (empty test set?)")
    hits = hit_matrix(recommendations, truth)
    per_user = pd.DataFrame({"user": users, **accuracy_metrics(hits, n_relevant, metrics, ks)})
    return _finish(
        per_user,
        recommendations,
        hits,
        split,
        part=part,
        metrics=metrics,
        ks=ks,
        item_categories=item_categories,
        item_embeddings=item_embeddings,
        user_groups=user_groups,
        rating_predictor=None,
        head_fraction=head_fraction,
        activity_edges=activity_edges,
        sampled_negatives=sampled_negatives,
        started=started,
    )


def _finish(
    per_user: pd.DataFrame,
    recommendations: np.ndarray,
    hits: np.ndarray,
    split: Split,
    *,
    part: str,
    metrics: Sequence[str],
    ks: Sequence[int],
    item_categories: np.ndarray | None,
    item_embeddings: np.ndarray | None,
    user_groups: Mapping[str, np.ndarray] | None,
    rating_predictor: RatingPredictor | None,
    head_fraction: float,
    activity_edges: Sequence[int],
    sampled_negatives: int | None,
    started: float,
) -> ModelEvaluation:
    """Add beyond-accuracy columns, rating errors, list-level metrics and slices."""
    pairs = parse_metric_names(metrics, ks)
    cutoffs = sorted({k for _, k in pairs})
    users = per_user["user"].to_numpy()
    popularity = split.train.n_per_item(split.n_items)
    is_head = beyond.head_items(popularity, head_fraction)
    is_tail = beyond.recbole_tail_items(popularity)
    columns: dict[str, np.ndarray] = {}
    summary_extra: dict[str, float] = {}
    if item_categories is not None and len(item_categories) != split.n_items:
        raise ValueError(f"item_categories has {len(item_categories)} entries for {split.n_items} items")
    if item_embeddings is not None and len(item_embeddings) != split.n_items:
        raise ValueError(f"item_embeddings has {len(item_embeddings)} rows for {split.n_items} items")
    for k in cutoffs:
        summary_extra[f"coverage@{k}"] = beyond.catalog_coverage(recommendations, split.n_items, k)
        summary_extra[f"gini@{k}"] = beyond.gini_index(recommendations, split.n_items, k)
        columns[f"novelty@{k}"] = beyond.novelty(recommendations, popularity, split.n_users, k)
        columns[f"avg_pop@{k}"] = beyond.average_popularity(recommendations, popularity, k)
        columns[f"tail@{k}"] = beyond.long_tail_share(recommendations, is_head, k)
        columns[f"tail_percentage@{k}"] = beyond.tail_percentage(recommendations, is_tail, k)
        if item_categories is not None:
            columns[f"ild_category@{k}"] = beyond.intra_list_diversity_categories(
                recommendations, item_categories, k
            )
        if item_embeddings is not None:
            columns[f"ild_embedding@{k}"] = beyond.intra_list_diversity_embeddings(
                recommendations, item_embeddings, k
            )
    per_user = per_user.assign(**columns)
    if rating_predictor is not None:
        held_out = getattr(split, part)
        predicted = np.asarray(rating_predictor(held_out.user, held_out.item))
        overall, by_user, rated_users = rating_errors(predicted, held_out.value, held_out.user)
        table = pd.DataFrame({"user": rated_users, **by_user})
        per_user = per_user.merge(table, on="user", how="left")
        summary_extra.update(overall)
    summary = {c: float(per_user[c].mean()) for c in per_user.columns if c != "user"}
    summary.update(summary_extra)

    n_train = split.train.n_per_user(split.n_users)[users]
    groups: dict[str, np.ndarray] = {"activity": activity_buckets(n_train, activity_edges)}
    for name, mask in (user_groups or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if len(mask) != split.n_users:
            raise ValueError(f"user group {name!r} has {len(mask)} entries for {split.n_users} users")
        groups[name] = np.where(mask[users], name, f"not {name}")
    slices = slice_table(per_user, groups)
    item_slices = _item_slices(recommendations, hits, split.matrix(part)[users], is_head, metrics, ks)
    slices = pd.concat([slices, item_slices], ignore_index=True) if len(item_slices) else slices
    return ModelEvaluation(
        per_user=per_user,
        summary=summary,
        slices=slices,
        recommendations=recommendations,
        part=part,
        split_fingerprint=split.fingerprint(),
        metrics=tuple(dict.fromkeys(name for name, _ in pairs)),
        ks=tuple(cutoffs),
        sampled_negatives=sampled_negatives,
        seconds=time.perf_counter() - started,
        info={"head_fraction": head_fraction, "activity_edges": list(activity_edges)},
    )


def _item_slices(
    recommendations: np.ndarray,
    hits: np.ndarray,
    truth: sp.csr_matrix,
    is_head: np.ndarray,
    metrics: Sequence[str],
    ks: Sequence[int],
) -> pd.DataFrame:
    """Accuracy when only head (or only tail) test items count as relevant; same top-K lists."""
    rows = []
    recommended_head = is_head[np.where(recommendations >= 0, recommendations, 0)]
    n_head = np.rint(truth @ is_head.astype(np.float64)).astype(np.int64)
    n_all = np.diff(truth.indptr)
    for label, keep_hits, n_relevant in (
        ("head", hits & recommended_head, n_head),
        ("tail", hits & ~recommended_head, n_all - n_head),
    ):
        has = n_relevant > 0
        if not has.any():
            continue
        values = accuracy_metrics(keep_hits[has], n_relevant[has], metrics, ks)
        rows.append(
            {"slice": "items", "group": label, "n_users": int(has.sum())}
            | {name: float(v.mean()) for name, v in values.items()}
        )
    return pd.DataFrame(rows)


def _check_comparable(evaluations: Mapping[str, ModelEvaluation]) -> None:
    if len(evaluations) < 2:
        raise ValueError(f"need at least two models to compare, got {list(evaluations)}")
    fingerprints = {name: e.split_fingerprint for name, e in evaluations.items()}
    if len(set(fingerprints.values())) > 1:
        raise ValueError(f"models were evaluated on different splits (split fingerprints {fingerprints})")
    parts = {name: e.part for name, e in evaluations.items()}
    if len(set(parts.values())) > 1:
        raise ValueError(f"models were evaluated on different parts of the split: {parts}")
    reference_name, reference = next(iter(evaluations.items()))
    for name, evaluation in evaluations.items():
        if not np.array_equal(evaluation.per_user["user"].to_numpy(), reference.per_user["user"].to_numpy()):
            raise ValueError(f"models {reference_name!r} and {name!r} were evaluated on different users")


def compare_models(
    evaluations: Mapping[str, ModelEvaluation],
    *,
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired comparison of models evaluated on the same split and users.

    For each pair (every model against ``baseline``, or every pair when no baseline is given) and
    each per-user metric: means, the mean paired difference, its bootstrap confidence interval
    (users resampled with ``seed``), the two-sided Wilcoxon signed-rank p-value and, when more
    than two models are compared, the Holm-adjusted p-value over the pairs of that metric.

    Returns
    -------
    DataFrame
        Columns ``model``, ``reference``, ``metric``, ``mean_model``, ``mean_reference``,
        ``difference``, ``ci_low``, ``ci_high``, ``p_value``, ``p_adjusted``, ``significant``.

    Raises
    ------
    ValueError
        With fewer than two models, an unknown baseline or metric, or models evaluated on
        different splits, parts or users.
    """
    _check_comparable(evaluations)
    names = list(evaluations)
    if baseline is not None and baseline not in evaluations:
        raise ValueError(f"baseline {baseline!r} is not among the models {names}")
    shared = [
        c for c in evaluations[names[0]].metric_columns if all(c in e.per_user for e in evaluations.values())
    ]
    metric_list = list(metrics) if metrics is not None else shared
    unknown = [m for m in metric_list if m not in shared]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown} for comparison; available: {shared}")
    pairs = [(m, baseline) for m in names if m != baseline] if baseline else list(combinations(names, 2))
    rows = []
    for model, reference in pairs:
        a = evaluations[model].per_user[metric_list].to_numpy(dtype=np.float64)
        b = evaluations[reference].per_user[metric_list].to_numpy(dtype=np.float64)
        valid = ~(np.isnan(a) | np.isnan(b)).any(axis=1)
        a, b = a[valid], b[valid]
        intervals = bootstrap_mean_ci(a - b, n_resamples=n_resamples, confidence=confidence, seed=seed)
        for j, metric in enumerate(metric_list):
            rows.append(
                {
                    "model": model,
                    "reference": reference,
                    "metric": metric,
                    "mean_model": float(a[:, j].mean()),
                    "mean_reference": float(b[:, j].mean()),
                    "difference": float((a[:, j] - b[:, j]).mean()),
                    "ci_low": float(intervals[j, 0]),
                    "ci_high": float(intervals[j, 1]),
                    "p_value": wilcoxon_p(a[:, j], b[:, j]),
                }
            )
    table = pd.DataFrame(rows)
    if len(evaluations) > 2:
        table["p_adjusted"] = table.groupby("metric")["p_value"].transform(lambda p: holm(p.to_numpy()))
    else:
        table["p_adjusted"] = table["p_value"]
    table["significant"] = table["p_adjusted"] < alpha
    return table


def model_intervals(
    evaluation: ModelEvaluation,
    metrics: Sequence[str] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Bootstrap confidence interval of each metric's mean over users (for bar charts)."""
    columns = list(metrics) if metrics is not None else evaluation.metric_columns
    values = evaluation.per_user[columns].to_numpy(dtype=np.float64)
    values = values[~np.isnan(values).any(axis=1)]
    if len(values) == 0:
        return {}
    bounds = bootstrap_mean_ci(values, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return {c: (float(lo), float(hi)) for c, (lo, hi) in zip(columns, bounds, strict=True)}
