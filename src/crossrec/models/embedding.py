"""Shared machinery of models that score by a dot product of user and item embeddings."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.base import Recommender
from crossrec.ranking.topk import FactorScorer
from crossrec.training.trainer import TrainerConfig, TrainingHistory, Validation, train_embedding_model

__all__ = ["EmbeddingInit", "EmbeddingRecommender"]


@dataclass(frozen=True)
class EmbeddingInit:
    """Initial ID-embedding tables supplied by a transfer strategy.

    Attributes
    ----------
    user, item
        ``(n_users, dim)`` / ``(n_items, dim)`` starting tables, or ``None`` for the model's
        own random initialisation.
    transferred_lr_scale
        Learning-rate multiplier for the tables that were supplied (``< 1`` keeps them closer
        to what was learned in the source; ``0`` freezes them).
    state
        Other module parameters by name (e.g. feature towers of a pretrained model); copied
        where the name and shape match, and counted as transferred.
    freeze
        Parameter-name prefixes to freeze (e.g. ``("item_embedding",)`` or ``("user_tower",)``).
    head
        Freeze the whole module and train only a ``dim x dim`` linear head on the user side
        (initialised to the identity).
    """

    user: np.ndarray | None = None
    item: np.ndarray | None = None
    transferred_lr_scale: float = 1.0
    state: Mapping[str, np.ndarray] | None = None
    freeze: tuple[str, ...] = ()
    head: bool = False


class EmbeddingRecommender(Recommender):
    """Base of gradient-trained embedding models (BPR-MF, LightGCN, two-tower).

    Subclasses build the torch module in :meth:`_build_module`; the module has ``user_embedding``
    and ``item_embedding`` tables and ``embeddings() -> (users, items)``.
    """

    history_: TrainingHistory

    def _trainer_config(self) -> TrainerConfig:
        return TrainerConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            l2=self.l2,
            loss=self.loss,
            n_negatives=self.n_negatives,
            patience=self.patience,
            seed=self.seed,
            num_threads=self.num_threads,
            progress=self.progress,
        )

    @abstractmethod
    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        """A fresh torch module for a training matrix of this shape."""

    def fit(
        self,
        train: sp.csr_matrix,
        valid: sp.csr_matrix | None = None,
        *,
        init: EmbeddingInit | None = None,
        description: str | None = None,
        weights: np.ndarray | None = None,
        validation: Validation | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
    ) -> Self:
        """Train with early stopping on ``valid``; ``init`` warm-starts the ID tables.

        Parameters
        ----------
        train, valid
            Binary training and validation matrices (same shape).
        init
            Initial tables from a transfer strategy (see :class:`EmbeddingInit`).
        description
            Progress-bar label.
        weights
            Loss weight per training interaction (CSR order), e.g. for joint training.
        validation
            Custom early-stopping score ``(user_table, item_table) -> float``.
        checkpoint_dir, resume
            Checkpoint folder, and whether to continue from the checkpoint found there.
        """
        train = sp.csr_matrix(train)
        module = self._new_module(train)
        groups = None
        if init is not None:
            groups = _apply_init(module, init, self.learning_rate)
            if init.head:
                module = _HeadModule(module)
                groups = [{"params": list(module.head.parameters())}]
        self.history_ = train_embedding_model(
            module,
            train,
            valid,
            self._trainer_config(),
            parameter_groups=groups,
            description=description or self.name,
            weights=weights,
            validation=validation,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )
        self._module = module
        self._cache_vectors()
        return self

    def _new_module(self, train: sp.csr_matrix) -> nn.Module:
        self.n_users_, self.n_items_ = train.shape
        torch.manual_seed(self.seed)
        return self._build_module(train)

    def build_module(self, train: sp.csr_matrix) -> nn.Module:
        """The seeded, freshly initialised torch module that :meth:`fit` would train on ``train``.

        For trainers outside :meth:`fit` (e.g. :mod:`crossrec.distributed`): train the module,
        then hand it back with :meth:`adopt_module`.
        """
        return self._new_module(sp.csr_matrix(train))

    def adopt_module(self, module: nn.Module) -> Self:
        """Score with ``module`` (from :meth:`build_module`, trained elsewhere); returns ``self``."""
        module.eval()
        self._module = module
        self._cache_vectors()
        return self

    def with_vectors(self, user_vectors: np.ndarray, item_vectors: np.ndarray) -> Self:
        """A fitted copy of this configuration that scores with the given tables.

        Used by transfer strategies that compute the final vectors themselves (e.g. the target
        block of a joint model, or users whose vectors were mapped from a source domain).
        """
        if user_vectors.shape[1] != item_vectors.shape[1]:
            raise ValueError(
                f"user vectors have {user_vectors.shape[1]} dimensions, item vectors {item_vectors.shape[1]}"
            )
        model = self.clone()
        model.n_users_, model.n_items_ = len(user_vectors), len(item_vectors)
        model.user_vectors_ = np.ascontiguousarray(user_vectors, dtype=np.float32)
        model.item_vectors_ = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if hasattr(self, "history_"):
            model.history_ = self.history_
        return model

    def _cache_vectors(self) -> None:
        with torch.no_grad():
            users, items = self._module.embeddings()
        self.user_vectors_ = users.detach().numpy().astype(np.float32, copy=True)
        self.item_vectors_ = items.detach().numpy().astype(np.float32, copy=True)

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_vectors_[np.asarray(users, dtype=np.int64)] @ self.item_vectors_.T

    def scorer(self) -> FactorScorer:
        self._check_fitted()
        return FactorScorer(self.user_vectors_, self.item_vectors_)

    def user_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.user_vectors_

    def item_vectors(self) -> np.ndarray:
        self._check_fitted()
        return self.item_vectors_

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_vectors": self.user_vectors_, "item_vectors": self.item_vectors_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_vectors_ = arrays["user_vectors"]
        self.item_vectors_ = arrays["item_vectors"]


class _HeadModule(nn.Module):
    """A frozen embedding module plus a trainable linear map of its user vectors."""

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base
        for parameter in base.parameters():
            parameter.requires_grad_(False)
        dim = base.user_embedding.weight.shape[1]
        self.head = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(dim))

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        users, items = self.base.embeddings()
        return self.head(users), items


def _apply_init(module: nn.Module, init: EmbeddingInit, learning_rate: float) -> list[dict]:
    transferred: list[nn.Parameter] = []
    for table, values in (("user_embedding", init.user), ("item_embedding", init.item)):
        if values is None:
            continue
        weight: nn.Parameter = getattr(module, table).weight
        if values.shape != tuple(weight.shape):
            raise ValueError(
                f"initial {table} has shape {values.shape}, the model needs {tuple(weight.shape)}"
            )
        with torch.no_grad():
            weight.copy_(torch.as_tensor(values, dtype=weight.dtype))
        transferred.append(weight)
    if init.state:
        for name, parameter in module.named_parameters():
            if name.startswith(("user_embedding.", "item_embedding.")) or name not in init.state:
                continue
            values = np.asarray(init.state[name])
            if values.shape == tuple(parameter.shape):
                with torch.no_grad():
                    parameter.copy_(torch.as_tensor(values, dtype=parameter.dtype))
                transferred.append(parameter)
    for name, parameter in module.named_parameters():
        if init.freeze and name.startswith(tuple(init.freeze)):
            parameter.requires_grad_(False)
    ids = {id(p) for p in transferred}
    rest = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    groups = [{"params": rest}] if rest else []
    if transferred:
        if init.transferred_lr_scale == 0:
            for parameter in transferred:
                parameter.requires_grad_(False)
        else:
            trainable = [p for p in transferred if p.requires_grad]
            if trainable:
                groups.append({"params": trainable, "lr": learning_rate * init.transferred_lr_scale})
    if not groups and not init.head:
        raise ValueError(
            "every parameter is frozen: nothing left to train (check freeze / transferred_lr_scale)"
        )
    return groups
