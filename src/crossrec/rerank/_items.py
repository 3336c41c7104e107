"""Checks of the item-side and user-side data that re-rankers hold (errors say what to fix)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["check_categories", "check_embeddings", "check_history", "check_pool_items", "check_popularity"]


def check_categories(categories: np.ndarray, who: str) -> np.ndarray:
    """One non-negative integer code per item, as int64."""
    array = np.asarray(categories)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{who}: item_categories must be a 1-d array, one code per item; got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{who}: item_categories must be integer codes (got dtype {array.dtype}); "
            "factorize labels first, e.g. pandas.factorize(labels)[0]"
        )
    if array.min() < 0:
        raise ValueError(
            f"{who}: item_categories has negative codes (e.g. {int(array.min())} at item "
            f"{int(np.argmin(array))}): give every item a category (an 'unknown' code for missing labels)"
        )
    return array.astype(np.int64)


def check_embeddings(embeddings: np.ndarray, who: str) -> np.ndarray:
    """``(n_items, dim)`` finite vectors, as float64."""
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{who}: item_embeddings must be (n_items, dim); got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{who}: item_embeddings has NaN or infinite values")
    return array


def check_popularity(popularity: np.ndarray, who: str) -> np.ndarray:
    """One finite non-negative count per item, as float64."""
    array = np.asarray(popularity, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{who}: item_popularity must be 1-d, one count per item; got shape {array.shape}")
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"{who}: item_popularity must be finite and non-negative (training counts)")
    return array


def check_history(history: sp.spmatrix, n_items: int, who: str) -> sp.csr_matrix:
    """A users x items matrix of each user's past items, with ``n_items`` columns."""
    if not sp.issparse(history):
        history = sp.csr_matrix(np.asarray(history))
    history = sp.csr_matrix(history, dtype=np.float64)
    if history.shape[1] != n_items:
        raise ValueError(
            f"{who}: history has {history.shape[1]} item columns but item_categories has {n_items} items"
        )
    return history


def check_pool_items(items: np.ndarray, n_items: int, what: str) -> None:
    """Every candidate item must have an entry in the re-ranker's item-side data."""
    if items.size and items.max() >= n_items:
        raise ValueError(f"candidate item {int(items.max())} is beyond the {n_items} items of {what}")
