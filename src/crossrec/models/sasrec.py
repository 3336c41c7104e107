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
ids: ``target.fit_with(seqs, valid, FitInputs(init=EmbeddingInit(state=source.encoder_state())))``.
``EmbeddingInit(item=...)`` seeds the target's item table, e.g. from course text (a content bridge).
The loop is the shared one of :func:`crossrec.training.loop.run_epochs` (early stopping on
``optim.valid_metric``, checkpoints), configured by ``optim``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from crossrec.models.base import register_model
from crossrec.models.gradient import GradientRecommender, OptimSpec
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.sequences import Sequences, SequentialRecommender
from crossrec.training.loop import EpochStats, ModuleState, TrainingHistory, ranking_validation, run_epochs
from crossrec.training.optim import OptimConfig
from crossrec.training.trainer import build_optimizer

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


class _SequenceTrainer(ModuleState):
    """Epochs of next-item (and ``horizon``-ahead) prediction over every user's recent window."""

    def __init__(
        self, module: nn.Module, train: Sequences, model: SASRec, optim: OptimConfig, rng: np.random.Generator
    ) -> None:
        self.module, self.optim, self.rng, self.n_items = module, optim, rng, train.n_items
        self.optimizer = build_optimizer(list(module.parameters()), optim, weight_decay=optim.l2)
        windows = torch.from_numpy(train.recent(model.max_length + 1) + 1)  # 0 = padding
        windows = windows[(windows > 0).sum(dim=1) >= 2]  # a user needs one transition
        self.inputs = windows[:, :-1]
        padding = self.inputs == 0
        self.targets = [
            (torch.nn.functional.pad(windows[:, gap:], (0, gap - 1), value=0) - 1).masked_fill_(padding, -1)
            for gap in range(1, model.horizon + 1)
        ]  # -1 = nothing to predict (no item ahead, or a padding input)
        self.weights = [model.horizon_decay**step for step in range(model.horizon)]

    def train_epoch(self, epoch: int) -> EpochStats:
        started = time.perf_counter()
        self.module.train()
        order = torch.from_numpy(self.rng.permutation(len(self.inputs)))
        total = 0.0
        for start in range(0, len(order), self.optim.batch_size):
            batch = order[start : start + self.optim.batch_size]
            logits = self.module.logits(self.module(self.inputs[batch])).reshape(-1, self.n_items)
            loss = sum(
                weight * nn.functional.cross_entropy(logits, target[batch].reshape(-1), ignore_index=-1)
                for weight, target in zip(self.weights, self.targets, strict=True)
                if (target[batch] >= 0).any()
            )
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(batch)
        return EpochStats(loss=total, interactions=len(order), seconds=time.perf_counter() - started)


@register_model
class SASRec(SequentialRecommender, GradientRecommender):
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
    horizon, horizon_decay
        Each position also predicts the items up to ``horizon`` steps ahead (see the module docstring).
    optim
        Optimisation (:class:`~crossrec.training.optim.OptimConfig` or a mapping of its fields): one epoch
        is every user's sequence once, ``batch_size`` counts sequences (default 256), ``l2`` is Adam's
        weight decay, the loss a full softmax over the catalogue; early stopping (with ``valid``) watches
        ``valid_metric``; ``progress`` is off by default.
    """

    name = "sasrec"
    #: Parameter-name prefixes of the part of the network that transfers (see :meth:`encoder_state`).
    encoder_prefixes: ClassVar[tuple[str, ...]] = ENCODER_PREFIXES
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"init", "checkpoint_dir", "resume"})
    default_optim: ClassVar[dict[str, Any]] = {"batch_size": 256, "loss": "softmax", "progress": False}
    unused_optim: ClassVar[frozenset[str]] = frozenset({"negatives", "reject_positives"})

    def __init__(
        self,
        dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        max_length: int = 50,
        dropout: float = 0.2,
        horizon: int = 1,
        horizon_decay: float = 0.5,
        optim: OptimSpec = None,
        **flat: Any,
    ) -> None:
        self.dim = dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_length = max_length
        self.dropout = dropout
        self.horizon = horizon
        self.horizon_decay = horizon_decay
        self._init_optim(optim, flat)

    def _unused_reason(self) -> str:
        return "it scores the whole catalogue with a full softmax: there are no sampled negatives"

    def _check_optim(self, optim: OptimConfig) -> None:
        super()._check_optim(optim)
        if optim.loss != "softmax":
            raise ValueError(
                f"{type(self).__name__} trains with a full softmax over the catalogue: "
                f"optim.loss must be 'softmax', got {optim.loss!r}"
            )

    # -- training ----------------------------------------------------------------------------------
    @property
    def best_epoch_(self) -> int:
        """Epoch of the best validation score (the last epoch without validation)."""
        return self.history_.best_epoch

    @property
    def best_score_(self) -> float:
        """Best validation score (``-inf`` without validation)."""
        return float(self.history_.best_score)

    def _validate(self) -> None:
        if self.dim % getattr(self, "n_heads", 1):
            raise ValueError(f"dim ({self.dim}) must be a multiple of n_heads ({self.n_heads})")
        for name in ("dim", "n_layers", "n_heads", "max_length", "horizon"):
            if getattr(self, name, 1) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def _build(self, n_items: int) -> nn.Module:
        return _SASRecModule(n_items, self.dim, self.n_layers, self.n_heads, self.max_length, self.dropout)

    def _fit(self, train: Sequences, valid: Sequences | None, inputs: FitInputs) -> Self:
        """Train on ordered histories; ``valid`` (each user's next items) enables early stopping;
        ``inputs.init`` may carry ``state=`` another model's :meth:`encoder_state` (any item vocabulary,
        same ``dim``, ``n_layers``, ``n_heads`` and ``max_length``) and ``item=`` an ``(n_items, dim)``
        initial item table (e.g. projected content features)."""
        self._validate()
        init = inputs.init
        if init is not None and (
            init.user is not None or init.freeze or init.head or init.transferred_lr_scale != 1
        ):
            raise ValueError(
                f"{type(self).__name__} takes an initial item table and encoder state "
                "(EmbeddingInit(item=..., state=...)) only"
            )
        previous_threads = torch.get_num_threads()
        if self.optim.threads is not None:
            torch.set_num_threads(self.optim.threads)
        try:
            return self._train(train, valid, init, inputs)
        finally:
            torch.set_num_threads(previous_threads)

    def _train(
        self, train: Sequences, valid: Sequences | None, init: EmbeddingInit | None, inputs: FitInputs
    ) -> Self:
        optim = self.optim
        torch.manual_seed(optim.seed)
        rng = np.random.default_rng(optim.seed)
        n_items = train.n_items
        self.n_users_, self.n_items_ = train.n_users, n_items
        self.history_length_ = self.max_length
        module = self._build(n_items)
        if init is not None and init.state is not None:
            self._load_encoder(module, dict(init.state))
        if init is not None and init.item is not None:
            item_init = np.asarray(init.item, dtype=np.float32)
            if item_init.shape != (n_items, self.dim):
                raise ValueError(
                    f"the initial item table has shape {item_init.shape}, expected {(n_items, self.dim)}"
                )
            with torch.no_grad():
                module.item.weight[1:] = torch.from_numpy(item_init)
        trainer = _SequenceTrainer(module, train, self, optim, rng)
        validate = None
        if valid is not None:
            truth, seen, histories = valid.to_csr(), train.to_csr(), train.recent(self.max_length)
            self.module_ = module

            def validate() -> float:
                return ranking_validation(
                    lambda users: self.score_histories(histories[users]), truth, seen, optim
                )

        self.history_: TrainingHistory = run_epochs(
            trainer, optim, validate=validate, label=inputs.label or self.name,
            checkpoint_dir=inputs.checkpoint_dir, resume=inputs.resume,
        )  # fmt: skip
        module.eval()
        self.module_ = module
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
                "the encoder state does not fit this SASRec (give the source the same dim, n_layers, "
                f"n_heads and max_length): missing {missing[:3]}, shape mismatch {wrong[:3]}"
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
