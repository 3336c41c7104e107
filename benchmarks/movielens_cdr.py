"""Benchmark: every transfer strategy vs crossrec's target-only models on movielens-cdr.

Protocol (same as ``crossrec demo``): ML-1M source -> ML-100K target, ratings >= 3, 5-core, items
shared by title, per-user random 80/10/10 split of the target with seed 2022, full ranking over
all target items excluding each user's train+valid items at test. Every hyperparameter (EASE's
``reg``, ItemKNN's ``k``/``shrink``, the joint domain weight) is chosen on validation only; the
test part is read once per final model. The gain column is the paired per-user NDCG@10 difference
against crossrec's best target-only model (chosen on validation), with a 95% bootstrap interval.

Run: ``nice -n 10 .venv/bin/python benchmarks/movielens_cdr.py [--all]`` (``--all`` adds fine-tune,
LightGCN and joint BPR-MF, which take minutes each on a busy 2-core machine).
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, with_optim, write_results

from crossrec.data.builtin import load_movielens_cdr
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import BPRMF, EASE, ItemKNN, LightGCN, Popularity, Recommender
from crossrec.selection import Selection, select
from crossrec.splitting.splits import random_split
from crossrec.transfer import (
    FineTune,
    Joint,
    Mapping,
    TargetOnly,
    TransferData,
    TransferNotPossibleError,
    TransferStrategy,
    WarmStart,
    guarded_transfer,
    per_user_metric,
)

SEED = 2022


def embedding(cls: type, **params: object) -> Recommender:
    base = dict(epochs=150, batch_size=4096, learning_rate=5e-3, patience=5, seed=SEED, progress=False)
    base.update(params)
    return with_optim(cls, **base)


def main(full: bool = False) -> None:
    started = time.perf_counter()
    source, target = load_movielens_cdr()
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
    data = TransferData.from_domains(target, split, [source], link_items="ids", link_users=None, seed=SEED)
    test, exclude = split.matrix("test"), split.matrix("train") + split.matrix("valid")
    print(data.describe())

    regs = [100.0, 200.0, 300.0, 400.0, 600.0, 1000.0]
    weights = [0.05, 0.1, 0.15, 0.2, 0.3]
    knn_grid = [dict(k=k, shrink=s) for k, s in itertools.product([50, 100, 200], [0.0, 20.0])]
    runs: list[Selection] = []  # one selection (a grid or a single fit) per row, on validation only

    def add(candidates: list[TransferStrategy]) -> TransferStrategy:
        """Select among ``candidates`` on validation; the row's seconds are the grid's fit seconds."""
        selection = select(candidates, data)
        runs.append(selection)
        strategy = selection.candidate
        print(
            f"{strategy.name:>10} {strategy.model!r:.70} valid ndcg@10 {selection.score:.4f} "
            f"({selection.fit_seconds:.1f} s, {len(selection.trials)} fits)",
            flush=True,
        )
        return strategy

    # target-only baselines
    add([TargetOnly(Popularity())])
    add([TargetOnly(EASE(reg=r)) for r in regs])
    knn_best = add([TargetOnly(ItemKNN(**p)) for p in knn_grid])
    for model_template in (embedding(BPRMF),) + ((embedding(LightGCN, layers=2),) if full else ()):
        add([TargetOnly(model_template)])

    # transfer strategies
    joint_ease = add([Joint(EASE(reg=r), domain_weight=w) for r, w in itertools.product(regs, weights)])
    joint_knn = add([Joint(knn_best.model.clone(), domain_weight=w) for w in weights])
    gradient_transfers = [WarmStart(embedding(BPRMF))]
    if full:  # slower gradient-based transfers (minutes each on a busy 2-core machine)
        gradient_transfers += [
            FineTune(embedding(BPRMF), transferred_lr_scale=0.1),
            WarmStart(embedding(LightGCN, layers=2)),
            Joint(embedding(BPRMF), domain_weight=0.3),
        ]
    for strategy in gradient_transfers:
        add([strategy])
    skipped = []
    try:
        Mapping().fit(data)
    except TransferNotPossibleError as error:
        skipped.append({"strategy": "mapping", "reason": str(error).splitlines()[0]})
        print(f"   mapping skipped: {skipped[-1]['reason']}")

    # crossrec's best target-only model and best transfer, both chosen on validation
    target_only = [r for r in runs if r.candidate.name == "none"]
    transfers = [r for r in runs if r.candidate.name != "none"]
    best_target = max(target_only, key=lambda r: r.score)
    best_transfer = max(transfers, key=lambda r: r.score)
    users, reference = per_user_metric(best_target.model, test, exclude)

    # the negative-transfer guard on the chosen transfer (validation only)
    guard_line = None
    if best_transfer.candidate in (joint_ease, joint_knn):
        guard = guarded_transfer(best_transfer.candidate, data, baseline=best_target.model, seed=SEED)
        guard_line = guard.describe()
        print(guard_line)

    rows = []
    for run in runs:
        strategy, model = run.candidate, run.model
        result = evaluate_ranking(model.score, test, exclude, metrics=["ndcg", "recall", "hit"], ks=[10])
        ndcg = result.per_user["ndcg@10"].to_numpy()
        low, high = paired_bootstrap_ci(ndcg, reference, seed=SEED)
        means = result.mean()
        rows.append(
            {
                "strategy": strategy.name,
                "model": strategy.model.name,
                "ndcg@10": means["ndcg@10"],
                "recall@10": means["recall@10"],
                "hit@10": means["hit@10"],
                "gain": float(ndcg.mean() - reference.mean()),
                "gain_ci_low": low,
                "gain_ci_high": high,
                "train_seconds": run.fit_seconds,
                "valid_ndcg@10": run.score,
                "params": {
                    k: v for k, v in model.get_params().items() if k not in ("progress", "num_threads")
                },
                "strategy_params": {k: v for k, v in strategy.get_params().items() if k != "model"},
                "trials": len(run.trials),
            }
        )
    total = time.perf_counter() - started
    print_table(
        "movielens-cdr (ML-1M -> ML-100K), test, full ranking; gain = paired NDCG@10 vs best target-only "
        f"({best_target.candidate.model.name})",
        [
            {
                k: r[k]
                for k in (
                    "strategy",
                    "model",
                    "ndcg@10",
                    "recall@10",
                    "hit@10",
                    "gain",
                    "gain_ci_low",
                    "gain_ci_high",
                    "train_seconds",
                )
            }
            for r in rows
        ],
    )
    print(
        f"best target-only (valid): {best_target.candidate.label}; "
        f"best transfer (valid): {best_transfer.candidate.label}"
    )
    print(f"total {total:.0f} s")
    write_results(
        "movielens_cdr",
        rows,
        protocol="ML-1M -> ML-100K, ratings>=3, 5-core, per-user random 80/10/10 seed 2022, "
        "full ranking excluding train+valid",
        best_target_only=best_target.candidate.label,
        best_transfer=best_transfer.candidate.label,
        guard=guard_line,
        skipped=skipped,
        total_seconds=total,
    )


if __name__ == "__main__":
    main(full="--all" in sys.argv)
