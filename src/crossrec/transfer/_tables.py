"""Private helpers shared by strategies: pretraining on a source, mapping source tables into the
target's index space, and combining tables from several sources."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.transfer.base import SourceData
from crossrec.transfer.links import Links

__all__ = [
    "combine_tables",
    "item_map",
    "pretrain",
    "user_aligned_history",
]


def pretrain(model: Recommender, source: SourceData, seed: int, label: str) -> Recommender:
    """Fit a clone of ``model`` on a source, early-stopping on a 10% per-user holdout."""
    train, valid = source.holdout(0.1, seed)
    return model.clone().fit_with(train, valid, FitInputs(label=label))


def item_map(links: Links, n_source: int, n_target: int) -> sp.csr_matrix:
    """``(n_source, n_target)`` 0/1 matrix: right-multiplying a source user x item matrix by it
    moves linked items into the target's item space (unlinked items vanish)."""
    return sp.csr_matrix(
        (np.ones(len(links), np.float32), (links.source, links.target)), shape=(n_source, n_target)
    )


def user_aligned_history(source: SourceData, n_target_users: int) -> sp.csr_matrix:
    """``(n_target_users, n_source_items)``: each linked target user's source interactions
    (zero rows for users without a link)."""
    links = source.user_links
    selector = sp.csr_matrix(
        (np.ones(len(links), np.float32), (links.target, links.source)),
        shape=(n_target_users, source.interactions.shape[0]),
    )
    return sp.csr_matrix(selector @ source.interactions)


def _procrustes(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Orthogonal ``R`` minimising ``||moving R - fixed||``."""
    u, _, vt = np.linalg.svd(moving.T.astype(np.float64) @ fixed.astype(np.float64))
    return (u @ vt).astype(np.float32)


def combine_tables(tables: list[np.ndarray], masks: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Merge per-source target tables into one.

    Each source's table is rotated onto the first one's space (orthogonal Procrustes on rows
    both sources transferred) when enough rows are shared, then rows are averaged with the
    source weights over the sources that transferred them; rows no source transferred come from
    the first table (its draw from the source distribution).
    """
    if len(tables) == 1:
        return tables[0]
    reference = tables[0]
    total = np.zeros_like(reference)
    weight_sum = np.zeros(len(reference), np.float32)
    for table, mask, weight in zip(tables, masks, weights, strict=True):
        shared = mask & masks[0]
        if table is not reference and shared.sum() >= table.shape[1]:
            table = table @ _procrustes(table[shared], reference[shared])
        total[mask] += weight * table[mask]
        weight_sum[mask] += weight
    out = reference.copy()
    transferred = weight_sum > 0
    out[transferred] = total[transferred] / weight_sum[transferred, None]
    return out
