"""Beyond-accuracy metrics of top-K lists: coverage, concentration, diversity, novelty, popularity.

``recommendations`` is always an ``(n_users, >= K)`` array of item indices, best first, where
``-1`` marks an empty slot (ignored). ``popularity[i]`` is the number of training interactions
(or distinct training users) of item ``i``.

List-level (one number per model):

* ``coverage@K`` - share of the catalogue that appears in at least one top-K list (RecBole's
  ``ItemCoverage``).
* ``gini@K`` - Gini index of how often items are recommended, over all ``n_items`` items including
  never-recommended ones: with counts sorted ascending ``c_(1) <= ... <= c_(n)``,
  ``sum_j (2j - n - 1) c_(j) / (n * sum_j c_(j))`` (RecBole's ``GiniIndex``): 0 when every item is
  recommended equally often, close to 1 when a few items take all exposure.

Per user (means are reported; per-user values feed significance tests and slices):

* ``ild_category@K`` - intra-list diversity by category: share of pairs of recommended items whose
  categories differ.
* ``ild_embedding@K`` - mean cosine distance ``1 - cos(e_i, e_j)`` over pairs of recommended items.
* ``novelty@K`` - mean self-information ``-log2((popularity_i + 1) / (n_users + 1))``
  (add-one smoothing, so items never seen in training are finite).
* ``avg_pop@K`` - mean popularity of the recommended items (RecBole's ``AveragePopularity``).
* ``tail_percentage@K`` - RecBole's TailPercentage: share of the ``K`` slots holding one of the
  least popular items (:func:`recbole_tail_items`, ``tail_ratio`` 0.1 of the items seen in training)
* ``tail@K`` - share of recommended items that are long-tail items (see :func:`head_items`;
  RecBole's ``TailPercentage`` with a head defined by a share of items).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "average_popularity",
    "catalog_coverage",
    "gini_index",
    "head_items",
    "intra_list_diversity_categories",
    "intra_list_diversity_embeddings",
    "long_tail_share",
    "recbole_tail_items",
    "tail_percentage",
    "novelty",
]


def _top(recommendations: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` columns (empty slots clipped to item 0) and the mask of filled slots."""
    if k <= 0:
        raise ValueError(f"K must be positive, got {k}")
    top = np.asarray(recommendations)[:, :k]
    filled = top >= 0
    return np.where(filled, top, 0), filled


def catalog_coverage(recommendations: np.ndarray, n_items: int, k: int) -> float:
    """Share of the ``n_items`` items that appear in at least one top-``k`` list."""
    top, filled = _top(recommendations, k)
    return float(np.count_nonzero(np.bincount(top[filled], minlength=n_items)) / n_items)


def gini_index(recommendations: np.ndarray, n_items: int, k: int) -> float:
    """Gini index of item exposure in the top-``k`` lists (0 = equal exposure)."""
    top, filled = _top(recommendations, k)
    counts = np.sort(np.bincount(top[filled], minlength=n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    rank = np.arange(1, n_items + 1)
    return float(((2 * rank - n_items - 1) * counts).sum() / (n_items * total))


def head_items(popularity: np.ndarray, head_fraction: float = 0.2) -> np.ndarray:
    """Boolean mask of head items: the ``head_fraction`` most popular items (ties by lower index).

    Every other item is a long-tail item.
    """
    if not 0 < head_fraction < 1:
        raise ValueError(f"head_fraction must be in (0, 1), got {head_fraction}")
    popularity = np.asarray(popularity)
    n_head = int(round(head_fraction * len(popularity)))
    order = np.lexsort((np.arange(len(popularity)), -popularity))
    head = np.zeros(len(popularity), dtype=bool)
    head[order[:n_head]] = True
    return head


def _row_mean(values: np.ndarray, filled: np.ndarray) -> np.ndarray:
    count = filled.sum(axis=1)
    total = np.where(filled, values, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.zeros(len(count)), where=count > 0)


def average_popularity(recommendations: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user: mean training popularity of the top-``k`` items."""
    top, filled = _top(recommendations, k)
    return _row_mean(np.asarray(popularity, dtype=np.float64)[top], filled)


def novelty(recommendations: np.ndarray, popularity: np.ndarray, n_users: int, k: int) -> np.ndarray:
    """Per user: mean self-information ``-log2((popularity + 1) / (n_users + 1))`` of the top-``k`` items."""
    top, filled = _top(recommendations, k)
    information = -np.log2((np.asarray(popularity, dtype=np.float64) + 1) / (n_users + 1))
    return _row_mean(information[top], filled)


def long_tail_share(recommendations: np.ndarray, is_head: np.ndarray, k: int) -> np.ndarray:
    """Per user: share of the top-``k`` items that are not head items."""
    top, filled = _top(recommendations, k)
    return _row_mean((~np.asarray(is_head, dtype=bool)[top]).astype(np.float64), filled)


def recbole_tail_items(popularity: np.ndarray, tail_ratio: float = 0.1) -> np.ndarray:
    """Boolean mask of RecBole's long-tail items (its ``TailPercentage`` metric).

    Among the items with at least one training interaction, sorted by count (ties by lower index):
    the first ``max(int(n * tail_ratio), 1)`` when ``tail_ratio <= 1``, else every item with at
    most ``tail_ratio`` interactions. Items never seen in training are not tail items, as in RecBole.
    """
    if tail_ratio <= 0:
        raise ValueError(f"tail_ratio must be positive, got {tail_ratio}")
    popularity = np.asarray(popularity)
    seen = np.flatnonzero(popularity > 0)
    tail = np.zeros(len(popularity), dtype=bool)
    if tail_ratio > 1:
        tail[seen[popularity[seen] <= tail_ratio]] = True
        return tail
    order = seen[np.lexsort((seen, popularity[seen]))]
    tail[order[: max(int(len(seen) * tail_ratio), 1)]] = True
    return tail


def tail_percentage(recommendations: np.ndarray, is_tail: np.ndarray, k: int) -> np.ndarray:
    """Per user: tail items among the top ``k`` divided by ``k`` (RecBole's TailPercentage@K; an
    empty slot counts as a non-tail item)."""
    top, filled = _top(recommendations, k)
    hits = np.where(filled, np.asarray(is_tail, dtype=bool)[top], False)
    return hits.sum(axis=1) / float(k)


def _pair_mean(similarity_sum: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean over the ``n (n - 1)`` ordered pairs given ``sum_{i != j} sim(i, j)``; 0 for lists below 2."""
    pairs = n * (n - 1)
    return np.divide(similarity_sum, pairs, out=np.zeros(len(n)), where=pairs > 0)


def intra_list_diversity_categories(
    recommendations: np.ndarray, categories: np.ndarray, k: int
) -> np.ndarray:
    """Per user: share of pairs of top-``k`` items with different categories (0 for lists below 2 items).

    ``categories[i]`` is an integer category code of item ``i``. Vectorised by sorting each list's
    codes: ``sum_c n_c (n_c - 1)`` ordered same-category pairs are counted from run lengths.
    """
    top, filled = _top(recommendations, k)
    codes = np.asarray(categories)[top].astype(np.int64)
    # empty slots get distinct codes below every real one so they never pair up
    sentinel = codes.min(initial=0) - 1 - np.arange(codes.shape[1])
    codes = np.sort(np.where(filled, codes, sentinel), axis=1)
    position = np.arange(codes.shape[1])
    new_run = np.ones(codes.shape, dtype=bool)
    new_run[:, 1:] = codes[:, 1:] != codes[:, :-1]
    run_start = np.maximum.accumulate(np.where(new_run, position, 0), axis=1)
    same_pairs = 2 * (position - run_start).sum(axis=1)  # each earlier equal item forms a pair
    n = filled.sum(axis=1)
    return np.where(n > 1, 1.0 - _pair_mean(same_pairs.astype(np.float64), n), 0.0)


def intra_list_diversity_embeddings(
    recommendations: np.ndarray, embeddings: np.ndarray, k: int, batch_size: int = 8192
) -> np.ndarray:
    """Per user: mean cosine distance between pairs of top-``k`` items (0 for lists below 2 items).

    Uses ``sum_{i != j} cos(e_i, e_j) = ||sum_i e_i||^2 - sum_i ||e_i||^2`` on unit vectors, so the
    cost is ``O(n_users * k * dim)`` without forming pairs. Zero vectors count as similarity 0.
    """
    top, filled = _top(recommendations, k)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
    result = np.empty(len(top))
    for start in range(0, len(top), batch_size):  # batches of users bound the (batch, k, dim) memory
        vectors = unit[top[start : start + batch_size]] * filled[start : start + batch_size, :, None]
        summed = vectors.sum(axis=1, dtype=np.float64)
        self_similarity = (vectors.astype(np.float64) ** 2).sum(axis=(1, 2))
        pair_sum = (summed**2).sum(axis=1) - self_similarity
        n = filled[start : start + batch_size].sum(axis=1)
        result[start : start + batch_size] = np.where(n > 1, 1.0 - _pair_mean(pair_sum, n), 0.0)
    return result
