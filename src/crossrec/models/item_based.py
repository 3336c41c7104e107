"""Item-based models that score a user by her history times an item x item matrix: EASE and ItemKNN.

Both learn from a Gram (co-occurrence) matrix, which makes them easy to transfer: extra rows (e.g.
source-domain users whose items are mapped into the target's item space) add to the Gram, and
extra columns (e.g. linked users' source-domain items) let a user's history in another domain
score target items. The fitted model keeps every user's history, so it scores after ``load``
without the training data.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from crossrec.models._sparse import arrays_to_csr, csr_to_arrays
from crossrec.models.base import Recommender, register_model
from crossrec.models.inputs import FitInputs

__all__ = ["EASE", "ItemKNN", "ItemSimilarityRecommender"]


class ItemSimilarityRecommender(Recommender):
    """Base of models with ``score(u) = history[u] @ similarity``.

    ``user_items_`` is ``(n_users, n_columns)``: the training matrix, followed by any extra
    columns; ``similarity_`` is ``(n_columns, n_items)``.
    """

    user_items_: sp.csr_matrix
    similarity_: np.ndarray | sp.csr_matrix

    fit_inputs: ClassVar[frozenset[str]] = frozenset({"extra_rows", "extra_columns"})

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        """Learn the item x item matrix from ``train`` (``valid`` is not needed: closed form)."""
        return self.fit_with(train, valid, FitInputs())

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """:meth:`fit` with extra rows and columns (what joint transfer trains with).

        Parameters
        ----------
        train
            ``(n_users, n_items)`` binary training matrix.
        valid
            Ignored (accepted for the common interface).
        inputs
            ``extra_rows``: ``(n_extra_users, n_items)`` additional (already weighted) rows in the same
            item space, e.g. source users with shared items mapped to target items; they shape the
            similarities but are not users of the fitted model. ``extra_columns``: ``(n_users,
            n_extra)`` additional (already weighted) history columns per user, e.g. a linked user's
            items in a source domain; their similarities to the target items are learned and they
            take part in scoring.
        """
        self.check_inputs(inputs)
        extra_rows, extra_columns = inputs.extra_rows, inputs.extra_columns
        train = sp.csr_matrix(train, dtype=np.float32)
        self.n_users_, self.n_items_ = train.shape
        history = train
        if extra_columns is not None:
            extra_columns = sp.csr_matrix(extra_columns, dtype=np.float32)
            if extra_columns.shape[0] != train.shape[0]:
                raise ValueError(
                    f"extra_columns has {extra_columns.shape[0]} rows but the training matrix has "
                    f"{train.shape[0]} users: give one row per target user"
                )
            history = sp.hstack([train, extra_columns], format="csr")
        learn_from = history
        if extra_rows is not None:
            extra_rows = sp.csr_matrix(extra_rows, dtype=np.float32)
            if extra_rows.shape[1] != train.shape[1]:
                raise ValueError(
                    f"extra_rows has {extra_rows.shape[1]} columns but the training matrix has "
                    f"{train.shape[1]} items: map extra rows into the target item space first"
                )
            padding = sp.csr_matrix(
                (extra_rows.shape[0], history.shape[1] - train.shape[1]), dtype=np.float32
            )
            learn_from = sp.vstack([history, sp.hstack([extra_rows, padding], format="csr")], format="csr")
        self.user_items_ = history
        self.similarity_ = self._learn_similarity(learn_from, self.n_items_)
        return self

    @abstractmethod
    def _learn_similarity(self, matrix: sp.csr_matrix, n_items: int) -> np.ndarray | sp.csr_matrix:
        """``(n_columns, n_items)`` similarity from all rows; the first ``n_items`` columns are items."""

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        scores = self.user_items_[np.asarray(users, dtype=np.int64)] @ self.similarity_
        if sp.issparse(scores):
            scores = scores.toarray()
        return np.asarray(scores, dtype=np.float32)

    def item_vectors(self) -> np.ndarray | None:
        return None

    def item_similarities(self) -> np.ndarray | sp.csr_matrix:
        """The ``(n_items, n_items)`` item-item rows (what :meth:`similar_items` ranks)."""
        self._check_fitted()
        return self.similarity_[: self.n_items_]

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = csr_to_arrays("history", self.user_items_)
        if sp.issparse(self.similarity_):
            arrays.update(csr_to_arrays("similarity", self.similarity_))
        else:
            arrays["similarity"] = np.asarray(self.similarity_, dtype=np.float32)
        return arrays

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_items_ = arrays_to_csr("history", arrays)
        if "similarity" in arrays:
            self.similarity_ = arrays["similarity"]
        else:
            self.similarity_ = arrays_to_csr("similarity", arrays)


@register_model
class EASE(ItemSimilarityRecommender):
    """Embarrassingly Shallow Autoencoder (Steck 2019): a closed-form item x item regression.

    ``B = argmin ||X - XB||^2 + reg ||B||^2`` with ``diag(B) = 0``, solved as
    ``P = (X'X + reg I)^-1``, ``B = -P / diag(P)``.

    Parameters
    ----------
    reg
        L2 regularisation (larger for denser data; tune on validation).
    max_columns
        Refuse to build a dense Gram of more columns than this (memory is ``8 * n^2`` bytes and
        time ``n^3``); use :class:`ItemKNN` for larger catalogues.
    """

    name = "ease"

    def __init__(self, reg: float = 250.0, max_columns: int = 20_000) -> None:
        self.reg = reg
        self.max_columns = max_columns

    def _learn_similarity(self, matrix: sp.csr_matrix, n_items: int) -> np.ndarray:
        n_columns = matrix.shape[1]
        if n_columns > self.max_columns:
            raise ValueError(
                f"EASE needs a dense {n_columns} x {n_columns} inverse, more than max_columns="
                f"{self.max_columns}; use ItemKNN for a catalogue this large, or raise max_columns"
            )
        if self.reg <= 0:
            raise ValueError(f"EASE reg must be positive, got {self.reg}")
        gram = (matrix.T @ matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.reg
        precision = np.linalg.inv(gram)
        weights = precision[:, :n_items] / -np.diag(precision)[:n_items]
        weights[np.arange(n_items), np.arange(n_items)] = 0.0
        return weights.astype(np.float32)


@register_model
class ItemKNN(ItemSimilarityRecommender):
    """Item-based k-nearest neighbours with shrunk cosine similarity.

    ``sim(i, j) = x_i . x_j / (|x_i| |x_j| + shrink)``; each target item keeps its ``k`` most
    similar columns, and a user's score for item ``j`` is the sum of the similarities of her
    history items to ``j``.

    Parameters
    ----------
    k
        Neighbours kept per item.
    shrink
        Shrinkage of the cosine (damps similarities built on few co-occurrences).
    block_size
        Target items processed at once (memory: their sparse co-occurrences).
    """

    name = "item_knn"

    def __init__(self, k: int = 100, shrink: float = 10.0, block_size: int = 2048) -> None:
        self.k = k
        self.shrink = shrink
        self.block_size = block_size

    def _learn_similarity(self, matrix: sp.csr_matrix, n_items: int) -> sp.csr_matrix:
        if self.k < 1:
            raise ValueError(f"ItemKNN k must be at least 1, got {self.k}")
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix_t = sp.csr_matrix(matrix.T)
        matrix_csc = sp.csc_matrix(matrix)
        n_columns = matrix.shape[1]
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel())
        rows_out, cols_out, vals_out = [], [], []
        for start in range(0, n_items, self.block_size):
            stop = min(start + self.block_size, n_items)
            # sparse co-occurrences of every column with this block of target items
            block = (matrix_t @ matrix_csc[:, start:stop]).tocoo()
            rows, cols = block.row.astype(np.int64), block.col.astype(np.int64) + start
            values = block.data / (norms[rows] * norms[cols] + self.shrink + 1e-12)
            keep = (rows != cols) & (values > 0)
            rows, cols, values = rows[keep], cols[keep], values[keep]
            # the k largest per target item: sort by (item, -similarity), rank within item
            order = np.lexsort((-values, cols))
            rows, cols, values = rows[order], cols[order], values[order]
            first = np.searchsorted(cols, cols, side="left")
            top = (np.arange(len(cols)) - first) < self.k
            rows_out.append(rows[top])
            cols_out.append(cols[top])
            vals_out.append(values[top])
        rows = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
        cols = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
        vals = np.concatenate(vals_out).astype(np.float32) if vals_out else np.zeros(0, np.float32)
        return sp.csr_matrix((vals, (rows, cols)), shape=(n_columns, n_items), dtype=np.float32)
