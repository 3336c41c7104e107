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

from _common import print_table, write_results

from crossrec.data.builtin import load_movielens_cdr
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import BPRMF, EASE, ItemKNN, LightGCN, Popularity, Recommender
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
    return cls(**base)


def fit(strategy: TransferStrategy, data: TransferData) -> tuple[Recommender, float]:
    started = time.perf_counter()
    model = strategy.fit(data)
    return model, time.perf_counter() - started


def valid_score(model: Recommender, data: TransferData) -> float:
    return float(per_user_metric(model, data.valid, data.train)[1].mean())


def select(
    candidates: list[TransferStrategy], data: TransferData
) -> tuple[TransferStrategy, Recommender, float, float]:
    """Fit every candidate, keep the best on validation; seconds are summed over the search."""
    best, total = None, 0.0
    for candidate in candidates:
        model, seconds = fit(candidate, data)
        total += seconds
        score = valid_score(model, data)
        if best is None or score > best[2]:
            best = (candidate, model, score)
    return best[0], best[1], best[2], total


def main(full: bool = False) -> None:
    started = time.perf_counter()
    source, target = load_movielens_cdr()
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
    data = TransferData.from_domains(target, split, [source], seed=SEED)
    test, exclude = split.matrix("test"), split.matrix("train") + split.matrix("valid")
    print(data.describe())

    regs = [100.0, 200.0, 300.0, 400.0, 600.0, 1000.0]
    weights = [0.05, 0.1, 0.15, 0.2, 0.3]
    knn_grid = [dict(k=k, shrink=s) for k, s in itertools.product([50, 100, 200], [0.0, 20.0])]
    runs: list[tuple[str, str, Recommender, float, float]] = []  # strategy, model, fitted, seconds, valid
    strategy_params: dict[int, dict] = {}  # id(fitted model) -> the strategy's own parameters

    def add(
        strategy: TransferStrategy, model: Recommender, seconds: float, score: float | None = None
    ) -> None:
        runs.append(
            (
                strategy.name,
                strategy.model.name,
                model,
                seconds,
                score if score is not None else valid_score(model, data),
            )
        )
        strategy_params[id(model)] = {k: v for k, v in strategy.get_params().items() if k != "model"}
        print(
            f"{strategy.name:>10} {strategy.model!r:.70} valid ndcg@10 {runs[-1][4]:.4f} ({seconds:.1f} s)",
            flush=True,
        )

    # target-only baselines
    add(TargetOnly(Popularity()), *fit(TargetOnly(Popularity()), data))
    ease_best, model, score, seconds = select([TargetOnly(EASE(reg=r)) for r in regs], data)
    add(ease_best, model, seconds, score)
    knn_best, model, score, seconds = select([TargetOnly(ItemKNN(**p)) for p in knn_grid], data)
    add(knn_best, model, seconds, score)
    for model_template in (embedding(BPRMF),) + ((embedding(LightGCN, layers=2),) if full else ()):
        add(TargetOnly(model_template), *fit(TargetOnly(model_template), data))

    # transfer strategies
    joint_ease, model, score, seconds = select(
        [Joint(EASE(reg=r), domain_weight=w) for r, w in itertools.product(regs, weights)], data
    )
    add(joint_ease, model, seconds, score)
    joint_knn, model, score, seconds = select(
        [Joint(knn_best.model.clone(), domain_weight=w) for w in weights], data
    )
    add(joint_knn, model, seconds, score)
    gradient_transfers = [WarmStart(embedding(BPRMF))]
    if full:  # slower gradient-based transfers (minutes each on a busy 2-core machine)
        gradient_transfers += [
            FineTune(embedding(BPRMF), transferred_lr_scale=0.1),
            WarmStart(embedding(LightGCN, layers=2)),
            Joint(embedding(BPRMF), domain_weight=0.3),
        ]
    for strategy in gradient_transfers:
        add(strategy, *fit(strategy, data))
    skipped = []
    try:
        Mapping().fit(data)
    except TransferNotPossibleError as error:
        skipped.append({"strategy": "mapping", "reason": str(error).splitlines()[0]})
        print(f"   mapping skipped: {skipped[-1]['reason']}")

    # crossrec's best target-only model and best transfer, both chosen on validation
    target_only = [r for r in runs if r[0] == "none"]
    transfers = [r for r in runs if r[0] != "none"]
    best_target = max(target_only, key=lambda r: r[4])
    best_transfer = max(transfers, key=lambda r: r[4])
    users, reference = per_user_metric(best_target[2], test, exclude)

    # the negative-transfer guard on the chosen transfer (validation only)
    chosen = (
        next(s for s in (joint_ease, joint_knn) if (s.name, s.model.name) == best_transfer[:2])
        if best_transfer[1] in ("ease", "item_knn")
        else None
    )
    guard_line = None
    if chosen is not None:
        guard = guarded_transfer(chosen, data, baseline=best_target[2], seed=SEED)
        guard_line = guard.describe()
        print(guard_line)

    rows = []
    for strategy, model_name, model, seconds, _ in runs:
        result = evaluate_ranking(model.score, test, exclude, metrics=["ndcg", "recall", "hit"], ks=[10])
        ndcg = result.per_user["ndcg@10"].to_numpy()
        low, high = paired_bootstrap_ci(ndcg, reference, seed=SEED)
        means = result.mean()
        rows.append(
            {
                "strategy": strategy,
                "model": model_name,
                "ndcg@10": means["ndcg@10"],
                "recall@10": means["recall@10"],
                "hit@10": means["hit@10"],
                "gain": float(ndcg.mean() - reference.mean()),
                "gain_ci_low": low,
                "gain_ci_high": high,
                "train_seconds": seconds,
                "valid_ndcg@10": model_valid
                if (model_valid := next(r[4] for r in runs if r[2] is model))
                else None,
                "params": {
                    k: v for k, v in model.get_params().items() if k not in ("progress", "num_threads")
                },
                "strategy_params": strategy_params.get(id(model), {}),
            }
        )
    total = time.perf_counter() - started
    print_table(
        "movielens-cdr (ML-1M -> ML-100K), test, full ranking; gain = paired NDCG@10 vs best target-only "
        f"({best_target[1]})",
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
        f"best target-only (valid): {best_target[0]}:{best_target[1]}; "
        f"best transfer (valid): {best_transfer[0]}:{best_transfer[1]}"
    )
    print(f"total {total:.0f} s")
    write_results(
        "movielens_cdr",
        rows,
        protocol="ML-1M -> ML-100K, ratings>=3, 5-core, per-user random 80/10/10 seed 2022, "
        "full ranking excluding train+valid",
        best_target_only=f"{best_target[0]}:{best_target[1]}",
        best_transfer=f"{best_transfer[0]}:{best_transfer[1]}",
        guard=guard_line,
        skipped=skipped,
        total_seconds=total,
    )


if __name__ == "__main__":
    main(full="--all" in sys.argv)
