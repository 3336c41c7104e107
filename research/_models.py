"""Scoring primitives of the sparsity study (numpy/scipy/torch, no crossrec models).

Every model here reduces to a *scorer*: a function from an array of target user indices to dense
``(len(users), n_items)`` float32 scores, which ``crossrec.evaluation.evaluate_ranking`` ranks.
Formulas are in ``research/sparsity_findings.md``; the notation: ``X`` users x items (0/1, the kept
target training part), ``G = X^T X``, ``c_j`` item counts, ``S`` source matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg.lapack as lapack
import scipy.sparse as sp
import torch

Scorer = Callable[[np.ndarray], np.ndarray]


# -- small helpers -----------------------------------------------------------------------------------
def item_counts(matrix: sp.csr_matrix) -> np.ndarray:
    return np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)


def per_user_max_normalise(scores: np.ndarray) -> np.ndarray:
    """Divide each row by its largest absolute value (rows of zeros stay zero)."""
    scale = np.abs(scores).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    return scores / scale


def constant_scorer(vector: np.ndarray) -> Scorer:
    row = np.asarray(vector, dtype=np.float32)[None, :]
    return lambda users: np.repeat(row, len(users), axis=0)


def matrix_scorer(
    profiles: sp.csr_matrix, weights: np.ndarray | sp.spmatrix, offset: np.ndarray | None = None
) -> Scorer:
    """``profiles[u] @ weights (+ offset)``: item-item models applied to each user's kept items."""

    def score(users: np.ndarray) -> np.ndarray:
        out = profiles[users] @ weights
        out = out.toarray() if sp.issparse(out) else np.asarray(out)
        if offset is not None:
            out = out + offset
        return out.astype(np.float32, copy=False)

    return score


def dense_scorer(scores: np.ndarray) -> Scorer:
    scores = np.asarray(scores, dtype=np.float32)
    return lambda users: scores[users]


# -- item-item models ---------------------------------------------------------------------------------
def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE (Steck 2019): ``B = I - P diagMat(1 / diag P)``, ``P = (G + l2 I)^-1``, zero diagonal."""
    precision = np.linalg.inv(gram + l2 * np.eye(len(gram)))
    weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def ease_toward(gram: np.ndarray, l2: float, prior: np.ndarray) -> np.ndarray:
    """EASE shrunk toward a prior ``B0``: argmin ``||X - XB||^2 + l2 ||B - B0||^2`` s.t. ``diag B = 0``.

    Closed form (Lagrange multipliers ``g`` for the diagonal): ``C = P (G + l2 B0)``,
    ``B = C - P diagMat(g)``, ``g_j = C_jj / P_jj``. With little target data (``G`` small) B tends to
    ``B0``; with much, to the target's own EASE.
    """
    precision = np.linalg.inv(gram + l2 * np.eye(len(gram)))
    shrunk = precision @ (gram + l2 * prior)
    weights = shrunk - precision * (np.diag(shrunk) / np.diag(precision))[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def cosine_knn_weights(matrix: sp.csr_matrix, k: int, shrink: float) -> sp.csr_matrix:
    """Item-item cosine ``G_ij / (sqrt(c_i c_j) + shrink)``, zero diagonal, the ``k`` largest per column
    (each target item keeps its ``k`` most similar items), as a sparse ``(n_items, n_items)`` matrix."""
    matrix = matrix.tocsc().astype(np.float32)
    gram = (matrix.T @ matrix).tocoo()
    norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
    keep = gram.row != gram.col
    row, col = gram.row[keep], gram.col[keep]
    value = gram.data[keep] / (norms[row] * norms[col] + shrink)
    return top_k_per_column(row, col, value, k, gram.shape)


def top_k_per_column(
    row: np.ndarray, col: np.ndarray, value: np.ndarray, k: int, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Keep, in every column, the ``k`` entries with the largest values (vectorised, no loop)."""
    order = np.lexsort((-value, col))
    col_sorted = col[order]
    starts = np.searchsorted(col_sorted, np.arange(shape[1]))
    rank = np.arange(len(order)) - starts[col_sorted]
    chosen = order[rank < k]
    return sp.csr_matrix((value[chosen], (row[chosen], col[chosen])), shape=shape)


# -- user-space (dual) solvers, for 30-40k items ---------------------------------------------------------
def inverse_spd(kernel: np.ndarray, l2: float) -> np.ndarray:
    """``(K + l2 I)^-1`` of a symmetric positive semi-definite matrix, float32 (LAPACK potrf + potri)."""
    shifted = np.array(kernel, dtype=np.float32, order="F", copy=True)
    shifted[np.diag_indices_from(shifted)] += l2
    factor, info = lapack.spotrf(shifted, lower=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info {info}); raise l2")
    inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed (info {info})")
    lower = np.tril(inverse)
    return np.ascontiguousarray(lower + np.tril(lower, -1).T)


def dual_ease_scorer(target: sp.csr_matrix, kernel: np.ndarray, l2: float, batch: int = 1024) -> Scorer:
    """EASE in user space over the columns ``Z = [extra | X]`` whose kernel is ``K = Z Z^T``.

    With ``M = (K + l2 I)^-1`` (users x users), ``Z P = M Z`` and ``diag P_j = (1 - z_j^T M z_j) / l2``,
    so the EASE scores of target column j are ``(Z - M Z diagMat(1 / diag P))_uj``; on items the
    user has not seen this is ``-(M X)_uj / P_jj``. ``kernel = X X^T`` gives target-only EASE;
    ``kernel = w S S^T + X X^T`` EASE on the target items of the concatenated source+target matrix
    (joint item-item with the user's own source history as input).
    """
    inverse = inverse_spd(kernel, l2)
    target = target.tocsr().astype(np.float32)
    target_csc = target.tocsc()
    quadratic = np.zeros(target.shape[1], dtype=np.float64)  # z_j^T M z_j over target columns
    for start in range(0, target.shape[0], batch):
        rows = np.asarray((target_csc.T @ inverse[:, start : start + batch]).T)  # (M X)[rows]
        quadratic += np.asarray(target[start : start + batch].multiply(rows).sum(axis=0)).ravel()
    precision_diagonal = np.maximum((1.0 - quadratic) / l2, 1e-12).astype(np.float32)

    def score(users: np.ndarray) -> np.ndarray:
        product = np.asarray((target_csc.T @ inverse[:, users]).T)
        return -(product / precision_diagonal[None, :]).astype(np.float32)

    return score


def kernel_ridge_scorer(target: sp.csr_matrix, kernel: np.ndarray, l2: float) -> Scorer:
    """Ridge regression from each user's source profile to their target items, solved in user space:
    ``W = S^T (S S^T + l2 I)^-1 X``, scores ``S W = K (K + l2 I)^-1 X = X - l2 M X`` (the first term is
    the user's own items, excluded from rankings), so the ranking is that of ``-(M X)``."""
    inverse = inverse_spd(kernel, l2)
    target_csc = target.tocsc().astype(np.float32)
    return lambda users: -np.asarray((target_csc.T @ inverse[:, users]).T, dtype=np.float32)


def user_knn_weights(profiles: sp.csr_matrix, k: int, batch: int = 2048) -> sp.csr_matrix:
    """Users x users cosine similarity of ``profiles`` rows, the ``k`` largest per user, no self."""
    profiles = profiles.tocsr().astype(np.float32)
    norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
    normalised = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ profiles
    n = profiles.shape[0]
    k = min(k, n - 1)
    rows, cols, vals = [], [], []
    for start in range(0, n, batch):
        block = (normalised[start : start + batch] @ normalised.T).toarray()
        block[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        top = np.argpartition(-block, k, axis=1)[:, :k]
        rows.append(np.repeat(np.arange(start, start + len(block)), k))
        cols.append(top.ravel())
        vals.append(np.take_along_axis(block, top, 1).ravel())
    weights = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    weights.eliminate_zeros()
    return weights


# -- BPR-MF --------------------------------------------------------------------------------------------
def bpr_factors(
    train: sp.csr_matrix,
    *,
    dim: int,
    learning_rate: float,
    l2: float,
    checkpoints: tuple[int, ...],
    batch_size: int = 2048,
    seed: int = 2022,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """BPR-MF (Rendle et al. 2009) with Adam and uniform negatives; factors at each epoch in ``checkpoints``."""
    generator = torch.Generator().manual_seed(seed)
    coo = train.tocoo()
    users = torch.from_numpy(coo.row.astype(np.int64))
    items = torch.from_numpy(coo.col.astype(np.int64))
    n_users, n_items = train.shape
    user_factors = torch.nn.Embedding(n_users, dim, sparse=True)
    item_factors = torch.nn.Embedding(n_items, dim, sparse=True)
    with torch.no_grad():
        user_factors.weight.copy_(torch.randn(n_users, dim, generator=generator) * 0.1)
        item_factors.weight.copy_(torch.randn(n_items, dim, generator=generator) * 0.1)
    # sparse gradients + SparseAdam: a step touches only the rows of its batch (40k-item tables)
    optimiser = torch.optim.SparseAdam(
        list(user_factors.parameters()) + list(item_factors.parameters()), lr=learning_rate
    )
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for epoch in range(1, max(checkpoints) + 1):
        order = torch.randperm(len(users), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            u, i = users[index], items[index]
            j = torch.randint(0, n_items, (len(index),), generator=generator)
            pu, qi, qj = user_factors(u), item_factors(i), item_factors(j)
            margin = (pu * (qi - qj)).sum(1)
            loss = -torch.nn.functional.logsigmoid(margin).mean() + l2 * (
                pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum()
            ) / len(index)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if epoch in checkpoints:
            out[epoch] = (
                user_factors.weight.detach().numpy().copy(),
                item_factors.weight.detach().numpy().copy(),
            )
    return out


def factor_scorer(user_factors: np.ndarray, item_factors: np.ndarray) -> Scorer:
    return lambda users: (user_factors[users] @ item_factors.T).astype(np.float32)
