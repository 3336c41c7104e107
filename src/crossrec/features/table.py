"""Feature tables (one row per user or item, columns tagged with a modality) and the set of
encoders fitted on one, which turns any table with the same schema into model inputs.

Two domains whose attributes share a schema (same column names and kinds) can use one fitted
:class:`FeatureEncoders`: that is how a model trained on the source scores target items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from crossrec.data.domain import Domain
from crossrec.data.vocabulary import Vocabulary
from crossrec.features.encoders import (
    KINDS,
    CategoryEncoder,
    FeatureEncoder,
    FeatureValueError,
    NumberEncoder,
    TagsEncoder,
    VectorEncoder,
    encoder_from_state,
)
from crossrec.features.text import SentenceEncoder, TfidfTextEncoder

__all__ = [
    "EncodedFeatures",
    "EncoderOptions",
    "FeatureEncoders",
    "FeatureSchemaError",
    "FeatureTable",
    "make_encoder",
    "vectors_from_npy",
    "vectors_from_parquet",
]


class FeatureSchemaError(ValueError):
    """A feature table does not match the schema the encoders were fitted on, or is malformed."""


@dataclass(frozen=True)
class FeatureTable:
    """Attributes of the users or items of one domain.

    Attributes
    ----------
    frame
        One row per entity, in vocabulary order.
    kinds
        Column -> modality (``"category"``, ``"tags"``, ``"number"``, ``"text"``, ``"vector"``);
        only these columns are used.
    ids
        Raw entity ids, row-aligned, used to name rows in error messages.
    side
        ``"item"`` or ``"user"``, for messages.
    """

    frame: pd.DataFrame
    kinds: Mapping[str, str]
    ids: np.ndarray
    side: str = "item"

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", dict(self.kinds))
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=object))
        if len(self.ids) != len(self.frame):
            raise FeatureSchemaError(
                f"{self.side} feature table has {len(self.frame)} rows but {len(self.ids)} ids"
            )
        missing = [column for column in self.kinds if column not in self.frame.columns]
        if missing:
            raise FeatureSchemaError(
                f"{self.side} features declare columns {missing} that the table lacks; "
                f"its columns are {list(self.frame.columns)}"
            )
        unknown = {column: kind for column, kind in self.kinds.items() if kind not in KINDS}
        if unknown:
            raise FeatureSchemaError(f"{self.side} feature kinds {unknown} are not among {list(KINDS)}")

    @classmethod
    def from_domain(
        cls, domain: Domain, side: Literal["item", "user"] = "item", columns: Sequence[str] | None = None
    ) -> FeatureTable | None:
        """The domain's item (or user) features, restricted to ``columns``; ``None`` if it has none."""
        if side not in ("item", "user"):
            raise ValueError(f"side must be 'item' or 'user', got {side!r}")
        frame = domain.item_features if side == "item" else domain.user_features
        kinds = domain.item_feature_kinds if side == "item" else domain.user_feature_kinds
        vocabulary = domain.items if side == "item" else domain.users
        if frame is None or not kinds:
            if columns:
                raise FeatureSchemaError(
                    f"domain {domain.name!r} has no {side} features; asked for {list(columns)}"
                )
            return None
        table = cls(frame.reset_index(drop=True), kinds, vocabulary.ids, side)
        return table if columns is None else table.select(columns)

    @property
    def columns(self) -> list[str]:
        """Feature columns, in declaration order."""
        return list(self.kinds)

    def select(self, columns: Sequence[str]) -> FeatureTable:
        """The same table with only ``columns`` as features."""
        unknown = [column for column in columns if column not in self.kinds]
        if unknown:
            raise FeatureSchemaError(
                f"{self.side} feature columns {unknown} do not exist; available: {self.columns}"
            )
        return FeatureTable(self.frame, {c: self.kinds[c] for c in columns}, self.ids, self.side)

    def with_column(self, name: str, values: Sequence[Any] | pd.Series, kind: str) -> FeatureTable:
        """A copy with one more feature column (e.g. vectors from :func:`vectors_from_npy`)."""
        frame = self.frame.copy()
        frame[name] = list(values) if not isinstance(values, pd.Series) else values.to_numpy(dtype=object)
        return FeatureTable(frame, {**self.kinds, name: kind}, self.ids, self.side)

    def take(self, rows: Sequence[int] | np.ndarray) -> FeatureTable:
        """The table restricted to ``rows`` (e.g. the warm items of a cold-item split), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return FeatureTable(
            self.frame.iloc[rows].reset_index(drop=True), self.kinds, self.ids[rows], self.side
        )

    def __len__(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class EncoderOptions:
    """How each modality is encoded (model hyper-parameters, JSON-able).

    Attributes
    ----------
    text_encoder
        ``"tfidf"`` (TF-IDF + SVD, default) or ``"minilm"`` (sentence embeddings, extra ``crossrec[text]``).
    text_dim
        SVD components of the TF-IDF encoder.
    category_min_count, max_tags
        Rarer categories share the unknown bucket; tag vocabulary cap.
    log_numbers
        Columns whose numbers are ``log1p``-transformed.
    text_cache_dir
        Cache folder of sentence embeddings (default: see :func:`crossrec.features.text.default_cache_dir`).
    seed
        Seed of the randomized SVD.
    """

    text_encoder: Literal["tfidf", "minilm"] = "tfidf"
    text_dim: int = 64
    category_min_count: int = 1
    max_tags: int = 1000
    log_numbers: tuple[str, ...] = field(default_factory=tuple)
    text_cache_dir: str | None = None
    seed: int = 0


def make_encoder(kind: str, column: str = "", options: EncoderOptions | None = None) -> FeatureEncoder:
    """An unfitted encoder for a column of modality ``kind``."""
    options = options or EncoderOptions()
    if kind == "category":
        return CategoryEncoder(min_count=options.category_min_count)
    if kind == "tags":
        return TagsEncoder(max_tags=options.max_tags)
    if kind == "number":
        return NumberEncoder(log=column in options.log_numbers)
    if kind == "vector":
        return VectorEncoder()
    if kind == "text":
        if options.text_encoder == "tfidf":
            return TfidfTextEncoder(dim=options.text_dim, seed=options.seed)
        if options.text_encoder == "minilm":
            return SentenceEncoder(cache_dir=options.text_cache_dir)
        raise ValueError(f"unknown text encoder {options.text_encoder!r}; choose 'tfidf' or 'minilm'")
    raise ValueError(f"unknown attribute kind {kind!r}; choose from {list(KINDS)}")


@dataclass(frozen=True)
class EncodedFeatures:
    """Model inputs of one table: per column the encoded array and the presence mask.

    Attributes
    ----------
    inputs
        Column -> ``(n,)`` int64 codes or ``(n, width)`` float32 rows.
    present
        Column -> ``(n,)`` bool.
    """

    inputs: dict[str, np.ndarray]
    present: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.present.values()))) if self.present else 0


class FeatureEncoders:
    """One fitted encoder per feature column of a table.

    Parameters
    ----------
    encoders
        Column -> encoder (fitted or not).
    side
        ``"item"`` or ``"user"``, for messages.
    """

    def __init__(self, encoders: Mapping[str, FeatureEncoder], side: str = "item") -> None:
        self.encoders = dict(encoders)
        self.side = side

    @classmethod
    def for_table(cls, table: FeatureTable, options: EncoderOptions | None = None) -> FeatureEncoders:
        """Unfitted encoders for every feature column of ``table``."""
        return cls({c: make_encoder(k, c, options) for c, k in table.kinds.items()}, table.side)

    @property
    def columns(self) -> list[str]:
        return list(self.encoders)

    @property
    def kinds(self) -> dict[str, str]:
        return {column: encoder.kind for column, encoder in self.encoders.items()}

    def check_schema(self, table: FeatureTable) -> None:
        """Raise :class:`FeatureSchemaError` unless ``table`` has every column with the same kind."""
        missing = [c for c in self.columns if c not in table.kinds]
        different = {
            c: (self.encoders[c].kind, table.kinds[c])
            for c in self.columns
            if c in table.kinds and table.kinds[c] != self.encoders[c].kind
        }
        if missing or different:
            raise FeatureSchemaError(
                f"{table.side} features do not match the schema the encoders were fitted on "
                f"({self.kinds}): missing columns {missing}, kind mismatches (expected, found) {different}"
            )

    def _call(self, table: FeatureTable, column: str, method: str, rows: np.ndarray | None = None) -> Any:
        values = table.frame[column].to_numpy(dtype=object)
        ids = table.ids
        if rows is not None:
            values, ids = values[rows], ids[rows]
        try:
            return getattr(self.encoders[column], method)(values)
        except FeatureValueError as error:
            named = ", ".join(repr(str(i)) for i in ids[error.rows[:5]]) if len(error.rows) else "n/a"
            raise FeatureValueError(
                f"{table.side} feature {column!r} (declared {self.encoders[column].kind!r}): {error} "
                f"[{table.side} ids: {named}]",
                error.rows,
            ) from None

    def fit(self, table: FeatureTable, rows: np.ndarray | None = None) -> FeatureEncoders:
        """Fit every encoder on ``rows`` of ``table`` (training entities only); returns ``self``."""
        self.check_schema(table)
        for column in self.columns:
            self._call(table, column, "fit", rows)
        return self

    def transform(self, table: FeatureTable) -> EncodedFeatures:
        """Encode every row of ``table`` (which must match the fitted schema)."""
        self.check_schema(table)
        inputs = {c: self._call(table, c, "transform") for c in self.columns}
        present = {c: np.asarray(self._call(table, c, "present"), dtype=bool) for c in self.columns}
        return EncodedFeatures(inputs, present)

    # -- persistence -------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """JSON-able description: side, column order and each column's encoder config."""
        return {
            "side": self.side,
            "order": self.columns,  # JSON objects may be re-sorted; the towers depend on this order
            "columns": {c: e.config for c, e in self.encoders.items()},
        }

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Every encoder's arrays, keyed ``"<column>/<name>"``."""
        return {
            f"{c}/{key}": value for c, e in self.encoders.items() for key, value in e.state_arrays().items()
        }

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FeatureEncoders:
        """Restore encoders written by :attr:`config` and :meth:`state_arrays`."""
        encoders = {}
        for column in config.get("order", list(config["columns"])):
            column_config = config["columns"][column]
            prefix = f"{column}/"
            own = {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
            encoders[column] = encoder_from_state(column_config, own)
        return cls(encoders, config.get("side", "item"))

    def __repr__(self) -> str:
        return f"FeatureEncoders({self.side}, {self.kinds})"


def _align(
    keys: np.ndarray, vectors: np.ndarray, vocabulary: Vocabulary | Sequence[str], source: str
) -> pd.Series:
    ids = vocabulary.ids if isinstance(vocabulary, Vocabulary) else np.asarray(list(vocabulary), dtype=object)
    keys = np.asarray(keys).astype(str)
    if len(keys) != len(vectors):
        raise FeatureSchemaError(f"{source}: {len(keys)} ids but {len(vectors)} vectors")
    duplicated = pd.Index(keys)[pd.Index(keys).duplicated()].unique()
    if len(duplicated):
        raise FeatureSchemaError(f"{source}: ids appear more than once, e.g. {duplicated[:5].tolist()}")
    position = pd.Index(keys).get_indexer(ids.astype(str))
    out = np.empty(len(ids), dtype=object)
    out[:] = None
    found = position >= 0
    out[np.flatnonzero(found)] = list(vectors[position[found]])
    return pd.Series(out, dtype=object)


def vectors_from_npy(
    path: str | Path, vocabulary: Vocabulary | Sequence[str], *, ids: Sequence[str] | None = None
) -> pd.Series:
    """Precomputed vectors keyed by entity id, aligned to ``vocabulary`` (``None`` where absent).

    ``path`` is either an ``.npz`` with arrays ``ids`` and ``vectors``, or an ``.npy`` matrix whose
    row ids are given by ``ids`` or by a sibling ``<stem>.ids.txt`` (one id per line).
    """
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "ids" not in data or "vectors" not in data:
                raise FeatureSchemaError(
                    f"{path}: an .npz of vectors needs arrays 'ids' and 'vectors', found {list(data)}"
                )
            keys, vectors = data["ids"], data["vectors"]
    else:
        vectors = np.load(path, allow_pickle=False)
        if ids is None:
            sidecar = path.with_suffix(".ids.txt")
            if not sidecar.exists():
                raise FeatureSchemaError(
                    f"{path}: pass ids= or write the row ids, one per line, to {sidecar}"
                )
            ids = sidecar.read_text().splitlines()
        keys = np.asarray(list(ids), dtype=object)
    if vectors.ndim != 2:
        raise FeatureSchemaError(f"{path}: vectors must be a 2-D matrix, found shape {vectors.shape}")
    return _align(keys, vectors, vocabulary, str(path))


def vectors_from_parquet(
    path: str | Path, vocabulary: Vocabulary | Sequence[str], *, id_column: str, vector_column: str
) -> pd.Series:
    """Precomputed vectors from a Parquet list column, aligned to ``vocabulary`` (``None`` where absent).

    Lists of unequal length are passed through: the vector encoder reports them with their ids.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    schema_names = pq.read_schema(path).names
    missing = [c for c in (id_column, vector_column) if c not in schema_names]
    if missing:
        raise FeatureSchemaError(f"{path}: columns {missing} not found; the file has {schema_names}")
    table = pq.read_table(path, columns=[id_column, vector_column])
    keys = np.asarray(table.column(id_column).to_pylist(), dtype=object)
    rows = table.column(vector_column).to_pylist()
    vectors = np.empty(len(rows), dtype=object)
    vectors[:] = [None if row is None else np.asarray(row, dtype=np.float64) for row in rows]
    return _align(keys, vectors, vocabulary, f"{path}:{vector_column}")


def _json_bytes(payload: Mapping[str, Any]) -> np.ndarray:
    """JSON as a uint8 array, so it travels inside safetensors next to the weights."""
    return np.frombuffer(json.dumps(payload, sort_keys=True).encode(), dtype=np.uint8).copy()


def _json_from_bytes(array: np.ndarray) -> dict[str, Any]:
    return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode())
