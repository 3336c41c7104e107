"""Encoders that turn one attribute column into numeric model inputs.

Every encoder is fitted on training rows only and then transforms any rows with the same
schema (other items of the domain, items never seen in training, items of another domain).
Its learned state is a JSON-able ``config`` plus named numpy arrays (``state_arrays``), so a
model saves it in safetensors + JSON, never with pickle; :func:`encoder_from_state` restores it.

Outputs come in two shapes, read by the towers in :mod:`crossrec.features.fusion`:

* ``"index"``: ``(n,)`` int64 codes into an embedding table of ``width`` rows (category);
* ``"dense"``: ``(n, width)`` float32 rows fed to a small projection (tags, number, text, vector).

``present(values)`` says which rows carry the modality at all; absent rows get the tower's
learned "missing" vector instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd

__all__ = [
    "ENCODERS",
    "KINDS",
    "CategoryEncoder",
    "FeatureEncoder",
    "FeatureValueError",
    "NumberEncoder",
    "TagsEncoder",
    "VectorEncoder",
    "encoder_from_state",
    "register_encoder",
]

#: Attribute kinds a column can be declared as (``Domain.*_feature_kinds`` values).
KINDS: tuple[str, ...] = ("category", "tags", "number", "text", "vector")

#: Encoder name -> class, filled by :func:`register_encoder`.
ENCODERS: dict[str, type[FeatureEncoder]] = {}


class FeatureValueError(ValueError):
    """A column's values do not fit the modality it was declared as.

    Attributes
    ----------
    rows
        Positions of (some of) the offending rows, so callers can name entity ids.
    """

    def __init__(self, message: str, rows: Sequence[int] | np.ndarray = ()) -> None:
        super().__init__(message)
        self.rows = np.asarray(rows, dtype=np.int64)


def register_encoder(cls: type[FeatureEncoder]) -> type[FeatureEncoder]:
    """Class decorator: make an encoder restorable by its ``encoder`` name."""
    ENCODERS[cls.encoder] = cls
    return cls


def encoder_from_state(config: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeatureEncoder:
    """Rebuild a fitted encoder from its ``config`` and ``state_arrays()``."""
    name = config.get("encoder")
    if name not in ENCODERS:
        raise ValueError(f"unknown feature encoder {name!r}; known: {sorted(ENCODERS)}")
    return ENCODERS[name]._from_state(config, arrays)


def _is_missing_scalar(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _as_object_array(values: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object)
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


class FeatureEncoder(ABC):
    """One attribute column -> model inputs (see the module docstring for the two output shapes)."""

    #: Attribute kind this encoder handles (one of :data:`KINDS`).
    kind: ClassVar[str]
    #: Registry name (``"category"``, ``"tfidf"``, ``"minilm"``, ...).
    encoder: ClassVar[str]
    #: ``"index"`` (codes into an embedding table) or ``"dense"`` (float rows).
    output: ClassVar[Literal["index", "dense"]]

    @abstractmethod
    def fit(self, values: Sequence[Any]) -> Self:
        """Learn the encoding from training rows; returns ``self``."""

    @abstractmethod
    def transform(self, values: Sequence[Any]) -> np.ndarray:
        """Encode rows: ``(n,)`` int64 for ``"index"``, ``(n, width)`` float32 for ``"dense"``."""

    @abstractmethod
    def present(self, values: Sequence[Any]) -> np.ndarray:
        """``(n,)`` bool: rows that carry this modality."""

    @property
    @abstractmethod
    def width(self) -> int:
        """Embedding-table rows (``"index"``) or input columns (``"dense"``)."""

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able options and small fitted metadata (vocabularies), with ``encoder`` and ``kind``."""
        return {"encoder": self.encoder, "kind": self.kind, **self._options(), **self._fitted_config()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Fitted numeric state as named arrays (may be empty)."""
        return {}

    def _options(self) -> dict[str, Any]:
        return {}

    def _fitted_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    @abstractmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> FeatureEncoder: ...

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() on training rows first")

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self._options().items())
        return f"{type(self).__name__}({options})"


@register_encoder
class CategoryEncoder(FeatureEncoder):
    """A single categorical value per row -> a code into an embedding table.

    Code 0 is the shared bucket for missing values and for values never seen in training (or
    seen fewer than ``min_count`` times); known values get codes ``1..K`` in sorted order.
    """

    kind = "category"
    encoder = "category"
    output = "index"

    def __init__(self, min_count: int = 1) -> None:
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        self.min_count = min_count

    def _strings(self, values: Sequence[Any]) -> np.ndarray:
        array = _as_object_array(values)
        is_list = np.fromiter((isinstance(v, list | tuple | np.ndarray) for v in array), bool, len(array))
        if is_list.any():
            raise FeatureValueError(
                "a column declared 'category' holds lists of values; declare it 'tags' instead",
                np.flatnonzero(is_list)[:5],
            )
        missing = np.fromiter((_is_missing_scalar(v) for v in array), bool, len(array))
        strings = pd.Series(array).astype(str).str.strip().to_numpy(dtype=object)
        strings[missing] = ""
        return strings

    def fit(self, values: Sequence[Any]) -> Self:
        strings = self._strings(values)
        counts = pd.Series(strings[strings != ""]).value_counts()
        self.categories_ = np.sort(counts.index[counts >= self.min_count].to_numpy(dtype=object)).astype(str)
        self._lookup = pd.Index(self.categories_)
        self.fitted_ = True
        return self

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        codes = self._lookup.get_indexer(self._strings(values)).astype(np.int64)
        return codes + 1  # -1 (unknown or missing) -> bucket 0

    def present(self, values: Sequence[Any]) -> np.ndarray:
        return self._strings(values) != ""

    @property
    def width(self) -> int:
        self._check_fitted()
        return len(self.categories_) + 1

    def _options(self) -> dict[str, Any]:
        return {"min_count": self.min_count}

    def _fitted_config(self) -> dict[str, Any]:
        return {"categories": self.categories_.tolist()} if getattr(self, "fitted_", False) else {}

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> CategoryEncoder:
        encoder = cls(min_count=config["min_count"])
        encoder.categories_ = np.asarray(config["categories"], dtype=str)
        encoder._lookup = pd.Index(encoder.categories_)
        encoder.fitted_ = True
        return encoder


@register_encoder
class TagsEncoder(FeatureEncoder):
    """A set of tags per row (e.g. genres) -> the mean of the tags' embeddings.

    The output is a row-normalised multi-hot matrix; the tower multiplies it by a tag embedding
    table, which is exactly the mean of the row's tag embeddings. Column 0 is the shared bucket
    for tags never seen in training; the ``max_tags`` most frequent training tags get their own.
    A row may be a list/tuple/array of strings or one string split on ``separator``.
    """

    kind = "tags"
    encoder = "tags"
    output = "dense"

    def __init__(self, max_tags: int = 1000, min_count: int = 1, separator: str = "|") -> None:
        if max_tags < 1 or min_count < 1:
            raise ValueError(f"max_tags and min_count must be at least 1, got {max_tags}, {min_count}")
        self.max_tags = max_tags
        self.min_count = min_count
        self.separator = separator

    def _lists(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Flattened ``(row, tag)`` pairs."""
        rows: list[np.ndarray] = []
        tags: list[Any] = []
        for position, value in enumerate(_as_object_array(values)):
            if isinstance(value, str):
                items = [t.strip() for t in value.split(self.separator)]
            elif isinstance(value, list | tuple | np.ndarray):
                items = [str(t).strip() for t in value]
            elif _is_missing_scalar(value):
                items = []
            else:
                raise FeatureValueError(
                    f"a column declared 'tags' holds a {type(value).__name__} ({value!r}); expected a list "
                    f"of strings or a {self.separator!r}-separated string",
                    [position],
                )
            items = [t for t in items if t]
            tags.extend(items)
            rows.append(np.full(len(items), position, dtype=np.int64))
        row_array = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return row_array, np.asarray(tags, dtype=object)

    def fit(self, values: Sequence[Any]) -> Self:
        _, tags = self._lists(values)
        counts = pd.Series(tags, dtype=object).value_counts()
        counts = counts[counts >= self.min_count]
        # most frequent first, ties by name, so the vocabulary is reproducible
        ordered = sorted(counts.items(), key=lambda pair: (-pair[1], str(pair[0])))[: self.max_tags]
        self.tags_ = np.asarray(sorted(str(tag) for tag, _ in ordered), dtype=str)
        self._lookup = pd.Index(self.tags_)
        self.fitted_ = True
        return self

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        rows, tags = self._lists(values)
        n = len(values)
        columns = self._lookup.get_indexer(tags.astype(str)) + 1 if len(tags) else np.zeros(0, np.int64)
        out = np.zeros((n, self.width), dtype=np.float32)
        np.add.at(out, (rows, columns), 1.0)
        out = np.minimum(out, 1.0)  # a tag listed twice counts once
        totals = out.sum(axis=1, keepdims=True)
        return np.divide(out, totals, out=out, where=totals > 0)

    def present(self, values: Sequence[Any]) -> np.ndarray:
        rows, _ = self._lists(values)
        return np.bincount(rows, minlength=len(values)) > 0

    @property
    def width(self) -> int:
        self._check_fitted()
        return len(self.tags_) + 1

    def _options(self) -> dict[str, Any]:
        return {"max_tags": self.max_tags, "min_count": self.min_count, "separator": self.separator}

    def _fitted_config(self) -> dict[str, Any]:
        return {"tags": self.tags_.tolist()} if getattr(self, "fitted_", False) else {}

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> TagsEncoder:
        encoder = cls(
            max_tags=config["max_tags"], min_count=config["min_count"], separator=config["separator"]
        )
        encoder.tags_ = np.asarray(config["tags"], dtype=str)
        encoder._lookup = pd.Index(encoder.tags_)
        encoder.fitted_ = True
        return encoder


@register_encoder
class NumberEncoder(FeatureEncoder):
    """A number per row -> ``[standardised value, missing indicator]``.

    With ``log=True`` values are ``log1p``-transformed first (they must be >= 0). Mean and
    standard deviation come from the training rows; missing values encode as ``[0, 1]``.
    """

    kind = "number"
    encoder = "number"
    output = "dense"

    def __init__(self, log: bool = False) -> None:
        self.log = log

    def _numbers(self, values: Sequence[Any]) -> np.ndarray:
        array = _as_object_array(values)
        is_list = np.fromiter((isinstance(v, list | tuple | np.ndarray) for v in array), bool, len(array))
        if is_list.any():
            raise FeatureValueError(
                "a column declared 'number' holds lists; declare it 'vector' (or 'tags')",
                np.flatnonzero(is_list)[:5],
            )
        numbers = pd.to_numeric(pd.Series(array), errors="coerce").to_numpy(dtype=np.float64)
        missing_input = np.fromiter((_is_missing_scalar(v) for v in array), bool, len(array))
        unparsed = np.isnan(numbers) & ~missing_input
        if unparsed.any():
            rows = np.flatnonzero(unparsed)[:5]
            raise FeatureValueError(
                f"a column declared 'number' holds values that are not numbers, e.g. {array[rows[0]]!r}; "
                "declare it 'category' or 'text', or clean it",
                rows,
            )
        if np.isinf(numbers).any():
            raise FeatureValueError(
                "a column declared 'number' holds infinite values", np.flatnonzero(np.isinf(numbers))[:5]
            )
        if self.log:
            negative = numbers < 0
            if negative.any():
                raise FeatureValueError(
                    "log=True needs non-negative numbers; found negative ones", np.flatnonzero(negative)[:5]
                )
            numbers = np.log1p(numbers)
        return numbers

    def fit(self, values: Sequence[Any]) -> Self:
        numbers = self._numbers(values)
        known = numbers[~np.isnan(numbers)]
        self.mean_ = float(known.mean()) if len(known) else 0.0
        std = float(known.std()) if len(known) else 1.0
        self.std_ = std if std > 0 else 1.0
        self.fitted_ = True
        return self

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        numbers = self._numbers(values)
        missing = np.isnan(numbers)
        scaled = np.where(missing, 0.0, (numbers - self.mean_) / self.std_)
        return np.stack([scaled, missing.astype(np.float64)], axis=1).astype(np.float32)

    def present(self, values: Sequence[Any]) -> np.ndarray:
        return ~np.isnan(self._numbers(values))

    @property
    def width(self) -> int:
        return 2

    def _options(self) -> dict[str, Any]:
        return {"log": self.log}

    def _fitted_config(self) -> dict[str, Any]:
        return {"mean": self.mean_, "std": self.std_} if getattr(self, "fitted_", False) else {}

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> NumberEncoder:
        encoder = cls(log=config["log"])
        encoder.mean_, encoder.std_ = float(config["mean"]), float(config["std"])
        encoder.fitted_ = True
        return encoder


@register_encoder
class VectorEncoder(FeatureEncoder):
    """A precomputed embedding per row (e.g. image features) -> the standardised vector.

    Rows are float sequences of one common length, or missing (``None``/NaN scalar). Vectors of
    other lengths and vectors containing NaN are errors that name the rows.
    """

    kind = "vector"
    encoder = "vector"
    output = "dense"

    def __init__(self, standardize: bool = True) -> None:
        self.standardize = standardize

    def _matrix(self, values: Sequence[Any], expected: int | None) -> tuple[np.ndarray, np.ndarray]:
        array = _as_object_array(values)
        present = np.fromiter((not (np.isscalar(v) or v is None) for v in array), bool, len(array))
        scalars = ~present & ~np.fromiter((_is_missing_scalar(v) for v in array), bool, len(array))
        if scalars.any():
            raise FeatureValueError(
                f"a column declared 'vector' holds scalars such as {array[np.flatnonzero(scalars)[0]]!r}; "
                "declare it 'number' or 'category'",
                np.flatnonzero(scalars)[:5],
            )
        lengths = np.fromiter(
            (len(v) if p else -1 for v, p in zip(array, present, strict=True)), np.int64, len(array)
        )
        if expected is None:
            known = lengths[present]
            expected = int(np.bincount(known).argmax()) if len(known) else 0
        wrong = present & (lengths != expected)
        if wrong.any():
            rows = np.flatnonzero(wrong)[:5]
            raise FeatureValueError(
                f"vectors must all have length {expected}; "
                f"found lengths {sorted(set(lengths[wrong].tolist()))[:5]}",
                rows,
            )
        matrix = np.zeros((len(array), expected), dtype=np.float64)
        if present.any():
            try:
                matrix[present] = np.stack([np.asarray(v, dtype=np.float64) for v in array[present]])
            except (TypeError, ValueError) as error:
                raise FeatureValueError(
                    f"vectors must hold numbers: {error}", np.flatnonzero(present)[:5]
                ) from None
        bad = present & ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            raise FeatureValueError("vectors contain NaN or infinite values", np.flatnonzero(bad)[:5])
        return matrix, present

    def fit(self, values: Sequence[Any]) -> Self:
        matrix, present = self._matrix(values, None)
        if not present.any():
            raise FeatureValueError("a column declared 'vector' has no vector in the training rows")
        known = matrix[present]
        self.dim_ = matrix.shape[1]
        self.mean_ = (
            known.mean(axis=0).astype(np.float32) if self.standardize else np.zeros(self.dim_, np.float32)
        )
        std = known.std(axis=0) if self.standardize else np.ones(self.dim_)
        self.std_ = np.where(std > 0, std, 1.0).astype(np.float32)
        self.fitted_ = True
        return self

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        matrix, present = self._matrix(values, self.dim_)
        out = ((matrix - self.mean_) / self.std_).astype(np.float32)
        out[~present] = 0.0
        return out

    def present(self, values: Sequence[Any]) -> np.ndarray:
        array = _as_object_array(values)
        return np.fromiter((not (np.isscalar(v) or v is None) for v in array), bool, len(array))

    @property
    def width(self) -> int:
        self._check_fitted()
        return self.dim_

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {"mean": self.mean_, "std": self.std_}

    def _options(self) -> dict[str, Any]:
        return {"standardize": self.standardize}

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> VectorEncoder:
        encoder = cls(standardize=config["standardize"])
        encoder.mean_ = np.asarray(arrays["mean"], dtype=np.float32)
        encoder.std_ = np.asarray(arrays["std"], dtype=np.float32)
        encoder.dim_ = len(encoder.mean_)
        encoder.fitted_ = True
        return encoder
