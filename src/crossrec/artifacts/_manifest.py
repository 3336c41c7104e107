"""``manifest.json``: the format version, the crossrec version, the sha256 and size of every file and
the arrays of every safetensors file; :func:`read_verified` reads a whole artifact once against it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from crossrec import __version__
from crossrec.artifacts._snapshot import FolderSnapshot, declared_arrays, safetensors_header, sha256_bytes
from crossrec.artifacts.errors import ArtifactIntegrityError, ArtifactVersionError

MANIFEST = "manifest.json"
FORMAT = "crossrec-artifact"
FORMAT_VERSION = 1
_CHUNK = 1 << 20
_MAX_MANIFEST = 64 * 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _relative_files(folder: Path) -> list[str]:
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() or path.is_symlink()
    )


def write_manifest(folder: Path, lineage: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hash every file under ``folder`` and write ``manifest.json`` next to them.

    Each ``.safetensors`` file also declares its arrays (``dtype`` and ``shape``), which loading
    compares with what the file holds. ``lineage`` (where the model came from: its role, source
    artifacts, strategy, data fingerprints, parent) is recorded under ``"lineage"``; the
    manifest's sha256, the artifact's id, covers it.
    """
    files: dict[str, dict[str, Any]] = {}
    for name in _relative_files(folder):
        if name == MANIFEST:
            continue
        data = (folder / name).read_bytes()
        entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        if name.endswith(".safetensors"):
            entry["arrays"] = declared_arrays(safetensors_header(data, str(folder / name)))
        files[name] = entry
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crossrec_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    if lineage:
        manifest["lineage"] = lineage
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def parse_manifest(folder: Path, raw: bytes | bytearray) -> dict[str, Any]:
    """Parse and check ``manifest.json`` (its header and the form of every file entry)."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(bytes(raw).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactIntegrityError(f"{path} is not valid JSON ({error}): the artifact is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactIntegrityError(
            f"{path} is not a crossrec artifact manifest (expected format {FORMAT!r})"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ArtifactIntegrityError(f"{path}: 'format_version' must be an integer, found {version!r}")
    if version != FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{folder} uses artifact format {version} (written by crossrec "
            f"{manifest.get('crossrec_version', '?')}); this crossrec {__version__} reads format "
            f"{FORMAT_VERSION} only: re-save the model with this version, or install the matching crossrec"
        )
    lineage = manifest.get("lineage", {})
    if not isinstance(lineage, dict):
        raise ArtifactIntegrityError(
            f"{path}: 'lineage' must be a JSON object, found {type(lineage).__name__}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactIntegrityError(f"{path}: 'files' must map every file of the artifact to its sha256")
    for name, entry in files.items():
        pure = PurePosixPath(name)
        if not name or pure.is_absolute() or ".." in pure.parts or name == MANIFEST:
            raise ArtifactIntegrityError(f"{path}: file entry {name!r} is not a plain relative path")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ArtifactIntegrityError(f"{path}: file entry {name!r} has no sha256")
        size = entry.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ArtifactIntegrityError(
                f"{path}: file entry {name!r} must give its size as a whole number of bytes, found {size!r}"
            )
        arrays = entry.get("arrays")
        if arrays is not None and not (
            isinstance(arrays, dict)
            and all(isinstance(a, dict) and set(a) == {"dtype", "shape"} for a in arrays.values())
        ):
            raise ArtifactIntegrityError(f"{path}: file entry {name!r} declares its arrays malformed")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """Parse and check the header of ``manifest.json`` (not the files; see :func:`read_verified`)."""
    with FolderSnapshot(folder) as snapshot:
        return parse_manifest(folder, _read_manifest_bytes(snapshot))


def _read_manifest_bytes(snapshot: FolderSnapshot) -> bytearray:
    try:
        return snapshot.read(MANIFEST, limit=_MAX_MANIFEST)
    except ArtifactIntegrityError as error:
        if "is missing" in str(error):
            raise ArtifactIntegrityError(
                f"{snapshot.folder} has no {MANIFEST}: it is not a crossrec artifact, or it was not "
                "saved completely"
            ) from None
        raise


def read_verified(folder: Path) -> tuple[dict[str, Any], str, dict[str, bytearray]]:
    """Read the whole artifact once: ``(manifest, manifest sha256, {file: bytes})``.

    Every file is read through one descriptor of the folder, compared with its size and sha256 in
    the manifest, and returned; callers parse these bytes, never the files again. Safetensors files
    must hold exactly the arrays their manifest entry declares.

    Raises
    ------
    ArtifactIntegrityError
        No or invalid manifest; missing, extra, truncated, replaced or symbolic-link files.
    ArtifactVersionError
        A format this crossrec does not read.
    """
    with FolderSnapshot(folder) as snapshot:
        raw_manifest = _read_manifest_bytes(snapshot)
        manifest = parse_manifest(folder, raw_manifest)
        expected: dict[str, dict[str, Any]] = manifest["files"]
        present = set(snapshot.files()) - {MANIFEST}
        missing = sorted(set(expected) - present)
        if missing:
            raise ArtifactIntegrityError(f"{folder} is incomplete: missing {missing} listed in {MANIFEST}")
        extra = sorted(present - set(expected))
        if extra:
            raise ArtifactIntegrityError(
                f"{folder} holds files its {MANIFEST} does not list: {extra[:5]}; "
                "remove them, or re-save the artifact"
            )
        contents: dict[str, bytearray] = {}
        for name, entry in sorted(expected.items()):
            data = snapshot.read(name, limit=entry["bytes"])
            if len(data) != entry["bytes"]:
                raise ArtifactIntegrityError(
                    f"{folder / name} has {len(data)} bytes, {MANIFEST} says {entry['bytes']}: "
                    "the file is truncated or was replaced"
                )
            if sha256_bytes(data) != entry["sha256"]:
                raise ArtifactIntegrityError(
                    f"{folder / name} does not match the sha256 in {MANIFEST}: the file was modified after "
                    "saving; re-save the artifact from the trained model"
                )
            if name.endswith(".safetensors"):
                found = declared_arrays(safetensors_header(data, str(folder / name)))
                if entry.get("arrays") is not None and entry["arrays"] != found:
                    raise ArtifactIntegrityError(
                        f"{folder / name}: its arrays {_describe(found)} are not the ones {MANIFEST} "
                        f"declares ({_describe(entry['arrays'])}); re-save the artifact"
                    )
            contents[name] = data
    return manifest, sha256_bytes(raw_manifest), contents


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Refuse missing, extra, truncated or changed files (see :func:`read_verified`)."""
    read_verified(folder)


def manifest_digest(folder: Path) -> str:
    """sha256 of ``manifest.json``: an id of the whole artifact (it covers every file's hash)."""
    return sha256_file(folder / MANIFEST)


def _describe(arrays: dict[str, Any]) -> str:
    shown = [f"{name}: {entry.get('dtype')} {entry.get('shape')}" for name, entry in sorted(arrays.items())]
    return ", ".join(shown[:6]) + (", ..." if len(shown) > 6 else "")
