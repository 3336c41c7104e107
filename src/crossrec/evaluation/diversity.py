"""Re-ranking in evaluation: the stage a split's part is re-ranked with, the accuracy-diversity frontier
of one model (its lists re-ranked at each strength of a sweep, with bootstrap intervals), and the
re-ranked rows that ``crossrec evaluate RUN --rerank`` adds to a run folder.

The history a stage reads on a part is the users' *known* items there, the items that part's ranking
excludes (training; training and validation on test), as 0/1 values: what an artifact holds as its
seen items, so that served lists and evaluated lists come from the same stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossrec.evaluation.evaluate import ModelEvaluation, evaluate_model
from crossrec.metrics import (
    accuracy_metrics,
    bootstrap_mean_ci,
    catalog_coverage,
    gini_index,
    hit_matrix,
    intra_list_diversity_categories,
    intra_list_diversity_embeddings,
    novelty,
)
from crossrec.models.base import Recommender
from crossrec.ranking import Scorer, recommend
from crossrec.rerank import RerankConfig, Reranker
from crossrec.splitting.splits import Split

__all__ = [
    "FRONTIER_STRENGTHS",
    "frontier_k",
    "frontier_record",
    "known_items",
    "rerank_frontier",
    "rerank_run",
    "rerank_stage",
]

#: The strengths of a frontier sweep (0 = the plain lists).
FRONTIER_STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def known_items(split: Split, part: str) -> sp.csr_matrix:
    """0/1 users x items matrix of the items ranking excludes on ``part`` (train; train + valid on test)."""
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    known = split.matrix("train") if part == "valid" else split.matrix("train") + split.matrix("valid")
    known = (abs(sp.csr_matrix(known)) > 0).astype(np.float32).tocsr()
    known.sort_indices()
    return known


def rerank_stage(
    config: RerankConfig,
    split: Split,
    *,
    part: str = "test",
    model: Recommender | None = None,
    item_categories: np.ndarray | None = None,
) -> Reranker:
    """The stage of ``config`` for ranking ``part`` of ``split``: history and popularity from the known
    items (:func:`known_items`), embeddings (``similarity = "embedding"``) from ``model``'s item vectors."""
    vectors = model.item_vectors() if model is not None and config.similarity == "embedding" else None
    if config.similarity == "embedding" and vectors is None:
        name = type(model).__name__ if model is not None else "no model"
        raise ValueError(
            f"re-ranking 'mmr-embedding' needs the model's item vectors; {name} has none: "
            "use similarity = 'category' with [evaluation] item_categories, or an embedding model"
        )
    return config.build_for(
        known_items(split, part), item_categories=item_categories, item_embeddings=vectors
    )


def _coverage_interval(
    lists: np.ndarray, n_items: int, k: int, n_resamples: int, seed: int
) -> tuple[float, float]:
    """95% interval of catalogue coverage from users resampled with replacement: the spread of the
    resampled coverages, recentred on the estimate (a resample covers fewer distinct users, so its
    coverage is biased low; the shift removes that bias)."""
    rng = np.random.default_rng(seed)
    estimate = catalog_coverage(lists, n_items, k)
    values = np.array(
        [
            catalog_coverage(lists[rng.integers(0, len(lists), len(lists))], n_items, k)
            for _ in range(n_resamples)
        ]
    )
    low, high = np.quantile(values, [0.025, 0.975]) + (estimate - values.mean())
    return float(min(low, estimate)), float(max(high, estimate))


def rerank_frontier(
    scorer: Scorer,
    split: Split,
    stage: Reranker,
    *,
    part: str = "test",
    strengths: Sequence[float] = FRONTIER_STRENGTHS,
    k: int = 10,
    list_length: int | None = None,
    item_categories: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    label: str | None = None,
) -> list[dict[str, Any]]:
    """The accuracy-diversity frontier of one model: ``stage`` at every strength of ``strengths``.

    Every user with held-out items on ``part`` is ranked once (a pool of ``stage.candidates`` items,
    the known items excluded, ties broken with ``seed`` as :func:`evaluate_model` does); each
    strength re-ranks that pool into lists of ``list_length`` (default ``k``; an evaluation's lists
    are ``max(ks)`` long) measured at ``k``, so a row's metrics are those of ``evaluate_model(...,
    rerank=stage at that strength)`` at ``k``.

    Returns
    -------
    list of dict
        One row per strength: ``reranker``, ``strength``, ``ndcg@k`` with ``_low``/``_high`` (bootstrap
        95% over users), ``ild@k`` (category ILD, else embedding ILD; with interval) when categories or
        embeddings are given, ``coverage@k`` with a bootstrap interval, ``gini@k``, ``novelty@k`` and
        ``chosen`` (the stage's own strength).
    """
    truth = split.matrix(part)
    n_items = truth.shape[1]
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if len(users) == 0:
        raise ValueError(f"no user has held-out items on {part!r}: no frontier to draw")
    length = k if list_length is None else max(k, list_length)
    pool = max(1, min(max(length, stage.candidates), n_items))
    items, scores = recommend(
        scorer, users, pool, known_items(split, part)[users], n_items=n_items, seed=seed
    )
    truth_rows = truth[users]
    n_relevant = np.diff(truth_rows.indptr)
    popularity = split.train.n_per_item(n_items)
    rows = []
    for strength in strengths:
        lists = stage.with_strength(strength).rerank(users, items, scores, length)
        ndcg = accuracy_metrics(hit_matrix(lists, truth_rows), n_relevant, ["ndcg"], [k])[f"ndcg@{k}"]
        row: dict[str, Any] = {"reranker": label or _label(stage), "strength": float(strength)}
        row[f"ndcg@{k}"] = float(np.mean(ndcg))
        row[f"ndcg@{k}_low"], row[f"ndcg@{k}_high"] = map(
            float, bootstrap_mean_ci(ndcg, n_resamples=n_resamples, seed=seed)
        )
        ild = None
        if item_categories is not None:
            ild = intra_list_diversity_categories(lists, item_categories, k)
        elif item_embeddings is not None:
            ild = intra_list_diversity_embeddings(lists, item_embeddings, k)
        if ild is not None:
            row[f"ild@{k}"] = float(np.mean(ild))
            row[f"ild@{k}_low"], row[f"ild@{k}_high"] = map(
                float, bootstrap_mean_ci(ild, n_resamples=n_resamples, seed=seed)
            )
        row[f"coverage@{k}"] = catalog_coverage(lists, n_items, k)
        row[f"coverage@{k}_low"], row[f"coverage@{k}_high"] = _coverage_interval(
            lists, n_items, k, max(1, n_resamples // 5), seed
        )
        row[f"gini@{k}"] = gini_index(lists, n_items, k)
        row[f"novelty@{k}"] = float(np.mean(novelty(lists, popularity, split.n_users, k)))
        row["chosen"] = bool(np.isclose(strength, stage.strength))
        rows.append(row)
    return rows


def frontier_k(ks: Sequence[int]) -> int:
    """The cut-off a frontier is drawn at: 10 when evaluated, else the largest K below it, else the first."""
    ks = sorted(int(k) for k in ks)
    return 10 if 10 in ks else max([k for k in ks if k < 10], default=ks[0])


def _label(stage: Reranker) -> str:
    similarity = getattr(stage, "similarity", None)
    return f"{stage.method}-embedding" if similarity == "embedding" else stage.method


def frontier_record(
    scorer: Scorer,
    split: Split,
    stage: Reranker,
    *,
    model: str,
    part: str = "test",
    k: int = 10,
    list_length: int | None = None,
    item_categories: np.ndarray | None = None,
    item_embeddings: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``results.json``'s ``extra["frontier"]``: which model, part and K, and the rows of
    :func:`rerank_frontier` (what report.html's frontier section draws)."""
    return {
        "model": model,
        "part": part,
        "k": k,
        "candidates": stage.candidates,
        "strength": stage.strength,
        "ild": "category"
        if item_categories is not None
        else "embedding"
        if item_embeddings is not None
        else None,
        "rows": rerank_frontier(
            scorer,
            split,
            stage,
            part=part,
            k=k,
            list_length=list_length,
            item_categories=item_categories,
            item_embeddings=item_embeddings,
            seed=seed,
        ),  # fmt: skip
    }


def rerank_run(
    run_dir: str | Path,
    config: RerankConfig,
    models: Mapping[str, Recommender],
    *,
    seed: int | None = None,
) -> dict[str, ModelEvaluation]:
    """Add ``<model>+rerank`` rows (each of ``models`` re-ranked by ``config`` on the run's part) and
    the frontier of the first model to a run folder, then rewrite its results and report.

    ``models`` are the run's fitted models by their row names (from its artifact or ``models/``); the
    stage reads the run's saved item categories. ``seed`` (default: the run's experiment seed) breaks
    ties as the run's evaluation did. Returns the new evaluations.
    """
    from crossrec.evaluation.runs import load_run, write_run

    run = load_run(run_dir)
    if not models:
        raise ValueError(f"{run_dir}: no model to re-rank (save the run's models or its artifact)")
    unknown = sorted(set(models) - set(run.evaluations))
    if unknown:
        raise ValueError(f"{run_dir} has no rows {unknown}; its rows are {sorted(run.evaluations)}")
    results = run.results
    if seed is None:
        seed = int((results.get("seeds") or {}).get("experiment", 0))
    part = results.get("part", "test")
    metrics, ks = results["metrics"], results["ks"]
    groups = run.user_groups
    added: dict[str, ModelEvaluation] = {}
    frontier = None
    for name, model in models.items():
        stage = rerank_stage(config, run.split, part=part, model=model, item_categories=run.item_categories)
        added[f"{name}+rerank"] = evaluate_model(
            model.scorer(), run.split, part=part, metrics=metrics, ks=ks, item_categories=run.item_categories,
            user_groups=groups, rerank=stage, seed=seed,
        )  # fmt: skip
        if frontier is None:
            vectors = model.item_vectors() if run.item_categories is None else None
            frontier = frontier_record(
                model.scorer(), run.split, stage, model=name, part=part, k=frontier_k(ks),
                list_length=max(ks), item_categories=run.item_categories, item_embeddings=vectors, seed=seed,
            )  # fmt: skip
    bootstrap = results.get("bootstrap") or {}
    write_run(
        run.path,
        {**run.evaluations, **added},
        split=run.split,
        baseline=results.get("baseline"),
        item_categories=run.item_categories,
        user_groups=run.user_groups,
        n_resamples=bootstrap.get("n_resamples", 2000),
        seed=bootstrap.get("seed", 0),
        config=dict(results.get("config") or {}, rerank=config.model_dump(mode="json")),
        timings={k: v for k, v in (results.get("timings") or {}).items() if k != "evaluation_seconds"},
        learning_curves=results.get("learning_curves"),
        seeds=results.get("seeds"),
        data_manifest_hash=results.get("data_manifest_hash"),
        extra=dict(results.get("extra") or {}, frontier=frontier),
    )
    return added
