"""Pretrain once, transfer to many targets, update: what a source artifact saves, and what it costs.

Writes ``benchmarks/results/registry.json``. All on one torch thread (run it through ``/work/heavy.sh``).

1. **One ML-1M source artifact, two targets.** ``crossrec pretrain`` fits the BPR-MF that
   ``examples/experiments/movielens_bpr_warm_start.toml``'s warm start starts from, on ML-1M, once.
   Each target is then transferred twice with the negative-transfer guard (target-only BPR-MF vs
   warm start, kept on validation): from scratch (the source pretrained inside the run, what
   ``crossrec transfer`` did before) and from the artifact (``--from``). Targets: ML-100K, and
   ML-100K's later half by time (interactions after the median timestamp, 5-core), both split
   per-user 80/10/10 (seed 2022) and tested on full ranking. The runs do not save artifacts, so both
   sides time the transfer and the guard only.
2. **Update.** ML-100K by time: the first 90% trains a target-only BPR-MF (epochs chosen on a per-user
   validation split, then refit on all of the 90%: the deployed artifact). The next 5% are the new
   interactions (new users and items included): ``crossrec update`` continues the artifact on them;
   the full retrain fits the same configuration from scratch on the first 95% for the epoch count
   validation chose (no search: the cheapest honest retrain). Both are tested on the last 5% (NDCG@10
   over the users both models know, every earlier interaction excluded).

Rows: ``case``, ``seconds``, ``from_scratch_seconds``, ``ndcg@10``, ``from_scratch_ndcg@10``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, print_table, write_results

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "examples" / "experiments" / "movielens_bpr_warm_start.toml"

SOURCES = """
version = 1
{sources}
"""

SOURCE = """
[sources.{name}.interactions]
path = "{name}.parquet"
user = "user"
item = "item"
timestamp = "ts"
timestamp_format = "epoch_s"
[domains.{name}]
role = "{role}"
k_core = {k_core}
"""


def _frame(domain, rows: np.ndarray | None = None) -> pd.DataFrame:
    inter = domain.interactions if rows is None else domain.interactions.take(rows)
    return pd.DataFrame(
        {
            "user": domain.users.lookup(inter.user).astype(str),
            "item": domain.items.lookup(inter.item).astype(str),
            "ts": np.asarray(inter.timestamp, dtype=np.int64),
        }
    )


def build_bundle(folder: Path) -> Path:
    """ML-1M, ML-100K, ML-100K's later half, and ML-100K's first 90% / next 5% / last 5% by time."""
    from crossrec.data import ingest
    from crossrec.data.builtin import load_movielens_cdr

    source, target = load_movielens_cdr()
    order = np.argsort(np.asarray(target.interactions.timestamp), kind="stable")
    n = len(order)
    cut90, cut95 = int(0.9 * n), int(0.95 * n)
    timestamps = np.asarray(target.interactions.timestamp)
    late = np.flatnonzero(timestamps > np.median(timestamps))
    tables = {
        "ml-1m": (_frame(source), "source", 0),
        "ml-100k": (_frame(target), "target", 0),
        "ml-100k-late": (_frame(target, late), "target", 5),
        "ml-100k-first90": (_frame(target, order[:cut90]), "target", 0),
        "ml-100k-next5": (_frame(target, order[cut90:cut95]), "target", 0),
        "ml-100k-last5": (_frame(target, order[cut95:]), "target", 0),
    }
    parts = []
    for name, (frame, role, k_core) in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        parts.append(SOURCE.format(name=name, role=role, k_core=k_core))
    (folder / "sources.toml").write_text(SOURCES.format(sources="\n".join(parts)))
    return ingest(folder / "sources.toml", folder / "bundle").path


def experiment(bundle: Path, target: str, runs: Path, epochs: int | None, name: str):
    """The example warm-start experiment on ``target`` of the benchmark bundle."""
    from crossrec.experiment.config import ExperimentConfig

    document = tomllib.loads(EXPERIMENT.read_text())
    document.update(name=name, output_dir=str(runs), num_threads=1, save_artifact=False)
    document["data"] = {
        "bundle": str(bundle),
        "target": target,
        "sources": ["ml-1m"],
        "link_items": "ids",
        "link_users": "none",
    }
    document["evaluation"] = {"metrics": ["ndcg", "recall"], "ks": [10]}
    optim = document["model"]["params"]["optim"]
    optim["progress"] = False
    if epochs is not None:
        optim["epochs"] = epochs
    return ExperimentConfig.model_validate(document)


def _kept_ndcg(result) -> float:
    return float(result.summary[result.kept]["ndcg@10"])


def transfer_rows(bundle: Path, runs: Path, epochs: int | None) -> tuple[list[dict], dict]:
    from crossrec.experiment.registry import pretrain_source
    from crossrec.experiment.runner import run_experiment

    started = time.perf_counter()
    pretrained = pretrain_source(
        experiment(bundle, "ml-100k", runs, epochs, "pretrain"), runs / "ml-1m-source"
    )
    pretrain_seconds = time.perf_counter() - started
    rows = [
        {
            "case": "pretrain ML-1M source artifact (once)",
            "seconds": pretrain_seconds,
            "from_scratch_seconds": None,
            "ndcg@10": pretrained.evaluation["ndcg@10"],
            "from_scratch_ndcg@10": None,
            "note": "ndcg@10 on the source's 10% per-user holdout",
        }
    ]
    details: dict = {"targets": {}}
    for target, label in (("ml-100k", "ML-100K"), ("ml-100k-late", "ML-100K later half")):
        timed = {}
        for side in ("scratch", "artifact"):
            config = experiment(bundle, target, runs, epochs, f"{target}-{side}")
            if side == "artifact":
                config.transfer.sources = [pretrained.artifact]
            started = time.perf_counter()
            result = run_experiment(config)
            timed[side] = (time.perf_counter() - started, result)
            shutil.rmtree(result.run_dir, ignore_errors=True)
        (seconds, reused), (scratch_seconds, scratch) = timed["artifact"], timed["scratch"]
        rows.append(
            {
                "case": f"transfer to {label} with the guard",
                "seconds": seconds,
                "from_scratch_seconds": scratch_seconds,
                "ndcg@10": _kept_ndcg(reused),
                "from_scratch_ndcg@10": _kept_ndcg(scratch),
                "note": f"kept {reused.kept} (from scratch: {scratch.kept}); test, full ranking",
            }
        )
        details["targets"][target] = {
            "kept": reused.kept,
            "kept_from_scratch": scratch.kept,
            "transfer_ndcg@10": reused.summary["transfer"]["ndcg@10"],
            "transfer_ndcg@10_from_scratch": scratch.summary["transfer"]["ndcg@10"],
            "guard": reused.extra.get("guard"),
            "users": reused.data.n_users,
            "items": reused.data.n_items,
        }
    transfers = rows[1:]
    with_artifact = sum(r["seconds"] for r in transfers)
    from_scratch = sum(r["from_scratch_seconds"] for r in transfers)
    rows.append(
        {
            "case": "both targets (transfers only)",
            "seconds": with_artifact,
            "from_scratch_seconds": from_scratch,
            "ndcg@10": None,
            "from_scratch_ndcg@10": None,
            "note": f"ratio {with_artifact / from_scratch:.3f}",
        }
    )
    rows.append(
        {
            "case": "both targets (with the one pretraining)",
            "seconds": with_artifact + pretrain_seconds,
            "from_scratch_seconds": from_scratch,
            "ndcg@10": None,
            "from_scratch_ndcg@10": None,
            "note": f"ratio {(with_artifact + pretrain_seconds) / from_scratch:.3f}",
        }
    )
    return rows, details


def update_rows(bundle_path: Path, runs: Path, epochs: int | None) -> tuple[list[dict], dict]:
    from crossrec.artifacts import load_artifact
    from crossrec.data.bundle import load_bundle
    from crossrec.experiment.registry import _fixed_epochs, update_artifact
    from crossrec.experiment.runner import run_experiment
    from crossrec.metrics.ranking import evaluate_ranking

    config = experiment(bundle_path, "ml-100k-first90", runs, epochs, "first90")
    config.transfer.strategy = "none"
    config.save_artifact = True
    started = time.perf_counter()
    initial = run_experiment(config)
    initial_seconds = time.perf_counter() - started
    started = time.perf_counter()
    updated = update_artifact(initial.artifact, bundle_path, runs / "updated", domain="ml-100k-next5")
    update_seconds = time.perf_counter() - started
    artifact = load_artifact(updated.artifact)
    seen = artifact.seen
    parent = load_artifact(initial.artifact)
    retrain_model = _fixed_epochs(parent.model, int(parent.model.optim.epochs))
    started = time.perf_counter()
    retrained = retrain_model.fit(seen, None)
    retrain_seconds = time.perf_counter() - started

    last = load_bundle(bundle_path).domains["ml-100k-last5"]
    users = artifact.users.index(last.users.lookup(last.interactions.user), missing="minus_one")
    items = artifact.items.index(last.items.lookup(last.interactions.item), missing="minus_one")
    keep = (users >= 0) & (items >= 0)
    test = sp.csr_matrix((np.ones(keep.sum(), np.float32), (users[keep], items[keep])), shape=seen.shape)
    test = ((test > 0).astype(np.float32) - test.multiply(seen).astype(np.float32)).tocsr()
    test.eliminate_zeros()

    def ndcg(model) -> float:
        result = evaluate_ranking(model.scorer(), test, seen, metrics=["ndcg"], ks=[10])
        return float(result.mean()["ndcg@10"])

    row = {
        "case": "update on ML-100K's next 5% by time (after the first 90%)",
        "seconds": update_seconds,  # the whole command: load, fold-in, training, save
        "from_scratch_seconds": retrain_seconds,  # training only
        "ndcg@10": ndcg(artifact.model),
        "from_scratch_ndcg@10": ndcg(retrained),
        "note": f"test: the last 5% ({int((np.diff(test.indptr) > 0).sum())} users); "
        f"update {updated.epochs} epochs, retrain {retrain_model.optim.epochs}",
        "update_training_seconds": updated.seconds,
    }
    details = {
        "initial_run_seconds": initial_seconds,
        "new_users": updated.new_users,
        "new_items": updated.new_items,
        "new_interactions": updated.new_interactions,
        "update_epochs": updated.epochs,
        "retrain_epochs": int(retrain_model.optim.epochs),
        "test_interactions": int(test.nnz),
        "test_users": int((np.diff(test.indptr) > 0).sum()),
    }
    return [row], details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="Cap every training's epochs (quick look).")
    parser.add_argument("--out", default="registry", help="Name of the results file.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("CROSSREC_THREADS", "1")
    load_before = machine_info()["load_average"]
    with tempfile.TemporaryDirectory(prefix="crossrec-registry-") as scratch:
        folder = Path(scratch)
        bundle = build_bundle(folder)
        runs = folder / "runs"
        rows, details = transfer_rows(bundle, runs, args.epochs)
        update, update_details = update_rows(bundle, runs, args.epochs)
        rows += update
    print_table("pretrain once, transfer to two targets, update", rows)
    path = write_results(
        args.out,
        rows,
        load_before=load_before,
        epochs_cap=args.epochs,
        experiment=str(EXPERIMENT.relative_to(REPO)),
        transfers=details,
        update=update_details,
        threads=1,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
