"""Joint training on source and target: shared parameters for linked entities, domain-specific
ones otherwise (CMF-style), with a domain weight on the source data.

* Embedding models (BPR-MF, LightGCN): one model over the union of users and items, where a
  linked user or item is one row; source interactions weigh ``domain_weight * source.weight`` in
  the loss. Early stopping ranks target items for target users on the target's validation part.
* Item-based models (EASE, ItemKNN): source users become extra weighted rows of the Gram matrix
  (shared items mapped into the target's item space), and a linked user's source items become
  extra weighted history columns that score target items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models.base import Recommender
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.inputs import FitInputs
from crossrec.models.item_based import EASE, ItemSimilarityRecommender
from crossrec.ranking.topk import FactorScorer
from crossrec.transfer._tables import item_map, pretrain, user_aligned_history
from crossrec.transfer.base import SourceData, TransferData, TransferStrategy, register_strategy

__all__ = ["Joint", "joint_item_matrices", "joint_matrix"]


def joint_item_matrices(
    data: TransferData, domain_weight: float
) -> tuple[sp.csr_matrix | None, sp.csr_matrix | None]:
    """``(extra_rows, extra_columns)`` for an item-based model (see module docstring).

    Rows are scaled by ``sqrt(w)`` so that they add ``w * X_s'X_s`` to the Gram matrix.
    """
    rows, columns = [], []
    for source in data.sources:
        weight = domain_weight * source.weight
        if weight <= 0:
            continue
        if source.n_item_links:
            mapped = sp.csr_matrix(
                source.interactions @ item_map(source.item_links, source.interactions.shape[1], data.n_items)
            )
            mapped = mapped[np.diff(mapped.indptr) > 0]
            rows.append(mapped * np.float32(np.sqrt(weight)))
        if source.n_user_links:
            history = user_aligned_history(source, data.n_users)
            used = np.flatnonzero(np.asarray(history.sum(axis=0)).ravel() > 0)
            columns.append(history[:, used] * np.float32(weight))
    extra_rows = sp.vstack(rows, format="csr") if rows else None
    extra_columns = sp.hstack(columns, format="csr") if columns else None
    return extra_rows, extra_columns


def _joint_index(n_target: int, n_source: int, links, offset: int) -> tuple[np.ndarray, int]:
    """Combined index of each source entity: its linked target index, or a new one after ``offset``."""
    index = np.full(n_source, -1, dtype=np.int64)
    if links is not None and len(links):
        index[links.source] = links.target
    unlinked = index < 0
    index[unlinked] = offset + np.arange(int(unlinked.sum()))
    return index, offset + int(unlinked.sum())


def joint_matrix(data: TransferData, domain_weight: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary union matrix of target train and all sources plus the loss weight of each entry.

    Target users and items keep their indices (``0..n-1``); unlinked source users and items are
    appended after them. An entry present in several domains gets the sum of their weights.
    """
    users, items, weights = [], [], []
    train = data.train.tocoo()
    users.append(train.row.astype(np.int64))
    items.append(train.col.astype(np.int64))
    weights.append(np.ones(train.nnz, np.float32))
    n_users, n_items = data.n_users, data.n_items
    for source in data.sources:
        weight = domain_weight * source.weight
        if weight <= 0:
            continue
        user_index, n_users = _joint_index(
            data.n_users, source.interactions.shape[0], source.user_links, n_users
        )
        item_index, n_items = _joint_index(
            data.n_items, source.interactions.shape[1], source.item_links, n_items
        )
        coo = source.interactions.tocoo()
        users.append(user_index[coo.row])
        items.append(item_index[coo.col])
        weights.append(np.full(coo.nnz, weight, np.float32))
    matrix = sp.csr_matrix(
        (np.concatenate(weights), (np.concatenate(users), np.concatenate(items))), shape=(n_users, n_items)
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    entry_weights = matrix.data.astype(np.float32).copy()
    matrix.data[:] = 1.0
    return matrix, entry_weights


def _has_links(source: SourceData) -> bool:
    return bool(source.n_item_links or source.n_user_links)


@register_strategy
class Joint(TransferStrategy):
    """Train on source and target together (see the module docstring for each model family).

    Parameters
    ----------
    model
        EASE / ItemKNN (Gram-based joint) or an embedding model (CMF-style joint).
    domain_weight
        Weight of source data relative to target data (times each source's own weight).
    """

    name = "joint"
    transfers_from_artifact = True  # it reads the source's interactions, which a source artifact holds

    def __init__(self, model: Recommender | None = None, domain_weight: float = 0.15) -> None:
        self.model = model if model is not None else EASE()
        self.domain_weight = domain_weight

    def pretrain_source(self, source: SourceData, seed: int) -> Recommender:
        """``model`` fitted on the source alone (10% per-user holdout). Joint training itself does not
        start from it: it trains on the source's interactions, which a source artifact keeps."""
        return pretrain(self.model, source, seed, f"pretrain on {source.name}")

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data)
        if reason:
            return reason
        if not any(_has_links(s) for s in data.sources):
            return "no source shares items or users with the target, so nothing can be trained jointly"
        if self.domain_weight < 0:
            return f"domain_weight must be >= 0, got {self.domain_weight}"
        if isinstance(self.model, ItemSimilarityRecommender):
            if isinstance(self.model, EASE) and data.has_user_links:
                n_columns = data.n_items + sum(
                    s.interactions.shape[1] for s in data.sources if s.n_user_links
                )
                if n_columns > self.model.max_columns:
                    return (
                        f"EASE with linked users needs a dense Gram of up to {n_columns} item columns "
                        f"(max_columns={self.model.max_columns}); use ItemKNN"
                    )
            return None
        if not isinstance(self.model, EmbeddingRecommender):
            return (
                f"{type(self.model).__name__} cannot be trained jointly; use EASE, ItemKNN, BPRMF or LightGCN"
            )
        return None

    def _fit(self, data: TransferData) -> Recommender:
        model = self.model.clone()
        if isinstance(model, ItemSimilarityRecommender):
            extra_rows, extra_columns = joint_item_matrices(data, self.domain_weight)
            inputs = FitInputs(extra_rows=extra_rows, extra_columns=extra_columns)
            return model.fit_with(data.train, data.valid, inputs)
        matrix, weights = joint_matrix(data, self.domain_weight)
        n_users, n_items = data.n_users, data.n_items
        train, valid = data.train, data.valid

        def validation(user_table: torch.Tensor, item_table: torch.Tensor) -> float:
            users, items = user_table[:n_users], item_table[:n_items]
            result = evaluate_ranking(
                FactorScorer(users.detach().numpy(), items.detach().numpy()),
                valid, train, metrics=["ndcg"], ks=[10],
            )  # fmt: skip
            return result.mean()["ndcg@10"]

        model.fit_with(
            matrix, None, FitInputs(weights=weights, validation=validation, label="joint training")
        )
        return model.with_vectors(model.user_vectors()[:n_users], model.item_vectors()[:n_items])
