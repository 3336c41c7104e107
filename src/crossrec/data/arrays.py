"""Out-of-core interaction arrays: memory-mapped columns on disk, never a Python object per interaction.

An arrays folder holds one domain's interactions as raw little-endian columns that every process
(e.g. every rank of a distributed run) maps read-only, so the page cache holds them once::

    FOLDER/meta.json        rows, n_users, n_items, dtypes, where the data came from
    FOLDER/user.i32         user index of each interaction (sorted by user)
    FOLDER/item.i32         item index
    FOLDER/timestamp.i64    seconds since the epoch (when the domain has times)
    FOLDER/user_ids.arrow   raw user ids in index order (Arrow IPC, memory-mapped)
    FOLDER/item_ids.arrow   raw item ids

:func:`materialize_domain` streams a bundle's ``interactions.parquet`` row group by row group into such
a folder; :func:`split_arrays` cuts it per user into train/valid/test folders in bounded chunks;
:func:`write_arrays` stores in-memory :class:`~crossrec.data.Interactions` the same way.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from crossrec.data._ratios import ratio_parts
from crossrec.data.errors import BundleError
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary

__all__ = ["InteractionArrays", "materialize_domain", "split_arrays", "write_arrays"]

_FORMAT = "crossrec-arrays-1"
_CHUNK = 1 << 22


@dataclass(frozen=True)
class InteractionArrays:
    """One domain's interactions as memory-mapped columns (see the module docstring for the layout).

    Attributes
    ----------
    folder
        The arrays folder.
    user, item
        Read-only ``int32`` memory maps, sorted by user.
    timestamp
        Read-only ``int64`` memory map, or ``None``.
    n_users, n_items
        Sizes of the domain's vocabularies (indices are below them).
    """

    folder: Path
    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray | None
    n_users: int
    n_items: int

    @classmethod
    def open(cls, folder: str | Path) -> InteractionArrays:
        """Map an arrays folder written by this module.

        Raises
        ------
        FileNotFoundError
            When ``folder`` has no ``meta.json`` of this format.
        """
        folder = Path(folder)
        meta = _read_meta(folder)
        rows = int(meta["rows"])

        def column(name: str, dtype: str) -> np.ndarray:
            if rows == 0:
                return np.zeros(0, dtype=dtype)
            return np.memmap(folder / name, dtype=dtype, mode="r", shape=(rows,))

        return cls(
            folder=folder,
            user=column("user.i32", "<i4"),
            item=column("item.i32", "<i4"),
            timestamp=column("timestamp.i64", "<i8") if meta["has_timestamps"] else None,
            n_users=int(meta["n_users"]),
            n_items=int(meta["n_items"]),
        )

    def __len__(self) -> int:
        return len(self.user)

    @property
    def meta(self) -> dict[str, Any]:
        """The folder's ``meta.json``."""
        return _read_meta(self.folder)

    def chunks(self, size: int = _CHUNK) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(start, users, items)`` in-memory copies of consecutive row ranges."""
        for start in range(0, len(self), size):
            yield (
                start,
                np.asarray(self.user[start : start + size]),
                np.asarray(self.item[start : start + size]),
            )

    def user_counts(self) -> np.ndarray:
        """Interactions per user (``int64``, length ``n_users``), computed chunk by chunk."""
        counts = np.zeros(self.n_users, dtype=np.int64)
        for _, users, _ in self.chunks():
            counts += np.bincount(users, minlength=self.n_users)
        return counts

    def to_csr(self, users: np.ndarray | None = None) -> sp.csr_matrix:
        """Binary user x item matrix (in memory), optionally of some users' rows only (others empty)."""
        counts = self.user_counts()
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        if users is None:
            indices = np.array(self.item, dtype=np.int32)  # a writable copy of the read-only map
            matrix = sp.csr_matrix(
                (np.ones(len(indices), np.float32), indices, indptr), shape=(self.n_users, self.n_items)
            )
        else:
            keep = np.zeros(self.n_users, dtype=bool)
            keep[np.asarray(users, dtype=np.int64)] = True
            mask = np.repeat(keep, counts)
            indices = np.asarray(self.item, dtype=np.int32)[mask] if len(self) else np.zeros(0, np.int32)
            kept = np.where(keep, counts, 0)
            indptr = np.zeros(self.n_users + 1, dtype=np.int64)
            np.cumsum(kept, out=indptr[1:])
            matrix = sp.csr_matrix(
                (np.ones(len(indices), np.float32), indices, indptr), shape=(self.n_users, self.n_items)
            )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def user_ids(self) -> pa.Array | None:
        """Raw user ids in index order (memory-mapped Arrow array), or ``None`` when not stored."""
        return _read_ids(self.folder / "user_ids.arrow")

    def item_ids(self) -> pa.Array | None:
        """Raw item ids in index order (memory-mapped Arrow array), or ``None`` when not stored."""
        return _read_ids(self.folder / "item_ids.arrow")

    def vocabulary(self, entity: str) -> Vocabulary:
        """The user (``entity="user"``) or item vocabulary, materialised in memory."""
        ids = self.user_ids() if entity == "user" else self.item_ids()
        if ids is None:
            raise FileNotFoundError(f"{self.folder} stores no {entity} ids")
        return Vocabulary(ids.to_numpy(zero_copy_only=False))

    def to_interactions(self) -> Interactions:
        """All rows in memory as :class:`~crossrec.data.Interactions` (for small data and tests)."""
        return Interactions(
            np.asarray(self.user, np.int64),
            np.asarray(self.item, np.int64),
            np.ones(len(self), np.float32),
            None if self.timestamp is None else np.asarray(self.timestamp),
        )


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not an interaction arrays folder (no meta.json); create it with "
            "crossrec.data.arrays.materialize_domain or write_arrays"
        )
    meta = json.loads(path.read_text())
    if meta.get("format") != _FORMAT:
        raise FileNotFoundError(
            f"{path}: format {meta.get('format')!r} is not {_FORMAT!r}; rebuild the arrays"
        )
    return meta


def _read_ids(path: Path) -> pa.Array | None:
    if not path.is_file():
        return None
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all().column(0).combine_chunks()


def _write_ids(path: Path, ids: pa.Array) -> None:
    table = pa.table({"id": ids})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


class _ColumnWriter:
    """Appends chunks to the raw column files of a new arrays folder, then writes ``meta.json``."""

    def __init__(self, folder: Path, has_timestamps: bool, *, overwrite: bool) -> None:
        if folder.exists():
            if not overwrite:
                raise FileExistsError(f"{folder} already exists; pass overwrite=True to rebuild it")
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        self.folder = folder
        self.has_timestamps = has_timestamps
        names = ["user.i32", "item.i32"] + (["timestamp.i64"] if has_timestamps else [])
        self.files = {name: open(folder / name, "wb") for name in names}  # noqa: SIM115 - closed in finish
        self.rows = 0

    def append(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None) -> None:
        self.files["user.i32"].write(np.ascontiguousarray(users, dtype="<i4").tobytes())
        self.files["item.i32"].write(np.ascontiguousarray(items, dtype="<i4").tobytes())
        if self.has_timestamps:
            assert timestamps is not None
            self.files["timestamp.i64"].write(np.ascontiguousarray(timestamps, dtype="<i8").tobytes())
        self.rows += len(users)

    def finish(self, n_users: int, n_items: int, **info: Any) -> InteractionArrays:
        for handle in self.files.values():
            handle.close()
        meta = {
            "format": _FORMAT,
            "rows": self.rows,
            "n_users": int(n_users),
            "n_items": int(n_items),
            "has_timestamps": self.has_timestamps,
            **info,
        }
        (self.folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        return InteractionArrays.open(self.folder)

    def abort(self) -> None:
        for handle in self.files.values():
            handle.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _check_index_range(n_users: int, n_items: int) -> None:
    if max(n_users, n_items) >= 2**31:
        raise ValueError(f"{n_users} users / {n_items} items do not fit int32 indices")


def materialize_domain(
    bundle: str | Path,
    domain: str,
    folder: str | Path | None = None,
    *,
    overwrite: bool = False,
) -> InteractionArrays:
    """Stream one domain of a bundle into memory-mapped arrays (reused when already up to date).

    Parameters
    ----------
    bundle
        Bundle folder written by ``crossrec ingest``.
    domain
        Domain name in the bundle.
    folder
        Arrays folder (default ``BUNDLE/_arrays/DOMAIN``). An existing folder built from the same
        ``interactions.parquet`` (same sha256 in the manifest) is reused.
    overwrite
        Rebuild even when an up-to-date folder exists.

    Returns
    -------
    InteractionArrays
        Rows in the bundle's order (by user index, then item index).

    Raises
    ------
    BundleError
        When the bundle or the domain does not exist.
    """
    bundle = Path(bundle)
    manifest_path = bundle / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(
            f"{bundle} is not a crossrec bundle (no manifest.json); create one with `crossrec ingest`"
        )
    manifest = json.loads(manifest_path.read_text())
    if domain not in manifest.get("domains", {}):
        raise BundleError(f"no domain {domain!r} in {bundle}; it has {sorted(manifest.get('domains', {}))}")
    info = manifest["domains"][domain]
    checksum = manifest["files"]["interactions.parquet"]["sha256"]
    folder = Path(folder) if folder is not None else bundle / "_arrays" / domain
    if not overwrite and (folder / "meta.json").is_file():
        try:
            meta = _read_meta(folder)
        except FileNotFoundError:
            meta = {}
        if meta.get("interactions_sha256") == checksum and meta.get("domain") == domain:
            return InteractionArrays.open(folder)
    _check_index_range(info["users"], info["items"])
    writer = _ColumnWriter(folder, bool(info["has_timestamps"]), overwrite=True)
    try:
        parquet = pq.ParquetFile(bundle / "interactions.parquet")
        for batch in parquet.iter_batches(
            batch_size=1 << 20, columns=["domain", "user_index", "item_index", "timestamp"]
        ):
            mine = batch.filter(pc.equal(batch.column("domain"), domain))
            if mine.num_rows == 0:
                continue
            timestamps = (
                mine.column("timestamp").to_numpy(zero_copy_only=False) if writer.has_timestamps else None
            )
            writer.append(
                mine.column("user_index").to_numpy(), mine.column("item_index").to_numpy(), timestamps
            )
        for entity, column in (("users", "user"), ("items", "item")):
            table = pq.read_table(bundle / f"{entity}.parquet", columns=["domain", column, "index"])
            table = table.filter(pc.equal(table.column("domain"), domain)).sort_by("index")
            _write_ids(folder / f"{column}_ids.arrow", table.column(column).combine_chunks())
        if writer.rows != info["interactions"]:
            raise BundleError(
                f"{bundle}: domain {domain!r} has {writer.rows} interactions in interactions.parquet but "
                f"{info['interactions']} in manifest.json; re-run `crossrec ingest`"
            )
        return writer.finish(
            info["users"], info["items"], domain=domain, bundle=str(bundle.resolve()),
            interactions_sha256=checksum, sorted_by_user=True,
        )  # fmt: skip
    except BaseException:
        writer.abort()
        raise


def write_arrays(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    folder: str | Path,
    *,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
    overwrite: bool = False,
) -> InteractionArrays:
    """Store in-memory interactions as an arrays folder (rows sorted by user, then item).

    Parameters
    ----------
    interactions
        The rows.
    n_users, n_items
        Vocabulary sizes.
    folder
        Folder to create.
    user_ids, item_ids
        Optional raw ids in index order.
    overwrite
        Replace an existing folder.
    """
    _check_index_range(n_users, n_items)
    order = np.lexsort((interactions.item, interactions.user))
    writer = _ColumnWriter(Path(folder), interactions.timestamp is not None, overwrite=overwrite)
    try:
        for start in range(0, len(order), _CHUNK):
            rows = order[start : start + _CHUNK]
            writer.append(
                interactions.user[rows],
                interactions.item[rows],
                None if interactions.timestamp is None else interactions.timestamp[rows],
            )
        for name, ids in (("user_ids.arrow", user_ids), ("item_ids.arrow", item_ids)):
            if ids is not None:
                _write_ids(
                    writer.folder / name, pa.array(np.asarray(ids, dtype=object).astype(str), pa.string())
                )
        return writer.finish(n_users, n_items, sorted_by_user=True)
    except BaseException:
        writer.abort()
        raise


def split_arrays(
    arrays: InteractionArrays,
    folder: str | Path,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 2022,
    *,
    overwrite: bool = False,
) -> dict[str, InteractionArrays]:
    """Per-user random ratio split into ``folder/train``, ``folder/valid`` and ``folder/test``.

    Same rule as :func:`crossrec.evaluation.random_split` (RecBole's ``RS`` rounding: valid and test
    get ``floor(ratio * n)``, a part whose share is below one interaction still gets one while
    training keeps more than one), computed over chunks of whole users so memory stays bounded.
    The rows drawn differ from :func:`~crossrec.evaluation.random_split`'s for the same seed.

    Parameters
    ----------
    arrays
        Interactions sorted by user (as written by this module).
    folder
        Parent folder of the three parts.
    ratios
        Train, valid, test shares.
    seed
        Seed of the per-user shuffles.
    overwrite
        Replace existing part folders.
    """
    if len(ratios) != 3 or min(ratios) < 0 or not np.isclose(sum(ratios), 1.0):
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    folder = Path(folder)
    has_time = arrays.timestamp is not None
    writers = {
        part: _ColumnWriter(folder / part, has_time, overwrite=overwrite)
        for part in ("train", "valid", "test")
    }
    rng = np.random.default_rng(seed)
    counts = arrays.user_counts()
    ends = np.cumsum(counts)
    try:
        start = 0
        while start < len(arrays):
            # a chunk ends on a user boundary so that every user is split within one chunk
            last_user = int(np.searchsorted(ends, start + _CHUNK, side="right")) - 1
            stop = (
                int(ends[last_user])
                if last_user >= 0 and ends[last_user] > start
                else int(ends[np.searchsorted(ends, start, side="right")])
            )
            users = np.asarray(arrays.user[start:stop], dtype=np.int64)
            items = np.asarray(arrays.item[start:stop])
            times = np.asarray(arrays.timestamp[start:stop]) if has_time else None  # type: ignore[index]
            if len(users) and np.any(np.diff(users) < 0):
                raise ValueError(f"{arrays.folder}: rows are not sorted by user; rebuild the arrays")
            order = np.lexsort((rng.random(len(users)), users))
            first = np.searchsorted(users, users, side="left")
            rank = np.arange(len(users)) - first  # position within the user's shuffled rows
            part = ratio_parts(rank, counts[users], ratios)
            for code, name in enumerate(("train", "valid", "test")):
                rows = np.sort(order[part == code])
                writers[name].append(users[rows], items[rows], None if times is None else times[rows])
            start = stop
        info = {"sorted_by_user": True, "split_of": str(arrays.folder), "seed": seed, "ratios": list(ratios)}
        return {
            name: writer.finish(arrays.n_users, arrays.n_items, part=name, **info)
            for name, writer in writers.items()
        }
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
