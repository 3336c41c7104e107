"""Scale benchmark: synthetic data -> ingest -> out-of-core arrays -> one BPR-MF epoch -> evaluation.

For each size (``--sizes 1M,5M,25M``) it generates a two-domain synthetic dataset (``crossrec synth``),
ingests it (``crossrec ingest``), streams the source domain to memory-mapped arrays and splits it per
user (80/10/10), builds the negative filter, trains one BPR-MF epoch (lean row-wise AdaGrad step,
``dim`` 64, batch 32,768, one torch thread) and ranks all items for 10,000 sampled test users.
Every phase runs in a fresh child process so that its peak RSS (``ru_maxrss``) is its own.

Run with ``nice -n 10 .venv/bin/python benchmarks/scale.py`` (sizes and paths are options); it prints
a table and writes ``benchmarks/results/scale.json`` (keys ``interactions``, ``ingest_s``, ``epoch_s``,
``eval_s``, ``peak_rss_mib`` plus details). Wall times on a shared machine depend on its load: the
load average is recorded next to every row, and the epoch's CPU time is recorded beside its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_results


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _phase_data(args: argparse.Namespace) -> dict[str, Any]:
    from crossrec.data import ingest
    from crossrec.data.synthetic import SynthConfig, generate_synthetic, parse_count

    work = Path(args.work)
    synth_dir, bundle = work / "synth", work / "bundle"
    started = time.perf_counter()
    result = generate_synthetic(
        synth_dir, SynthConfig(interactions=parse_count(args.size), seed=0), overwrite=True
    )
    synth_s = time.perf_counter() - started
    started = time.perf_counter()
    ingest(result.sources, bundle, overwrite=True)
    ingest_s = time.perf_counter() - started
    return {
        "generated": result.manifest["interactions"],
        "synth_s": synth_s,
        "ingest_s": ingest_s,
        "data_peak_rss_mib": _peak_rss_mib(),
    }


def _phase_train(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from crossrec.data.arrays import materialize_domain, split_arrays
    from crossrec.distributed import _evaluation_users, evaluate_tables
    from crossrec.training.fast_bpr import BPRTables, PositiveFilter, run_epoch
    from crossrec.training.optim import OptimConfig

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    started = time.perf_counter()
    arrays = materialize_domain(work / "bundle", args.domain, work / "arrays" / "all", overwrite=True)
    parts = split_arrays(arrays, work / "arrays", seed=2022, overwrite=True)
    prepare_s = time.perf_counter() - started
    train = parts["train"]
    config = OptimConfig(
        optimizer="rowwise_adagrad", learning_rate=0.05, batch_size=args.batch_size, epochs=args.epochs
    )
    started = time.perf_counter()
    negative_filter = PositiveFilter(train)
    filter_s = time.perf_counter() - started
    tables = BPRTables.initialise(train.n_users, train.n_items, args.dim)
    epochs = [run_epoch(tables, train, negative_filter, config, epoch) for epoch in range(1, args.epochs + 1)]
    last = epochs[-1]
    started = time.perf_counter()
    users = _evaluation_users(parts["test"], args.eval_users, seed=0)
    per_user = evaluate_tables(
        tables.user,
        tables.item,
        parts["test"],
        [parts["train"], parts["valid"]],
        users,
        metrics=("ndcg",),
        ks=(10,),
    )
    eval_s = time.perf_counter() - started
    return {
        "users": train.n_users,
        "items": train.n_items,
        "train_rows": len(train),
        "prepare_s": prepare_s,
        "filter_s": filter_s,
        "epoch_s": last.seconds,
        "epoch_cpu_s": last.cpu_seconds,
        "loss": last.loss / max(last.interactions, 1),
        "eval_users": len(users),
        "eval_s": eval_s,
        "ndcg@10": float(np.mean(per_user["ndcg@10"])) if len(per_user) else float("nan"),
        "train_peak_rss_mib": _peak_rss_mib(),
    }


def _child(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--work", args.work, "--size", args.size]
    command += ["--domain", args.domain, "--dim", str(args.dim), "--batch-size", str(args.batch_size)]
    command += [
        "--epochs",
        str(args.epochs),
        "--eval-users",
        str(args.eval_users),
        "--threads",
        str(args.threads),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"phase {phase} for {args.size} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,5M,25M", help="Comma-separated sizes, e.g. 1M,5M,25M.")
    parser.add_argument("--work", default="/tmp/crossrec-scale-bench", help="Scratch folder (deleted after).")
    parser.add_argument("--domain", default="source", help="Domain to train on (the larger one by default).")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32_768)
    parser.add_argument("--epochs", type=int, default=1, help="Epochs; the last one is timed.")
    parser.add_argument("--eval-users", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process.")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch data.")
    parser.add_argument("--phase", choices=["data", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase is not None:
        result = _phase_data(args) if args.phase == "data" else _phase_train(args)
        print(json.dumps(result))
        return
    from crossrec.data.synthetic import parse_count

    rows: list[dict[str, Any]] = []
    for size in args.sizes.split(","):
        args.size = size.strip()
        args.work = str(Path(args.work) / args.size)
        load_before = os.getloadavg()[0]
        data = _child("data", args)
        train = _child("train", args)
        load_after = os.getloadavg()[0]
        args.work = str(Path(args.work).parent)
        if not args.keep:
            shutil.rmtree(Path(args.work) / args.size, ignore_errors=True)
        row = {
            "interactions": parse_count(args.size),
            "generated": data["generated"],
            "train_rows": train["train_rows"],
            "users": train["users"],
            "items": train["items"],
            "synth_s": round(data["synth_s"], 2),
            "ingest_s": round(data["ingest_s"], 2),
            "prepare_s": round(train["prepare_s"], 2),
            "epoch_s": round(train["epoch_s"], 3),
            "epoch_cpu_s": round(train["epoch_cpu_s"], 3),
            "per_s_wall": round(train["train_rows"] / train["epoch_s"]),
            "per_s_cpu": round(train["train_rows"] / train["epoch_cpu_s"]),
            "eval_users": train["eval_users"],
            "eval_s": round(train["eval_s"], 2),
            "ndcg@10": round(train["ndcg@10"], 4),
            "peak_rss_mib": round(max(data["data_peak_rss_mib"], train["train_peak_rss_mib"]), 1),
            "train_peak_rss_mib": round(train["train_peak_rss_mib"], 1),
            "ingest_peak_rss_mib": round(data["data_peak_rss_mib"], 1),
            "load_avg": f"{load_before:.1f}->{load_after:.1f}",
        }
        rows.append(row)
        print_table("scale (so far)", rows)
    summary: dict[str, Any] = {"sizes": args.sizes, "dim": args.dim, "batch_size": args.batch_size}
    summary["cpu_count"] = os.cpu_count()
    if len(rows) > 1:
        summary["epoch_ratio_last_first"] = round(rows[-1]["epoch_s"] / rows[0]["epoch_s"], 2)
        summary["epoch_cpu_ratio_last_first"] = round(rows[-1]["epoch_cpu_s"] / rows[0]["epoch_cpu_s"], 2)
        summary["interaction_ratio_last_first"] = round(rows[-1]["train_rows"] / rows[0]["train_rows"], 2)
    print_table("scale", rows)
    path = write_results("scale", rows, **summary)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
