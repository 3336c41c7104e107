"""One consistent read of an artifact folder: every file is read once, hashed and parsed from the
same bytes (nothing is re-opened after it was verified), through a descriptor of the folder itself.

Opening every file relative to a descriptor of the folder (never following symbolic links) means a
folder renamed or swapped during a load cannot mix files of two artifacts: the reads all come from
the directory that was opened first. A file replaced in place after it was read changes nothing:
what is parsed is what was hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from crossrec.artifacts.errors import ArtifactIntegrityError

__all__ = ["FolderSnapshot", "parse_safetensors", "safetensors_header"]

_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

#: safetensors dtype names -> numpy dtypes (little-endian); bfloat16 and float8 have no numpy type.
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_MAX_HEADER = 100 * 1024 * 1024


class FolderSnapshot:
    """Reads the files of one folder through a descriptor opened once (use as a context manager).

    Raises
    ------
    ArtifactIntegrityError
        The path is not a folder, a file cannot be read, or a symbolic link is found.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            self._fd = os.open(folder, _DIRECTORY_FLAGS)
        except FileNotFoundError:
            raise ArtifactIntegrityError(
                f"{folder} is not a folder (nothing is there): pass the artifact folder of save_artifact"
            ) from None
        except NotADirectoryError:
            raise ArtifactIntegrityError(
                f"{folder} is not a folder: pass the artifact folder written by save_artifact"
            ) from None
        except OSError as error:
            raise ArtifactIntegrityError(
                f"{folder} cannot be opened ({error.strerror}): pass a real folder, not a link"
            ) from None

    def __enter__(self) -> FolderSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def files(self) -> list[str]:
        """Relative POSIX paths of every file below the folder (symbolic links are refused)."""
        found: list[str] = []
        for root, directories, names, root_fd in os.fwalk(".", dir_fd=self._fd, follow_symlinks=False):
            for name in [*directories, *names]:
                mode = os.stat(name, dir_fd=root_fd, follow_symlinks=False).st_mode
                relative = PurePosixPath(root, name).as_posix().removeprefix("./")
                if stat.S_ISLNK(mode):
                    raise ArtifactIntegrityError(
                        f"{self.folder / relative} is a symbolic link; artifacts hold plain files only"
                    )
                if not stat.S_ISDIR(mode):
                    found.append(relative)
        return sorted(found)

    def read(self, name: str, limit: int | None = None) -> bytearray:
        """The bytes of ``name`` (a relative path), read once; more than ``limit`` bytes is refused."""
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise ArtifactIntegrityError(f"{name!r} is not a plain relative path inside the artifact")
        opened: list[int] = []
        try:
            directory = self._fd
            for part in parts[:-1]:
                directory = os.open(part, _DIRECTORY_FLAGS, dir_fd=directory)
                opened.append(directory)
            handle = os.open(parts[-1], _FILE_FLAGS, dir_fd=directory)
        except FileNotFoundError:
            raise ArtifactIntegrityError(f"{self.folder / name} is missing") from None
        except OSError as error:
            raise ArtifactIntegrityError(
                f"{self.folder / name} cannot be read ({error.strerror}); artifacts hold plain files only"
            ) from None
        finally:
            for descriptor in opened:
                os.close(descriptor)
        with os.fdopen(handle, "rb", buffering=0) as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise ArtifactIntegrityError(f"{self.folder / name} is not a regular file")
            if limit is not None and status.st_size > limit:
                raise self._larger(name, limit)
            data = bytearray(status.st_size)
            view, filled = memoryview(data), 0
            while filled < len(data) and (count := file.readinto(view[filled:])):
                filled += count
            del view
            if filled < len(data):  # truncated while being read
                del data[filled:]
            if limit is not None and file.read(1):  # grew while being read
                raise self._larger(name, limit)
        return data

    def _larger(self, name: str, limit: int) -> ArtifactIntegrityError:
        return ArtifactIntegrityError(
            f"{self.folder / name} is larger than the {limit} bytes manifest.json says: the file was "
            "replaced; re-save the artifact"
        )


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def safetensors_header(data: bytes | bytearray, where: str) -> dict[str, dict[str, Any]]:
    """The tensor table of a safetensors file: ``{name: {"dtype", "shape", "data_offsets"}}``, checked
    for sizes, offsets that stay inside the file and do not overlap, and dtypes numpy can hold."""
    if len(data) < 8:
        raise ArtifactIntegrityError(f"{where} is not a safetensors file (shorter than its header)")
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    if length > min(_MAX_HEADER, len(data) - 8):
        raise ArtifactIntegrityError(f"{where}: safetensors header length {length} does not fit the file")
    try:
        header = json.loads(bytes(data[8 : 8 + length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ArtifactIntegrityError(f"{where}: the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ArtifactIntegrityError(f"{where}: the safetensors header is not a JSON object")
    header.pop("__metadata__", None)
    body = len(data) - 8 - length
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ArtifactIntegrityError(f"{where}: tensor {name!r} has a malformed header entry")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPES:
            raise ArtifactIntegrityError(
                f"{where}: tensor {name!r} has dtype {dtype!r}, which crossrec never writes"
            )
        if not isinstance(shape, list) or not all(_is_count(value) for value in shape):
            raise ArtifactIntegrityError(f"{where}: tensor {name!r} has shape {shape!r}, not a list of sizes")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(v) for v in offsets):
            raise ArtifactIntegrityError(f"{where}: tensor {name!r} has malformed data offsets")
        start, stop = offsets
        expected = int(np.prod(shape, dtype=object)) * _DTYPES[dtype].itemsize
        if not start <= stop <= body or stop - start != expected:
            raise ArtifactIntegrityError(
                f"{where}: tensor {name!r} ({dtype} {shape}) needs {expected} bytes, its offsets "
                f"{offsets} do not match (the data holds {body} bytes)"
            )
        spans.append((start, stop, name))
    spans.sort()
    for (_, stop, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        if start < stop:
            raise ArtifactIntegrityError(f"{where}: tensors {first!r} and {second!r} overlap")
    return header


def parse_safetensors(data: bytearray, where: str) -> dict[str, np.ndarray]:
    """Arrays of a safetensors file held in ``data`` (views of it where aligned, else copies)."""
    header = safetensors_header(data, where)
    (length,) = struct.unpack("<Q", bytes(data[:8]))
    base = 8 + length
    arrays: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        dtype = _DTYPES[entry["dtype"]]
        start, stop = entry["data_offsets"]
        array = np.frombuffer(data, dtype=dtype, count=(stop - start) // dtype.itemsize, offset=base + start)
        if not array.flags.aligned:
            array = array.copy()
        arrays[name] = array.reshape(entry["shape"])
    return arrays


def declared_arrays(header: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{name: {"dtype", "shape"}}``: what a manifest declares for a safetensors file."""
    return {name: {"dtype": entry["dtype"], "shape": list(entry["shape"])} for name, entry in header.items()}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
