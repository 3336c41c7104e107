"""Compiled greedy selection of the re-rankers: one pass per user over ``k`` steps x ``N`` candidates.

Each kernel computes exactly what :class:`~crossrec.rerank.GreedyReranker`'s array loop computes (the
same gains in the same floating-point order, the first maximum on ties), without the temporary
``(users, N)`` arrays of every step; a test compares both on random pools. Serial (no thread pool):
re-ranking is a small part of an evaluation and must not compete with the ranking kernel's threads.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["calibration_select", "mmr_categories_select", "mmr_embeddings_select"]


@nb.njit(cache=True)
def mmr_categories_select(codes, relevance, valid, strength, k, n_categories):  # pragma: no cover - compiled
    n_users, n = codes.shape
    positions = np.full((n_users, k), -1, dtype=np.int64)
    counts = np.zeros(n_categories, dtype=np.float64)
    available = np.zeros(n, dtype=np.bool_)
    keep = 1.0 - strength
    for u in range(n_users):
        counts[:] = 0.0
        available[:] = valid[u]
        for step in range(k):
            best = -1
            best_gain = -np.inf
            for j in range(n):
                if not available[j]:
                    continue
                gain = 0.0 if step == 0 else 1.0 - counts[codes[u, j]] / step
                value = keep * relevance[u, j] + strength * gain
                if value > best_gain:
                    best_gain = value
                    best = j
            if best < 0:
                break
            positions[u, step] = best
            available[best] = False
            counts[codes[u, best]] += 1.0
    return positions


@nb.njit(cache=True)
def mmr_embeddings_select(unit, items, relevance, valid, strength, k):  # pragma: no cover - compiled
    """``unit``: ``(n_items, dim)`` unit item vectors; ``items``: the ``(n_users, N)`` pool."""
    n_users, n = items.shape
    dim = unit.shape[1]
    positions = np.full((n_users, k), -1, dtype=np.int64)
    summed = np.zeros(dim, dtype=np.float64)
    available = np.zeros(n, dtype=np.bool_)
    keep = 1.0 - strength
    for u in range(n_users):
        summed[:] = 0.0
        available[:] = valid[u]
        for step in range(k):
            best = -1
            best_gain = -np.inf
            for j in range(n):
                if not available[j]:
                    continue
                gain = 0.0
                if step > 0:
                    same = 0.0
                    item = items[u, j]
                    for d in range(dim):
                        same += unit[item, d] * summed[d]
                    gain = 1.0 - same / step
                value = keep * relevance[u, j] + strength * gain
                if value > best_gain:
                    best_gain = value
                    best = j
            if best < 0:
                break
            positions[u, step] = best
            available[best] = False
            chosen = items[u, best]
            for d in range(dim):
                summed[d] += unit[chosen, d]
    return positions


@nb.njit(cache=True)
def calibration_select(codes, target, entropy, relevance, valid, strength, k, smoothing):  # pragma: no cover
    """Steck's greedy: each step adds the candidate maximising ``(1 - strength) * relevance - strength *
    KL(p || q~(L + i))``; ``target`` is ``p`` per user, ``entropy`` its ``sum p log p``."""
    n_users, n = codes.shape
    n_categories = target.shape[1]
    positions = np.full((n_users, k), -1, dtype=np.int64)
    counts = np.zeros(n_categories, dtype=np.float64)
    log_other = np.zeros(n_categories, dtype=np.float64)
    log_own = np.zeros(n_categories, dtype=np.float64)
    available = np.zeros(n, dtype=np.bool_)
    keep = 1.0 - strength
    a = smoothing
    for u in range(n_users):
        counts[:] = 0.0
        available[:] = valid[u]
        for step in range(k):
            size = step + 1.0
            cross_other = 0.0
            for c in range(n_categories):
                p = target[u, c]
                if p > 0:
                    log_other[c] = math.log((1 - a) * counts[c] / size + a * p)
                    log_own[c] = math.log((1 - a) * (counts[c] + 1.0) / size + a * p)
                else:
                    log_other[c] = 0.0
                    log_own[c] = 0.0
                cross_other += p * log_other[c]
            best = -1
            best_gain = -np.inf
            for j in range(n):
                if not available[j]:
                    continue
                c = codes[u, j]
                gain = cross_other + target[u, c] * (log_own[c] - log_other[c]) - entropy[u]
                value = keep * relevance[u, j] + strength * gain
                if value > best_gain:
                    best_gain = value
                    best = j
            if best < 0:
                break
            positions[u, step] = best
            available[best] = False
            counts[codes[u, best]] += 1.0
    return positions
