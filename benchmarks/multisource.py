"""Benchmark: several sources, weights chosen on validation, each source's contribution, a harmful
source rejected (issue 21).

(a) movielens-cdr (target ML-100K, demo protocol: per-user random 80/10/10, seed 2022, full ranking
    over the 1,196 target items) with two sources: ML-1M (movies linked by title) and a *harmful*
    copy of ML-1M whose interactions are shuffled across items (each user keeps her number of
    interactions, each item its count, the user-item pairing is random: no signal). The strategy is
    joint EASE (reg 300, domain weight 0.1, chosen on validation by ``benchmarks/movielens_cdr.py``).
    Rows: the best target-only model, each source alone, the uniform mix (both at weight 1), the
    weights chosen on validation (``weights = "auto"``) and what the guard kept.
(b) Canvas Network (CNPC) as target with both XuetangX platforms as sources, at a sparse fraction of
    Canvas's training data (:func:`crossrec.evaluation.keep_training_fraction`). Canvas and XuetangX
    share no learner and no course id; MOOCCube courses are linked to Canvas courses by content
    (TF-IDF of MOOCCube names and descriptions against the Canvas discipline names; every Canvas
    course links to the MOOCCube course nearest its discipline). MOOCCubeX has no course text and no
    attribute Canvas has: nothing links it, and the run names it before training.

Everything is chosen on validation (target-only family and configuration, source weights, the guard);
test is read once per reported model. ``gain_ci_low`` / ``gain_ci_high``: paired per-user bootstrap
95% interval of test NDCG@10 against the best target-only model on validation (popularity included).

Run: ``/work/heavy.sh env OMP_NUM_THREADS=1 CROSSREC_SHARED_DATA=/work/shared/data nice
.venv/bin/python benchmarks/multisource.py`` (``--quick`` for a test-sized run, ``--cases a``).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_results

from crossrec.data.builtin import load_movielens_cdr
from crossrec.data.interactions import Interactions
from crossrec.evaluation import evaluate_model
from crossrec.evaluation.contribution import contribution_on_test
from crossrec.evaluation.efficiency import keep_training_fraction
from crossrec.features import TfidfTextEncoder
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import EASE, ItemKNN, Popularity, PopularityBlend
from crossrec.models.sequences import Sequences
from crossrec.selection import select
from crossrec.splitting import Split, random_split
from crossrec.transfer import (
    Joint,
    Links,
    PopularityBlendTransfer,
    SourceData,
    SourceWeighted,
    TargetOnly,
    TransferData,
    guarded_sources,
)
from crossrec.transfer.base import no_overlap_reason

SEED = 2022
METRIC = "ndcg@10"


class _Console:
    def print(self, text: str, **_: Any) -> None:
        print(text, flush=True)


def _test_values(model: Any, split: Split) -> np.ndarray:
    table = evaluate_model(model.scorer(), split, part="test", metrics=["ndcg"], ks=[10], seed=SEED).per_user
    return table.sort_values("user")[METRIC].to_numpy()


def _best_target_only(data: TransferData, candidates: list[Any]) -> tuple[str, Any, float]:
    """The best target-only model on validation (popularity among the candidates)."""
    chosen = select([TargetOnly(model) for model in candidates], data, metric=METRIC)
    return chosen.best.name, chosen.model, chosen.score


def _row(case: str, label: str, weights: dict[str, float], model: Any, split: Split, reference: np.ndarray,
         valid: float | None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    values = _test_values(model, split)
    low, high = paired_bootstrap_ci(values, reference, n_resamples=2000, seed=SEED)
    used = {name: w for name, w in weights.items() if w > 0}
    return {
        "case": case,
        "model": label,
        "sources": list(used),
        "weights": list(used.values()),
        "ndcg@10": float(values.mean()),
        "gain_ci_low": low,
        "gain_ci_high": high,
        f"valid_{METRIC}": valid,
        **extra,
    }


def _measure(case: str, data: TransferData, strategy: Any, target_only: list[Any], levels: tuple[float, ...],
             console: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Rows of one case: best target-only, each source alone, the uniform mix, auto weights, kept."""
    started = time.perf_counter()
    name, reference_model, reference_valid = _best_target_only(data, target_only)
    reference = _test_values(reference_model, data.split)
    print(f"[{case}] best target-only on validation: {name} ({reference_valid:.4f})", flush=True)
    result = guarded_sources(strategy, data, weights="auto", levels=levels, metric=METRIC, seed=SEED,
                             console=console)  # fmt: skip
    measured = result.contribution
    assert measured is not None and result.weighting is not None
    contribution = contribution_on_test(measured, data.split, seed=SEED)
    valid_of = {r["model"]: r[f"valid_{METRIC}"] for r in measured.rows}  # "only <source>", "all sources"
    split, given = data.split, measured.weights
    names = list(given)
    rows = [
        {
            "case": case, "model": f"target-only {name}", "sources": [], "weights": [],
            "ndcg@10": float(reference.mean()), "gain_ci_low": 0.0, "gain_ci_high": 0.0,
            f"valid_{METRIC}": reference_valid,
        }
    ]  # fmt: skip
    for source in names:
        alone = measured.models[f"only {source}"]
        rows.append(_row(case, f"{strategy.label} {source} alone", {source: given[source]}, alone, split,
                         reference, valid_of.get(f"only {source}")))  # fmt: skip
    if len(names) > 1:
        rows.append(_row(case, f"{strategy.label} uniform mix", given, measured.models["all sources"], split,
                         reference, valid_of.get("all sources")))  # fmt: skip
    chosen = result.weights  # chosen on half of the validation users, sources tested on the other half
    auto_model = result.guard.transfer_model
    every = [chosen[n] for n in names]
    rows.append(_row(case, f"{strategy.label} auto weights", chosen, auto_model, split, reference,
                     result.guard.transfer_score, weights_all_sources=every))  # fmt: skip
    kept = result.guard.kept == "transfer"
    rows.append(_row(case, "kept by the guard" + ("" if kept else " (target-only)"), chosen if kept else {},
                     result.guard.model, split, reference,
                     result.guard.transfer_score if kept else result.guard.baseline_score))  # fmt: skip
    record = {
        "best_target_only": name,
        "strategy": strategy.label,
        "weighting": result.weighting.to_dict(),
        "kept_weights": result.weights,
        "source_tests": result.source_tests,
        "guard": result.guard.to_dict(),
        "contribution": contribution,
        "seconds": time.perf_counter() - started,
    }
    return rows, record


def case_a(quick: bool, console: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    source, target = load_movielens_cdr()
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
    base = TransferData.from_domains(target, split, [source], link_items="ids", link_users=None, seed=SEED)
    real = base.sources[0]
    if quick:  # a test-sized run: 1,000 ML-1M users
        real = dataclasses.replace(real, interactions=real.interactions[:1000])
    coo = real.interactions.tocoo()
    rng = np.random.default_rng(SEED)
    shuffled = sp.csr_matrix(
        (np.ones(coo.nnz, np.float32), (coo.row, coo.col[rng.permutation(coo.nnz)])), shape=coo.shape
    )
    shuffled.data[:] = 1.0  # a user drawn the same movie twice keeps it once
    harmful = SourceData(f"{real.name}-shuffled", shuffled, item_links=real.item_links)
    data = TransferData(split, (real, harmful), target=target, seed=SEED)
    print(f"[a] {real.name}: {real.interactions.nnz} interactions; {harmful.name}: {shuffled.nnz} "
          f"(shuffled across items)", flush=True)  # fmt: skip
    target_only = [Popularity(), *(EASE(reg=reg) for reg in (100.0, 300.0, 1000.0)), ItemKNN(k=100)]
    strategy = Joint(EASE(reg=300.0), domain_weight=0.1)
    levels = (0.0, 1.0) if quick else (0.0, 0.5, 1.0, 2.0)
    rows, record = _measure("a: movielens-cdr, ML-1M + shuffled ML-1M", data, strategy, target_only, levels,
                            console)  # fmt: skip
    weights = record["kept_weights"]
    alone = next(r for r in rows if r["model"].endswith(f"{real.name} alone"))
    auto = next(r for r in rows if r["model"].endswith("auto weights"))
    uniform = next(r for r in rows if r["model"].endswith("uniform mix"))
    record["targets"] = {
        "shuffled_weight_ratio": weights[harmful.name] / weights[real.name] if weights[real.name] else None,
        "shuffled_weight_ratio_at_most_0.05": weights[real.name] > 0
        and weights[harmful.name] <= 0.05 * weights[real.name],
        "auto_vs_alone_relative": auto["ndcg@10"] / alone["ndcg@10"] - 1,
        "auto_within_1pct_of_alone": abs(auto["ndcg@10"] / alone["ndcg@10"] - 1) <= 0.01,
        "uniform_below_alone": uniform["ndcg@10"] < alone["ndcg@10"],
    }
    return rows, record


# -- (b) Canvas Network with the two XuetangX platforms -------------------------------------------------


def _shared_data() -> Path:
    root = Path(
        os.environ.get("CROSSREC_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    if not (root / "edu-canvas-cnpc").is_dir():
        raise SystemExit(f"education data not found under {root}: set CROSSREC_SHARED_DATA")
    return root


def _canvas_split(root: Path) -> tuple[Split, pd.DataFrame]:
    """The published CNPC split (test: each learner's last 20%); validation: the last 20% of each
    learner's training part, in time order (as ``benchmarks/education.py`` selects)."""
    folder = root / "edu-canvas-cnpc"
    rows = pd.concat(
        [
            pd.read_json(folder / n, lines=True)
            for n in ("train_valid_data_cnpc_v2.json", "test_data_cnpc_v2.json")
        ],
        ignore_index=True,
    )
    n_users, n_items = int(rows["user"].max()) + 1, int(rows["item"].max()) + 1
    ordered = Sequences.from_interactions(
        Interactions(rows["user"].to_numpy(), rows["item"].to_numpy(), np.ones(len(rows))), n_users, n_items
    )
    train_all, test = ordered.split_last(0.2)
    train, valid = train_all.split_last(0.2)

    def part(sequences: Sequences) -> Interactions:
        coo = sequences.to_csr().tocoo()
        return Interactions(coo.row, coo.col, np.ones(coo.nnz, np.float32))

    split = Split(
        part(train), part(valid), part(test), n_users, n_items, protocol="cnpc_published_last_20pct"
    )
    courses = pd.read_json(folder / "cnpc_course_info_v3.json", lines=True).sort_values("course_idx2")
    return split, courses


def _mooccube(root: Path, courses: pd.DataFrame, n_target_items: int) -> SourceData:
    """MOOCCube learners x courses, its courses linked to Canvas courses by content: each Canvas course
    links to the MOOCCube course whose name + description is nearest (TF-IDF + SVD, cosine) to the
    name of the Canvas course's discipline."""
    folder = root / "edu-xuetangx-mooccube"
    enrolments = pd.read_json(folder / "test_data_mooccube_v4.json", lines=True)
    info = pd.read_json(folder / "course_info_v5_mooccube.json", lines=True).sort_values("course_idx2")
    n_items = int(max(info["course_idx2"].max(), enrolments["item"].max())) + 1
    n_users = int(enrolments["user"].max()) + 1
    matrix = sp.csr_matrix(
        (np.ones(len(enrolments), np.float32), (enrolments["user"], enrolments["item"])),
        shape=(n_users, n_items),
    )
    matrix.data[:] = 1.0
    text = (info["name"].fillna("") + ". " + info["about"].fillna("")).tolist()
    disciplines = courses["discipline"].fillna("unknown").astype(str)
    names = sorted(set(disciplines))
    encoder = TfidfTextEncoder(dim=64, min_df=2).fit(text + names)
    course_vectors, discipline_vectors = encoder.transform(text), encoder.transform(names)
    course_vectors /= np.linalg.norm(course_vectors, axis=1, keepdims=True) + 1e-9
    discipline_vectors /= np.linalg.norm(discipline_vectors, axis=1, keepdims=True) + 1e-9
    enrolled = np.asarray(matrix.sum(axis=0)).ravel()[info["course_idx2"].to_numpy()] > 0
    similarity = discipline_vectors @ course_vectors.T
    similarity[:, ~enrolled] = -np.inf
    nearest = dict(zip(names, info["course_idx2"].to_numpy()[similarity.argmax(axis=1)], strict=True))
    target_items = courses["course_idx2"].to_numpy()
    keep = target_items < n_target_items
    links = Links(np.array([nearest[d] for d in disciplines[keep]]), target_items[keep])
    return SourceData("mooccube", matrix, item_links=links)


def _mooccubex(root: Path) -> SourceData:
    """MOOCCubeX learners x courses (``raw.zip``'s ``train.txt``); it has no course text or attribute."""
    with zipfile.ZipFile(root / "edu-xuetangx-mooccubex" / "raw.zip") as archive:
        lines = io.TextIOWrapper(archive.open("train.txt")).read().split("\n")
    users, items = [], []
    for line in lines:
        parts = line.split()
        if len(parts) > 1:
            users.append(np.full(len(parts) - 1, int(parts[0])))
            items.append(np.array(parts[1:], dtype=np.int64))
    u, i = np.concatenate(users), np.concatenate(items)
    matrix = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(u.max() + 1, i.max() + 1))
    matrix.data[:] = 1.0
    return SourceData("mooccubex", matrix)


def case_b(quick: bool, fraction: float, console: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    root = _shared_data()
    full, courses = _canvas_split(root)
    split = keep_training_fraction(full, fraction, seed=SEED)
    sources = (_mooccube(root, courses, full.n_items), _mooccubex(root))
    if quick:
        sources = tuple(dataclasses.replace(s, interactions=s.interactions[:3000]) for s in sources)
    data = TransferData(split, sources, seed=SEED)
    for source in sources:
        print(f"[b] {source.name}: {source.interactions.shape[0]} learners x {source.interactions.shape[1]} "
              f"courses, {source.interactions.nnz} enrolments; overlap with canvas {data.overlap(source)}",
              flush=True)  # fmt: skip
    disjoint = data.sources_without_overlap()
    refused = {"sources": disjoint, "message": no_overlap_reason(disjoint)} if disjoint else None
    if disjoint:
        print(f"[b] refused before training: {refused['message']}", flush=True)
        data = TransferData(split, tuple(s for s in sources if s.name not in disjoint), seed=SEED)
    case = f"b: canvas at {fraction:g} of its training data, XuetangX sources"
    target_only = [
        Popularity(),
        *(EASE(reg=reg) for reg in (10.0, 100.0, 1000.0)),
        ItemKNN(k=50),
        *(PopularityBlend("ease", {"reg": 100.0}, popularity_weight=p) for p in (0.5, 1.0)),
    ]  # fmt: skip  (the target-only blend: the popularity_blend strategy's own baseline family)
    # the transfer family and its configuration, chosen on validation with every linkable source at weight 1
    families = [Joint(EASE(reg=100.0), domain_weight=w) for w in (0.01, 0.1)] + [
        PopularityBlendTransfer(EASE(reg=100.0), domain_weight=w, popularity_weight=p)
        for w in (0.01, 0.1) for p in (0.5, 1.0)
    ]  # fmt: skip
    uniform = {s.name: 1.0 for s in data.sources}
    chosen = select([SourceWeighted(f, uniform) for f in families], data, metric=METRIC)
    strategy = chosen.candidate.strategy
    print(f"[b] transfer configuration chosen on validation: {strategy!r} ({chosen.score:.4f})", flush=True)
    rows, record = _measure(case, data, strategy, target_only, (0.0, 0.5, 1.0), console)
    record |= {
        "fraction": fraction,
        "refused_before_training": refused,
        "strategy_selection": chosen.table(),
        "train_interactions": len(split.train),
    }
    singles = [r for r in rows if r["model"].endswith(" alone")]
    kept = next(r for r in rows if r["model"].startswith("kept by the guard"))
    record["targets"] = {
        "kept_at_least_best_single_source": bool(singles)
        and kept["ndcg@10"] >= max(r["ndcg@10"] for r in singles),
        "each_platform_in_contribution_table": sorted({r["source"] for r in record["contribution"]})
        == ["mooccube", "mooccubex"],
    }
    return rows, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="test-sized sources (minutes)")
    parser.add_argument("--cases", default="a,b", help="a, b or a,b")
    parser.add_argument("--fraction", type=float, default=0.1, help="(b): share of Canvas training data kept")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = [round(x, 2) for x in os.getloadavg()]
    console = _Console()
    rows: list[dict[str, Any]] = []
    cases: dict[str, Any] = {}
    for case in args.cases.split(","):
        produced, record = (
            case_a(args.quick, console) if case == "a" else case_b(args.quick, args.fraction, console)
        )
        rows += produced
        cases[case] = record
        for row in record["contribution"]:
            valid = (
                f"{row['valid_difference']:+.4f} [{row['valid_ci_low']:+.4f}, {row['valid_ci_high']:+.4f}]"
            )
            test = f"{row['test_difference']:+.4f} [{row['test_ci_low']:+.4f}, {row['test_ci_high']:+.4f}]"
            print(f"  contribution {row['source']:<18} {row['effect']:<13} valid {valid}  test {test}")
        print(f"  targets: {record['targets']}", flush=True)
    keys = ("case", "model", "sources", "weights", "ndcg@10", "gain_ci_low", "gain_ci_high")
    shown = [{k: r[k] for k in keys} for r in rows]
    print_table("multi-source transfer: test NDCG@10, gain vs the best target-only model (95% CI)", shown)
    path = write_results(
        "multisource" + ("_quick" if args.quick else ""),
        rows,
        quick=args.quick,
        load_before=load_before,
        metric=METRIC,
        protocol="(a) movielens-cdr demo protocol; (b) CNPC published split, validation = last 20% of each "
        "learner's training part, training data thinned by keep_training_fraction; full ranking",
        cases=cases,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
