"""Benchmark: linked-user transfer on amazon-disencdr (sport -> cloth, phone -> electronic).

Protocol: all of each pair's interactions (train and test files); the target is split per user at
random 80/10/10 (seed 2022); then a cold-start sample (20% of target users, seeded) keeps at most
2 target training interactions (the rest of their training interactions are removed). Full
ranking over all target items, excluding train+valid at test. Hyperparameters (ItemKNN ``k``, the
joint domain weight) are chosen on validation only. Rows report all users and the cold users;
gains are paired NDCG@10 differences against the best target-only model (chosen on validation).

Run: ``nice -n 10 .venv/bin/python benchmarks/amazon_cdr.py [--quick]``
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _amazon import load_amazon_pair
from _common import print_table, with_optim, write_results

from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import BPRMF, ItemKNN
from crossrec.selection import Selection, Trial, select
from crossrec.splitting.splits import Split, random_split
from crossrec.transfer import (
    Joint,
    Mapping,
    TargetOnly,
    TransferData,
    TransferStrategy,
    WarmStart,
    per_user_metric,
)

SEED = 2022
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-disencdr"
PAIRS = [("sport", "cloth"), ("phone", "electronic")]


def cold_start(split: Split, fraction: float, keep: int, seed: int) -> tuple[Split, np.ndarray]:
    """A sample of users with validation or test items keeps at most ``keep`` training interactions."""
    rng = np.random.default_rng(seed)
    evaluated = np.union1d(split.valid.user, split.test.user)
    cold = np.sort(rng.choice(evaluated, size=int(fraction * len(evaluated)), replace=False))
    order = np.lexsort((rng.random(len(split.train)), split.train.user))
    users = split.train.user[order]
    starts = np.searchsorted(users, users, side="left")
    rank = np.arange(len(users)) - starts
    is_cold = np.isin(users, cold)
    kept = order[~is_cold | (rank < keep)]
    return replace(split, train=split.train.take(np.sort(kept)), protocol=f"random+cold{keep}"), cold


def report(trial: Trial) -> None:
    """Progress: one line per fitted candidate."""
    print(
        f"{trial.name:>22} {str(trial.params):.90} valid {trial.score:.4f} ({trial.seconds:.1f} s)",
        flush=True,
    )


def mf(**params: object) -> BPRMF:
    base = dict(
        dim=64,
        epochs=100,
        batch_size=4096,
        learning_rate=5e-3,
        patience=5,
        l2=1e-4,
        seed=SEED,
        progress=False,
    )
    base.update(params)
    return with_optim(BPRMF, **base)


def main(quick: bool = False) -> None:
    started = time.perf_counter()
    rows = []
    for source_name, target_name in PAIRS:
        source, target, user_links = load_amazon_pair(DATA, source_name, target_name)
        split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
        split, cold = cold_start(split, 0.2, 2, SEED)
        data = TransferData.from_domains(
            target, split, [source], link_items=None, link_users=[user_links], seed=SEED
        )
        print(f"== {source_name} -> {target_name}\n{data.describe()}\ncold users: {len(cold)}", flush=True)
        test, exclude = split.matrix("test"), split.matrix("train") + split.matrix("valid")

        runs: list[Selection] = []  # one selection per row, on validation only

        def best_of(
            strategies: list[TransferStrategy], runs: list[Selection] = runs, data: TransferData = data
        ) -> None:
            runs.append(select(strategies, data, on_trial=report))

        best_of([TargetOnly(ItemKNN(k=k, shrink=10.0)) for k in ([100] if quick else [50, 200])])
        knn = runs[-1].candidate.model
        if not quick:
            best_of([TargetOnly(mf())])
        best_of([Joint(knn.clone(), domain_weight=w) for w in ([0.5] if quick else [0.25, 0.5, 1.0, 2.0])])
        if not quick:
            best_of([WarmStart(mf(), transferred_lr_scale=0.5)])
            best_of(
                [
                    Mapping(mf(), bridge="mlp", cold_threshold=2),
                    Mapping(mf(), bridge="meta", cold_threshold=2, epochs=30),
                ]
            )

        baseline = max((r for r in runs if r.candidate.name == "none"), key=lambda r: r.score)
        for slice_name, users in (("all", None), ("cold", cold)):
            ref_users, reference = per_user_metric(baseline.model, test, exclude, users=users)
            for run in runs:
                strategy, model, seconds = run.candidate, run.model, run.fit_seconds
                result = evaluate_ranking(
                    model.score, test, exclude, metrics=["ndcg", "recall"], ks=[10], users=users
                )
                ndcg = result.per_user["ndcg@10"].to_numpy()
                low, high = paired_bootstrap_ci(ndcg, reference, seed=SEED)
                means = result.mean()
                rows.append(
                    {
                        "pair": f"{source_name}->{target_name}",
                        "strategy": strategy.name,
                        "model": strategy.model.name,
                        "slice": slice_name,
                        "ndcg@10": means["ndcg@10"],
                        "recall@10": means["recall@10"],
                        "gain": float(ndcg.mean() - reference.mean()),
                        "gain_ci_low": low,
                        "gain_ci_high": high,
                        "users": len(ndcg),
                        "train_seconds": seconds,
                        "params": {k: v for k, v in strategy.get_params().items() if k != "model"},
                    }
                )
    print_table(
        "amazon-disencdr, test, full ranking; gain = paired NDCG@10 vs best target-only (per pair and slice)",
        [
            {
                k: r[k]
                for k in (
                    "pair",
                    "strategy",
                    "model",
                    "slice",
                    "ndcg@10",
                    "recall@10",
                    "gain",
                    "gain_ci_low",
                    "gain_ci_high",
                    "users",
                )
            }
            for r in rows
        ],
    )
    total = time.perf_counter() - started
    print(f"total {total:.0f} s")
    write_results(
        "amazon_cdr",
        rows,
        protocol="per-user random 80/10/10 seed 2022; 20% of evaluated users keep <= 2 training interactions",
        quick=quick,
        total_seconds=total,
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
