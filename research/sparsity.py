"""Research prototype for issue 15: transfer on a sparse target, as a data-efficiency curve, with a
guard whose interval survives selection.

For each pair and each fraction f of every target user's training interactions kept (seeded, at
least one each; validation and test unchanged), every model family is searched over its grid
(at most ``BUDGET`` = 8 validation-evaluated configurations each, target-only and transfer alike),
choices are made on half A of the validation users, the guard confirms on half B, and the test
part is read once per chosen model. Writes ``research/results/sparsity_research.json`` and
``research/results/sparsity_tables.md``.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 5 .venv/bin/python research/sparsity.py
    .venv/bin/python research/sparsity.py --pairs movielens-cdr --fractions 0.05,1   # a subset
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from _data import (
    Histories,
    RatioPair,
    SequencePair,
    keep_fraction,
    keep_recent,
    load_amazon,
    load_canvas,
    load_movielens,
)
from _families import (
    CONTROL_SEQUENCE,
    ORACLE_ITEM_LINKED,
    TARGET_ONLY_RATIO,
    TARGET_ONLY_SEQUENCE,
    TRANSFER_ITEM_LINKED,
    TRANSFER_SEQUENCE,
    TRANSFER_USER_LINKED,
    RatioContext,
    SequenceContext,
    SourceCache,
)
from _select import ci, halves, ranking_metrics, selection_bias_resampled

torch.set_num_threads(1)
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
PAIRS = ("movielens-cdr", "sport->cloth", "phone->electronic", "canvas<-mooccube")
RESULTS = Path(__file__).resolve().parent / "results"


def _log(message: str) -> None:
    print(message, flush=True)


def search(
    families: dict[str, tuple[str, Any]], context: Any, valid_truth, valid_exclude, a: np.ndarray
) -> dict[str, dict]:
    """Run every configuration of every family on validation; keep the per-user validation NDCG of all
    of them, and the scorers of the configurations best on half A and best on all validation users."""
    out: dict[str, dict] = {}
    for name, (kind, family) in families.items():
        started = time.perf_counter()
        configs, valid_rows, fit_seconds = [], [], []
        best_a = best_all = None
        generator = family(context)
        while True:
            fit_started = time.perf_counter()
            try:
                params, scorer_for = next(generator)
            except StopIteration:
                break
            fit_seconds.append(time.perf_counter() - fit_started)
            users, ndcg, _ = ranking_metrics(scorer_for("valid"), valid_truth, valid_exclude)
            configs.append(params)
            valid_rows.append(ndcg)
            index = len(configs) - 1
            if best_a is None or ndcg[a].mean() > valid_rows[best_a[0]][a].mean():
                best_a = (index, scorer_for)
            if best_all is None or ndcg.mean() > valid_rows[best_all[0]].mean():
                best_all = (index, scorer_for)
        out[name] = {
            "kind": kind,
            "configs": configs,
            "valid": np.array(valid_rows),
            "users": users,
            "fit_seconds": fit_seconds,
            "search_seconds": time.perf_counter() - started,
            "best_a": best_a,
            "best_all": best_all,
        }
        row = out[name]["valid"][best_a[0]]
        _log(
            f"    {name:24s} {len(configs)} configs, best on A {configs[best_a[0]]} "
            f"valid A {row[a].mean():.4f} B {row[~a].mean():.4f} ({out[name]['search_seconds']:.1f}s)"
        )
    return out


def summarise(
    pair_name: str,
    fraction: float,
    searched: dict[str, dict],
    test_truth,
    test_exclude,
    a: np.ndarray,
    extra: dict[str, Any],
) -> tuple[list[dict], dict]:
    """Test the chosen models, apply the guard, measure the selection bias; rows + one summary."""
    b = ~a
    test: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, record in searched.items():
        _, ndcg, recall = ranking_metrics(record["best_a"][1]("test"), test_truth, test_exclude)
        test[name] = (ndcg, recall)

    def chosen_valid(name: str) -> np.ndarray:
        return searched[name]["valid"][searched[name]["best_a"][0]]

    def best_of(kinds: tuple[str, ...]) -> str:
        names = [n for n, r in searched.items() if r["kind"] in kinds]
        return max(names, key=lambda n: chosen_valid(n)[a].mean())

    target = best_of(("target",))
    transfer = best_of(("transfer",))
    target_with_controls = best_of(("target", "control"))
    reference = test[target][0]

    # guard: chosen on A, confirmed on B
    difference_b = chosen_valid(transfer)[b] - chosen_valid(target)[b]
    guard_low, guard_high = ci(chosen_valid(transfer)[b], chosen_valid(target)[b])
    kept = transfer if guard_low > 0 else target
    kept_low, kept_high = ci(test[kept][0], reference) if kept != target else (0.0, 0.0)

    rows = []
    for name, record in searched.items():
        index = record["best_a"][0]
        ndcg, recall = test[name]
        low, high = ci(ndcg, reference) if name != target else (0.0, 0.0)
        rows.append(
            {
                "pair": pair_name,
                "fraction": fraction,
                "family": name,
                "kind": record["kind"],
                "params": record["configs"][index],
                "n_configs": len(record["configs"]),
                "valid_a_ndcg@10": float(record["valid"][index][a].mean()),
                "valid_b_ndcg@10": float(record["valid"][index][b].mean()),
                "ndcg@10": float(ndcg.mean()),
                "recall@10": float(recall.mean()),
                "best_target_only": target,
                "best_target_only_ndcg@10": float(reference.mean()),
                "gain": float(ndcg.mean() - reference.mean()),
                "relative_gain": float(ndcg.mean() / reference.mean() - 1) if reference.mean() > 0 else None,
                "gain_ci_low": low,
                "gain_ci_high": high,
                "kept": kept,
                "fit_seconds": float(record["fit_seconds"][index]),
                "search_seconds": float(record["search_seconds"]),
            }
        )

    # selection bias of "choose on all validation users, report on the same users"
    transfer_names = [n for n, r in searched.items() if r["kind"] == "transfer"]
    target_names = [n for n, r in searched.items() if r["kind"] == "target"]
    all_transfer = np.concatenate([searched[n]["valid"] for n in transfer_names])
    all_target = np.concatenate([searched[n]["valid"] for n in target_names])
    full_transfer = max(transfer_names, key=lambda n: searched[n]["valid"][searched[n]["best_all"][0]].mean())
    full_target = max(target_names, key=lambda n: searched[n]["valid"][searched[n]["best_all"][0]].mean())
    full_transfer_valid = searched[full_transfer]["valid"][searched[full_transfer]["best_all"][0]]
    full_target_valid = searched[full_target]["valid"][searched[full_target]["best_all"][0]]
    full_transfer_test = ranking_metrics(
        searched[full_transfer]["best_all"][1]("test"), test_truth, test_exclude
    )[1]
    full_target_test = ranking_metrics(
        searched[full_target]["best_all"][1]("test"), test_truth, test_exclude
    )[1]
    optimism, share_a, share_b = selection_bias_resampled(all_transfer, all_target)
    kept_gain = float(test[kept][0].mean() - reference.mean())
    summary = {
        "pair": pair_name,
        "fraction": fraction,
        "best_target_only": target,
        "best_target_only_params": searched[target]["configs"][searched[target]["best_a"][0]],
        "best_target_only_valid_a": float(chosen_valid(target)[a].mean()),
        "best_target_only_ndcg@10": float(reference.mean()),
        "best_target_only_recall@10": float(test[target][1].mean()),
        "best_target_or_control": target_with_controls,
        "best_transfer": transfer,
        "best_transfer_params": searched[transfer]["configs"][searched[transfer]["best_a"][0]],
        "best_transfer_ndcg@10": float(test[transfer][0].mean()),
        "guard_b_gain": float(difference_b.mean()),
        "guard_b_ci": [guard_low, guard_high],
        "kept": kept,
        "kept_ndcg@10": float(test[kept][0].mean()),
        "kept_recall@10": float(test[kept][1].mean()),
        "kept_gain": kept_gain,
        "kept_relative_gain": kept_gain / float(reference.mean()) if reference.mean() > 0 else None,
        "kept_ci": [kept_low, kept_high],
        "best_transfer_test_ci": list(ci(test[transfer][0], reference)),
        "current_approach": {
            "transfer": full_transfer,
            "target_only": full_target,
            "n_transfer_configs": int(len(all_transfer)),
            "n_target_configs": int(len(all_target)),
            "valid_gain_same_users": float((full_transfer_valid - full_target_valid).mean()),
            "valid_ci_same_users": list(ci(full_transfer_valid, full_target_valid)),
            "test_gain": float((full_transfer_test - full_target_test).mean()),
            "test_ci": list(ci(full_transfer_test, full_target_test)),
        },
        "resampled_optimism": optimism,
        "resampled_share_a_significant": share_a,
        "resampled_share_b_significant": share_b,
        "n_valid_users": int(len(a)),
        **extra,
    }
    if target_with_controls != target:
        summary["best_target_or_control_ndcg@10"] = float(test[target_with_controls][0].mean())
        summary["best_transfer_vs_control_ci"] = list(ci(test[transfer][0], test[target_with_controls][0]))
    return rows, summary


def run_ratio(pair: RatioPair, fractions: tuple[float, ...]) -> tuple[list[dict], list[dict]]:
    transfer = TRANSFER_USER_LINKED if pair.user_links is not None else TRANSFER_ITEM_LINKED
    families = {n: ("target", f) for n, f in TARGET_ONLY_RATIO.items()} | {
        n: ("transfer", f) for n, f in transfer.items()
    }
    if pair.item_links is not None:
        families |= {n: ("oracle", f) for n, f in ORACLE_ITEM_LINKED.items()}
    cache = SourceCache(pair)
    rows, summaries = [], []
    for fraction in fractions:
        started = time.perf_counter()
        kept = keep_fraction(pair.train, fraction)
        _log(f"  {pair.name} f={fraction}: kept {kept.nnz:,} of {pair.train.nnz:,} training interactions")
        context = RatioContext(pair, kept, cache)
        a, _ = halves(int((np.diff(pair.valid.indptr) > 0).sum()))
        searched = search(families, context, pair.valid, kept, a)
        extra = {"kept_interactions": int(kept.nnz), "source_cache_seconds": cache.seconds}
        new_rows, summary = summarise(pair.name, fraction, searched, pair.test, kept + pair.valid, a, extra)
        summary["seconds"] = time.perf_counter() - started
        rows += new_rows
        summaries.append(summary)
        _report(summary)
    return rows, summaries


def run_sequence(pair: SequencePair, fractions: tuple[float, ...]) -> tuple[list[dict], list[dict]]:
    families = (
        {n: ("target", f) for n, f in TARGET_ONLY_SEQUENCE.items()}
        | {n: ("transfer", f) for n, f in TRANSFER_SEQUENCE.items()}
        | {n: ("control", f) for n, f in CONTROL_SEQUENCE.items()}
    )
    rows, summaries = [], []
    valid_matrix, test_matrix = pair.valid.matrix(), pair.test.matrix()
    for fraction in fractions:
        started = time.perf_counter()
        kept: Histories = keep_recent(pair.head, fraction)
        _log(
            f"  {pair.name} f={fraction}: kept {len(kept.item):,} of {len(pair.head.item):,} head enrolments"
        )
        context = SequenceContext(pair, kept, {"valid": kept, "test": kept.then(pair.valid)})
        a, _ = halves(int((np.diff(valid_matrix.indptr) > 0).sum()))
        searched = search(families, context, valid_matrix, kept.matrix(), a)
        extra = {"kept_interactions": int(len(kept.item))}
        new_rows, summary = summarise(
            pair.name, fraction, searched, test_matrix, kept.matrix() + valid_matrix, a, extra
        )
        summary["seconds"] = time.perf_counter() - started
        rows += new_rows
        summaries.append(summary)
        _report(summary)
    return rows, summaries


def _report(s: dict) -> None:
    _log(
        f"  => f={s['fraction']}: best target-only {s['best_target_only']} {s['best_target_only_ndcg@10']:.4f}; "
        f"best transfer {s['best_transfer']} {s['best_transfer_ndcg@10']:.4f}; guard B gain {s['guard_b_gain']:+.4f} "
        f"[{s['guard_b_ci'][0]:+.4f}, {s['guard_b_ci'][1]:+.4f}] -> kept {s['kept']} {s['kept_ndcg@10']:.4f} "
        f"({100 * (s['kept_relative_gain'] or 0):+.1f}%, test CI [{s['kept_ci'][0]:+.4f}, {s['kept_ci'][1]:+.4f}]) "
        f"[{s['seconds']:.0f}s]"
    )


def load(name: str) -> RatioPair | SequencePair:
    if name == "movielens-cdr":
        return load_movielens()
    if name == "canvas<-mooccube":
        return load_canvas()
    source, target = name.split("->")
    return load_amazon(source, target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS))
    parser.add_argument("--out", default=str(RESULTS / "sparsity_research.json"))
    args = parser.parse_args(argv)
    fractions = tuple(float(f) for f in args.fractions.split(","))
    started = time.perf_counter()
    rows, summaries, timings = [], [], {}
    for name in args.pairs.split(","):
        pair_started = time.perf_counter()
        pair = load(name)
        _log(
            f"{name}: {pair.n_users:,} users, {pair.n_items:,} items (loaded in {time.perf_counter() - pair_started:.1f}s)"
        )
        new_rows, new_summaries = (
            run_sequence(pair, fractions) if isinstance(pair, SequencePair) else run_ratio(pair, fractions)
        )
        rows += new_rows
        summaries += new_summaries
        timings[name] = time.perf_counter() - pair_started
    total = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"total_seconds": total, "pair_seconds": timings, "summaries": summaries, "rows": rows}
    out.write_text(json.dumps(payload, indent=1, default=float))
    from _tables import write_tables

    tables = write_tables(payload, out.with_name(out.stem.replace("_research", "") + "_tables.md"))
    _log(f"\nwrote {out} and {tables} in {total:.0f}s")


if __name__ == "__main__":
    main()
