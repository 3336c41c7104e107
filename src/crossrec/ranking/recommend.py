"""Top-k recommendation lists for batches of users: the one entry point that evaluation, models,
artifacts and the HTTP service all rank with.

A *scorer* maps user indices to dense ``(len(users), n_items)`` scores; a
:class:`~crossrec.ranking.topk.FactorScorer` (what dot-product models hand out) is ranked by its own
cost-chosen exact path. Items in ``exclude`` are never returned, ``-inf`` scores are inadmissible,
NaN scores raise, and ties are broken by a seeded per-user scramble (``seed=None``: lower item index).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.ranking.topk import FactorScorer, dense_top_k, tie_salts

__all__ = ["DEFAULT_TIE_SEED", "Scorer", "rank_users", "recommend", "to_scratch", "top_k"]

#: A scorer maps an array of user indices to dense ``(len(users), n_items)`` scores (numpy or torch).
#: Ranking may overwrite an array the scorer returns when that array owns its memory.
Scorer = Callable[[np.ndarray], "np.ndarray | torch.Tensor"]

#: Tie-breaking seed used when a caller gives none: rankings are reproducible, and never follow the
#: order in which items happen to be numbered.
DEFAULT_TIE_SEED = 0


def to_scratch(scores: np.ndarray | torch.Tensor) -> torch.Tensor:
    """float32 tensor that may be modified in place (copied when it is a view of other memory)."""
    if isinstance(scores, torch.Tensor):
        tensor = scores.detach()
        if tensor.dtype != torch.float32 or tensor.device.type != "cpu":
            return tensor.to("cpu", torch.float32).contiguous()
        if tensor._base is not None or not tensor.is_contiguous():
            return tensor.clone(memory_format=torch.contiguous_format)
        return tensor
    array = np.asarray(scores)
    if array.dtype != np.float32 or array.base is not None or not array.flags.writeable:
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.base is not None or not array.flags.writeable:
            array = array.copy()
    elif not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return torch.from_numpy(array)


def top_k(
    scores: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    *,
    users: np.ndarray | None = None,
    seed: int | None = DEFAULT_TIE_SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """``(items, values)`` of the ``k`` best entries per row of ``scores`` (1-d: one row), best first.

    ``exclude`` rows are aligned with the rows of ``scores``; ``users`` (default: row numbers) are
    the user indices that seed each row's tie order. Rows with fewer than ``k`` admissible items are
    padded with item ``-1`` and value ``-inf``. ``scores`` is not modified.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    array = np.asarray(scores)
    single = array.ndim == 1
    array = np.array(array[None, :] if single else array, dtype=np.float32, copy=True, order="C")
    n_rows, n_items = array.shape
    rows = np.arange(n_rows) if users is None else np.asarray(users, dtype=np.int64)
    exclude = None if exclude is None else sp.csr_matrix(exclude)
    values, items = dense_top_k(array, max(1, min(k, n_items)), exclude, salts=tie_salts(rows, seed))
    if items.shape[1] < k:
        pad = k - items.shape[1]
        items = np.pad(items, ((0, 0), (0, pad)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, pad)), constant_values=-np.inf)
    if n_items == 0:
        items[:], values[:] = -1, -np.inf
    return (items[0], values[0]) if single else (items, values)


def rank_users(
    scorer: Scorer,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    *,
    n_items: int | None = None,
    seed: int | None = DEFAULT_TIE_SEED,
    workspace: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(values, items)``: the exact top ``k`` of one batch of ``users`` (``exclude`` rows aligned).

    ``n_items`` (when known) checks the shape a plain scorer returns.
    """
    users = np.asarray(users, dtype=np.int64)
    salts = tie_salts(users, seed)
    if isinstance(scorer, FactorScorer):
        values, items, _ = scorer.top_k(users, k, exclude, workspace, salts=salts)
        return values, items
    scores = to_scratch(scorer(users))
    expected = (len(users), n_items if n_items is not None else scores.shape[1])
    if scores.ndim != 2 or tuple(scores.shape) != expected:
        raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected {expected}")
    return dense_top_k(scores, k, exclude, salts=salts)


def recommend(
    scorer: Scorer,
    users: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    *,
    n_items: int | None = None,
    batch_size: int | None = None,
    seed: int | None = DEFAULT_TIE_SEED,
    ranker: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` lists for many users, ranked in batches: ``(items, scores)``, each ``(len(users), k)``.

    Parameters
    ----------
    scorer
        Dense scorer or :class:`FactorScorer`.
    users
        User indices.
    k
        List length; lists are padded with item ``-1`` / score ``-inf`` when fewer items are
        admissible (e.g. ``k`` above the catalogue, or most items excluded).
    exclude
        Items never to return, one CSR row per entry of ``users`` (e.g. ``seen[users]``).
    n_items
        Catalogue size (checked against what the scorer returns).
    batch_size
        Users ranked at once (default: about 16 MB of float32 scores per batch).
    seed
        Tie-breaking seed (``None``: ties to the lower item index).
    ranker
        What ranks one batch, with :func:`rank_users`' signature (default; a re-ranker's
        ``rank_users`` puts its lists through the same batching).
    """
    ranker = rank_users if ranker is None else ranker
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    users = np.asarray(users, dtype=np.int64)
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape[0] != len(users):
            raise ValueError(f"exclude has {exclude.shape[0]} rows for {len(users)} users")
    width = n_items or (scorer.n_items if isinstance(scorer, FactorScorer) else None)
    if batch_size is None:
        batch_size = max(16, min(4096, 4_000_000 // max(1, width or 1000)))
    items_out = np.full((len(users), k), -1, dtype=np.int64)
    values_out = np.full((len(users), k), -np.inf, dtype=np.float32)
    workspace = None
    if isinstance(scorer, FactorScorer) and len(users):
        workspace = scorer.workspace(min(batch_size, len(users)))
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        rows = exclude[start:stop] if exclude is not None else None
        kk = k if width is None else max(1, min(k, width))
        values, items = ranker(
            scorer, users[start:stop], kk, rows, n_items=n_items, seed=seed, workspace=workspace
        )
        items_out[start:stop, : items.shape[1]] = items
        values_out[start:stop, : values.shape[1]] = values
    return items_out, values_out
