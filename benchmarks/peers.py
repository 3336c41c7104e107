"""Speed side by side with implicit, in one run, on the same data and the same threads.

Tasks (``--threads``, default 1, for every system):

* ``bpr_epoch``: BPR matrix factorisation on movielens-cdr's ML-1M (6,040 users x 3,706 items, 835,789
  interactions; per-user random 80/10/10 split, seed 2022), 64 factors. implicit's
  ``BayesianPersonalizedRanking`` (its defaults: learning rate 0.01, 100 epochs, a Cython SGD loop)
  against crossrec's ``BPRMF`` with its default step (Adam through torch autograd) and with the lean
  ``rowwise_adagrad`` step, each stopped early on validation NDCG@10 (at most 100 epochs). ``seconds``
  is one training epoch (crossrec: the mean of the epochs' own training time, validation excluded;
  implicit: its fit divided by its epochs, best of ``--repeats``), ``per_second`` interactions per
  second, ``ndcg@10`` the test score of the trained factors, computed for every system by the same
  crossrec evaluation (full ranking over all items, train and valid items excluded).
* ``als_fit``: implicit's ``AlternatingLeastSquares`` (15 epochs, its defaults) as a reference point:
  crossrec has no ALS, so it gets no ratio.
* ``top10``: the top 10 of ``--rank-users`` users over ``--rank-items`` items for the same random
  factors (dim 64, ~20 excluded items per user): implicit's ``recommend`` against crossrec's
  ``crossrec.ranking.recommend`` (``FactorScorer``), best of ``--repeats``; the share of identical
  lists is reported (ties aside, both are exact).

implicit runs in its own venv (``benchmarks/peers/.venv``, built on first use from
``benchmarks/peers/requirements-peers.txt``; never in crossrec's). Writes
``benchmarks/results/peers.json``: ``rows`` with ``task``, ``system``, ``seconds``, ``per_second``,
``ndcg@10`` and a ``ratios`` dict (crossrec / peer: throughput ratios, above 1 means crossrec is faster).
Measure on a quiet machine (the load average is recorded).

Run: ``nice .venv/bin/python benchmarks/peers.py [--threads 1] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import scipy.sparse as sp
import torch
from _common import print_table, with_optim, write_results
from _venv import setup_venv

from crossrec.data.builtin import load_movielens_cdr
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models import BPRMF
from crossrec.ranking import FactorScorer
from crossrec.ranking.recommend import recommend
from crossrec.splitting.splits import random_split

HERE = Path(__file__).resolve().parent / "peers"
SEED = 2022


def _ndcg(
    user_factors: np.ndarray, item_factors: np.ndarray, test: sp.csr_matrix, exclude: sp.csr_matrix
) -> float:
    scorer = FactorScorer(
        np.ascontiguousarray(user_factors, np.float32), np.ascontiguousarray(item_factors, np.float32)
    )
    result = evaluate_ranking(scorer, test, exclude, ks=(10,))
    return float(result.per_user["ndcg@10"].mean())


def _crossrec_bpr(optimizer: str, train, valid, threads: int, epochs: int) -> tuple[BPRMF, float, int]:
    params: dict[str, Any] = dict(
        dim=64,
        epochs=epochs,
        batch_size=4096,
        patience=3,
        eval_every=5,
        seed=SEED,
        progress=False,
        threads=threads,
        optimizer=optimizer,
    )
    params["learning_rate"] = 5e-3 if optimizer == "adam" else 0.05
    model = with_optim(BPRMF, **params).fit(train, valid)
    epoch_seconds = [record["seconds"] for record in model.history_.epochs]
    return model, float(np.mean(epoch_seconds)), len(epoch_seconds)


def _random_ranking_case(n_users: int, n_items: int, rng: np.random.Generator):
    users = rng.standard_normal((n_users, 64)).astype(np.float32)
    items = rng.standard_normal((n_items, 64)).astype(np.float32)
    rows = np.repeat(np.arange(n_users), 20)
    exclude = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, rng.integers(0, n_items, len(rows)))),
        shape=(n_users, n_items),
    )
    exclude.data[:] = 1.0
    return users, items, exclude


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--epochs", type=int, default=100, help="epoch budget of every BPR (implicit's default)"
    )
    parser.add_argument("--rank-users", type=int, default=20_000)
    parser.add_argument("--rank-items", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="a small run that checks the plumbing")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.rank_users, args.rank_items = 5, 1, 2_000, 5_000
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    python = setup_venv(HERE / ".venv", HERE / "requirements-peers.txt", torch=False)

    source, _ = load_movielens_cdr()
    split = random_split(source.interactions, source.n_users, source.n_items, seed=SEED)
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    exclude = train + valid
    sp.save_npz(args.work / "train.npz", sp.csr_matrix(train, dtype=np.float32))
    rng = np.random.default_rng(SEED)
    rank_users, rank_items, rank_exclude = _random_ranking_case(args.rank_users, args.rank_items, rng)
    np.savez(
        args.work / "rank.npz",
        users=rank_users,
        items=rank_items,
        exclude_data=rank_exclude.data,
        exclude_indices=rank_exclude.indices,
        exclude_indptr=rank_exclude.indptr,
    )
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads)}
    peer = subprocess.run(
        [
            str(python),
            str(HERE / "implicit_side.py"),
            "--work",
            str(args.work),
            "--threads",
            str(args.threads),
            "--bpr-epochs",
            str(args.epochs),
            "--repeats",
            str(args.repeats),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if peer.returncode != 0:
        raise SystemExit(f"implicit side failed:\n{peer.stderr[-3000:]}")
    implicit = json.loads(peer.stdout.strip().splitlines()[-1])
    n_train = train.nnz
    rows: list[dict[str, Any]] = []
    for name in ("bpr", "als"):
        fit = implicit["fits"][name]
        factors = np.load(args.work / f"implicit_{name}.npz")
        per_epoch = fit["seconds"] / fit["epochs"]
        rows.append(
            {
                "task": "bpr_epoch" if name == "bpr" else "als_fit",
                "system": f"implicit {implicit['implicit_version']} {'BPR' if name == 'bpr' else 'ALS'}",
                "seconds": round(per_epoch, 4),
                "per_second": round(n_train / per_epoch),
                "epochs": fit["epochs"],
                "ndcg@10": round(_ndcg(factors["users"], factors["items"], test, exclude), 4),
            }
        )
    for optimizer in ("adam", "rowwise_adagrad"):
        best = None
        for _ in range(args.repeats):  # best of N epoch times; the factors are the same (seeded)
            model, per_epoch, epochs = _crossrec_bpr(optimizer, train, valid, args.threads, args.epochs)
            best = per_epoch if best is None else min(best, per_epoch)
        users, items = model.scorer().user_factors, model.scorer().item_factors
        rows.append(
            {
                "task": "bpr_epoch",
                "system": f"crossrec BPRMF ({optimizer})",
                "seconds": round(best, 4),
                "per_second": round(n_train / best),
                "epochs": epochs,
                "ndcg@10": round(_ndcg(users, items, test, exclude), 4),
            }
        )
    scorer = FactorScorer(rank_users, rank_items)
    seconds = float("inf")
    for _ in range(args.repeats):
        begin = time.perf_counter()
        ours, _ = recommend(scorer, np.arange(args.rank_users), 10, rank_exclude)
        seconds = min(seconds, time.perf_counter() - begin)
    theirs = np.load(args.work / "implicit_topk.npy")
    same = float(np.mean([set(a) == set(b) for a, b in zip(ours, theirs, strict=True)]))
    for system, took in (
        (f"implicit {implicit['implicit_version']} recommend", implicit["rank_seconds"]),
        ("crossrec recommend (FactorScorer)", seconds),
    ):
        rows.append(
            {
                "task": "top10",
                "system": system,
                "seconds": round(took, 4),
                "per_second": round(args.rank_users / took),
                "epochs": None,
                "ndcg@10": None,
            }
        )
    implicit_bpr = next(r for r in rows if r["task"] == "bpr_epoch" and r["system"].startswith("implicit"))
    implicit_top = next(r for r in rows if r["task"] == "top10" and r["system"].startswith("implicit"))
    ratios = {
        f"{r['task']}: {r['system']} / implicit": round(r["per_second"] / peer_row["per_second"], 3)
        for r in rows
        for peer_row in [implicit_bpr if r["task"] == "bpr_epoch" else implicit_top]
        if r["system"].startswith("crossrec")
    }
    print_table(f"crossrec vs implicit, {args.threads} thread(s), best of {args.repeats}", rows)
    for key, value in ratios.items():
        print(f"  {key}: {value}x")
    path = write_results(
        "peers",
        rows,
        ratios=ratios,
        threads=args.threads,
        repeats=args.repeats,
        quick=args.quick,
        top10_identical_lists=round(same, 4),
        data={
            "dataset": "movielens-cdr ML-1M",
            "train": int(n_train),
            "users": int(train.shape[0]),
            "items": int(train.shape[1]),
        },
        rank_case={"users": args.rank_users, "items": args.rank_items, "dim": 64},
        total_seconds=round(time.perf_counter() - started, 1),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
