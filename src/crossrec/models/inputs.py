"""What a fit can take besides the training and validation data: the one hook through which transfer
strategies (and feature-aware models) hand a model initial tables, loss weights, extra rows, feature
tables, a custom validation score or a checkpoint folder.

``model.fit(train, valid)`` is the plain fit every model has; ``model.fit_with(train, valid,
FitInputs(...))`` is the same fit with inputs. Each model lists the inputs it takes in
:attr:`~crossrec.models.base.Recommender.fit_inputs`; any other input given is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    import torch

    from crossrec.features.table import FeatureTable

__all__ = ["EmbeddingInit", "FitInputs"]


@dataclass(frozen=True)
class EmbeddingInit:
    """Initial weights supplied by a transfer strategy.

    Attributes
    ----------
    user, item
        ``(n_users, dim)`` / ``(n_items, dim)`` starting tables, or ``None`` for the model's
        own random initialisation (sequence models: ``item`` only).
    transferred_lr_scale
        Learning-rate multiplier for the tables that were supplied (``< 1`` keeps them closer
        to what was learned in the source; ``0`` freezes them).
    state
        Other module parameters by name: e.g. feature towers of a pretrained model (copied where the
        name and shape match, and counted as transferred), or a sequence model's
        ``encoder_state()`` (which must fit the target model exactly).
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


@dataclass(frozen=True)
class FitInputs:
    """Inputs of :meth:`~crossrec.models.base.Recommender.fit_with`; every field is optional.

    Attributes
    ----------
    init
        Initial weights (embedding and sequence models), see :class:`EmbeddingInit`.
    weights
        Loss weight of each training interaction, in the training matrix's CSR order (e.g. a source
        domain's weight in joint training).
    validation
        Custom early-stopping score ``(user_table, item_table) -> float`` used instead of ranking
        ``valid`` (e.g. to rank only the target block of a joint model); with it, ``valid`` may be
        ``None`` and early stopping still happens.
    extra_rows
        ``(n_extra_users, n_items)`` weighted rows that shape an item-item model's similarities without
        being its users (e.g. source users mapped into the target's item space).
    extra_columns
        ``(n_users, n_extra)`` weighted history columns per user that an item-item model learns and
        scores with (e.g. a linked user's items in a source domain).
    item_features, user_features
        Attribute tables, one row per item / user (the two-tower model).
    checkpoint_dir, resume
        Checkpoint folder of gradient training, and whether to continue from the checkpoint there.
    label
        Progress label (default: the model's name).
    """

    init: EmbeddingInit | None = None
    weights: np.ndarray | None = None
    validation: Callable[[torch.Tensor, torch.Tensor], float] | None = None
    extra_rows: sp.csr_matrix | None = None
    extra_columns: sp.csr_matrix | None = None
    item_features: FeatureTable | None = None
    user_features: FeatureTable | None = None
    checkpoint_dir: str | Path | None = None
    resume: bool = False
    label: str | None = None

    def given(self) -> list[str]:
        """Names of the inputs that are set (not at their defaults)."""
        out = []
        for spec in fields(self):
            value: Any = getattr(self, spec.name)
            if value is not None and value is not False:
                out.append(spec.name)
        return out
