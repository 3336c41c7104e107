"""Diversity benchmark: what each re-ranker buys in intra-list diversity and coverage, and what it costs
in NDCG@10, on movielens-cdr and on Canvas CNPC.

Cases (the models each example keeps):

* ``movielens-cdr``: ``Joint(EASE(reg=300), domain_weight=0.1)`` trained on the ML-100K training part
  with the ML-1M rows of the movies shared by id (the demo's kept model); per-user random 80/10/10
  split, seed 2022; categories are each movie's first genre (18); EASE has no item vectors.
* ``canvas-cnpc``: the education benchmark's best model, the blend 0.25 transition model + 0.5 SASRec
  + 0.25 GRU4Rec of row-normalised scores (weights and epochs chosen on validation as in
  ``benchmarks/education.py``); the published split (each learner's last 20%), validation = the
  last 20% of each learner's training part; categories are course disciplines (10); item vectors
  are SASRec's item table (for MMR over embeddings and ``ild_embedding@10``); ``--epochs 0``
  uses the transition model alone (no item vectors).

Each part ranks all items for every user with held-out items, excluding the items the user already
has (training; and validation at test); a re-ranker picks 10 from the model's top ``candidates``.
Every re-ranker's strength is swept on both parts (steps of 0.025). The *operating point* of a
re-ranker is chosen on validation only: the pool size and relevance (min-max scaled scores, or the DCG
discount ``1/log2(2 + position)`` of the model's ranking) with the largest validation gain in its
objective (ILD for MMR, coverage for the popularity penalty, miscalibration for calibration) at its
largest strength whose validation NDCG@10 loss is at most 2% (relative); the test row of that point is
marked ``chosen``.

Columns (test part): ``ndcg@10`` with its bootstrap 95% interval; ``ndcg@10_change`` (re-ranked minus
plain, per user) with the paired bootstrap 95% interval and ``ndcg@10_change_rel`` (relative to the
plain lists); ``ild@10`` (categories) with interval and relative change; ``ild_embedding@10``;
``coverage@10``, ``gini@10`` (list-level, no interval), ``novelty@10`` and ``miscalibration@10``
(Steck's KL of the list's category mix from the history's); ``valid_*`` are the validation values
the choice was made on.

Timing: ``evaluate_ranking`` of 1,000 test users (all 943 on movielens-cdr) over all items, plain vs
with each chosen re-ranker (median of repeated runs); figures measured on a shared machine are not
final.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/diversity.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, with_optim, write_results

from crossrec.metrics import (
    accuracy_metrics,
    bootstrap_mean_ci,
    catalog_coverage,
    evaluate_ranking,
    gini_index,
    hit_matrix,
    intra_list_diversity_categories,
    intra_list_diversity_embeddings,
    novelty,
    paired_bootstrap_ci,
)
from crossrec.ranking import Scorer, recommend
from crossrec.rerank import Calibration, RerankConfig, Reranker

K = 10
STRENGTHS = tuple(round(0.025 * step, 3) for step in range(41))  # 0, 0.025, ..., 1
POOLS = (20, 50, 100)
RELEVANCES = ("score", "rank")  # min-max scaled scores, or the DCG discount of the model's position
#: The keys of every ``rows`` entry of ``results/diversity.json`` (issue 22); intervals, pool sizes,
#: validation values and the ``chosen`` mark are in ``details`` (same order as ``rows``).
ROW_KEYS = ("case", "reranker", "strength", "ndcg@10", "ild@10", "coverage@10", "gini@10", "novelty@10")
MAX_COST = 0.02  # relative NDCG@10 loss allowed at the operating point (on validation)
SEED = 2022
#: re-ranker label -> (config fields, the validation metric its pool size is chosen by, larger is better?)
RERANKERS: dict[str, tuple[dict[str, str], str, bool]] = {
    "mmr": ({"method": "mmr"}, "ild@10", True),
    "mmr-embedding": ({"method": "mmr", "similarity": "embedding"}, "ild_embedding@10", True),
    "calibration": ({"method": "calibration"}, "miscalibration@10", False),
    "popularity": ({"method": "popularity"}, "coverage@10", True),
}


@dataclass
class Part:
    """One evaluation part of a case: the model's scorer and what is ranked against what."""

    scorer: Scorer
    truth: sp.csr_matrix
    exclude: sp.csr_matrix  # the user's known items: never recommended, and calibration's history
    item_embeddings: np.ndarray | None = None


@dataclass
class Case:
    name: str
    item_categories: np.ndarray
    item_popularity: np.ndarray  # training interactions per item (novelty, popularity penalty)
    n_train_users: int
    valid: Part
    test: Part


# --- cases ------------------------------------------------------------------------------------------


def movielens_case() -> Case:
    from crossrec.data.builtin import load_movielens_cdr
    from crossrec.models import EASE
    from crossrec.splitting.splits import random_split
    from crossrec.transfer import Joint, TransferData

    source, target = load_movielens_cdr()
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
    data = TransferData.from_domains(target, split, [source], link_items="ids", link_users=None, seed=SEED)
    model = Joint(EASE(reg=300.0), domain_weight=0.1).fit(data)
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    first = [genres[0] if len(genres) else "" for genres in target.item_features["genres"]]
    categories = pd.factorize(pd.Series(first))[0].astype(np.int64)
    scorer = model.scorer()
    return Case(
        name="movielens-cdr",
        item_categories=categories,
        item_popularity=np.asarray(train.sum(axis=0)).ravel(),
        n_train_users=int((np.diff(train.indptr) > 0).sum()),
        valid=Part(scorer, valid, train),
        test=Part(scorer, test, sp.csr_matrix(train + valid)),
    )


def canvas_case(data_dir: Path, epochs: int, threads: int) -> Case:
    from education import _normalised, load_cnpc, transition_grid

    from crossrec.models.gru4rec import GRU4Rec
    from crossrec.models.sasrec import SASRec
    from crossrec.models.sequences import Sequences, SequentialRecommender
    from crossrec.selection import SequenceHoldout, select

    train, test = load_cnpc(data_dir)
    head, valid = train.split_last(0.2)
    best = select(transition_grid(), SequenceHoldout(head, valid)).model
    probes: dict[str, SequentialRecommender] = {"markov": best}
    finals: dict[str, SequentialRecommender] = {"markov": best.clone().fit(train)}
    settings = dict(max_length=20, learning_rate=3e-3, horizon=3, num_threads=threads)
    neural = (("sasrec", SASRec), ("gru4rec", GRU4Rec)) if epochs > 0 else ()
    for name, model_class in neural:
        started = time.perf_counter()
        probe = with_optim(model_class, epochs=epochs, patience=4, **settings).fit(head, valid)
        finals[name] = with_optim(model_class, epochs=probe.best_epoch_, **settings).fit(train)
        probes[name] = probe
        print(f"canvas {name}: {probe.best_epoch_} epochs, {time.perf_counter() - started:.0f} s", flush=True)

    def blend(models: dict[str, SequentialRecommender], weights, history: Sequences) -> Scorer:
        def scorer(users: np.ndarray) -> np.ndarray:
            total = np.zeros((len(users), history.n_items), np.float32)
            for weight, model in zip(weights, models.values(), strict=True):
                if weight:
                    recent = history.recent(model.history_length_, users)
                    total += weight * _normalised(model.score_histories(recent))
            return total

        return scorer

    candidates = [(1 - a - b, a, b) for a in (0, 0.25, 0.5, 0.75) for b in (0, 0.25, 0.5) if a + b <= 1]
    if not neural:  # --epochs 0: the transition model alone (no item vectors)
        candidates = [(1.0,)]
    head_csr, valid_csr = head.to_csr(), valid.to_csr()
    on_valid = {
        weights: evaluate_ranking(blend(probes, weights, head), valid_csr, head_csr, metrics=["ndcg"], ks=[K])
        .per_user["ndcg@10"]
        .mean()
        for weights in candidates
    }
    weights = max(on_valid, key=on_valid.get)
    print(f"canvas blend weights (markov, sasrec, gru4rec) chosen on validation: {weights}", flush=True)
    info = pd.read_json(data_dir / "edu-canvas-cnpc" / "cnpc_course_info_v3.json", lines=True)
    info = info.set_index("course_idx2").reindex(range(train.n_items))
    categories = pd.factorize(info["discipline"].fillna("unknown"))[0].astype(np.int64)
    train_csr = train.to_csr()
    return Case(
        name="canvas-cnpc",
        item_categories=categories,
        item_popularity=np.asarray(train_csr.sum(axis=0)).ravel(),
        n_train_users=int((np.diff(train_csr.indptr) > 0).sum()),
        valid=Part(blend(probes, weights, head), valid_csr, head_csr, vectors(probes)),
        test=Part(blend(finals, weights, train), test.to_csr(), train_csr, vectors(finals)),
    )


def vectors(models: dict[str, object]) -> np.ndarray | None:
    """SASRec's item table when the case has SASRec (``--epochs 0`` runs the transition model only)."""
    return models["sasrec"].item_vectors() if "sasrec" in models else None


# --- measuring ----------------------------------------------------------------------------------------


@dataclass
class Pool:
    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray


def candidate_pool(part: Part, size: int) -> Pool:
    """Every evaluated user's ``size`` best admissible items (one ranking pass; smaller pools are
    prefixes of it: the kernel's order is exact and its tie order is fixed per user)."""
    users = np.flatnonzero(np.diff(part.truth.indptr) > 0)
    items, scores = recommend(part.scorer, users, size, part.exclude[users], n_items=part.truth.shape[1])
    return Pool(users, items, scores)


def build(
    label: str, strength: float, pool: int, case: Case, part: Part, relevance: str = "score"
) -> Reranker:
    fields, _, _ = RERANKERS[label]
    return RerankConfig(strength=strength, candidates=pool, relevance=relevance, **fields).build(
        item_categories=case.item_categories,
        item_embeddings=part.item_embeddings,
        item_popularity=case.item_popularity,
        history=part.exclude,
    )


_CALIBRATION: dict[int, Calibration] = {}


def _calibration(case: Case, part: Part) -> Calibration:
    """Each part's miscalibration measure, built once (its history mix is per user)."""
    key = id(part)
    if key not in _CALIBRATION:
        _CALIBRATION[key] = Calibration(0.0, item_categories=case.item_categories, history=part.exclude)
    return _CALIBRATION[key]


def measure(case: Case, part: Part, pool: Pool, lists: np.ndarray) -> dict[str, np.ndarray | float]:
    """Per-user and list-level metrics of top-``K`` ``lists`` (rows aligned with ``pool.users``)."""
    truth = part.truth[pool.users]
    hits = hit_matrix(lists, truth)
    n_items = part.truth.shape[1]
    calibration = _calibration(case, part)
    out: dict[str, np.ndarray | float] = {
        "ndcg@10": accuracy_metrics(hits, np.diff(truth.indptr), ["ndcg"], [K])["ndcg@10"],
        "ild@10": intra_list_diversity_categories(lists, case.item_categories, K),
        "coverage@10": catalog_coverage(lists, n_items, K),
        "gini@10": gini_index(lists, n_items, K),
        "novelty@10": novelty(lists, case.item_popularity, case.n_train_users, K),
        "miscalibration@10": calibration.miscalibration(pool.users, lists, K),
    }
    if part.item_embeddings is not None:
        out["ild_embedding@10"] = intra_list_diversity_embeddings(lists, part.item_embeddings, K)
    return out


def mean(value: np.ndarray | float) -> float:
    return float(np.mean(value))


def sweep(
    case: Case, part: Part, pool: Pool, label: str, size: int, relevance: str
) -> list[dict[str, object]]:
    plain = measure(case, part, pool, pool.items[:, :K])
    out = []
    for strength in STRENGTHS:
        reranker = build(label, strength, size, case, part, relevance)
        lists = reranker.rerank(pool.users, pool.items[:, :size], pool.scores[:, :size], K)
        values = measure(case, part, pool, lists)
        row: dict[str, object] = {"strength": strength, **{name: mean(v) for name, v in values.items()}}
        row["_per_user"] = values
        row["_plain"] = plain
        out.append(row)
    return out


def operating_point(rows: list[dict[str, object]]) -> dict[str, object]:
    """The largest strength whose NDCG@10 is within ``MAX_COST`` of strength 0's (rows by strength)."""
    plain = rows[0]["ndcg@10"]
    admissible = [r for r in rows if r["ndcg@10"] >= (1 - MAX_COST) * plain]
    return max(admissible, key=lambda r: r["strength"])


def with_intervals(row: dict[str, object], seed: int) -> dict[str, object]:
    values, plain = row.pop("_per_user"), row.pop("_plain")
    for metric in ("ndcg@10", "ild@10"):
        low, high = bootstrap_mean_ci(np.asarray(values[metric]), seed=seed)
        change = np.asarray(values[metric]) - np.asarray(plain[metric])
        change_low, change_high = paired_bootstrap_ci(values[metric], plain[metric], seed=seed)
        base = mean(plain[metric])
        row.update(
            {
                f"{metric}_low": float(low),
                f"{metric}_high": float(high),
                f"{metric}_change": float(change.mean()),
                f"{metric}_change_low": change_low,
                f"{metric}_change_high": change_high,
                f"{metric}_change_rel": float(change.mean() / base) if base else float("nan"),
            }
        )
    row["coverage@10_change_rel"] = row["coverage@10"] / mean(plain["coverage@10"]) - 1
    return row


def time_evaluation(part: Part, reranker: Reranker, n_users: int, repeats: int) -> tuple[float, float]:
    """Median seconds of ``evaluate_ranking`` plain and with ``reranker``, the two runs alternating (so
    that the load of a shared machine weighs on both alike); the first pair warms caches and kernels."""
    users = np.flatnonzero(np.diff(part.truth.indptr) > 0)[:n_users]
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats + 1):
        for reranked in (False, True):
            started = time.perf_counter()
            evaluate_ranking(
                part.scorer,
                part.truth,
                part.exclude,
                metrics=["ndcg"],
                ks=[K],
                users=users,
                ranker=reranker.rank_users if reranked else None,
            )
            times[reranked].append(time.perf_counter() - started)
    return float(np.median(times[False][1:])), float(np.median(times[True][1:]))


def run_case(
    case: Case, labels: list[str], repeats: int
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    pools = {name: candidate_pool(getattr(case, name), max(POOLS)) for name in ("valid", "test")}
    rows: list[dict[str, object]] = []
    timings: list[dict[str, object]] = []
    for label in labels:
        if label == "mmr-embedding" and case.valid.item_embeddings is None:
            continue
        _, objective, larger = RERANKERS[label]
        choice: tuple[float, int, str, float] | None = None
        sweeps = {}
        for relevance in RELEVANCES:
            for size in POOLS:
                valid_rows = sweep(case, case.valid, pools["valid"], label, size, relevance)
                point = operating_point(valid_rows)
                gain = point[objective] - valid_rows[0][objective]
                gain = gain if larger else -gain
                if choice is None or gain > choice[3]:
                    choice = (point["strength"], size, relevance, gain)
                sweeps[size, relevance] = valid_rows
        strength, size, relevance, _ = choice
        valid_rows = sweeps[size, relevance]
        for row_valid, row_test in zip(
            valid_rows, sweep(case, case.test, pools["test"], label, size, relevance), strict=True
        ):
            row = {"case": case.name, "reranker": label, "candidates": size, "relevance": relevance}
            row.update(with_intervals(row_test, SEED))
            row["chosen"] = row_test["strength"] == strength
            for metric in ("ndcg@10", "ild@10", "coverage@10", objective):
                row[f"valid_{metric}"] = row_valid[metric]
            row_valid.pop("_per_user"), row_valid.pop("_plain")
            rows.append(row)
        # the library path (evaluate_ranking with the stage) gives the same lists as the pooled sweep
        reranker = build(label, strength, size, case, case.test, relevance)
        check = evaluate_ranking(
            case.test.scorer,
            case.test.truth,
            case.test.exclude,
            metrics=["ndcg"],
            ks=[K],
            ranker=reranker.rank_users,
        )
        chosen_row = next(r for r in rows if r["reranker"] == label and r["chosen"])
        if not np.isclose(check.per_user["ndcg@10"].mean(), chosen_row["ndcg@10"]):
            raise SystemExit(f"{case.name} {label}: evaluate_ranking(ranker=...) differs from the sweep")
        plain_s, rerank_s = time_evaluation(case.test, reranker, 1000, repeats)
        timings.append(
            {
                "case": case.name,
                "reranker": label,
                "candidates": size,
                "relevance": relevance,
                "strength": strength,
                "users": int(min(1000, len(pools["test"].users))),
                "plain_s": round(plain_s, 4),
                "reranked_s": round(rerank_s, 4),
                "added": round(rerank_s / plain_s - 1, 3),
            }
        )
    return rows, timings


def summary_table(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    out = []
    for row in rows:
        if row["chosen"]:
            interval = f"[{row['ndcg@10_change_low']:+.4f}, {row['ndcg@10_change_high']:+.4f}]"
            out.append(
                {
                    "case": row["case"],
                    "reranker": row["reranker"],
                    "N": row["candidates"],
                    "relevance": row["relevance"],
                    "strength": row["strength"],
                    "valid ndcg rel": row["valid_ndcg@10"]
                    / next(
                        r["valid_ndcg@10"]
                        for r in rows
                        if r["case"] == row["case"]
                        and r["reranker"] == row["reranker"]
                        and r["strength"] == 0
                    )
                    - 1,
                    "ndcg@10": row["ndcg@10"],
                    "ndcg change rel": row["ndcg@10_change_rel"],
                    "ndcg change 95% CI": interval,
                    "ild@10": row["ild@10"],
                    "ild rel": row["ild@10_change_rel"],
                    "coverage@10": row["coverage@10"],
                    "coverage rel": row["coverage@10_change_rel"],
                    "gini@10": row["gini@10"],
                    "novelty@10": row["novelty@10"],
                }
            )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cases", default="movielens-cdr,canvas-cnpc")
    parser.add_argument("--rerankers", default=",".join(RERANKERS))
    parser.add_argument(
        "--epochs", type=int, default=40, help="SASRec/GRU4Rec epoch limit (canvas); 0: transition model only"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9, help="timing runs per measurement")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    labels = args.rerankers.split(",")
    unknown = set(labels) - set(RERANKERS)
    if unknown:
        raise SystemExit(f"unknown re-rankers {sorted(unknown)}; known: {list(RERANKERS)}")
    builders: dict[str, Callable[[], Case]] = {
        "movielens-cdr": movielens_case,
        "canvas-cnpc": lambda: canvas_case(args.data_dir, args.epochs, args.threads),
    }
    rows: list[dict[str, object]] = []
    timings: list[dict[str, object]] = []
    for name in args.cases.split(","):
        started = time.perf_counter()
        case = builders[name]()
        print(f"{name}: model ready in {time.perf_counter() - started:.0f} s", flush=True)
        case_rows, case_timings = run_case(case, labels, args.repeats)
        rows += case_rows
        timings += case_timings
    table = summary_table(rows)
    print_table(
        f"operating points (chosen on validation: largest strength with <= {MAX_COST:.0%} loss)", table
    )
    print_table("evaluation time, 1,000 test users x all items (shared machine: not final)", timings)
    path = write_results(
        "diversity",
        [{key: row[key] for key in ROW_KEYS} for row in rows],
        protocol="full ranking over all items excluding the user's known items; re-rankers pick 10 "
        "from the model's top `candidates`; operating point chosen on validation (largest strength "
        f"with <= {MAX_COST:.0%} relative NDCG@10 loss; pool size and relevance by the re-ranker's "
        "objective)",
        targets={"max_ndcg_cost": MAX_COST, "ild_gain": 0.20, "coverage_gain": 0.50, "max_added_time": 0.20},
        operating_points=table,
        timing=timings,
        timing_note="measured while other jobs shared the 2 CPU cores: not final figures",
        canvas_model="transition model only (--epochs 0)" if args.epochs <= 0 else "blend (see docstring)",
        details=rows,
    )
    print(f"wrote {path}")
    json.loads(path.read_text())  # the file is valid JSON


if __name__ == "__main__":
    main()
