"""Contents checks of a loaded artifact: checksums only say that files were not changed after a
manifest was written; these say that what the files hold is a model crossrec can serve safely.

Checked before anything scores: every floating array is finite; every sparse matrix the model holds
has a well-formed structure (monotone row pointers, column indices inside its shape), so no kernel
reads outside an array; user and item tables, item-item matrices and stored histories have the
sizes of the vocabularies and hold in-range item indices; and a probe of a few users returns
``(users, n_items)`` finite float scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from crossrec.artifacts.errors import ArtifactIntegrityError
from crossrec.models.base import Recommender
from crossrec.models.item_based import ItemSimilarityRecommender
from crossrec.models.sequences import SequentialRecommender

__all__ = ["check_csr_arrays", "check_finite", "check_model", "check_sparse"]


def _refuse(folder: Path, message: str) -> ArtifactIntegrityError:
    return ArtifactIntegrityError(f"{folder}: {message}; the artifact is inconsistent, re-save it")


def check_finite(folder: Path, where: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Refuse NaN or infinite values in any floating array."""
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and array.size and not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise _refuse(folder, f"{where} array {name!r} holds {bad} NaN or infinite value(s)")


def check_sparse(folder: Path, what: str, matrix: sp.spmatrix, shape: tuple[int, int] | None = None) -> None:
    """Refuse a CSR/CSC matrix whose structure would make a kernel read or write out of bounds."""
    if shape is not None and tuple(matrix.shape) != shape:
        raise _refuse(folder, f"{what} has shape {tuple(matrix.shape)}, expected {shape}")
    if not sp.isspmatrix_csr(matrix) and not sp.isspmatrix_csc(matrix):
        return
    shape = tuple(matrix.shape) if sp.isspmatrix_csr(matrix) else tuple(matrix.shape[::-1])
    check_csr_arrays(folder, what, matrix.indptr, matrix.indices, shape, matrix.data)  # type: ignore[arg-type]


def check_csr_arrays(
    folder: Path,
    what: str,
    indptr: np.ndarray,
    indices: np.ndarray,
    shape: tuple[int, int],
    data: np.ndarray | None = None,
) -> None:
    """Refuse compressed-row arrays that do not describe a ``shape`` matrix (checked before any kernel
    or scipy constructor sees them)."""
    rows, columns = shape
    if indptr.ndim != 1 or len(indptr) != rows + 1 or indices.ndim != 1:
        raise _refuse(folder, f"{what}: row pointers do not match its {rows} rows")
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise _refuse(folder, f"{what}: row pointers and indices must be integers")
    if indptr[0] != 0 or indptr[-1] != len(indices) or (data is not None and len(data) != len(indices)):
        raise _refuse(folder, f"{what}: row pointers do not cover its {len(indices)} entries")
    if np.any(np.diff(indptr.astype(np.int64)) < 0):
        raise _refuse(folder, f"{what}: row pointers are not monotone")
    if len(indices) and (indices.min() < 0 or indices.max() >= columns):
        raise _refuse(folder, f"{what}: indices outside [0, {columns})")
    if data is not None and data.dtype.kind in "fc" and len(data) and not np.isfinite(data).all():
        raise _refuse(folder, f"{what} holds NaN or infinite values")


def _held(value: object, name: str) -> Iterator[tuple[str, object]]:
    if isinstance(value, list | tuple):
        for position, item in enumerate(value):
            yield f"{name}[{position}]", item
    elif isinstance(value, dict):
        for key, item in value.items():
            yield f"{name}[{key!r}]", item
    else:
        yield name, value


def check_model(folder: Path, model: Recommender, n_users: int, n_items: int) -> None:
    """Refuse a restored model whose state does not fit ``n_users`` x ``n_items`` or cannot score."""
    for attribute, held in vars(model).items():
        for name, value in _held(held, attribute):
            if sp.issparse(value):
                check_sparse(folder, f"model state {name}", value)
            elif isinstance(value, np.ndarray):
                check_finite(folder, "model", {name: value})
    tables = (("user", model.user_vectors(), n_users), ("item", model.item_vectors(), n_items))
    dims = set()
    for what, vectors, rows in tables:
        if vectors is None:
            continue
        shape = np.shape(vectors)
        if len(shape) != 2 or shape[0] != rows:
            raise _refuse(folder, f"{what} vectors have shape {shape}, the {what} vocabulary has {rows} ids")
        dims.add(shape[1])
    if len(dims) > 1:
        raise _refuse(folder, f"user and item vectors have different dimensions {sorted(dims)}")
    if isinstance(model, ItemSimilarityRecommender):
        _check_item_similarity(folder, model, n_users, n_items)
    if isinstance(model, SequentialRecommender):
        recent = np.asarray(model.recent_)
        if recent.ndim != 2 or recent.shape[0] != n_users or recent.dtype.kind not in "iu":
            raise _refuse(folder, f"stored histories have shape {recent.shape}, expected ({n_users}, length)")
        if recent.size and (recent.min() < -1 or recent.max() >= n_items):
            raise _refuse(folder, f"stored histories hold item indices outside [-1, {n_items})")
    _probe(folder, model.score, n_users, n_items)


def _check_item_similarity(
    folder: Path, model: ItemSimilarityRecommender, n_users: int, n_items: int
) -> None:
    history, similarity = model.user_items_, model.similarity_
    if not sp.issparse(history) or history.ndim != 2 or history.shape[0] != n_users:
        raise _refuse(folder, f"the stored user histories do not have {n_users} rows")
    columns = history.shape[1]
    if np.ndim(similarity) != 2 or tuple(np.shape(similarity)) != (columns, n_items) or columns < n_items:
        raise _refuse(
            folder,
            f"the item-item matrix has shape {tuple(np.shape(similarity))}, expected ({columns}, {n_items})",
        )


def _probe(folder: Path, score: Callable[[np.ndarray], np.ndarray], n_users: int, n_items: int) -> None:
    if n_users == 0:
        return
    users = np.unique(np.array([0, n_users // 2, n_users - 1], dtype=np.int64))
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # reported below as not finite
            scores = np.asarray(score(users))
    except Exception as error:  # a restored model that cannot score is a damaged artifact
        raise _refuse(folder, f"the model cannot score ({type(error).__name__}: {error})") from None
    if scores.shape != (len(users), n_items):
        raise _refuse(folder, f"the model scores shape {scores.shape}, expected ({len(users)}, {n_items})")
    if scores.dtype.kind != "f" or not np.isfinite(scores).all():
        raise _refuse(folder, "the model's scores are not all finite numbers (NaN or infinity)")
