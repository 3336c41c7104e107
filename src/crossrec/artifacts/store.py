"""Save a trained model as a self-contained, verifiable folder, and load it back.

Layout of an artifact folder::

    manifest.json            format version, crossrec version, sha256 and size of every other file
    metadata.json            model name, sizes, bundle hash, capabilities, encoder names
    config.json              the experiment configuration
    evaluation.json          the evaluation summary
    model/model.json         Recommender.save: model name, parameters, sizes
    model/weights.safetensors
    vocab/users.parquet      raw user ids in index order (column ``id``)
    vocab/items.parquet      raw item ids in index order
    index.safetensors        each user's seen items (CSR ``seen_indptr``/``seen_indices``) and
                             ``item_popularity`` (training counts)
    encoders/<name>.json     optional fitted feature encoders (config + class)
    encoders/<name>.safetensors
    rerank/config.json       optional re-ranking setting (see :mod:`crossrec.artifacts._rerank`)
    rerank/items.safetensors

Nothing is pickled. Saving writes a hidden temporary folder next to the target and renames it
into place; loading reads every file once, verifies it against the manifest and parses those same
bytes, then checks what the arrays hold (see :mod:`crossrec.artifacts._validate`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import os
import pkgutil
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from crossrec.artifacts._manifest import read_verified, write_manifest
from crossrec.artifacts._rerank import RerankSetting, as_setting, build_stage, read_rerank, write_rerank
from crossrec.artifacts._snapshot import parse_safetensors
from crossrec.artifacts._validate import check_csr_arrays, check_finite, check_model
from crossrec.artifacts.artifact import Artifact, ArtifactMetadata, ColdStartModel, item_similarity_matrix
from crossrec.artifacts.encoders import load_encoders, save_encoders
from crossrec.artifacts.errors import ArtifactIntegrityError, ArtifactVersionError
from crossrec.data.outputs import (
    OutputFolderError,
    check_replaceable,
    clean_stale_work_folders,
    make_work_folder,
    work_path,
)
from crossrec.data.vocabulary import Vocabulary
from crossrec.models.base import MODEL_REGISTRY, NotFittedError, Recommender, get_model_class
from crossrec.rerank import RerankConfig

__all__ = ["load_artifact", "save_artifact", "verify_artifact"]

_JSON_FILES = ("metadata.json", "config.json", "evaluation.json")

logger = logging.getLogger(__name__)


def _to_json_dict(value: Mapping[str, Any] | Any | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping, dataclass or pydantic model, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(dict(value), default=_json_default, allow_nan=True))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must be JSON-serialisable: {error}") from None


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _write_vocabulary(path: Path, vocabulary: Vocabulary) -> None:
    table = pa.table({"id": pa.array(vocabulary.ids.tolist(), type=pa.string())})
    pq.write_table(table, path)


def _read_vocabulary(path: Path, data: bytearray) -> Vocabulary:
    try:
        table = pq.read_table(pa.BufferReader(bytes(data)))
    except (OSError, pa.ArrowException) as error:
        raise ArtifactIntegrityError(f"{path} is not a readable Parquet file: {error}") from None
    if table.column_names != ["id"]:
        raise ArtifactIntegrityError(f"{path} must have the single column 'id', found {table.column_names}")
    try:
        return Vocabulary(table.column("id").to_numpy(zero_copy_only=False))
    except ValueError as error:
        raise ArtifactIntegrityError(f"{path}: {error}") from None


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def save_artifact(
    folder: str | Path,
    model: Recommender,
    *,
    users: Vocabulary,
    items: Vocabulary,
    train: sp.spmatrix,
    config: Mapping[str, Any] | Any | None = None,
    evaluation: Mapping[str, Any] | None = None,
    bundle_hash: str | None = None,
    encoders: Mapping[str, object] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    lineage: Mapping[str, Any] | None = None,
    rerank: RerankConfig | Mapping[str, Any] | None = None,
    item_categories: np.ndarray | None = None,
    rerank_seed: int = 0,
) -> Path:
    """Save a fitted model with its id maps, seen items and popularity as an artifact folder.

    Parameters
    ----------
    folder
        Where the artifact goes (created; its parent too).
    model
        A fitted :class:`~crossrec.models.base.Recommender` over ``users`` x ``items``.
    users, items
        Vocabularies of the model's rows and columns.
    train
        The ``(n_users, n_items)`` training matrix: stored as each user's seen items and as
        item popularity, so the loaded model needs no training data.
    config
        The experiment configuration (mapping, dataclass or pydantic model; JSON-able).
    evaluation
        The evaluation summary (e.g. ``{"ndcg@10": 0.25, ...}``).
    bundle_hash
        Hash of the dataset bundle the model was trained on.
    encoders
        Fitted feature encoders by name (see :mod:`crossrec.artifacts.encoders`).
    overwrite
        Replace an existing artifact at ``folder`` (the old one is removed after the new one
        is in place). Only a crossrec artifact holding only the files its manifest lists is
        replaced; anything else is refused with :class:`FileExistsError`.
    inputs
        Files and folders the caller read (e.g. the bundle): ``folder`` may be none of them and
        contain none.
    lineage
        Where the model came from, recorded in ``manifest.json`` (JSON-able; see
        :mod:`crossrec.artifacts.lineage`).
    rerank, item_categories, rerank_seed
        The re-ranking stage the lists were evaluated with, the item categories its method reads
        (MMR over categories, calibration) and the evaluation's tie-breaking seed: the loaded
        artifact re-ranks with them (``diversity``), its history being the seen items of ``train``.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    if not hasattr(model, "n_items_"):
        raise NotFittedError(f"{type(model).__name__} is not fitted: fit it before save_artifact()")
    n_users, n_items = int(model.n_users_), int(model.n_items_)
    if (len(users), len(items)) != (n_users, n_items):
        raise ValueError(
            f"the model is fitted on {n_users} users x {n_items} items but the vocabularies have "
            f"{len(users)} users x {len(items)} items: pass the vocabularies of the training domain"
        )
    train = sp.csr_matrix(train)
    if train.shape != (n_users, n_items):
        raise ValueError(f"train has shape {train.shape}, the model needs ({n_users}, {n_items})")
    if (folder.exists() or folder.is_symlink()) and not overwrite:
        raise FileExistsError(f"{folder} already exists: choose a new folder or pass overwrite=True")
    try:
        replacing = check_replaceable(folder, kind="artifact", force=True, inputs=inputs)
    except OutputFolderError as error:
        raise FileExistsError(str(error)) from None
    config_dict = _to_json_dict(config, "config")
    evaluation_dict = _to_json_dict(evaluation, "evaluation")
    lineage_dict = _to_json_dict(lineage, "lineage")

    seen = (train > 0).astype(np.float32).tocsr()
    seen.sort_indices()
    popularity = np.asarray(seen.sum(axis=0), dtype=np.float32).ravel()
    vectors = model.item_vectors()
    setting = _checked_rerank(rerank, item_categories, rerank_seed, seen, popularity, vectors)
    metadata = {
        "model": model.name,
        "n_users": n_users,
        "n_items": n_items,
        "dim": None if vectors is None else int(np.shape(vectors)[1]),
        "bundle_hash": bundle_hash,
        "encoders": sorted(encoders or {}),
        "capabilities": {
            "item_vectors": vectors is not None,
            "item_item": item_similarity_matrix(model) is not None,
            "cold_start_scorer": isinstance(model, ColdStartModel),
        },
    }

    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in clean_stale_work_folders(folder.parent, folder.name).messages():
        logger.warning(stale)
    temporary = make_work_folder(folder.parent, folder.name, "tmp")
    try:
        model.save(temporary / "model")
        (temporary / "vocab").mkdir()
        _write_vocabulary(temporary / "vocab" / "users.parquet", users)
        _write_vocabulary(temporary / "vocab" / "items.parquet", items)
        from safetensors.numpy import save_file

        save_file(
            {
                "seen_indptr": seen.indptr.astype(np.int64),
                "seen_indices": seen.indices.astype(np.int64),
                "item_popularity": popularity,
            },
            str(temporary / "index.safetensors"),
        )
        if encoders:
            save_encoders(temporary / "encoders", dict(encoders))
        if setting is not None:
            write_rerank(temporary, setting)
        for name, payload in zip(_JSON_FILES, (metadata, config_dict, evaluation_dict), strict=True):
            (temporary / name).write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=True))
        for path in temporary.rglob("*"):  # readable by a service account (safetensors writes 0600)
            path.chmod(0o755 if path.is_dir() else 0o644)
        write_manifest(temporary, lineage_dict)
        (temporary / "manifest.json").chmod(0o644)
        _fsync_tree(temporary)
        temporary.chmod(0o755)
        if replacing and folder.exists():
            retired = work_path(folder.parent, folder.name, "old")
            os.rename(folder, retired)
            os.rename(temporary, folder)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return folder


def _checked_rerank(
    rerank: RerankConfig | Mapping[str, Any] | None,
    item_categories: np.ndarray | None,
    seed: int,
    seen: sp.csr_matrix,
    popularity: np.ndarray,
    vectors: np.ndarray | None,
) -> RerankSetting | None:
    """The setting to save, refused before anything is written when its method lacks data."""
    setting = as_setting(rerank, None if item_categories is None else np.asarray(item_categories), seed)
    if setting is None:
        return None
    if not setting.needs_categories:
        setting = dataclasses.replace(setting, item_categories=None)
    build_stage(
        setting, n_items=seen.shape[1], history=seen, item_popularity=popularity, item_vectors=vectors
    )
    return setting


def verify_artifact(folder: str | Path) -> dict[str, Any]:
    """Check the manifest and every file's size, sha256 and declared arrays; return the manifest.

    Raises
    ------
    ArtifactIntegrityError
        Missing, extra, truncated or modified files, or no/invalid manifest.
    ArtifactVersionError
        An artifact format this crossrec does not read.
    """
    manifest, _, _ = read_verified(Path(folder))
    return manifest


def _ensure_model_registered(name: str) -> None:
    if name in MODEL_REGISTRY:
        return
    import crossrec.models as package

    for module in pkgutil.iter_modules(package.__path__):
        try:
            importlib.import_module(f"crossrec.models.{module.name}")
        except ImportError:  # an optional model whose extra is not installed
            continue
    if name not in MODEL_REGISTRY:
        raise ArtifactVersionError(
            f"the artifact holds a {name!r} model, which this crossrec does not have "
            f"(known: {sorted(MODEL_REGISTRY)}): install the crossrec version that wrote it"
        )


def _json(folder: Path, contents: Mapping[str, bytearray], name: str) -> dict[str, Any]:
    try:
        value = json.loads(bytes(contents[name]).decode("utf-8"))
    except (KeyError, UnicodeDecodeError, ValueError) as error:
        raise ArtifactIntegrityError(f"{folder / name} cannot be read as JSON: {error}") from None
    if not isinstance(value, dict):
        raise ArtifactIntegrityError(f"{folder / name} must hold a JSON object")
    return value


def _tensors(folder: Path, contents: Mapping[str, bytearray], name: str) -> dict[str, np.ndarray]:
    if name not in contents:
        raise ArtifactIntegrityError(f"{folder} has no {name}: the artifact is incomplete, re-save it")
    arrays = parse_safetensors(contents[name], str(folder / name))
    check_finite(folder, name, arrays)
    return arrays


def _check(condition: bool, folder: Path, message: str) -> None:
    if not condition:
        raise ArtifactIntegrityError(f"{folder}: {message}; the artifact is inconsistent, re-save it")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _restore_model(
    folder: Path, contents: Mapping[str, bytearray], n_users: int, n_items: int
) -> Recommender:
    """The model of ``model/`` rebuilt from the verified bytes (what :meth:`Recommender.load` does,
    without opening the files again)."""
    meta = _json(folder, contents, "model/model.json")
    name, params = meta.get("model"), meta.get("params")
    if not isinstance(name, str) or not isinstance(params, dict):
        raise ArtifactIntegrityError(f"{folder / 'model/model.json'} must give the model name and params")
    _check(
        _is_count(meta.get("n_users")) and _is_count(meta.get("n_items")),
        folder,
        "model/model.json does not give the model's sizes",
    )
    _check(
        (meta["n_users"], meta["n_items"]) == (n_users, n_items),
        folder,
        f"the model has {meta['n_users']} x {meta['n_items']} rows but the vocabularies "
        f"{n_users} x {n_items}",
    )
    _ensure_model_registered(name)
    arrays = _tensors(folder, contents, "model/weights.safetensors")
    try:
        model = get_model_class(name)(**params)
        model.n_users_, model.n_items_ = n_users, n_items
        model._set_state(arrays)
    except Exception as error:  # whatever a model raises on state that is not its own
        raise ArtifactIntegrityError(
            f"{folder / 'model'} cannot be loaded as a {name!r} model ({type(error).__name__}: {error}); "
            "the artifact is inconsistent, re-save it"
        ) from None
    return model


def _vocabulary(folder: Path, contents: Mapping[str, bytearray], name: str) -> Vocabulary:
    if name not in contents:
        raise ArtifactIntegrityError(f"{folder} has no {name}: the artifact is incomplete, re-save it")
    return _read_vocabulary(folder / name, contents[name])


def load_artifact(folder: str | Path) -> Artifact:
    """Verify and load an artifact written by :func:`save_artifact`.

    Every file is read once and checked against ``manifest.json`` (presence, size, sha256, declared
    arrays) before anything is parsed from the same bytes; then the contents are checked: sizes of
    vocabularies, weights, seen-items index and popularity agree, every floating array is finite,
    every sparse structure and index lies inside its matrix, and a probe of a few users scores
    ``(users, n_items)`` finite numbers.

    Raises
    ------
    ArtifactIntegrityError
        The folder was tampered with, truncated, is inconsistent or holds values a model cannot use.
    ArtifactVersionError
        The artifact format or its model class is not supported by this crossrec.
    """
    folder = Path(folder).resolve()
    manifest, artifact_id, contents = read_verified(folder)
    metadata = _json(folder, contents, "metadata.json")
    model_name = metadata.get("model")
    if not isinstance(model_name, str):
        raise ArtifactIntegrityError(f"{folder / 'metadata.json'} has no model name")
    users = _vocabulary(folder, contents, "vocab/users.parquet")
    items = _vocabulary(folder, contents, "vocab/items.parquet")
    n_users, n_items = len(users), len(items)
    _check(
        (metadata.get("n_users"), metadata.get("n_items")) in ((n_users, n_items), (None, None)),
        folder,
        f"metadata.json says {metadata.get('n_users')} x {metadata.get('n_items')}, the vocabularies hold "
        f"{n_users} x {n_items}",
    )
    _ensure_model_registered(model_name)
    model = _restore_model(folder, contents, n_users, n_items)
    _check(model.name == model_name, folder, f"metadata says {model_name!r}, the model is {model.name!r}")

    index = _tensors(folder, contents, "index.safetensors")
    needed = {"seen_indptr", "seen_indices", "item_popularity"}
    _check(needed <= set(index), folder, f"index.safetensors must hold {sorted(needed)}")
    indptr, indices, popularity = index["seen_indptr"], index["seen_indices"], index["item_popularity"]
    _check(
        indptr.dtype.kind in "iu" and indices.dtype.kind in "iu" and popularity.dtype.kind == "f",
        folder,
        "index.safetensors must hold integer seen items and float popularity",
    )
    _check(indptr.shape == (n_users + 1,), folder, "seen_indptr does not match the users")
    _check(indices.ndim == 1, folder, "seen_indices must be one-dimensional")
    _check(popularity.shape == (n_items,), folder, "item_popularity does not match the items")
    check_csr_arrays(folder, "the seen-items index", indptr, indices, (n_users, n_items))
    seen = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_users, n_items))
    check_model(folder, model, n_users, n_items)

    encoder_names = metadata.get("encoders") or []
    if not isinstance(encoder_names, list) or not all(isinstance(n, str) for n in encoder_names):
        raise ArtifactIntegrityError(f"{folder / 'metadata.json'}: 'encoders' must be a list of names")
    encoders = (
        load_encoders(folder / "encoders", encoder_names, _encoder_reader(folder, contents))
        if encoder_names
        else {}
    )
    config = _json(folder, contents, "config.json")
    evaluation = _json(folder, contents, "evaluation.json")
    vectors = model.item_vectors()
    info = ArtifactMetadata(
        artifact_id=artifact_id,
        path=str(folder),
        format_version=int(manifest["format_version"]),
        crossrec_version=str(manifest.get("crossrec_version", "")),
        created=str(manifest.get("created", "")),
        model=model_name,
        model_params=model.get_params(),
        n_users=n_users,
        n_items=n_items,
        dim=None if vectors is None else int(np.shape(vectors)[1]),
        bundle_hash=metadata.get("bundle_hash"),
        encoders=tuple(encoders),
        capabilities={},
        config=config,
        evaluation=evaluation,
        lineage=manifest.get("lineage", {}),
    )
    setting = read_rerank(folder, contents, _tensors, n_items)
    try:
        return Artifact(model, users, items, seen, popularity, info, encoders, rerank=setting)
    except (ValueError, TypeError, IndexError, np.linalg.LinAlgError) as error:
        raise ArtifactIntegrityError(
            f"{folder}: the model cannot be served ({type(error).__name__}: {error}); re-save it"
        ) from None


def _encoder_reader(folder: Path, contents: Mapping[str, bytearray]) -> Any:
    def read(name: str) -> bytearray:
        key = f"encoders/{name}"
        if key not in contents:
            raise ArtifactIntegrityError(f"{folder / key} is missing: the artifact is incomplete")
        return contents[key]

    return read
