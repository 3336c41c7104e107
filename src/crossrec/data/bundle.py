"""Dataset bundles: Parquet tables plus ``manifest.json``, written atomically and loaded with checksums.

A bundle folder holds ``interactions.parquet``, ``users.parquet``, ``items.parquet``, ``links.parquet``,
``rejects.parquet`` and ``manifest.json``. Files contain no timestamps of the run, rows are in a fixed
order and row groups have a fixed size, so the same input gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crossrec.data.domain import Domain
from crossrec.data.errors import BundleError
from crossrec.data.interactions import Interactions
from crossrec.data.outputs import (
    BUNDLE_FORMAT,
    OutputFolderError,
    check_replaceable,
    make_work_folder,
    work_path,
)
from crossrec.data.vocabulary import Vocabulary

__all__ = ["BUNDLE_TABLES", "SCHEMA_VERSION", "Bundle", "load_bundle", "write_bundle", "write_parquet"]

#: Version of the bundle layout; :func:`load_bundle` refuses other versions.
SCHEMA_VERSION = 1
#: Tables every bundle has.
BUNDLE_TABLES = ("interactions", "users", "items", "links", "rejects")
_ROW_GROUP = 1 << 20


def write_parquet(path: Path, batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> int:
    """Write batches to ``path`` in row groups of a fixed size (so the bytes do not depend on batching).

    Returns the number of rows written.
    """
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True) as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            pending.append(batch.cast(schema) if batch.schema != schema else batch)
            pending_rows += batch.num_rows
            while pending_rows >= _ROW_GROUP:
                table = pa.Table.from_batches(pending, schema=schema)
                writer.write_table(table.slice(0, _ROW_GROUP), row_group_size=_ROW_GROUP)
                rest = table.slice(_ROW_GROUP)
                pending = rest.to_batches()
                pending_rows = rest.num_rows
                rows += _ROW_GROUP
        if pending_rows or rows == 0:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=_ROW_GROUP)
            rows += pending_rows
    return rows


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write_bundle(
    output: Path,
    tables: dict[str, Callable[[Path], int]],
    manifest: dict[str, Any],
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a bundle atomically: into a temporary sibling folder, then renamed into place.

    Parameters
    ----------
    output
        Bundle folder to create.
    tables
        For each of :data:`BUNDLE_TABLES`, a function that writes the table to the path it is given and
        returns its row count.
    manifest
        Manifest content; ``schema_version``, ``files`` (sha256, bytes, rows) are added here.
    overwrite
        Replace an existing bundle (the old one stays until the new one is complete). Only a folder
        that is a crossrec bundle holding only the files crossrec wrote is replaced (see
        :func:`crossrec.data.outputs.check_replaceable`).

    Returns
    -------
    dict
        The manifest as written.
    """
    output = Path(output)
    try:
        replacing = check_replaceable(output, kind="bundle", force=overwrite)
    except OutputFolderError as error:
        raise BundleError(str(error)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = make_work_folder(output.parent, output.name, "partial")
    try:
        files: dict[str, dict[str, Any]] = {}
        for name in BUNDLE_TABLES:
            path = partial / f"{name}.parquet"
            rows = tables[name](path)
            files[path.name] = {"sha256": _sha256(path), "bytes": path.stat().st_size, "rows": rows}
        manifest = {"format": BUNDLE_FORMAT, "schema_version": SCHEMA_VERSION, **manifest, "files": files}
        (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        for path in partial.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if replacing and output.exists():
            retired = work_path(output.parent, output.name, "old")
            output.rename(retired)
            partial.rename(output)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            partial.rename(output)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: typed domains plus the cross-domain links.

    Attributes
    ----------
    path
        The bundle folder.
    manifest
        The parsed ``manifest.json`` (counts, funnel, link rates, checksums).
    domains
        One :class:`~crossrec.data.Domain` per domain, in declaration order; vocabularies hold the
        raw (or pseudonymised) ids.
    links
        Table with columns ``entity`` (``user``/``item``), ``link_id``, ``domain``, ``id``, ``index``,
        ``method`` and ``score``: rows sharing a ``link_id`` are the same person or item.
    """

    path: Path
    manifest: dict[str, Any]
    domains: dict[str, Domain]
    links: pd.DataFrame = field(repr=False)

    @property
    def source_domains(self) -> list[str]:
        """Domains declared with ``role = "source"``."""
        return [name for name, info in self.manifest["domains"].items() if info["role"] == "source"]

    @property
    def target_domains(self) -> list[str]:
        """Domains declared with ``role = "target"``."""
        return [name for name, info in self.manifest["domains"].items() if info["role"] == "target"]

    def user_links(self, source: str, target: str) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of user indices that are the same person in ``source`` and ``target``.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``int64`` indices into ``domains[source].users`` and ``domains[target].users``, sorted by
            source index then target index. A person with several accounts gives several pairs.
        """
        return self._pairs("user", source, target)

    def item_links(self, source: str, target: str) -> tuple[np.ndarray, np.ndarray]:
        """Pairs of item indices that are the same item in ``source`` and ``target``.

        See :meth:`user_links`.
        """
        return self._pairs("item", source, target)

    def _pairs(self, entity: str, source: str, target: str) -> tuple[np.ndarray, np.ndarray]:
        for name in (source, target):
            if name not in self.domains:
                raise KeyError(f"no domain {name!r} in the bundle; it has {sorted(self.domains)}")
        rows = self.links[self.links["entity"] == entity]
        left = rows.loc[rows["domain"] == source, ["link_id", "index"]]
        right = rows.loc[rows["domain"] == target, ["link_id", "index"]]
        pairs = left.merge(right, on="link_id", suffixes=("_source", "_target"))
        pairs = pairs.drop_duplicates(["index_source", "index_target"]).sort_values(
            ["index_source", "index_target"]
        )
        return pairs["index_source"].to_numpy(np.int64), pairs["index_target"].to_numpy(np.int64)

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, domains={list(self.domains)})"


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(
            f"{path} is not a crossrec bundle (no manifest.json); create one with `crossrec ingest`"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(
            f"{manifest_path} is not valid JSON ({error}); the bundle is damaged, re-run ingest"
        ) from None
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(
            f"{path}: bundle schema version {version!r} is not supported by this crossrec (reads version "
            f"{SCHEMA_VERSION}); re-run `crossrec ingest` with this version"
        )
    return manifest


def _verify(path: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("files", {})
    expected = {f"{name}.parquet" for name in BUNDLE_TABLES}
    if set(files) != expected:
        raise BundleError(
            f"{path}: manifest lists {sorted(files)}, expected {sorted(expected)}; re-run ingest"
        )
    for name, info in files.items():
        file = path / name
        if not file.is_file():
            raise BundleError(
                f"{path}: {name} is missing; the bundle is incomplete, re-run `crossrec ingest`"
            )
        if _sha256(file) != info["sha256"]:
            raise BundleError(
                f"{path}: {name} does not match its sha256 in manifest.json (modified or corrupted after it "
                "was written); re-run `crossrec ingest` to rebuild the bundle"
            )


def _features(table: pa.Table, kinds: dict[str, str]) -> pd.DataFrame | None:
    if not kinds:
        return None
    return table.select(list(kinds)).to_pandas()


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Load a bundle written by ``crossrec ingest``.

    Parameters
    ----------
    path
        Bundle folder.
    verify
        Check every file's sha256 against the manifest (default).

    Raises
    ------
    BundleError
        When the folder is not a bundle, a file was modified or is missing, or the schema version differs.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    if verify:
        _verify(path, manifest)
    interactions = pq.read_table(path / "interactions.parquet")
    users = pq.read_table(path / "users.parquet")
    items = pq.read_table(path / "items.parquet")
    domains: dict[str, Domain] = {}
    for name, info in manifest["domains"].items():
        user_rows = users.filter(pc.equal(users["domain"], name))
        item_rows = items.filter(pc.equal(items["domain"], name))
        rows = interactions.filter(pc.equal(interactions["domain"], name))
        timestamp = rows["timestamp"]
        domains[name] = Domain(
            name=name,
            users=Vocabulary(user_rows["user"].to_numpy(zero_copy_only=False)),
            items=Vocabulary(item_rows["item"].to_numpy(zero_copy_only=False)),
            interactions=Interactions(
                rows["user_index"].to_numpy(),
                rows["item_index"].to_numpy(),
                rows["value"].to_numpy(),
                timestamp.to_numpy() if info["has_timestamps"] and timestamp.null_count == 0 else None,
            ),
            user_features=_features(user_rows, info["user_attributes"]),
            item_features=_features(item_rows, info["item_attributes"]),
            user_feature_kinds=dict(info["user_attributes"]),
            item_feature_kinds=dict(info["item_attributes"]),
        )
    links = pq.read_table(path / "links.parquet").to_pandas()
    return Bundle(path=path, manifest=manifest, domains=domains, links=links)
