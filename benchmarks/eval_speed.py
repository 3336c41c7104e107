"""Full-ranking evaluation speed: users/s for 100,000 users x 20,000 items.

The score function is a dense dot product of random user and item factors (dim 64); each user has ~20
excluded training items and ~5 test items; all accuracy metrics at K=10,20,50 are computed. Each
setting is timed ``--repeats`` times and the best run is kept. Rows:

* ``FactorScorer`` (what ``model.scorer()`` gives every embedding model) with its default automatic
  path: float32 on CPUs without native bfloat16 products (this project's AVX2 machines), otherwise
  bfloat16 candidates with exact float32 re-ranking where a probe finds it cheaper. Its rankings are
  checked against the float32 row's.
* a plain float32 matmul scorer (any callable: the generic path);
* the evaluation alone (precomputed scores copied per batch: the cost beyond scoring);
* near-tied scores (every item one shared vector plus a 1e-3 perturbation, as early in training):
  ``FactorScorer`` with its automatic path, the same with its probes forced (``CROSSREC_BF16=1``: both
  paths timed on 64 users of a batch, as on a CPU with native bfloat16 products), with the bfloat16
  path forced, and the plain float32 scorer (``--near-tied-users``, default 20,000).

Run: ``.venv/bin/python benchmarks/eval_speed.py [--users N]``; writes ``benchmarks/results/eval_speed.json``
(``users_per_second`` is the ``FactorScorer`` row; ``near_tied_auto_seconds_over_float32`` is the
issue's "never slower than float32" check).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

from crossrec.metrics.ranking import DEFAULT_METRICS, evaluate_ranking
from crossrec.ranking.topk import FactorScorer, bf16_matmul_is_native


def random_matrix(n_users: int, n_items: int, per_user: int, rng: np.random.Generator) -> sp.csr_matrix:
    """About ``per_user`` random items per user (duplicates merged)."""
    rows = np.repeat(np.arange(n_users), per_user)
    cols = rng.integers(0, n_items, n_users * per_user)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    parser.add_argument("--near-tied-users", type=int, default=20_000, help="users of the near-tied rows")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per setting; the best is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    n_users, n_items = args.users, args.items
    train = random_matrix(n_users, n_items, 20, rng)
    test = random_matrix(n_users, n_items, 5, rng)
    test = test - test.multiply(train)  # test items are never training items
    test.eliminate_zeros()
    user_factors = torch.randn(n_users, args.dim)
    item_factors = torch.randn(n_items, args.dim)
    item_factors_t = item_factors.T.contiguous()
    fixed = user_factors[:4096] @ item_factors_t

    scorers = {
        "FactorScorer path=auto (the default)": FactorScorer(user_factors.numpy(), item_factors.numpy()),
        "float32 matmul scorer (any callable)": lambda users: (
            user_factors[torch.from_numpy(users)] @ item_factors_t
        ),
        "evaluation only (copied scores)": lambda users: fixed[: len(users)].clone(),
    }
    rows, recommendations = [], {}

    def timed(name: str, scores: str, scorer, test, train, fresh=None) -> Any:
        """Best of ``--repeats`` full evaluations (``fresh()`` builds a new scorer per run, so a
        measuring scorer starts from nothing each time); appends the row, returns the last result."""
        evaluate_ranking(
            fresh() if fresh else scorer,
            test[:2000],
            train[:2000],
            ks=(10, 20, 50),
            batch_size=args.batch_size,
        )  # warm-up (and numba compilation on a first run)
        seconds = float("inf")
        for _ in range(args.repeats):  # best of N: the machine is shared, the minimum is the least disturbed
            run_scorer = fresh() if fresh else scorer
            start = time.perf_counter()
            result = evaluate_ranking(
                run_scorer, test, train, metrics=DEFAULT_METRICS, ks=(10, 20, 50), batch_size=args.batch_size
            )
            seconds = min(seconds, time.perf_counter() - start)
        n = len(result.per_user)
        rows.append(
            {
                "setting": name,
                "scores": scores,
                "users": n,
                "items": test.shape[1],
                "seconds": round(seconds, 3),
                "users_per_second": round(n / seconds),
                "ndcg@10": round(float(result.per_user["ndcg@10"].mean()), 5),
            }
        )
        return result

    for name, scorer in scorers.items():
        result = timed(name, "random factors", scorer, test, train)
        recommendations[name] = result.recommendations

    # Near-tied scores (as early in training, where the bfloat16 bound prunes almost nothing): every
    # item is one shared vector plus a small perturbation. The automatic path must not be slower than
    # the plain float32 matmul + exact top-k; the forced bfloat16 path shows what it avoids.
    n_tied = min(n_users, args.near_tied_users)
    tied_items = (item_factors[:1] + 1e-3 * torch.randn(n_items, args.dim)).numpy()
    tied_users = user_factors[:n_tied].numpy()
    tied_items_t = torch.from_numpy(tied_items).T.contiguous()
    tied_test, tied_train = test[:n_tied], train[:n_tied]

    def probing(users: np.ndarray, items: np.ndarray) -> FactorScorer:
        os.environ["CROSSREC_BF16"] = "1"  # probe both paths as on a CPU with native bfloat16 products
        return FactorScorer(users, items, path="auto")

    for name, make in {
        "FactorScorer path=auto (the default)": lambda: FactorScorer(tied_users, tied_items, path="auto"),
        "FactorScorer path=auto, probes forced (CROSSREC_BF16=1)": lambda: probing(tied_users, tied_items),
        "FactorScorer path=bfloat16 (forced)": lambda: FactorScorer(tied_users, tied_items, path="bfloat16"),
        "float32 matmul scorer (any callable)": lambda: (
            lambda users: torch.from_numpy(tied_users[users]) @ tied_items_t
        ),
    }.items():
        timed(name, "near-tied", None, tied_test, tied_train, fresh=make)
        os.environ.pop("CROSSREC_BF16", None)
    tied = {row["setting"]: row for row in rows if row["scores"] == "near-tied"}
    auto_vs_float32 = (
        tied["FactorScorer path=auto (the default)"]["seconds"]
        / tied["float32 matmul scorer (any callable)"]["seconds"]
    )
    factor_name, dense_name = list(scorers)[:2]
    # where the two rankings differ, the float64 scores of the two items must be a float32-rounding tie
    rows_, positions = np.nonzero(recommendations[factor_name] != recommendations[dense_name])
    users_ = result.per_user["user"].to_numpy()[rows_]
    gaps = [
        abs(float(user_factors[u].double() @ (item_factors[a].double() - item_factors[b].double())))
        for u, a, b in zip(
            users_,
            recommendations[factor_name][rows_, positions],
            recommendations[dense_name][rows_, positions],
            strict=True,
        )
    ]
    bf16_scorer = FactorScorer(user_factors[:2000].numpy(), item_factors.numpy(), path="bfloat16")
    _, _, rescored = bf16_scorer.top_k(np.arange(2000), 50, train[:2000])
    probed = tied["FactorScorer path=auto, probes forced (CROSSREC_BF16=1)"]["seconds"]
    print_table(f"full-ranking evaluation, {n_users:,} users x {n_items:,} items, K=10,20,50", rows)
    print(
        f"rank positions where FactorScorer and the float32 scorer differ: {len(gaps)} of "
        f"{recommendations[factor_name].size:,}; largest float64 score gap there: {max(gaps, default=0):.2e} "
        "(near-ties that float32 rounding orders either way)"
    )
    print(
        f"path=bfloat16 on random factors, items re-scored in float32 per user (first 2,000 users): "
        f"{rescored.mean():.1f} of {n_items:,}"
    )
    print(
        f"near-tied scores: path=auto takes {auto_vs_float32:.2f}x the float32 scorer's time "
        f"(native bfloat16 products: {bf16_matmul_is_native()}); with probes forced "
        f"{probed / tied['float32 matmul scorer (any callable)']['seconds']:.2f}x"
    )
    path = write_results(
        "eval_speed",
        rows,
        users_per_second=rows[0]["users_per_second"],
        users_per_second_dense_float32_scorer=rows[1]["users_per_second"],
        users_per_second_evaluation_only=rows[2]["users_per_second"],
        near_tied_auto_seconds_over_float32=round(auto_vs_float32, 3),
        near_tied_probing_auto_seconds_over_float32=round(
            probed / tied["float32 matmul scorer (any callable)"]["seconds"], 3
        ),
        bf16_matmul_native=bf16_matmul_is_native(),
        positions_differing_from_float32_scorer=len(gaps),
        largest_float64_gap_where_they_differ=max(gaps, default=0.0),
        rescored_items_per_user=round(float(rescored.mean()), 1),
        torch_threads=torch.get_num_threads(),
        numba_threads=numba.get_num_threads(),
        load_average_1min_at_end=os.getloadavg()[0],
        repeats=args.repeats,
        batch_size=args.batch_size,
        metrics=list(DEFAULT_METRICS),
        ks=[10, 20, 50],
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
