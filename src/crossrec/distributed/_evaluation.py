"""Full-ranking evaluation of a data-parallel run, sharded by users and gathered on rank 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._context import RankContext, all_sum

__all__ = ["evaluate_tables", "evaluation_users", "sharded_evaluation", "sharded_mean"]


def evaluate_tables(
    user_table: torch.Tensor,
    item_table: torch.Tensor,
    truth: InteractionArrays,
    exclude: list[InteractionArrays],
    users: np.ndarray,
    *,
    metrics: tuple[str, ...] = ("ndcg", "recall", "hit"),
    ks: tuple[int, ...] = (10, 20),
) -> pd.DataFrame:
    """Full-ranking per-user metrics of ``users`` for dot-product tables (see
    :func:`crossrec.evaluation.evaluate_ranking`); items in ``exclude`` are never recommended."""
    from crossrec.evaluation import evaluate_ranking
    from crossrec.ranking.topk import FactorScorer

    users = np.asarray(users, dtype=np.int64)
    if len(users) == 0:
        return pd.DataFrame(columns=["user"])
    truth_csr = truth.to_csr(users)
    exclude_csr = None
    for part in exclude:
        matrix = part.to_csr(users)
        exclude_csr = matrix if exclude_csr is None else exclude_csr + matrix
    scorer = FactorScorer(user_table.detach().cpu().numpy(), item_table.detach().cpu().numpy())
    result = evaluate_ranking(scorer, truth_csr, exclude_csr, metrics=metrics, ks=ks, users=users)
    return result.per_user


def evaluation_users(test: InteractionArrays, sample: int | None, seed: int) -> np.ndarray:
    """Users with test interactions, or a seeded sample of ``sample`` of them (sorted)."""
    users = np.flatnonzero(test.user_counts() > 0)
    if sample is not None and sample < len(users):
        users = np.sort(np.random.default_rng(seed).choice(users, size=sample, replace=False))
    return users


def sharded_mean(
    vectors: tuple[torch.Tensor, torch.Tensor],
    parts: dict[str, InteractionArrays],
    context: RankContext,
    metric: str,
    *,
    part: str = "valid",
) -> float:
    """Mean ``metric`` (``"ndcg@10"``) over every user with ``part`` interactions, training items
    excluded, each rank ranking every ``world_size``-th user (what one process computes on all)."""
    name, k = metric.split("@")
    users = evaluation_users(parts[part], None, 0)[context.rank :: context.world_size]
    frame = evaluate_tables(*vectors, parts[part], [parts["train"]], users, metrics=(name,), ks=(int(k),))
    total, count = all_sum([float(frame[metric].sum()) if len(frame) else 0.0, float(len(frame))], context)
    return total / max(count, 1.0)


def sharded_evaluation(
    vectors: tuple[torch.Tensor, torch.Tensor],
    parts: dict[str, InteractionArrays],
    context: RankContext,
    *,
    sample: int | None,
    seed: int,
    metrics: tuple[str, ...],
    ks: tuple[int, ...],
) -> pd.DataFrame:
    """Test metrics per user: rank ``r`` ranks every ``world_size``-th user; all rows, sorted by user,
    are gathered on every rank (only rank 0 writes them)."""
    users = evaluation_users(parts["test"], sample, seed)
    frame = evaluate_tables(
        *vectors, parts["test"], [parts["train"], parts["valid"]], users[context.rank :: context.world_size],
        metrics=metrics, ks=ks,
    )  # fmt: skip
    if context.distributed:
        frames: list[Any] = [None] * context.world_size
        dist.all_gather_object(frames, frame)
        frame = pd.concat([f for f in frames if f is not None and len(f)], ignore_index=True).sort_values(
            "user"
        )
    return frame
