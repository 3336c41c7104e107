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

__all__ = ["calibration_select", "mmr_select"]


@nb.njit(cache=True)
def _pick(relevance, gains, available, keep, strength):  # pragma: no cover - compiled
    """The available candidate with the best ``keep * relevance + strength * gain`` (the first on ties),
    or ``-1`` when none is left; it is then no longer available."""
    best = -1
    best_value = -np.inf
    for j in range(len(gains)):
        if available[j]:
            value = keep * relevance[j] + strength * gains[j]
            if value > best_value:
                best_value = value
                best = j
    if best >= 0:
        available[best] = False
    return best


@nb.njit(cache=True)
def mmr_select(codes, unit, items, relevance, valid, strength, k, n_categories):  # pragma: no cover
    """MMR's greedy over the ``(n_users, N)`` pool ``items``: by category when ``unit`` has no rows
    (``codes``: the pool's category codes), else by the ``(n_items, dim)`` unit item vectors ``unit``.
    A candidate's gain is 1 - its mean similarity to the chosen items (same category: 1)."""
    n_users, n = items.shape
    by_category = unit.shape[0] == 0
    chosen = np.zeros(n_categories if by_category else unit.shape[1], dtype=np.float64)
    positions = np.full((n_users, k), -1, dtype=np.int64)
    gains = np.zeros(n, dtype=np.float64)
    for u in range(n_users):
        chosen[:] = 0.0  # items chosen per category, or the sum of their vectors
        available = valid[u].copy()
        for step in range(k):
            for j in range(n):
                same = 0.0
                if step > 0 and by_category:
                    same = chosen[codes[u, j]]
                elif step > 0 and available[j]:
                    for d in range(len(chosen)):
                        same += unit[items[u, j], d] * chosen[d]
                gains[j] = 0.0 if step == 0 else 1.0 - same / step
            best = _pick(relevance[u], gains, available, 1.0 - strength, strength)
            if best < 0:
                break
            positions[u, step] = best
            if by_category:
                chosen[codes[u, best]] += 1.0
            else:
                chosen += unit[items[u, best]]
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
    gains = np.zeros(n, dtype=np.float64)
    a = smoothing
    for u in range(n_users):
        counts[:] = 0.0
        available = valid[u].copy()
        for step in range(k):
            size = step + 1.0
            cross_other = 0.0  # sum_c p_c log q~_c, the candidate of another category than c
            for c in range(n_categories):
                p = target[u, c]
                log_other[c] = math.log((1 - a) * counts[c] / size + a * p) if p > 0 else 0.0
                log_own[c] = math.log((1 - a) * (counts[c] + 1.0) / size + a * p) if p > 0 else 0.0
                cross_other += p * log_other[c]
            for j in range(n):  # -KL(p || q~(L + j))
                c = codes[u, j]
                gains[j] = cross_other + target[u, c] * (log_own[c] - log_other[c]) - entropy[u]
            best = _pick(relevance[u], gains, available, 1.0 - strength, strength)
            if best < 0:
                break
            positions[u, step] = best
            counts[codes[u, best]] += 1.0
    return positions
