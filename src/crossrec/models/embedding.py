"""Shared machinery of models that score by a dot product of user and item embeddings."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.gradient import GradientRecommender
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.ranking.topk import FactorScorer
from crossrec.training.loop import TrainingHistory
from crossrec.training.trainer import train_embedding_model

__all__ = ["EmbeddingInit", "EmbeddingRecommender"]


class EmbeddingRecommender(GradientRecommender):
    """Base of gradient-trained embedding models (BPR-MF, LightGCN, two-tower).

    Subclasses build the torch module in :meth:`_build_module`; the module has ``user_embedding``
    and ``item_embedding`` tables and ``embeddings() -> (users, items)``. Training reads the model's
    ``optim`` (:class:`~crossrec.training.optim.OptimConfig`).
    """

    fit_inputs: ClassVar[frozenset[str]] = frozenset(
        {"init", "weights", "validation", "checkpoint_dir", "resume"}
    )

    history_: TrainingHistory

    @abstractmethod
    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        """A fresh torch module for a training matrix of this shape."""

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        """Train with early stopping on ``valid`` (``optim.valid_metric``)."""
        return self.fit_with(train, valid, FitInputs())

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """Train with early stopping on ``valid``; ``inputs.init`` warm-starts the tables, ``weights``
        weigh the interactions, ``validation`` replaces the ranking of ``valid``, ``checkpoint_dir`` /
        ``resume`` checkpoint the run (see :class:`~crossrec.models.inputs.FitInputs`)."""
        self.check_inputs(inputs)
        train = sp.csr_matrix(train)
        module = self._new_module(train)
        groups = None
        init = inputs.init
        if init is not None:
            groups = _apply_init(module, init, self.optim.learning_rate)
            if init.head:
                module = _HeadModule(module)
                groups = [{"params": list(module.head.parameters())}]
        self.history_ = train_embedding_model(
            module, train, valid, self.optim, parameter_groups=groups, label=inputs.label or self.name,
            weights=inputs.weights, validation=inputs.validation, checkpoint_dir=inputs.checkpoint_dir,
            resume=inputs.resume,
        )  # fmt: skip
        self._module = module
        self._cache_vectors()
        return self

    def _new_module(self, train: sp.csr_matrix) -> nn.Module:
        self.n_users_, self.n_items_ = train.shape
        torch.manual_seed(self.optim.seed)
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
