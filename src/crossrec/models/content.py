"""Content baselines for items with no interactions: a content kNN and the popularity of a related signal.

* :class:`ContentKNN` scores an item by its mean cosine similarity to the user's training items,
  computed from the items' attributes alone (no interaction of the scored item is needed).
* :class:`TagPopularity` scores an item by the popularity of its tags (e.g. genres), counted in a
  reference domain (a source) or in the training matrix: a popularity that cold items have too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.data.domain import Domain
from crossrec.features.table import EncoderOptions, FeatureEncoders, FeatureTable
from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.popularity import Popularity

__all__ = ["ContentKNN", "TagPopularity", "content_matrix"]


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def _number_bins(values: np.ndarray, present: np.ndarray, fitted: np.ndarray, n_bins: int) -> np.ndarray:
    """One-hot quantile bins (edges from the ``fitted`` rows), so closeness of numbers counts in a cosine."""
    column = values[:, 0] if values.ndim == 2 else values
    reference = column[fitted & present]
    if len(reference) == 0:
        return np.zeros((len(column), 1), dtype=np.float32)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1]))
    codes = np.searchsorted(edges, column, side="right")
    out = np.zeros((len(column), len(edges) + 1), dtype=np.float32)
    out[np.arange(len(column)), codes] = 1.0
    out[~present] = 0.0
    return out


def content_matrix(
    table: FeatureTable,
    fitted_rows: np.ndarray,
    options: EncoderOptions | None = None,
    *,
    n_bins: int = 10,
) -> np.ndarray:
    """``(n, d)`` unit-norm attribute vectors: each modality encoded, scaled to unit norm, concatenated.

    Categories become one-hot rows, tags multi-hot, numbers one-hot quantile bins, text and vectors
    their encoder's rows; encoders are fitted on ``fitted_rows`` only (e.g. the training items).
    Each present modality weighs the same; an entity without any attribute gets the zero vector.
    """
    encoders = FeatureEncoders.for_table(table, options).fit(table, fitted_rows)
    encoded = encoders.transform(table)
    fitted = np.zeros(len(table), dtype=bool)
    fitted[fitted_rows] = True
    blocks = []
    for column, kind in encoders.kinds.items():
        values, present = encoded.inputs[column], encoded.present[column]
        if kind == "category":
            width = int(values.max()) + 1 if len(values) else 1
            block = np.zeros((len(values), width), dtype=np.float32)
            block[np.arange(len(values)), values] = 1.0
            block[:, 0] = 0.0  # the missing / unknown bucket says nothing about similarity
        elif kind == "number":
            block = _number_bins(np.asarray(values, dtype=np.float64), present, fitted, n_bins)
        else:
            block = np.asarray(values, dtype=np.float32).reshape(len(values), -1).copy()
            if kind == "tags":
                block[:, 0] = 0.0
        block[~present] = 0.0
        blocks.append(_unit_rows(block))
    return _unit_rows(np.hstack(blocks)).astype(np.float32)


class _AttributeRecommender(Recommender):
    """A model that needs the items' attribute table (``FitInputs(item_features=...)``)."""

    fit_inputs = frozenset({"item_features"})

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        raise ValueError(
            f"{type(self).__name__} needs item attributes: "
            "fit_with(train, valid, FitInputs(item_features=...))"
        )

    def _item_table(self, inputs: FitInputs, column: str | None = None) -> FeatureTable:
        self.check_inputs(inputs)
        table = inputs.item_features
        if table is None or (column is not None and column not in table.frame.columns):
            wanted = "" if column is None else f" with a column {column!r}"
            raise ValueError(f"{type(self).__name__} needs FitInputs(item_features=...){wanted}")
        return table


class ContentKNN(_AttributeRecommender):
    """Content kNN: ``score(u, i) = mean over the user's training items j of cos(x_i, x_j)``.

    ``x`` are the items' attribute vectors (:func:`content_matrix`), so an item with no interaction
    at all is scored as well as any other. Fit with ``fit_with(train, valid,
    FitInputs(item_features=FeatureTable.from_domain(domain, "item")))``.

    Parameters
    ----------
    columns
        Attribute columns to use (``None``: all declared ones).
    text_encoder, text_dim
        Encoding of text columns (see :class:`~crossrec.features.EncoderOptions`).
    n_bins
        Quantile bins of number columns.
    """

    name = "content_knn"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        text_encoder: Literal["tfidf", "minilm"] = "tfidf",
        text_dim: int = 64,
        n_bins: int = 10,
    ) -> None:
        self.columns = None if columns is None else list(columns)
        self.text_encoder = text_encoder
        self.text_dim = text_dim
        self.n_bins = n_bins

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        table = self._item_table(inputs)
        if self.columns is not None:
            table = table.select(self.columns)
        train = sp.csr_matrix(train, dtype=np.float32)
        self.n_users_, self.n_items_ = train.shape
        if len(table) != self.n_items_:
            raise ValueError(
                f"item features have {len(table)} rows but the training matrix has {self.n_items_} items"
            )
        seen = np.flatnonzero(np.bincount(train.indices, minlength=self.n_items_) > 0)
        options = EncoderOptions(text_encoder=self.text_encoder, text_dim=self.text_dim)
        self.item_vectors_ = content_matrix(table, seen, options, n_bins=self.n_bins)
        train.data[:] = 1.0
        counts = np.asarray(train.sum(axis=1)).ravel()
        profiles = np.asarray(train @ self.item_vectors_)
        self.user_vectors_ = (profiles / np.maximum(counts, 1)[:, None]).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.user_vectors_[np.asarray(users, dtype=np.int64)] @ self.item_vectors_.T

    def user_vectors(self) -> np.ndarray | None:
        return getattr(self, "user_vectors_", None)

    def item_vectors(self) -> np.ndarray | None:
        return getattr(self, "item_vectors_", None)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"user_vectors": self.user_vectors_, "item_vectors": self.item_vectors_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_vectors_ = arrays["user_vectors"]
        self.item_vectors_ = arrays["item_vectors"]


def _tag_lists(values: Sequence[object] | np.ndarray, separator: str) -> pd.Series:
    series = pd.Series(np.asarray(values, dtype=object))
    return series.map(
        lambda value: (
            [str(v) for v in value]
            if isinstance(value, list | tuple | np.ndarray)
            else (
                []
                if value is None or (isinstance(value, float) and np.isnan(value))
                else str(value).split(separator)
            )
        )
    )


class TagPopularity(_AttributeRecommender, Popularity):
    """Popularity through a related signal: an item scores the mean popularity share of its tags.

    A tag's popularity is its share of the interactions of a ``reference`` domain (e.g. a source
    domain's genre popularity) or, without one, of the training matrix. Items with no interaction
    get the score of their tags, so this popularity ranks cold items too. The same list for every user
    (:class:`~crossrec.models.popularity.Popularity`'s scoring, with these scores as the counts).

    Parameters
    ----------
    column
        Item attribute column of tags (a list per item) or of single categories.
    reference
        Domain whose interactions count the tags (it must have the same ``column``); ``None``: the
        training matrix of :meth:`fit_with`.
    separator
        Separator of tags written as one string.
    """

    name = "tag_popularity"

    def __init__(self, column: str, reference: Domain | None = None, separator: str = "|") -> None:
        self.column = column
        self.reference = reference
        self.separator = separator

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        table = self._item_table(inputs, self.column)
        train = sp.csr_matrix(train)
        self.n_users_, self.n_items_ = train.shape
        if self.reference is not None:
            frame = self.reference.item_features
            if frame is None or self.column not in frame.columns:
                raise ValueError(
                    f"reference domain {self.reference.name!r} has no item column {self.column!r}"
                )
            counts = np.bincount(self.reference.interactions.item, minlength=self.reference.n_items)
            reference_tags = _tag_lists(frame[self.column].to_numpy(object), self.separator)
        else:
            counts = np.bincount(train.indices, minlength=self.n_items_)
            reference_tags = _tag_lists(table.frame[self.column].to_numpy(object), self.separator)
        exploded = pd.DataFrame({"tags": reference_tags, "count": counts}).explode("tags").dropna()
        share = exploded.groupby("tags")["count"].sum()
        share = share / max(float(share.sum()), 1.0)
        own = _tag_lists(table.frame[self.column].to_numpy(object), self.separator)
        rows = pd.DataFrame({"item": np.arange(self.n_items_), "tags": own}).explode("tags").dropna()
        rows["share"] = share.reindex(rows["tags"].to_numpy()).fillna(0.0).to_numpy()
        scores = rows.groupby("item")["share"].mean().reindex(np.arange(self.n_items_)).fillna(0.0)
        self.item_counts_ = scores.to_numpy(dtype=np.float32)  # what Popularity scores with
        self.tag_share_ = share
        return self
