"""The loaded, immutable artifact: a model plus everything it needs to recommend on its own."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.artifacts._rerank import RerankSetting, build_stage, diversity_strength
from crossrec.artifacts.errors import ArtifactCapabilityError, ColdStartInputError, UnknownIdError
from crossrec.data.vocabulary import Vocabulary
from crossrec.features.table import FeatureSchemaError
from crossrec.models.base import Recommender
from crossrec.models.fold_in import fold_in_users
from crossrec.models.item_based import ItemSimilarityRecommender
from crossrec.ranking import DEFAULT_TIE_SEED, top_k
from crossrec.ranking import recommend as rank_batch
from crossrec.rerank import Reranker

__all__ = [
    "Artifact",
    "ArtifactMetadata",
    "ColdStartModel",
    "ItemItemModel",
    "RecommendationPath",
    "Recommendations",
]

#: How a list was produced: the model's own user row (``model``), a new user folded in from their
#: items' vectors (``fold_in``), the model's cold-start scorer (``features``), summed item-item
#: rows (``item_item``), cosine over item vectors (``cosine``), or item popularity (``popularity``).
RecommendationPath = Literal["model", "fold_in", "features", "item_item", "cosine", "popularity"]


@runtime_checkable
class ItemItemModel(Protocol):
    """A model that exposes an ``(n_items, n_items)`` item-item similarity matrix (dense or sparse)."""

    def item_similarities(self) -> np.ndarray | sp.spmatrix: ...


@runtime_checkable
class ColdStartModel(Protocol):
    """A model that scores users it was not trained on from their items and/or attributes."""

    def score_cold_users(
        self, interactions: sp.csr_matrix, attributes: list[Mapping[str, Any]] | None
    ) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Recommendations:
    """A ranked list of raw item ids with their scores and the path that produced them.

    Attributes
    ----------
    item_ids, scores
        Best first; at most ``k`` (fewer when fewer items are admissible).
    path
        See :data:`RecommendationPath`.
    ignored_items
        Input item ids the model does not know (cold start only).
    """

    item_ids: list[str]
    scores: list[float]
    path: RecommendationPath
    ignored_items: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """``rank``, ``item_id``, ``score`` columns."""
        return pd.DataFrame(
            {"rank": np.arange(1, len(self.item_ids) + 1), "item_id": self.item_ids, "score": self.scores}
        )


@dataclass(frozen=True, slots=True)
class ArtifactMetadata:
    """What an artifact says about itself (served at ``GET /v1/model``)."""

    artifact_id: str
    path: str | None
    format_version: int
    crossrec_version: str
    created: str
    model: str
    model_params: Mapping[str, Any]
    n_users: int
    n_items: int
    dim: int | None
    bundle_hash: str | None
    encoders: tuple[str, ...]
    capabilities: Mapping[str, Any]
    config: Mapping[str, Any]
    evaluation: Mapping[str, Any]
    #: Where the model came from (``manifest.json``'s ``lineage``; see :mod:`crossrec.artifacts.lineage`).
    lineage: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return {
            "artifact_id": self.artifact_id,
            "path": self.path,
            "format_version": self.format_version,
            "crossrec_version": self.crossrec_version,
            "created": self.created,
            "model": self.model,
            "model_params": dict(self.model_params),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dim": self.dim,
            "bundle_hash": self.bundle_hash,
            "encoders": list(self.encoders),
            "capabilities": dict(self.capabilities),
            "config": dict(self.config),
            "evaluation": dict(self.evaluation),
            "lineage": dict(self.lineage),
        }


# the defaults of fold_in_users, so that serving folds users in exactly as training did
_FOLD_IN_DEFAULTS = inspect.signature(fold_in_users).parameters
_FOLD_IN_REGULARIZATION = float(_FOLD_IN_DEFAULTS["regularization"].default)
_FOLD_IN_UNOBSERVED_WEIGHT = float(_FOLD_IN_DEFAULTS["unobserved_weight"].default)


def item_similarity_matrix(model: Recommender) -> np.ndarray | sp.spmatrix | None:
    """The model's ``(n_items, n_items)`` item-item matrix: ``item_similarities()`` when it has
    one (:class:`ItemItemModel`), the item rows of an EASE/ItemKNN similarity, else ``None``."""
    if isinstance(model, ItemItemModel):
        return model.item_similarities()
    if isinstance(model, ItemSimilarityRecommender):
        return model.similarity_[: model.n_items_]
    return None


def _dense_row(row: np.ndarray | sp.spmatrix) -> np.ndarray:
    return np.asarray(row.toarray() if sp.issparse(row) else row, dtype=np.float32).ravel()


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def _id_positions(vocabulary: Vocabulary) -> dict[str, int]:
    return dict(zip(vocabulary.ids.tolist(), range(len(vocabulary)), strict=True))


class Artifact:
    """A trained model that recommends without its training data.

    Built by :func:`crossrec.artifacts.load_artifact`. Immutable after construction (arrays are
    read-only, attributes cannot be set), so a server can share one instance between concurrent
    requests and replace it atomically by swapping a single reference.

    Parameters
    ----------
    model
        A fitted recommender over ``users`` x ``items``.
    users, items
        The id maps of the model's rows and columns.
    seen
        ``(n_users, n_items)`` binary matrix of each user's training items (for exclude-seen).
    item_popularity
        ``(n_items,)`` training interaction counts (the fallback ranking).
    metadata
        See :class:`ArtifactMetadata` (its ``capabilities`` are filled in from the model).
    encoders
        Fitted feature encoders, by name (optional).
    rerank
        The re-ranking setting the lists were evaluated with (optional): every ``diversity``
        argument re-ranks with its method, ``None`` at its saved strength (see
        :mod:`crossrec.artifacts._rerank`).
    """

    __slots__ = (
        "_cold_scorer",
        "_fold_in_base",
        "_fold_in_items",
        "_item_ids",
        "_item_index",
        "_item_unit",
        "_item_vectors",
        "_rerank",
        "_scorer",
        "_similarities",
        "_stage",
        "_user_index",
        "encoders",
        "item_popularity",
        "items",
        "metadata",
        "model",
        "seen",
        "users",
    )

    def __init__(
        self,
        model: Recommender,
        users: Vocabulary,
        items: Vocabulary,
        seen: sp.csr_matrix,
        item_popularity: np.ndarray,
        metadata: ArtifactMetadata,
        encoders: Mapping[str, object] | None = None,
        rerank: RerankSetting | None = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "model", model)
        set_(self, "users", users)
        set_(self, "items", items)
        seen = sp.csr_matrix(seen, dtype=np.float32)
        for array in (seen.data, seen.indices, seen.indptr):
            array.flags.writeable = False
        set_(self, "seen", seen)
        set_(self, "item_popularity", _read_only(np.asarray(item_popularity, dtype=np.float32)))
        set_(self, "encoders", MappingProxyType(dict(encoders or {})))
        set_(self, "_user_index", _id_positions(users))
        set_(self, "_item_index", _id_positions(items))
        set_(self, "_item_ids", _read_only(items.ids))
        set_(self, "_scorer", model.scorer())  # built once: a factor scorer precomputes its bounds
        vectors = model.item_vectors()
        unit = None
        if vectors is not None:
            vectors = _read_only(np.asarray(vectors, dtype=np.float32))
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            unit = _read_only(np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0))
        set_(self, "_item_vectors", vectors)
        set_(self, "_item_unit", unit)
        fold_items = base = None
        if vectors is not None:
            fold_items = _read_only(vectors.astype(np.float64))
            base = _read_only(
                _FOLD_IN_UNOBSERVED_WEIGHT * (fold_items.T @ fold_items)
                + _FOLD_IN_REGULARIZATION * np.eye(vectors.shape[1])
            )
        set_(self, "_fold_in_items", fold_items)
        set_(self, "_fold_in_base", base)
        similarities = item_similarity_matrix(model)
        set_(self, "_cold_scorer", isinstance(model, ColdStartModel))  # protocol checks are slow: once
        if similarities is not None:
            similarities = (
                sp.csr_matrix(similarities) if sp.issparse(similarities) else _read_only(similarities)
            )
        set_(self, "_similarities", similarities)
        set_(self, "_rerank", rerank)
        set_(self, "_stage", self._build_stage(None) if rerank is not None else None)
        capabilities: dict[str, Any] = {
            "similar_items": self.similar_items_path,
            "cold_start": self.cold_start_paths,
        }
        if rerank is not None:  # the saved re-ranking setting (what `diversity` re-ranks with)
            capabilities["rerank"] = rerank.describe()
        set_(self, "metadata", dataclasses.replace(metadata, capabilities=MappingProxyType(capabilities)))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Artifact is immutable: load a new one instead of setting {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Artifact is immutable")

    def __repr__(self) -> str:
        meta = self.metadata
        return (
            f"Artifact(model={meta.model!r}, users={meta.n_users}, items={meta.n_items}, "
            f"id={meta.artifact_id[:12]})"
        )

    # -- capabilities --------------------------------------------------------------------------
    @property
    def similar_items_path(self) -> RecommendationPath | None:
        """``"cosine"`` (item vectors), ``"item_item"`` (similarity matrix) or ``None``."""
        if self._item_unit is not None:
            return "cosine"
        if self._similarities is not None:
            return "item_item"
        return None

    @property
    def cold_start_paths(self) -> list[RecommendationPath]:
        """The cold-start paths this model supports, most specific first."""
        paths: list[RecommendationPath] = []
        if self._cold_scorer:
            paths.append("features")
        if self._item_vectors is not None:
            paths.append("fold_in")
        if self._similarities is not None:
            paths.append("item_item")
        paths.append("popularity")
        return paths

    @property
    def rerank(self) -> RerankSetting | None:
        """The saved re-ranking setting (``None``: lists are never re-ranked)."""
        return self._rerank

    def _build_stage(self, history_items: np.ndarray | None) -> Reranker:
        """The saved stage over the seen-items index, or over one history of item indices."""
        history = self.seen
        if history_items is not None:
            items = np.asarray(history_items, dtype=np.int64)
            history = sp.csr_matrix(
                (np.ones(len(items), dtype=np.float32), items, np.array([0, len(items)])),
                shape=(1, len(self.items)),
            )
        return build_stage(
            self._rerank,  # type: ignore[arg-type]
            n_items=len(self.items),
            history=history,
            item_popularity=self.item_popularity,
            item_vectors=self._item_vectors,
        )

    def _stage_at(self, diversity: float | None, history_items: np.ndarray | None = None) -> Reranker | None:
        """The stage at the strength asked for (``None``: plain lists); ``history_items`` is the
        history of a user the model does not know (calibration reads it)."""
        strength = diversity_strength(self._rerank, diversity)
        if strength == 0.0:
            return None
        if history_items is not None and self._rerank.config.method == "calibration":  # type: ignore[union-attr]
            return self._build_stage(history_items).with_strength(strength)
        return self._stage.with_strength(strength)  # type: ignore[union-attr]

    def _tie_seed(self, stage: Reranker | None) -> int:
        """Re-ranked lists break ties as the evaluation did (its seed is saved with the setting)."""
        return DEFAULT_TIE_SEED if stage is None or self._rerank is None else self._rerank.seed

    def _reranked(
        self,
        stage: Reranker,
        scores: np.ndarray,
        k: int,
        exclude: np.ndarray,
        path: RecommendationPath,
        ignored: list[str] | None = None,
    ) -> Recommendations:
        """One re-ranked list from dense ``scores``, never recommending the item indices ``exclude``."""
        exclude = np.unique(np.asarray(exclude, dtype=np.int64))
        row = sp.csr_matrix(
            (np.ones(len(exclude), dtype=np.float32), exclude, np.array([0, len(exclude)])),
            shape=(1, len(self.items)),
        )
        best, values = stage.rerank_scores(
            np.asarray(scores, dtype=np.float32)[None, :], k, row, users=np.zeros(1, np.int64),
            seed=self._tie_seed(stage),
        )  # fmt: skip
        return self._as_recommendations(best[0], values[0], path, ignored)

    def has_user(self, user_id: str) -> bool:
        return str(user_id) in self._user_index

    def has_item(self, item_id: str) -> bool:
        return str(item_id) in self._item_index

    # -- lookups -------------------------------------------------------------------------------
    def _user(self, user_id: str) -> int:
        try:
            return self._user_index[str(user_id)]
        except KeyError:
            raise UnknownIdError(
                "user", str(user_id), "for a new user, recommend from their items (recommend_cold)"
            ) from None

    def _item(self, item_id: str) -> int:
        try:
            return self._item_index[str(item_id)]
        except KeyError:
            raise UnknownIdError("item", str(item_id)) from None

    def _ranked(
        self,
        scores: np.ndarray,
        k: int,
        path: RecommendationPath,
        ignored: list[str] | None = None,
        user: int | None = None,
    ) -> Recommendations:
        best, values = top_k(scores, k, users=None if user is None else np.array([user]))
        return self._as_recommendations(best, values, path, ignored)

    def _as_recommendations(
        self, best: np.ndarray, values: np.ndarray, path: RecommendationPath, ignored: list[str] | None
    ) -> Recommendations:
        keep = best >= 0
        return Recommendations(
            item_ids=self._item_ids[best[keep]].tolist(),
            scores=values[keep].astype(np.float64).tolist(),
            path=path,
            ignored_items=ignored or [],
        )

    @staticmethod
    def _check_k(k: int) -> int:
        if not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        return int(k)

    # -- recommending --------------------------------------------------------------------------
    def recommend(
        self, user_id: str, k: int = 10, exclude_seen: bool = True, diversity: float | None = None
    ) -> Recommendations:
        """Top-``k`` items for a user the model was trained on.

        ``diversity`` in ``[0, 1]`` re-ranks with the saved setting at that strength (``0``: the
        plain list; ``None``: the saved strength, 0 without a setting).

        Raises
        ------
        UnknownIdError
            The user is not in the model (use :meth:`recommend_cold`).
        ArtifactCapabilityError
            ``diversity > 0`` and the artifact has no re-ranking setting.
        """
        k = self._check_k(k)
        stage = self._stage_at(diversity)
        users = np.array([self._user(user_id)])
        exclude = self.seen[users] if exclude_seen else None
        rank = rank_batch if stage is None else stage.recommend
        best, values = rank(
            self._scorer, users, k, exclude, n_items=len(self.items), seed=self._tie_seed(stage)
        )
        return self._as_recommendations(best[0], values[0], "model", None)

    def recommend_batch(
        self,
        user_ids: Iterable[str],
        k: int = 10,
        exclude_seen: bool = True,
        batch_size: int = 1024,
        diversity: float | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` for many users at once, scored in blocks.

        Users the model does not know get the popularity ranking (never re-ranked); ``diversity`` as
        in :meth:`recommend`.

        Returns
        -------
        DataFrame
            One row per recommendation: ``user_id``, ``rank`` (1 = best), ``item_id``, ``score``,
            ``path`` (``"model"`` or ``"popularity"``).
        """
        k = self._check_k(k)
        stage = self._stage_at(diversity)
        raw = pd.Index(np.asarray(list(user_ids), dtype=object)).astype(str)
        positions = self.users.index(raw.to_numpy(), missing="minus_one")
        indices = np.full((len(raw), min(k, len(self.items))), -1, dtype=np.int64)
        values = np.full(indices.shape, np.nan, dtype=np.float32)
        known = np.flatnonzero(positions >= 0)
        if len(known):
            users = positions[known]
            rank = rank_batch if stage is None else stage.recommend
            best, scores = rank(
                self._scorer,
                users,
                indices.shape[1],
                self.seen[users] if exclude_seen else None,
                n_items=len(self.items),
                batch_size=batch_size,
                seed=self._tie_seed(stage),
            )
            indices[known], values[known] = best, np.where(best >= 0, scores, np.nan)
        unknown = np.flatnonzero(positions < 0)
        if len(unknown):
            best, scores = top_k(self.item_popularity, indices.shape[1])
            indices[unknown], values[unknown] = best, np.where(best >= 0, scores, np.nan)
        rank = np.broadcast_to(np.arange(1, indices.shape[1] + 1), indices.shape)
        keep = (indices >= 0).ravel()
        path = np.where(positions >= 0, "model", "popularity")
        return pd.DataFrame(
            {
                "user_id": np.repeat(raw.to_numpy(), indices.shape[1])[keep],
                "rank": rank.ravel()[keep].astype(np.int32),
                "item_id": self.items.lookup(indices.ravel()[keep]),
                "score": values.ravel()[keep],
                "path": np.repeat(path, indices.shape[1])[keep],
            }
        )

    def recommend_cold(
        self,
        item_ids: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        diversity: float | None = None,
    ) -> Recommendations:
        """Top-``k`` for a user the model was not trained on.

        The first path that applies is used: the model's own cold-start scorer (``features``,
        models implementing :class:`ColdStartModel`), folding the user in from their items'
        vectors (``fold_in``, embedding models, see
        :func:`crossrec.models.fold_in.fold_in_users`), summing the item-item rows of their
        items (``item_item``), and item popularity (``popularity``) when nothing else applies.

        Parameters
        ----------
        item_ids
            Raw ids of items the user interacted with; ids the model does not know are ignored and
            reported in :attr:`Recommendations.ignored_items`.
        attributes
            User attributes (used only by models with a cold-start scorer).
        k
            List length.
        exclude_seen
            Leave the given items out of the list.
        diversity
            As in :meth:`recommend`; calibration follows the given items' category mix.
        """
        k = self._check_k(k)
        raw = [str(item) for item in item_ids]
        # a request holds at most a few thousand ids: dict look-ups beat a vectorised index here
        positions = np.fromiter(
            (self._item_index.get(item, -1) for item in raw), dtype=np.int64, count=len(raw)
        )
        ignored = [item for item, position in zip(raw, positions, strict=True) if position < 0]
        known = np.unique(positions[positions >= 0])
        scores: np.ndarray | None = None
        path: RecommendationPath = "popularity"
        if self._cold_scorer and (len(known) or attributes):
            row = sp.csr_matrix(
                (np.ones(len(known), dtype=np.float32), known, np.array([0, len(known)])),
                shape=(1, len(self.items)),
            )
            scores, path = self._score_cold(row, dict(attributes or {})), "features"
        elif len(known) and self._item_vectors is not None:
            scores, path = self._item_vectors @ self.fold_in(known), "fold_in"
        elif len(known) and self._similarities is not None:
            scores, path = _dense_row(self._similarities[known].sum(axis=0)), "item_item"
        scores = np.array(self.item_popularity if scores is None else scores, dtype=np.float32)
        stage = self._stage_at(diversity, history_items=known)
        if stage is not None:
            return self._reranked(stage, scores, k, known if exclude_seen else known[:0], path, ignored)
        if exclude_seen and len(known):
            scores[known] = -np.inf
        return self._ranked(scores, k, path, ignored)

    def _score_cold(self, row: sp.csr_matrix, attributes: dict[str, Any]) -> np.ndarray:
        """The model's cold-start scores; bad attributes become :class:`ColdStartInputError`, whose
        message names attributes and kinds but never echoes a value."""
        try:
            return self.model.score_cold_users(row, [attributes])[0]
        except FeatureSchemaError as error:
            raise ColdStartInputError(str(error)) from error
        except ValueError as error:
            kinds = getattr(self.model, "user_attribute_kinds", dict)()
            raise ColdStartInputError(
                f"the user attributes could not be encoded: a value does not fit its attribute's kind "
                f"(this model encodes {kinds})"
            ) from error

    def fold_in(self, items: np.ndarray) -> np.ndarray:
        """The vector of a new user who interacted with the item indices ``items``.

        The single-user case of :func:`crossrec.models.fold_in.fold_in_users` (same
        objective, same defaults), with the ``items x items`` Gram term computed once at load.
        """
        if self._fold_in_base is None:
            raise ArtifactCapabilityError(
                f"model {self.metadata.model!r} has no item vectors to fold users in"
            )
        vectors = self._fold_in_items[np.asarray(items, dtype=np.int64)]
        gram = self._fold_in_base + vectors.T @ vectors
        return np.linalg.solve(gram, vectors.sum(axis=0)).astype(np.float32)

    def similar_items(self, item_id: str, k: int = 10, diversity: float | None = None) -> Recommendations:
        """The ``k`` items most similar to ``item_id`` (itself excluded).

        Cosine similarity of item vectors for embedding models; the model's item-item row for
        item-item models. ``diversity`` as in :meth:`recommend` (calibration follows the item's
        own category).

        Raises
        ------
        UnknownIdError
            The item is not in the model.
        ArtifactCapabilityError
            The model has neither item vectors nor item-item similarities.
        """
        k = self._check_k(k)
        stage = self._stage_at(diversity, history_items=np.array([self._item(item_id)]))
        item = self._item(item_id)
        if self._item_unit is not None:
            scores, path = self._item_unit @ self._item_unit[item], "cosine"
        elif self._similarities is not None:
            scores, path = _dense_row(self._similarities[item]), "item_item"
        else:
            raise ArtifactCapabilityError(
                f"model {self.metadata.model!r} has no item vectors and no item-item similarities, so it "
                "cannot find similar items: save an embedding model (e.g. bpr_mf) or an item-item model"
            )
        if stage is not None:
            return self._reranked(stage, scores, k, np.array([item]), path)
        scores = np.array(scores, dtype=np.float32)
        scores[item] = -np.inf
        return self._ranked(scores, k, path)

    @property
    def path(self) -> Path | None:
        """Folder the artifact was loaded from."""
        return Path(self.metadata.path) if self.metadata.path else None
