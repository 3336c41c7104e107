"""Mapping: learn how a linked user's source vector becomes her target vector, and use it for
target users with few or no target interactions (cold start).

Two bridges:

* ``"mlp"`` - EMCDR (Man et al. 2017): one MLP ``f(source_user) ~ target_user`` fitted on linked
  users who are well known in the target (mean squared error).
* ``"meta"`` - PTUPCDR (Zhu et al. 2022): a personalised bridge. A characteristic encoder pools
  the vectors of the user's source items with learned attention; a meta network turns the pool
  into a ``dim x dim`` matrix ``W_u``; the target vector is ``source_user @ W_u``. Trained
  task-oriented: BPR on the linked users' target training interactions (item vectors fixed).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.base import Recommender
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.inputs import FitInputs
from crossrec.models.mf import BPRMF
from crossrec.transfer._tables import pretrain
from crossrec.transfer.base import SourceData, TransferData, TransferStrategy, register_strategy

__all__ = ["Mapping", "fit_mlp_bridge", "fit_meta_bridge"]


def _holdout_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros(n, bool)
    if n >= 10:
        mask[rng.choice(n, size=max(1, int(n * fraction)), replace=False)] = True
    return mask


def _train_loop(
    parameters: list[nn.Parameter],
    train_loss,
    valid_loss,
    *,
    epochs: int,
    steps: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    module: nn.Module,
) -> None:
    import copy

    optimizer = torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    best, best_state, stale = float("inf"), copy.deepcopy(module.state_dict()), 0
    for _ in range(epochs):
        module.train()
        for _ in range(steps):
            loss = train_loss()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        module.eval()
        with torch.no_grad():
            score = valid_loss()
        if score is None:
            best_state = copy.deepcopy(module.state_dict())
            continue
        if score < best - 1e-7:
            best, best_state, stale = score, copy.deepcopy(module.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    module.load_state_dict(best_state)
    module.eval()


def fit_mlp_bridge(
    source_vectors: np.ndarray,
    target_vectors: np.ndarray,
    *,
    hidden: int = 128,
    epochs: int = 300,
    learning_rate: float = 5e-3,
    weight_decay: float = 1e-5,
    patience: int = 20,
    seed: int = 0,
) -> nn.Module:
    """EMCDR's MLP mapping from paired source to target vectors (10% of pairs early-stop it)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.as_tensor(source_vectors, dtype=torch.float32)
    y = torch.as_tensor(target_vectors, dtype=torch.float32)
    held = torch.as_tensor(_holdout_mask(len(x), 0.1, rng))
    bridge = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.Tanh(), nn.Linear(hidden, y.shape[1]))
    fit_x, fit_y = x[~held], y[~held]
    _train_loop(
        list(bridge.parameters()),
        lambda: nn.functional.mse_loss(bridge(fit_x), fit_y),
        lambda: float(nn.functional.mse_loss(bridge(x[held]), y[held])) if held.any() else None,
        epochs=epochs, steps=1, learning_rate=learning_rate, weight_decay=weight_decay,
        patience=patience, module=bridge,
    )  # fmt: skip
    return bridge


class _MetaBridge(nn.Module):
    """PTUPCDR: attention-pooled source items -> personalised ``dim_s x dim_t`` bridge."""

    def __init__(self, source_items: torch.Tensor, dim_target: int, hidden: int) -> None:
        super().__init__()
        self.source_items = source_items
        dim = source_items.shape[1]
        self.dim_target = dim_target
        self.attention = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.meta = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim * dim_target))
        with torch.no_grad():  # start near the identity-like mean bridge
            self.meta[2].weight.mul_(0.01)
            eye = torch.zeros(dim, dim_target)
            eye[: min(dim, dim_target), : min(dim, dim_target)] = torch.eye(min(dim, dim_target))
            self.meta[2].bias.copy_(eye.reshape(-1))

    def forward(self, source_users: torch.Tensor, history: torch.Tensor) -> torch.Tensor:
        """``source_users`` ``(B, d_s)``; ``history`` sparse ``(B, n_source_items)``."""
        logits = self.attention(self.source_items).squeeze(1)
        weights = torch.exp(logits - logits.max())
        numerator = torch.sparse.mm(history, weights[:, None] * self.source_items)
        denominator = torch.sparse.mm(history, weights[:, None]).clamp_min(1e-12)
        pooled = numerator / denominator
        bridge = self.meta(pooled).view(-1, self.source_items.shape[1], self.dim_target)
        return torch.bmm(source_users[:, None, :], bridge).squeeze(1)


def _sparse_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> torch.Tensor:
    block = matrix[rows].tocoo()
    indices = torch.from_numpy(np.vstack([block.row, block.col]).astype(np.int64))
    values = torch.from_numpy(block.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, block.shape, check_invariants=True)


def fit_meta_bridge(
    source_users: np.ndarray,
    source_history: sp.csr_matrix,
    source_items: np.ndarray,
    target_items: np.ndarray,
    target_train: sp.csr_matrix,
    *,
    hidden: int = 64,
    epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 5e-3,
    weight_decay: float = 1e-5,
    patience: int = 10,
    seed: int = 0,
) -> tuple[_MetaBridge, torch.Tensor]:
    """PTUPCDR's meta network, trained with BPR on the paired users' target interactions.

    Row ``k`` of ``source_users``, ``source_history`` and ``target_train`` belong to the same
    person. Returns the bridge and the source-vector tensor to feed it.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    users = torch.as_tensor(source_users, dtype=torch.float32)
    items = torch.as_tensor(target_items, dtype=torch.float32)
    bridge = _MetaBridge(torch.as_tensor(source_items, dtype=torch.float32), items.shape[1], hidden)
    target_train = sp.csr_matrix(target_train)
    counts = np.diff(target_train.indptr)
    held = _holdout_mask(len(users), 0.1, rng)
    fit_rows = np.flatnonzero(~held & (counts > 0))
    held_rows = np.flatnonzero(held & (counts > 0))
    n_items = items.shape[0]

    def triples(rows: np.ndarray, generator: np.random.Generator) -> tuple[torch.Tensor, ...]:
        positive = target_train.indices[
            target_train.indptr[rows] + (generator.random(len(rows)) * counts[rows]).astype(np.int64)
        ]
        negative = generator.integers(0, n_items, len(rows))
        return torch.from_numpy(rows), torch.from_numpy(positive.astype(np.int64)), torch.from_numpy(negative)

    def loss_of(rows: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        mapped = bridge(users[rows], _sparse_rows(source_history, rows.numpy()))
        difference = (mapped * items[positive]).sum(-1) - (mapped * items[negative]).sum(-1)
        return -nn.functional.logsigmoid(difference).mean()

    def train_loss() -> torch.Tensor:
        batch = rng.choice(fit_rows, size=min(batch_size, len(fit_rows)), replace=False)
        return loss_of(*triples(batch, rng))

    fixed = triples(held_rows, np.random.default_rng(seed + 1)) if len(held_rows) else None
    _train_loop(
        [p for p in bridge.parameters() if p.requires_grad],
        train_loss,
        lambda: float(loss_of(*fixed)) if fixed is not None else None,
        epochs=epochs, steps=max(1, len(fit_rows) // batch_size), learning_rate=learning_rate,
        weight_decay=weight_decay, patience=patience, module=bridge,
    )  # fmt: skip
    return bridge, users


@register_strategy
class Mapping(TransferStrategy):
    """EMCDR / PTUPCDR mapping for cold-start target users (see the module docstring).

    Parameters
    ----------
    model
        Embedding model trained in each domain.
    bridge
        ``"mlp"`` (EMCDR) or ``"meta"`` (PTUPCDR's personalised bridge).
    cold_threshold
        Target users with at most this many training interactions get the mapped vector; the
        bridge learns from linked users with more.
    blend
        Share of the mapped vector in a cold user's final vector (``1``: replace; ``0.5``:
        average with the target model's own vector).
    hidden, epochs, learning_rate
        Bridge network size and optimisation.
    """

    name = "mapping"
    transfers_from_artifact = True

    def __init__(
        self,
        model: Recommender | None = None,
        bridge: Literal["mlp", "meta"] = "mlp",
        cold_threshold: int = 5,
        blend: float = 1.0,
        hidden: int = 128,
        epochs: int = 200,
        learning_rate: float = 5e-3,
    ) -> None:
        self.model = model if model is not None else BPRMF(optim={"progress": False})
        self.bridge = bridge
        self.cold_threshold = cold_threshold
        self.blend = blend
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data)
        if reason:
            return reason
        if not data.has_user_links:
            return "it learns a user mapping and no source has users linked to the target"
        if not isinstance(self.model, EmbeddingRecommender):
            return f"it maps user vectors and {type(self.model).__name__} has none; use BPRMF or LightGCN"
        if self.bridge not in ("mlp", "meta"):
            return f"bridge must be 'mlp' or 'meta', got {self.bridge!r}"
        return None

    def pretrain_source(self, source: SourceData, seed: int) -> Recommender:
        """``model`` fitted on the source (10% per-user holdout): the source side of the bridge."""
        return pretrain(self.model, source, seed, f"pretrain on {source.name}")

    def _map_source(self, source: SourceData, target_model: Recommender, data: TransferData) -> np.ndarray:
        source_model = self.pretrain_source(source, data.seed)
        links = source.user_links
        counts = np.diff(data.train.indptr)
        warm = counts[links.target] > self.cold_threshold
        if warm.sum() < 10:
            warm = counts[links.target] > 0
        source_users = source_model.user_vectors()
        if self.bridge == "mlp":
            bridge = fit_mlp_bridge(
                source_users[links.source[warm]], target_model.user_vectors()[links.target[warm]],
                hidden=self.hidden, epochs=self.epochs, learning_rate=self.learning_rate, seed=data.seed,
            )  # fmt: skip
            with torch.no_grad():
                return bridge(torch.as_tensor(source_users[links.source])).numpy()
        meta, _ = fit_meta_bridge(
            source_users[links.source[warm]], source.interactions[links.source[warm]],
            source_model.item_vectors(), target_model.item_vectors(), data.train[links.target[warm]],
            hidden=self.hidden, epochs=self.epochs, learning_rate=self.learning_rate, seed=data.seed,
        )  # fmt: skip
        out = []
        with torch.no_grad():
            for start in range(0, len(links), 4096):
                rows = links.source[start : start + 4096]
                out.append(
                    meta(torch.as_tensor(source_users[rows]), _sparse_rows(source.interactions, rows)).numpy()
                )
        return np.concatenate(out) if out else np.zeros((0, target_model.user_vectors().shape[1]), np.float32)

    def _fit(self, data: TransferData) -> Recommender:
        target_model = self.model.clone().fit_with(data.train, data.valid, FitInputs(label="target model"))
        users = target_model.user_vectors().copy()
        total = np.zeros_like(users)
        weight_sum = np.zeros(len(users), np.float32)
        for source in data.sources:
            if not source.n_user_links:
                continue
            mapped = self._map_source(source, target_model, data)
            total[source.user_links.target] += source.weight * mapped
            weight_sum[source.user_links.target] += source.weight
        cold = (np.diff(data.train.indptr) <= self.cold_threshold) & (weight_sum > 0)
        mapped_users = total[cold] / weight_sum[cold, None]
        users[cold] = self.blend * mapped_users + (1 - self.blend) * users[cold]
        model = target_model.with_vectors(users, target_model.item_vectors())
        model.mapped_users_ = np.flatnonzero(cold)
        return model
