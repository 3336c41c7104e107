"""``manifest.json``: the format version, the crossrec version and the sha256 of every file."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from crossrec import __version__
from crossrec.artifacts.errors import ArtifactIntegrityError, ArtifactVersionError

MANIFEST = "manifest.json"
FORMAT = "crossrec-artifact"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


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


def write_manifest(folder: Path) -> dict[str, Any]:
    """Hash every file under ``folder`` and write ``manifest.json`` next to them."""
    files = {
        name: {"sha256": sha256_file(folder / name), "bytes": (folder / name).stat().st_size}
        for name in _relative_files(folder)
        if name != MANIFEST
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "crossrec_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """Parse and check the header of ``manifest.json`` (not the files; see :func:`verify_files`)."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise ArtifactIntegrityError(
            f"{folder} is not a folder: pass the artifact folder written by save_artifact"
        )
    if not path.is_file():
        raise ArtifactIntegrityError(
            f"{folder} has no {MANIFEST}: it is not a crossrec artifact, or it was not saved completely"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactIntegrityError(f"{path} is not valid JSON ({error}): the artifact is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactIntegrityError(
            f"{path} is not a crossrec artifact manifest (expected format {FORMAT!r})"
        )
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ArtifactIntegrityError(f"{path}: 'format_version' must be an integer, found {version!r}")
    if version != FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{folder} uses artifact format {version} (written by crossrec "
            f"{manifest.get('crossrec_version', '?')}); this crossrec {__version__} reads format "
            f"{FORMAT_VERSION} only: re-save the model with this version, or install the matching crossrec"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactIntegrityError(f"{path}: 'files' must map every file of the artifact to its sha256")
    for name, entry in files.items():
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or name == MANIFEST:
            raise ArtifactIntegrityError(f"{path}: file entry {name!r} is not a plain relative path")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ArtifactIntegrityError(f"{path}: file entry {name!r} has no sha256")
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Refuse missing, extra, truncated or changed files (sizes first, then sha256)."""
    expected: dict[str, dict[str, Any]] = manifest["files"]
    present = set(_relative_files(folder)) - {MANIFEST}
    missing = sorted(set(expected) - present)
    if missing:
        raise ArtifactIntegrityError(f"{folder} is incomplete: missing {missing} listed in {MANIFEST}")
    extra = sorted(present - set(expected))
    if extra:
        raise ArtifactIntegrityError(
            f"{folder} holds files its {MANIFEST} does not list: {extra[:5]}; "
            "remove them, or re-save the artifact"
        )
    for name, entry in sorted(expected.items()):
        path = folder / name
        if path.is_symlink():
            raise ArtifactIntegrityError(f"{path} is a symbolic link; artifacts hold plain files only")
        size = path.stat().st_size
        if "bytes" in entry and size != entry["bytes"]:
            raise ArtifactIntegrityError(
                f"{path} has {size} bytes, {MANIFEST} says {entry['bytes']}: "
                "the file is truncated or was replaced"
            )
        if sha256_file(path) != entry["sha256"]:
            raise ArtifactIntegrityError(
                f"{path} does not match the sha256 in {MANIFEST}: the file was modified after saving; "
                "re-save the artifact from the trained model"
            )


def manifest_digest(folder: Path) -> str:
    """sha256 of ``manifest.json``: an id of the whole artifact (it covers every file's hash)."""
    return sha256_file(folder / MANIFEST)
