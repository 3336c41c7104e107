"""Two-tower hybrid recommender: each tower fuses an ID embedding with encoded attributes.

``score(u, i) = user_tower(u) . item_tower(i)``. The item tower fuses the item's ID embedding
and its attribute modalities (text, category, tags, numbers, vectors); the user tower fuses the
user's ID embedding and user attributes. Items (or users) never seen in training have no trained
ID embedding: their ID modality is replaced by the tower's learned "missing" vector, so they are
scored zero-shot from their attributes. ID dropout while training teaches the towers to do that.

The fitted encoders, tower weights, encoded inputs and final vectors are saved in safetensors
(JSON metadata travels as a uint8 array); nothing is pickled.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.features.fusion import ID_MODALITY, ModalitySpec, Tower
from crossrec.features.table import (
    EncodedFeatures,
    EncoderOptions,
    FeatureEncoders,
    FeatureSchemaError,
    FeatureTable,
    _json_bytes,
    _json_from_bytes,
)
from crossrec.models.base import register_model
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.gradient import OptimSpec
from crossrec.models.inputs import FitInputs

__all__ = ["TwoTower", "UserRepresentation"]

#: How users of a transferred model are represented (see :meth:`TwoTower.transfer`).
UserRepresentation = Literal["fold_in", "mean", "attributes"]

_SIDES = ("user", "item")


@dataclass
class _SideData:
    """What a tower needs to embed every entity of one side of the model's domain."""

    encoded: EncodedFeatures | None
    known: np.ndarray | None  # ID embedding trained for this row; None: rows are not the tower's IDs

    def tensors(self, n: int) -> dict[str, Any]:
        inputs: dict[str, torch.Tensor] = {}
        present: dict[str, torch.Tensor] = {}
        if self.encoded is not None:
            for column, values in self.encoded.inputs.items():
                inputs[column] = torch.from_numpy(np.array(values))  # a writable copy
                present[column] = torch.from_numpy(np.array(self.encoded.present[column], dtype=bool))
        ids = None if self.known is None else torch.arange(n)
        known = None if self.known is None else torch.from_numpy(np.array(self.known, dtype=bool))
        return {"inputs": inputs, "present": present, "ids": ids, "id_known": known}


class _TwoTowerModule(nn.Module):
    """The trainer's view: ``embeddings() -> (users, items)`` over the whole domain."""

    def __init__(
        self, user_tower: Tower, item_tower: Tower, users: dict[str, Any], items: dict[str, Any]
    ) -> None:
        super().__init__()
        self.user_tower = user_tower
        self.item_tower = item_tower
        self.user_embedding = user_tower.id_embedding
        self.item_embedding = item_tower.id_embedding
        self._users = users
        self._items = items

    def _apply(self, fn: Any, recurse: bool = True) -> Self:
        # the encoded inputs are plain tensors, not buffers: move them with the module (``.to(device)``)
        for inputs in (self._users, self._items):
            for key, value in inputs.items():
                if isinstance(value, torch.Tensor):
                    inputs[key] = fn(value)
                elif isinstance(value, dict):
                    inputs[key] = {name: fn(tensor) for name, tensor in value.items()}
        return super()._apply(fn, recurse)

    def embeddings(self, masked: Collection[str] = ()) -> tuple[torch.Tensor, torch.Tensor]:
        user_masked = {m.split(":", 1)[1] for m in masked if m.startswith("user:")}
        item_masked = {m.split(":", 1)[1] for m in masked if m.startswith("item:")}
        return (
            self.user_tower(**self._users, masked=user_masked),
            self.item_tower(**self._items, masked=item_masked),
        )


@register_model
class TwoTower(EmbeddingRecommender):
    """Two-tower hybrid model: ID embeddings fused with multi-modal attributes.

    Parameters
    ----------
    dim, hidden
        Output size of each tower and hidden size of its fusion.
    fusion
        ``"concat"`` (concatenation + MLP), ``"gated"`` (per-modality gates) or ``"attention"``.
    item_modalities, user_modalities
        Attribute columns to use (``None``: every declared column; ``[]``: none).
    item_ids, user_ids
        Whether the towers have ID embeddings (``False``: attributes only).
    text_encoder, text_dim, log_numbers, category_min_count, max_tags, text_cache_dir
        Encoding of the attributes (see :class:`crossrec.features.EncoderOptions`).
    modality_dropout, id_dropout
        Training-time probability of replacing an attribute modality / the ID by its missing vector.
    id_residual
        Add each tower's ID embedding to its fused output (ID-only towers become MF plus a correction).
    init_std
        Initialisation scale.
    optim
        Optimisation (:class:`~crossrec.training.optim.OptimConfig` or a mapping of its fields); the
        two-tower's defaults: sampled softmax over 16 negatives, ``learning_rate=5e-3``,
        ``batch_size=4096``, ``patience=5``.

    Notes
    -----
    The feature tables come through the fit hook: ``fit_with(train, valid,
    FitInputs(item_features=FeatureTable.from_domain(domain, "item"), user_features=...))``; a plain
    ``fit(train, valid)`` trains ID towers only. Encoders are fitted on the rows of entities that
    have training interactions only.
    """

    name = "two_tower"
    default_optim: ClassVar[dict[str, Any]] = {
        "loss": "softmax", "negatives": 16, "learning_rate": 5e-3, "batch_size": 4096, "patience": 5,
    }  # fmt: skip
    fit_inputs: ClassVar[frozenset[str]] = EmbeddingRecommender.fit_inputs | {
        "item_features",
        "user_features",
    }

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 128,
        fusion: Literal["concat", "gated", "attention"] = "concat",
        item_modalities: Sequence[str] | None = None,
        user_modalities: Sequence[str] | None = None,
        item_ids: bool = True,
        user_ids: bool = True,
        text_encoder: Literal["tfidf", "minilm"] = "tfidf",
        text_dim: int = 64,
        log_numbers: Sequence[str] = (),
        category_min_count: int = 1,
        max_tags: int = 1000,
        text_cache_dir: str | None = None,
        modality_dropout: float = 0.1,
        id_dropout: float = 0.2,
        id_residual: bool = False,
        init_std: float = 0.1,
        optim: OptimSpec = None,
        **flat: Any,
    ) -> None:
        self.dim = dim
        self.hidden = hidden
        self.fusion = fusion
        self.item_modalities = None if item_modalities is None else list(item_modalities)
        self.user_modalities = None if user_modalities is None else list(user_modalities)
        self.item_ids = item_ids
        self.user_ids = user_ids
        self.text_encoder = text_encoder
        self.text_dim = text_dim
        self.log_numbers = list(log_numbers)
        self.category_min_count = category_min_count
        self.max_tags = max_tags
        self.text_cache_dir = text_cache_dir
        self.modality_dropout = modality_dropout
        self.id_dropout = id_dropout
        self.id_residual = id_residual
        self.init_std = init_std
        self._init_optim(optim, flat)
        if not 0 <= modality_dropout < 1 or not 0 <= id_dropout < 1:
            raise ValueError(f"dropout rates must be in [0, 1), got {modality_dropout}, {id_dropout}")

    # -- training --------------------------------------------------------------------------------
    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """Fit encoders on training entities (``inputs.item_features`` / ``user_features``: one row per
        item / user; ``None``: IDs only on that side), then train both towers with early stopping on
        ``valid``; ``inputs.init`` warm-starts the ID tables."""
        self.check_inputs(inputs)
        self._features = {"item": inputs.item_features, "user": inputs.user_features}
        return super().fit_with(train, valid, inputs)

    def build_module(
        self,
        train: sp.csr_matrix,
        *,
        item_features: FeatureTable | None = None,
        user_features: FeatureTable | None = None,
    ) -> nn.Module:
        """The seeded module :meth:`fit` would train (encoders fitted on ``train``'s entities); see
        :meth:`EmbeddingRecommender.build_module`."""
        self._features = {"item": item_features, "user": user_features}
        return super().build_module(train)

    def _encoder_options(self) -> EncoderOptions:
        return EncoderOptions(
            text_encoder=self.text_encoder,
            text_dim=self.text_dim,
            category_min_count=self.category_min_count,
            max_tags=self.max_tags,
            log_numbers=tuple(self.log_numbers),
            text_cache_dir=self.text_cache_dir,
            seed=self.optim.seed,
        )

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        features = getattr(self, "_features", {"item": None, "user": None})
        sizes = {"user": train.shape[0], "item": train.shape[1]}
        seen = {
            "user": np.diff(train.indptr) > 0,
            "item": np.bincount(train.indices, minlength=train.shape[1]) > 0,
        }
        self.encoders_: dict[str, FeatureEncoders | None] = {}
        self.sides_: dict[str, _SideData] = {}
        self.towers_: dict[str, Tower] = {}
        for side in _SIDES:
            table = self._select(features[side], side)
            encoders = None
            encoded = None
            if table is not None:
                if len(table) != sizes[side]:
                    raise FeatureSchemaError(
                        f"{side} features have {len(table)} rows but the training matrix has "
                        f"{sizes[side]} {side}s"
                    )
                encoders = FeatureEncoders.for_table(table, self._encoder_options())
                encoders.fit(table, np.flatnonzero(seen[side]))
                encoded = encoders.transform(table)
            use_ids = self.user_ids if side == "user" else self.item_ids
            self.encoders_[side] = encoders
            self.sides_[side] = _SideData(encoded, seen[side] if use_ids else None)
            self.towers_[side] = self._make_tower(sizes[side] if use_ids else 0, encoders)
        self.user_mode_: str = "tower"
        self.history_matrix_: sp.csr_matrix | None = None
        return self._assemble()

    def _select(self, table: FeatureTable | None, side: str) -> FeatureTable | None:
        columns = self.item_modalities if side == "item" else self.user_modalities
        if table is None:
            if columns:
                raise FeatureSchemaError(
                    f"{side}_modalities={columns} but no {side} features were given to fit()"
                )
            return None
        if columns is not None:
            if not columns:
                return None
            table = table.select(columns)
        return table if table.kinds else None

    def _make_tower(self, n_ids: int, encoders: FeatureEncoders | None) -> Tower:
        specs = _specs(encoders)
        return Tower(
            n_ids,
            specs,
            self.dim,
            self.hidden,
            fusion=self.fusion,
            modality_dropout=self.modality_dropout,
            id_dropout=self.id_dropout,
            init_std=self.init_std,
            id_residual=self.id_residual,
        )

    def _assemble(self) -> _TwoTowerModule:
        return _TwoTowerModule(
            self.towers_["user"],
            self.towers_["item"],
            self.sides_["user"].tensors(self.n_users_),
            self.sides_["item"].tensors(self.n_items_),
        )

    # -- inspection and zero-shot scoring -------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """Modalities of both towers as ``"user:<name>"`` / ``"item:<name>"`` (``"item:id"`` is the ID)."""
        self._check_fitted()
        names = []
        for side in _SIDES:
            tower_names = self.towers_[side].names
            if self.sides_[side].known is None:
                tower_names = [n for n in tower_names if n != ID_MODALITY]
            if side == "user" and not self._user_tower_used():
                continue
            names.extend(f"{side}:{name}" for name in tower_names)
        return names

    def vectors(self, masked: Collection[str] = ()) -> tuple[np.ndarray, np.ndarray]:
        """``(user_vectors, item_vectors)`` recomputed with the ``masked`` modalities treated as missing.

        ``masked`` holds names from :attr:`modalities`, e.g. ``["item:title"]``.
        """
        self._check_fitted()
        unknown = sorted(set(masked) - set(self.modalities))
        if unknown:
            raise ValueError(f"unknown modalities {unknown}; this model has {self.modalities}")
        per_side = {side: {m.split(":", 1)[1] for m in masked if m.startswith(f"{side}:")} for side in _SIDES}
        sizes = {"user": self.n_users_, "item": self.n_items_}
        out: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for side in _SIDES:
                if side == "user" and not self._user_tower_used():
                    continue
                tower = self.towers_[side].eval()
                vectors = tower(**self.sides_[side].tensors(sizes[side]), masked=per_side[side])
                out[side] = vectors.numpy().astype(np.float32)
        if "user" not in out:
            out["user"] = _users_from_history(out["item"], self.history_matrix_, self.user_mode_)
        return out["user"], out["item"]

    def _user_tower_used(self) -> bool:
        return self.user_mode_ in ("tower", "attributes")

    def encode_items(self, features: FeatureTable) -> np.ndarray:
        """Vectors of items from their attributes alone (zero-shot: no ID), e.g. another domain's items."""
        return self._encode("item", features)

    def encode_users(self, features: FeatureTable) -> np.ndarray:
        """Vectors of users from their attributes alone (no ID)."""
        return self._encode("user", features)

    def _encode(self, side: str, features: FeatureTable) -> np.ndarray:
        self._check_fitted()
        encoders = self.encoders_[side]
        if encoders is None:
            raise FeatureSchemaError(
                f"this model's {side} tower uses no attributes, so it cannot encode {side}s by them"
            )
        encoded = encoders.transform(features)
        tower = self.towers_[side].eval()
        with torch.no_grad():
            return tower(**_SideData(encoded, None).tensors(len(features))).numpy().astype(np.float32)

    def user_attribute_kinds(self) -> dict[str, str]:
        """Attribute name -> kind (``"category"``, ``"number"``, ...) that the user tower encodes and
        that :meth:`score_cold_users` accepts; empty when users are not embedded from attributes."""
        self._check_fitted()
        encoders = self.encoders_["user"]
        return {} if encoders is None or not self._user_tower_used() else encoders.kinds

    def score_cold_users(
        self, interactions: sp.csr_matrix, attributes: Sequence[Mapping[str, Any]] | None = None
    ) -> np.ndarray:
        """Scores of users the model was not trained on, from their attributes and/or items.

        This is the cold-start scorer that artifacts and the HTTP service use
        (:class:`crossrec.artifacts.ColdStartModel`). Per user, the first that applies:

        1. attributes, when the user tower encodes attributes (:meth:`user_attribute_kinds`): the tower
           embeds the user from them alone, the ID replaced by its learned missing vector (what ID
           dropout trains); a known attribute the user lacks counts as missing;
        2. items: the user folded in from their items' vectors (the least-squares fit of
           :func:`crossrec.models.fold_in.fold_in_users`; the mean for models transferred with
           ``user_representation="mean"``);
        3. neither: the mean vector of the training users.

        Parameters
        ----------
        interactions
            ``(n_new_users, n_items)`` items each new user interacted with.
        attributes
            One mapping per new user (or ``None``).

        Raises
        ------
        FeatureSchemaError
            For attribute names the user tower does not encode (the message names them, never values).
        FeatureValueError
            For a value its attribute's kind cannot hold (e.g. text for a number).
        """
        self._check_fitted()
        interactions = sp.csr_matrix(interactions, dtype=np.float32)
        n_users = interactions.shape[0]
        if interactions.shape[1] != self.n_items_:
            raise ValueError(f"interactions have {interactions.shape[1]} items, the model {self.n_items_}")
        attributes = [dict(a or {}) for a in attributes] if attributes is not None else [{}] * n_users
        if len(attributes) != n_users:
            raise ValueError(f"{len(attributes)} attribute mappings for {n_users} users")
        kinds = self.user_attribute_kinds()
        users = np.empty((n_users, self.item_vectors_.shape[1]), dtype=np.float32)
        by_attributes = np.array([bool(kinds) and bool(a) for a in attributes], dtype=bool)
        if by_attributes.any():
            unknown = sorted({str(name) for a in attributes for name in a} - set(kinds))
            if unknown:
                raise FeatureSchemaError(
                    f"unknown user attributes {unknown}: this model's user tower encodes {kinds}"
                )
            rows = np.flatnonzero(by_attributes)
            frame = pd.DataFrame(
                {c: pd.Series([attributes[r].get(c) for r in rows], dtype=object) for c in kinds}
            )
            table = FeatureTable(
                frame, kinds, np.array([f"new user {r}" for r in rows], dtype=object), "user"
            )
            users[rows] = self.encode_users(table)
        rest = np.flatnonzero(~by_attributes)
        if len(rest):
            history = interactions[rest]
            has_items = np.diff(history.indptr) > 0
            users[rest] = self.user_vectors_.mean(axis=0)
            if has_items.any():
                mode = "mean" if self.user_mode_ == "mean" else "fold_in"
                users[rest[has_items]] = _users_from_history(self.item_vectors_, history[has_items], mode)
        return users @ self.item_vectors_.T

    def transfer(
        self,
        item_features: FeatureTable,
        train: sp.csr_matrix,
        *,
        user_features: FeatureTable | None = None,
        user_representation: UserRepresentation = "fold_in",
    ) -> TwoTower:
        """A model for another domain whose attributes share this model's schema (zero-shot).

        Target items get item-tower vectors from their attributes alone. Target users are
        represented from their training items (``"fold_in"``: the implicit-ALS user step given the
        item vectors; ``"mean"``: the mean of those item vectors) or from their own attributes
        through the user tower (``"attributes"``). Nothing is trained.

        Parameters
        ----------
        item_features
            Target items' attributes, one row per target item.
        train
            Target users x target items training matrix (used by ``"fold_in"``/``"mean"``).
        user_features
            Target users' attributes (needed by ``"attributes"``).
        user_representation
            ``"fold_in"``, ``"mean"`` or ``"attributes"``.
        """
        self._check_fitted()
        train = sp.csr_matrix(train)
        if item_features is None or len(item_features) != train.shape[1]:
            raise FeatureSchemaError(
                f"target item features must have one row per target item ({train.shape[1]}), "
                f"got {None if item_features is None else len(item_features)}"
            )
        if self.encoders_["item"] is None:
            raise FeatureSchemaError(
                "this model's item tower uses no attributes: it cannot score unseen items"
            )
        target = self.clone()
        target.n_users_, target.n_items_ = train.shape
        target.encoders_ = dict(self.encoders_)
        target.towers_ = dict(self.towers_)
        if hasattr(self, "history_"):
            target.history_ = self.history_
        target.sides_ = {
            "item": _SideData(self.encoders_["item"].transform(item_features), None),
            "user": _SideData(None, None),
        }
        target.user_mode_ = user_representation
        target.history_matrix_ = None
        if user_representation == "attributes":
            if user_features is None or self.encoders_["user"] is None:
                raise FeatureSchemaError(
                    "user_representation='attributes' needs target user features and a user tower "
                    "with attributes"
                )
            if len(user_features) != train.shape[0]:
                raise FeatureSchemaError(
                    f"target user features have {len(user_features)} rows, "
                    f"the target has {train.shape[0]} users"
                )
            target.sides_["user"] = _SideData(self.encoders_["user"].transform(user_features), None)
        elif user_representation in ("fold_in", "mean"):
            target.history_matrix_ = train
        else:
            raise ValueError(
                f"unknown user_representation {user_representation!r}; choose fold_in, mean or attributes"
            )
        target.user_vectors_, target.item_vectors_ = target.vectors()
        return target

    # -- persistence ------------------------------------------------------------------------------
    def _cache_vectors(self) -> None:
        self.user_vectors_, self.item_vectors_ = self.vectors()

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        meta: dict[str, Any] = {"user_mode": self.user_mode_, "sides": {}}
        arrays: dict[str, np.ndarray] = {
            "user_vectors": self.user_vectors_,
            "item_vectors": self.item_vectors_,
        }
        for side in _SIDES:
            encoders, data, tower = self.encoders_[side], self.sides_[side], self.towers_[side]
            meta["sides"][side] = {
                "encoders": None if encoders is None else encoders.config,
                "n_ids": 0 if tower.id_embedding is None else tower.id_embedding.num_embeddings,
                "has_known": data.known is not None,
                "has_inputs": data.encoded is not None,
            }
            if encoders is not None:
                arrays.update({f"encoders.{side}/{k}": v for k, v in encoders.state_arrays().items()})
            arrays.update({f"tower.{side}/{k}": v.detach().numpy() for k, v in tower.state_dict().items()})
            if data.known is not None:
                arrays[f"known.{side}"] = data.known.astype(np.uint8)
            if data.encoded is not None:
                for column in data.encoded.inputs:
                    arrays[f"inputs.{side}/{column}"] = data.encoded.inputs[column]
                    arrays[f"present.{side}/{column}"] = data.encoded.present[column].astype(np.uint8)
        if self.history_matrix_ is not None:
            arrays["history/indptr"] = self.history_matrix_.indptr.astype(np.int64)
            arrays["history/indices"] = self.history_matrix_.indices.astype(np.int64)
            meta["history_shape"] = list(self.history_matrix_.shape)
        arrays["meta/json"] = _json_bytes(meta)
        return arrays

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        meta = _json_from_bytes(arrays["meta/json"])
        self.user_vectors_ = arrays["user_vectors"]
        self.item_vectors_ = arrays["item_vectors"]
        self.user_mode_ = meta["user_mode"]
        self.encoders_, self.sides_, self.towers_ = {}, {}, {}
        for side in _SIDES:
            info = meta["sides"][side]
            encoders = None
            if info["encoders"] is not None:
                prefix = f"encoders.{side}/"
                own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
                encoders = FeatureEncoders.from_state(info["encoders"], own)
            tower = self._make_tower(int(info["n_ids"]), encoders)
            prefix = f"tower.{side}/"
            tower.load_state_dict(
                {k[len(prefix) :]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix)}
            )
            tower.eval()
            encoded = None
            if info["has_inputs"]:
                assert encoders is not None
                encoded = EncodedFeatures(
                    {c: arrays[f"inputs.{side}/{c}"] for c in encoders.columns},
                    {c: arrays[f"present.{side}/{c}"].astype(bool) for c in encoders.columns},
                )
            known = arrays[f"known.{side}"].astype(bool) if info["has_known"] else None
            self.encoders_[side], self.towers_[side], self.sides_[side] = (
                encoders,
                tower,
                _SideData(encoded, known),
            )
        self.history_matrix_ = None
        if "history/indptr" in arrays:
            indices = arrays["history/indices"]
            self.history_matrix_ = sp.csr_matrix(
                (np.ones(len(indices), dtype=np.float32), indices, arrays["history/indptr"]),
                shape=tuple(meta["history_shape"]),
            )


def _specs(encoders: FeatureEncoders | None) -> list[ModalitySpec]:
    if encoders is None:
        return []
    return [ModalitySpec(column, e.output, e.width) for column, e in encoders.encoders.items()]


def _users_from_history(item_vectors: np.ndarray, history: sp.csr_matrix | None, mode: str) -> np.ndarray:
    if history is None:
        raise RuntimeError("this transferred model lost its users' training items")
    if mode == "fold_in":
        from crossrec.models.fold_in import fold_in_users

        return fold_in_users(item_vectors, history)
    counts = np.maximum(np.diff(history.indptr), 1).astype(np.float32)
    return (np.asarray(history @ item_vectors) / counts[:, None]).astype(np.float32)
