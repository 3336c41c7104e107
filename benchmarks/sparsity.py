"""Benchmark: transfer on a sparse target, as a data-efficiency curve with a selection-aware guard.

Protocol (issue 15). The target is split per user at random 80/10/10 (seed 2022). At each point of
the curve every target user keeps ``max(1, round(f * n_u))`` of their ``n_u`` training interactions
(:func:`crossrec.evaluation.keep_training_fraction`, seed 2022, nested across fractions); validation
and test never change. Full ranking over all target items, excluding the kept training items (and
validation items at test).

Selection. The validation users are halved at random (seed 2022). Every strategy/model family is
searched over its grid (at most ``BUDGET`` configurations, target-only and transfer alike); models
fit with validation half A only (early stopping included) and every choice - a family's
configuration, the best target-only family, the best transfer family - is made on half A. The
guard keeps the best transfer only when its paired bootstrap 95% interval against the best
target-only model *on half B* lies above zero. Test is read once per chosen configuration; the
gains reported are paired per-user bootstrap 95% intervals of test NDCG@10 against the best
target-only model (popularity, ItemKNN, EASE, BPR-MF, UserKNN and the target-only popularity blend).

Rows (``benchmarks/results/sparsity.json``): one per pair, fraction and family, with the keys
issue 15 names; ``kept`` is true on the one row per point the guard kept. ``points`` has each
point's selection record (guard interval on half B, what was kept and its gain).

Run: ``OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/sparsity.py``
(``--pairs movielens-cdr --fractions 0.05,1`` for a subset; ``--quick``: movielens-cdr at 0.05 and 1;
``--source-profile`` adds the slow source_profile kernel-ridge family on the Amazon pairs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _amazon import load_amazon_pair
from _common import print_table, write_results

from crossrec.data.builtin import load_movielens_cdr
from crossrec.evaluation.efficiency import keep_training_fraction, parse_fractions
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import BPRMF, EASE, ItemKNN, Popularity, PopularityBlend, ProfileKernelRidge, UserKNN
from crossrec.splitting import Split, random_split
from crossrec.transfer import (
    Joint,
    PopularityBlendTransfer,
    SourceProfile,
    TargetOnly,
    TransferData,
    TransferNotPossibleError,
    TransferStrategy,
)

SEED = 2022
BUDGET = 8
# ../shared/data of the checkout; a git worktree at /work/wt/NAME finds it one level further up
DATA = next(
    (
        folder / "shared" / "data" / "amazon-disencdr"
        for folder in Path(__file__).resolve().parents[2:4]
        if (folder / "shared" / "data" / "amazon-disencdr").is_dir()
    ),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon-disencdr",
)
PAIRS = ("movielens-cdr", "sport->cloth", "phone->electronic")
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
ROW_KEYS = (
    "pair", "fraction", "strategy", "model", "ndcg@10", "recall@10", "best_target_only",
    "best_target_only_ndcg@10", "gain_ci_low", "gain_ci_high", "kept", "train_seconds",
)  # fmt: skip


def _log(message: str) -> None:
    print(message, flush=True)


# -- the families and their grids (the search budget) --------------------------------------------------
def bpr(**optim: Any) -> BPRMF:
    # the lean row-wise Adagrad step (dense Adam over a 39k-item table is ~8x slower per epoch);
    # validation (half A) every 5 epochs: early stopping ranks all target items
    settings = dict(
        optimizer="rowwise_adagrad", epochs=60, eval_every=5, patience=2, batch_size=2048, seed=SEED
    )
    settings["progress"] = False
    return BPRMF(dim=64, optim=settings | optim)


def families(
    item_linked: bool, source_profile: bool = False
) -> dict[str, tuple[str, list[TransferStrategy]]]:
    """Family name -> (``"target"`` or ``"transfer"``, its configurations, at most ``BUDGET``)."""
    target: dict[str, list[TransferStrategy]] = {
        "popularity": [TargetOnly(Popularity())],
        "item_knn": [TargetOnly(ItemKNN(k=k, shrink=s)) for k in (20, 50, 100, 200) for s in (0.0, 20.0)],
        "bpr_mf": [
            TargetOnly(bpr(learning_rate=lr, l2=l2)) for lr in (0.01, 0.03, 0.1) for l2 in (1e-5, 1e-3)
        ],
        "user_knn": [
            TargetOnly(UserKNN(k=k, popularity_weight=w)) for k in (50, 200) for w in (0.03, 0.3, 1.0, 3.0)
        ],
    }
    transfer: dict[str, list[TransferStrategy]]
    if item_linked:  # small catalogue, items linked: EASE-based families
        target["ease"] = [TargetOnly(EASE(reg=r)) for r in (10, 30, 100, 300, 1000, 3000, 10000, 30000)]
        target["ease_popularity"] = [
            TargetOnly(PopularityBlend("ease", {"reg": r}, w))
            for r in (300.0, 3000.0)
            for w in (0.5, 1, 2, 4)
        ]
        transfer = {
            "joint_ease": [
                Joint(EASE(reg=r), domain_weight=d) for d in (0.03, 0.1, 0.3, 1.0) for r in (300.0, 3000.0)
            ],
            "popularity_blend_ease": [
                PopularityBlendTransfer(EASE(reg=r), domain_weight=d, popularity_weight=w)
                for d in (0.1, 0.3)
                for r in (300.0, 3000.0)
                for w in (1.0, 2.0)
            ],
        }
    else:  # 39k-item catalogues (no dense EASE), users linked
        transfer = {
            "joint_item_knn": [
                Joint(ItemKNN(k=k, shrink=s), domain_weight=d)
                for d in (0.3, 1.0)
                for k in (50, 200)
                for s in (0.0, 10.0)
            ],
            "popularity_blend_user_knn": [
                PopularityBlendTransfer(UserKNN(k=k), domain_weight=d, popularity_weight=w)
                for d in (1.0, 3.0)
                for k in (200, 500)
                for w in (0.03, 0.1)
            ],
        }
        if source_profile:  # opt-in: 8 dense n_users^2 factorisations per point (750 s on sport->cloth)
            transfer["source_profile_kernel_ridge"] = [
                SourceProfile(ProfileKernelRidge(lam=lam, weighting="idf", popularity_exponent=g))
                for lam in (0.3, 1.0, 3.0, 10.0)
                for g in (0.0, 0.1)
            ]
    out = {name: ("target", grid) for name, grid in target.items()}
    out |= {name: ("transfer", grid) for name, grid in transfer.items()}
    for name, (_, grid) in out.items():
        assert len(grid) <= BUDGET, f"family {name} has {len(grid)} configurations, above the budget"
    return out


def describe(strategy: TransferStrategy) -> str:
    """The configuration as one string: the model with its parameters, then the strategy's."""
    model = strategy.model
    extra = {k: v for k, v in strategy.get_params().items() if k != "model"}
    hidden = {"optim", "progress", "seed", "block_size", "max_columns", *extra}  # the strategy's win
    shown = {k: v for k, v in model.get_params().items() if k not in hidden and v is not None}
    if isinstance(model, BPRMF):
        shown |= {"learning_rate": model.optim.learning_rate, "l2": model.optim.l2}
    text = f"{model.name}(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"
    return text + "".join(f", {k}={v}" for k, v in extra.items())


# -- evaluation ---------------------------------------------------------------------------------------
def per_user(model, truth: sp.csr_matrix, exclude: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(ndcg@10, recall@10)`` of every user with a relevant item, in user order (full ranking)."""
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    result = evaluate_ranking(
        model.scorer(), truth, exclude, metrics=["ndcg", "recall"], ks=[10], users=users
    )
    frame = result.per_user.set_index("user").loc[users]
    return frame["ndcg@10"].to_numpy(), frame["recall@10"].to_numpy()


def ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return paired_bootstrap_ci(a, b, n_resamples=2000, seed=SEED)


@dataclass
class Searched:
    """A family after its search: the configuration chosen on half A and its records."""

    name: str
    kind: str
    strategy: TransferStrategy
    model: Any
    valid: np.ndarray  # per-user validation NDCG@10 of the chosen configuration (all validation users)
    train_seconds: float
    n_configs: int
    search_seconds: float


def search(
    name: str, kind: str, grid: list[TransferStrategy], data: TransferData, valid, half_a: np.ndarray
) -> Searched | str:
    """Fit every configuration on ``data`` (validation half A only), keep the best on half A."""
    started = time.perf_counter()
    best: Searched | None = None
    for strategy in grid:
        fit_started = time.perf_counter()
        try:
            model = strategy.fit(data)
        except TransferNotPossibleError as error:
            return str(error).split(". Strategies possible")[0]
        seconds = time.perf_counter() - fit_started
        ndcg, _ = per_user(model, valid, data.train)
        if best is None or ndcg[half_a].mean() > best.valid[half_a].mean():
            best = Searched(name, kind, strategy, model, ndcg, seconds, len(grid), 0.0)
    assert best is not None
    best.search_seconds = time.perf_counter() - started
    _log(
        f"    {name:26s} {len(grid)} configs, chosen on A: {describe(best.strategy)}  valid A "
        f"{best.valid[half_a].mean():.4f} B {best.valid[~half_a].mean():.4f} ({best.search_seconds:.1f}s)"
    )
    return best


# -- pairs --------------------------------------------------------------------------------------------
@dataclass
class Pair:
    name: str
    split: Split
    make_data: Any  # Split -> TransferData
    item_linked: bool


def load_pair(name: str) -> Pair:
    if name == "movielens-cdr":
        source, target = load_movielens_cdr()
        split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
        return Pair(
            name,
            split,
            lambda s: TransferData.from_domains(
                target, s, [source], link_items="ids", link_users=None, seed=SEED
            ),
            item_linked=True,
        )
    source_name, _, target_name = name.partition("->")
    if not DATA.is_dir():
        raise SystemExit(f"{name}: {DATA} is missing (the amazon-disencdr copy of ../shared/data)")
    source, target, links = load_amazon_pair(DATA, source_name, target_name)
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)

    def make_data(s: Split) -> TransferData:
        return TransferData.from_domains(target, s, [source], link_items=None, link_users=[links], seed=SEED)

    return Pair(name, split, make_data, item_linked=False)


def run_point(pair: Pair, fraction: float, source_profile: bool = False) -> tuple[list[dict], dict]:
    started = time.perf_counter()
    sparse = keep_training_fraction(pair.split, fraction, seed=SEED)
    valid, test = sparse.matrix("valid"), sparse.matrix("test")
    valid_users = np.flatnonzero(np.diff(valid.indptr) > 0)
    half_a = np.zeros(len(valid_users), dtype=bool)
    half_a[np.random.default_rng(SEED).permutation(len(valid_users))[: len(valid_users) // 2]] = True
    # what the strategies see: validation half A only (early stopping and any internal choice)
    selection_split = replace(
        sparse, valid=sparse.valid.take(np.isin(sparse.valid.user, valid_users[half_a]))
    )
    data = pair.make_data(selection_split)
    _log(
        f"  {pair.name} f={fraction:g}: kept {len(sparse.train):,} of {len(pair.split.train):,} training rows"
    )

    searched: dict[str, Searched] = {}
    skipped: dict[str, str] = {}
    for name, (kind, grid) in families(pair.item_linked, source_profile).items():
        outcome = search(name, kind, grid, data, valid, half_a)
        if isinstance(outcome, str):
            skipped[name] = outcome
            _log(f"    {name:26s} skipped: {outcome}")
        else:
            searched[name] = outcome

    def best_of(kind: str) -> Searched:
        return max((s for s in searched.values() if s.kind == kind), key=lambda s: s.valid[half_a].mean())

    target, transfer = best_of("target"), best_of("transfer")
    guard_low, guard_high = ci(transfer.valid[~half_a], target.valid[~half_a])
    kept = transfer if guard_low > 0 else target

    exclude = sparse.matrix("train") + valid
    tested = {name: per_user(s.model, test, exclude) for name, s in searched.items()}
    reference = tested[target.name][0]
    rows = []
    for name, s in searched.items():
        ndcg, recall = tested[name]
        low, high = (0.0, 0.0) if name == target.name else ci(ndcg, reference)
        rows.append(
            {
                "pair": pair.name,
                "fraction": fraction,
                "strategy": s.strategy.name,
                "model": describe(s.strategy),
                "ndcg@10": float(ndcg.mean()),
                "recall@10": float(recall.mean()),
                "best_target_only": describe(target.strategy),
                "best_target_only_ndcg@10": float(reference.mean()),
                "gain_ci_low": low,
                "gain_ci_high": high,
                "kept": name == kept.name,
                "train_seconds": round(s.train_seconds, 3),
            }
        )
    kept_ndcg = tested[kept.name][0]
    kept_low, kept_high = (0.0, 0.0) if kept is target else ci(kept_ndcg, reference)
    relative = float(kept_ndcg.mean() / reference.mean() - 1) if reference.mean() > 0 else None
    point = {
        "pair": pair.name,
        "fraction": fraction,
        "kept_training_interactions": len(sparse.train),
        "valid_users_a": int(half_a.sum()),
        "valid_users_b": int((~half_a).sum()),
        "test_users": len(reference),
        "best_target_only_family": target.name,
        "best_target_only": describe(target.strategy),
        "best_target_only_ndcg@10": float(reference.mean()),
        "best_transfer_family": transfer.name,
        "best_transfer": describe(transfer.strategy),
        "best_transfer_ndcg@10": float(tested[transfer.name][0].mean()),
        "guard_valid_b_gain": float((transfer.valid[~half_a] - target.valid[~half_a]).mean()),
        "guard_valid_b_ci": [guard_low, guard_high],
        "kept": "transfer" if kept is transfer else "target-only",
        "kept_family": kept.name,
        "kept_ndcg@10": float(kept_ndcg.mean()),
        "kept_relative_gain": relative,
        "kept_gain_ci": [kept_low, kept_high],
        "never_significantly_worse": kept_high >= 0,
        "skipped": skipped,
        "search_seconds": {name: round(s.search_seconds, 2) for name, s in searched.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    _log(
        f"  => {pair.name} f={fraction:g}: best target-only {target.name} {reference.mean():.4f}; best "
        f"transfer {transfer.name} {point['best_transfer_ndcg@10']:.4f}; guard on B "
        f"{point['guard_valid_b_gain']:+.4f} [{guard_low:+.4f}, {guard_high:+.4f}] -> kept {kept.name} "
        f"{kept_ndcg.mean():.4f} ({100 * (relative or 0):+.1f}%, test [{kept_low:+.4f}, {kept_high:+.4f}]) "
        f"[{point['seconds']:.0f}s]"
    )
    return rows, point


def main(argv: list[str] | None = None) -> None:
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(variable, "1")  # too late for BLAS already loaded: also set it in the shell
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated, from {PAIRS}")
    parser.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS))
    parser.add_argument("--quick", action="store_true", help="movielens-cdr at 0.05 and 1 only")
    parser.add_argument(
        "--source-profile",
        action="store_true",
        help="add the source_profile kernel-ridge family on user-linked pairs (slow on sport->cloth)",
    )
    parser.add_argument("--name", default="sparsity", help="results file name (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    pairs = ["movielens-cdr"] if args.quick else [p.strip() for p in args.pairs.split(",") if p.strip()]
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {list(PAIRS)}")
    fractions = parse_fractions("0.05,1" if args.quick else args.fractions)
    started = time.perf_counter()
    rows, points, pair_seconds = [], [], {}
    for name in pairs:
        pair_started = time.perf_counter()
        pair = load_pair(name)
        _log(f"{name}: {pair.split.n_users:,} users x {pair.split.n_items:,} items")
        for fraction in fractions:
            new_rows, point = run_point(pair, fraction, args.source_profile)
            rows += new_rows
            points.append(point)
            pair_seconds[name] = round(time.perf_counter() - pair_started, 1)
            write(args.name, rows, points, fractions, pair_seconds, started, complete=False)
    assert all(tuple(row) == ROW_KEYS for row in rows)
    summary = [
        {
            "pair": p["pair"],
            "fraction": p["fraction"],
            "best target-only": p["best_target_only_family"],
            "ndcg@10": p["best_target_only_ndcg@10"],
            "best transfer": p["best_transfer_family"],
            "transfer ndcg@10": p["best_transfer_ndcg@10"],
            "guard B low": p["guard_valid_b_ci"][0],
            "kept": p["kept_family"],
            "kept ndcg@10": p["kept_ndcg@10"],
            "gain %": 100 * (p["kept_relative_gain"] or 0.0),
            "gain ci": f"[{p['kept_gain_ci'][0]:+.4f}, {p['kept_gain_ci'][1]:+.4f}]",
        }
        for p in points
    ]
    print_table("Sparse target: best target-only vs the guard's kept model (test NDCG@10)", summary)
    path = write(args.name, rows, points, fractions, pair_seconds, started, complete=True)
    _log(f"wrote {path}")


def write(
    name: str,
    rows: list[dict],
    points: list[dict],
    fractions: tuple[float, ...],
    pair_seconds: dict[str, float],
    started: float,
    *,
    complete: bool,
) -> Path:
    """Write the results so far (after every point, so an interrupted run keeps what it measured)."""
    return write_results(
        name,
        rows,
        complete=complete,
        protocol=__doc__.split("\n\n")[1:4],
        budget=BUDGET,
        seed=SEED,
        fractions=list(fractions),
        total_seconds=round(time.perf_counter() - started, 1),
        pair_seconds=pair_seconds,
        points=points,
        note="timings taken on a shared machine (other jobs running): not valid speed figures",
    )


if __name__ == "__main__":
    main()
