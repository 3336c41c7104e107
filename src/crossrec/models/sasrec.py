"""SASRec: self-attention over each user's recent items (Kang & McAuley, ICDM 2018), in torch.

The model reads a user's last ``max_length`` items (left-padded), adds learned position
embeddings, applies ``n_layers`` causal pre-norm Transformer blocks and scores every item by the dot
product of the last hidden state with the (tied) item embedding table.

Training uses its own loop (sequence batches, not the (user, item) pairs of
:mod:`crossrec.training`): every position predicts the next item with a full softmax over the
catalogue (cheap for the thousands of items of course platforms), and with ``horizon > 1`` also the
items 2..``horizon`` steps ahead, step ``g`` weighted ``horizon_decay ** (g - 1)``, which suits
protocols that hold out each user's next *few* items. Early stopping watches NDCG@10 on ``valid``.

Transfer: the *sequence encoder* (position embeddings, Transformer blocks, final norm) does not depend
on the item vocabulary, so it can be trained on one platform and reused on another that shares no
ids: ``target.fit_sequences(seqs, valid, encoder_init=source.encoder_state())``. ``item_init`` seeds
the target's item table, e.g. from course text (a content bridge).
"""

from __future__ import annotations

import copy
import time
from typing import ClassVar, Self

import numpy as np
import torch
from torch import nn

from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models.base import register_model
from crossrec.models.sequences import Sequences, SequentialRecommender

__all__ = ["SASRec"]

#: Parameter-name prefixes of the vocabulary-free sequence encoder (what transfers across platforms).
ENCODER_PREFIXES: tuple[str, ...] = ("position.", "layers.", "norm.")


class _SASRecModule(nn.Module):
    """Item table (index 0 is padding) + causal Transformer encoder."""

    def __init__(self, n_items: int, dim: int, n_layers: int, n_heads: int, max_length: int, dropout: float):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position = nn.Embedding(max_length, dim)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim, n_heads, dim_feedforward=dim, dropout=dropout, batch_first=True, norm_first=True
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.scale = dim**0.5
        nn.init.normal_(self.item.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item.weight[0].zero_()
        causal = torch.triu(torch.ones(max_length, max_length, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(batch, length, dim)`` for item sequences shifted by +1 (0 = padding)."""
        length = sequence.shape[1]
        keep = (sequence > 0).unsqueeze(-1).to(self.item.weight.dtype)
        positions = torch.arange(length, device=sequence.device) + (self.position.num_embeddings - length)
        hidden = self.item(sequence) * self.scale + self.position(positions)
        hidden = self.dropout(hidden) * keep
        mask = self.causal[-length:, -length:]
        for layer in self.layers:
            hidden = layer(hidden, src_mask=mask) * keep
        return self.norm(hidden)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item.weight[1:].T


@register_model
class SASRec(SequentialRecommender):
    """Self-attentive sequential recommender.

    Parameters
    ----------
    dim
        Embedding and hidden size.
    n_layers, n_heads
        Transformer blocks and attention heads per block.
    max_length
        Most recent items read per user.
    dropout
        Dropout on embeddings and inside the blocks.
    epochs
        Maximum training epochs (one epoch = every user's sequence once).
    batch_size
        Sequences per gradient step.
    learning_rate, l2
        Adam learning rate and weight decay.
    horizon, horizon_decay
        Each position also predicts the items up to ``horizon`` steps ahead (see the module docstring).
    patience
        Epochs without validation improvement before stopping (only with ``valid``).
    seed
        Seed of initialisation, shuffling and dropout.
    num_threads
        ``torch.set_num_threads`` while fitting; ``None`` keeps torch's setting.
    verbose
        Print one line per evaluated epoch.
    """

    name = "sasrec"
    #: Parameter-name prefixes of the part of the network that transfers (see :meth:`encoder_state`).
    encoder_prefixes: ClassVar[tuple[str, ...]] = ENCODER_PREFIXES

    def __init__(
        self,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        max_length: int = 50,
        dropout: float = 0.2,
        epochs: int = 200,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        l2: float = 0.0,
        horizon: int = 1,
        horizon_decay: float = 0.5,
        patience: int = 10,
        seed: int = 0,
        num_threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.dim = dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_length = max_length
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.horizon = horizon
        self.horizon_decay = horizon_decay
        self.patience = patience
        self.seed = seed
        self.num_threads = num_threads
        self.verbose = verbose

    # -- training ----------------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.dim % getattr(self, "n_heads", 1):
            raise ValueError(f"dim ({self.dim}) must be a multiple of n_heads ({self.n_heads})")
        for name in (
            "dim",
            "n_layers",
            "n_heads",
            "max_length",
            "epochs",
            "batch_size",
            "horizon",
            "patience",
        ):
            if getattr(self, name, 1) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def _build(self, n_items: int) -> nn.Module:
        return _SASRecModule(n_items, self.dim, self.n_layers, self.n_heads, self.max_length, self.dropout)

    def fit_sequences(
        self,
        train: Sequences,
        valid: Sequences | None = None,
        *,
        encoder_init: dict[str, np.ndarray] | None = None,
        item_init: np.ndarray | None = None,
    ) -> Self:
        """Train on ordered histories.

        Parameters
        ----------
        train
            Each user's items in time order.
        valid
            Each user's next items after ``train`` (same users); enables early stopping on NDCG@10.
        encoder_init
            :meth:`encoder_state` of a model trained elsewhere (any item vocabulary, same ``dim``,
            ``n_layers``, ``n_heads`` and ``max_length``): the encoder starts from it.
        item_init
            ``(n_items, dim)`` initial item embeddings (e.g. projected content features).
        """
        self._validate()
        previous_threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            return self._fit(train, valid, encoder_init, item_init)
        finally:
            torch.set_num_threads(previous_threads)

    def _fit(
        self,
        train: Sequences,
        valid: Sequences | None,
        encoder_init: dict[str, np.ndarray] | None,
        item_init: np.ndarray | None,
    ) -> Self:
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        n_items = train.n_items
        self.n_users_, self.n_items_ = train.n_users, n_items
        self.history_length_ = self.max_length
        module = self._build(n_items)
        if encoder_init is not None:
            self._load_encoder(module, encoder_init)
        if item_init is not None:
            item_init = np.asarray(item_init, dtype=np.float32)
            if item_init.shape != (n_items, self.dim):
                raise ValueError(f"item_init has shape {item_init.shape}, expected {(n_items, self.dim)}")
            with torch.no_grad():
                module.item.weight[1:] = torch.from_numpy(item_init)
        optimizer = torch.optim.Adam(module.parameters(), lr=self.learning_rate, weight_decay=self.l2)

        windows = torch.from_numpy(train.recent(self.max_length + 1) + 1)  # 0 = padding
        windows = windows[(windows > 0).sum(dim=1) >= 2]  # a user needs one transition
        inputs = windows[:, :-1]
        padding = inputs == 0
        targets = [
            (torch.nn.functional.pad(windows[:, gap:], (0, gap - 1), value=0) - 1).masked_fill_(padding, -1)
            for gap in range(1, self.horizon + 1)
        ]  # -1 = nothing to predict (no item ahead, or a padding input)
        weights = [self.horizon_decay**step for step in range(self.horizon)]

        if valid is not None:
            valid_truth = valid.to_csr()
            train_seen = train.to_csr()
            valid_histories = train.recent(self.max_length)
        self.history_: list[dict[str, float]] = []
        best_score, best_state, best_epoch, stale = -np.inf, None, self.epochs, 0
        started = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            module.train()
            order = torch.from_numpy(rng.permutation(len(inputs)))
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                logits = module.logits(module(inputs[batch]))
                loss = sum(
                    weight
                    * nn.functional.cross_entropy(
                        logits.reshape(-1, n_items), target[batch].reshape(-1), ignore_index=-1
                    )
                    for weight, target in zip(weights, targets, strict=True)
                    if (target[batch] >= 0).any()
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            record = {"epoch": epoch, "loss": total / len(order), "seconds": time.perf_counter() - started}
            if valid is not None:
                self.module_ = module
                result = evaluate_ranking(
                    lambda users: self.score_histories(valid_histories[users]),
                    valid_truth,
                    train_seen,
                    metrics=["ndcg"],
                    ks=[10],
                )
                record["valid_ndcg@10"] = score = result.mean()["ndcg@10"]
                if score > best_score:
                    best_score, best_epoch, stale = score, epoch, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    stale += 1
            self.history_.append(record)
            if self.verbose:
                print(
                    " ".join(
                        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
                    )
                )
            if valid is not None and stale >= self.patience:
                break
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.best_epoch_ = best_epoch
        self.best_score_ = float(best_score)
        self.recent_ = train.recent(self.max_length)
        return self

    # -- transfer ----------------------------------------------------------------------------------
    def encoder_state(self) -> dict[str, np.ndarray]:
        """The vocabulary-free sequence encoder's weights (positions, blocks, final norm)."""
        self._check_fitted()
        return {
            key: value.detach().cpu().numpy().copy()
            for key, value in self.module_.state_dict().items()
            if key.startswith(self.encoder_prefixes)
        }

    def _load_encoder(self, module: nn.Module, encoder: dict[str, np.ndarray]) -> None:
        own = {
            key: value for key, value in module.state_dict().items() if key.startswith(self.encoder_prefixes)
        }
        missing = sorted(set(own) - set(encoder))
        wrong = sorted(k for k in own if k in encoder and tuple(encoder[k].shape) != tuple(own[k].shape))
        if missing or wrong:
            raise ValueError(
                "encoder_init does not fit this SASRec (give the source the same dim, n_layers, n_heads and "
                f"max_length): missing {missing[:3]}, shape mismatch {wrong[:3]}"
            )
        module.load_state_dict({key: torch.from_numpy(np.asarray(encoder[key])) for key in own}, strict=False)

    # -- scoring -----------------------------------------------------------------------------------
    def score_histories(self, recent: np.ndarray) -> np.ndarray:
        self._check_fitted()
        recent = np.asarray(recent, dtype=np.int64)[:, -self.max_length :]
        self.module_.eval()
        with torch.no_grad():
            hidden = self.module_(torch.from_numpy(recent + 1))[:, -1]
            return self.module_.logits(hidden).numpy()

    def user_vectors(self) -> np.ndarray | None:
        self._check_fitted()
        with torch.no_grad():
            return self.module_(torch.from_numpy(self.recent_ + 1))[:, -1].numpy()

    def item_vectors(self) -> np.ndarray | None:
        self._check_fitted()
        return self.module_.item.weight[1:].detach().numpy().copy()

    # -- persistence -------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"module.{k}": v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}
        arrays["recent"] = self.recent_
        return arrays

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        module = self._build(self.n_items_)
        module.load_state_dict(
            {
                k.removeprefix("module."): torch.from_numpy(v)
                for k, v in arrays.items()
                if k.startswith("module.")
            }
        )
        module.eval()
        self.module_ = module
        self.recent_ = arrays["recent"]
        self.history_length_ = self.max_length
