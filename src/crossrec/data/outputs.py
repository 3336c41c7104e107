"""Output folders that crossrec may replace, and the hidden work folders it leaves behind.

Every command that writes a folder (``ingest``, artifacts, run folders, ``synth``) follows one rule
before it replaces an existing folder (``--force``): the folder must have been written by crossrec,
as the same kind of output (its manifest says so), hold only files crossrec wrote there, and it must
neither be nor contain any of the command's inputs. Otherwise nothing is touched and the error says
why. So no command deletes a file it did not write.

Work folders (``.NAME.partial-*``, ``.NAME.scratch-*``, ...) are named after the host and the process
that made them. A later run removes those whose process is gone, and reports (never removes) ones it
cannot attribute, e.g. from older crossrec versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "BUNDLE_FORMAT",
    "OutputFolderError",
    "OutputKind",
    "StaleFolders",
    "check_not_input",
    "check_replaceable",
    "clean_stale_work_folders",
    "crossrec_files",
    "make_work_folder",
    "work_path",
]

#: ``format`` in the manifest of each kind of output folder.
BUNDLE_FORMAT = "crossrec-bundle"
ARTIFACT_FORMAT = "crossrec-artifact"
SYNTH_FORMAT = "crossrec-synth"
RUN_FORMAT = "crossrec-results"

OutputKind = Literal["bundle", "artifact", "synth", "run"]
_WORK_KINDS = ("partial", "scratch", "tmp", "old", "staging")
_NAMES = {"bundle": "bundle", "artifact": "artifact", "synth": "synthetic data folder", "run": "run folder"}


class OutputFolderError(Exception):
    """An output folder cannot be written or replaced as asked; the message says what to do."""


def _json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _files_of(manifest: dict, key: str = "files") -> set[str] | None:
    files = manifest.get(key)
    if isinstance(files, dict):
        return {str(name) for name in files}
    if isinstance(files, list) and all(isinstance(name, str) for name in files):
        return set(files)
    return None


def crossrec_files(folder: Path, kind: OutputKind) -> set[str] | None:
    """The files crossrec wrote into ``folder`` as a ``kind`` output (relative POSIX paths), or
    ``None`` when the folder's manifest does not say it is one."""
    if kind in ("bundle", "artifact"):
        manifest = _json(folder / "manifest.json")
        if manifest is None:
            return None
        if kind == "artifact" and manifest.get("format") != ARTIFACT_FORMAT:
            return None
        is_bundle = manifest.get("format") == BUNDLE_FORMAT or (
            "format" not in manifest and {"schema_version", "crossrec_version", "files"} <= set(manifest)
        )
        if kind == "bundle" and not is_bundle:
            return None
        files = _files_of(manifest)
        return None if files is None else files | {"manifest.json"}
    if kind == "synth":
        manifest = _json(folder / "synth.json")
        if manifest is None or manifest.get("format", SYNTH_FORMAT) != SYNTH_FORMAT:
            return None
        files = _files_of(manifest)
        if files is None:  # written before synth.json listed its files: its domains' Parquet files
            domains = manifest.get("domains")
            if not isinstance(domains, dict) or "config" not in manifest:
                return None
            files = {
                path.relative_to(folder).as_posix()
                for name in domains
                for path in (folder / str(name)).glob("*.parquet")
            }
        return files | {"synth.json", "sources.toml"}
    manifest = _json(folder / "results.json")  # a run folder
    if manifest is None or not str(manifest.get("format", "")).startswith(RUN_FORMAT):
        return None
    files = _files_of(manifest, "run_files")
    return (files or set()) | {"results.json"}


def _present(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if not path.is_dir()}


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_not_input(folder: str | Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output folder that is, or contains, one of ``inputs``."""
    folder = Path(folder)
    resolved = folder.resolve()
    for item in inputs:
        source = Path(item).resolve()
        if _inside(source, resolved):
            what = "is" if source == resolved else "contains"
            raise OutputFolderError(
                f"{folder} {what} an input of this command ({item}): writing there would destroy the input; "
                "choose another output folder"
            )


def check_replaceable(
    folder: str | Path,
    *,
    kind: OutputKind,
    force: bool,
    inputs: Iterable[str | Path] = (),
    keep_unlisted: bool = False,
) -> bool:
    """Refuse to write ``folder`` unless that is safe; ``True`` when an existing folder will be replaced.

    Parameters
    ----------
    folder
        The output folder.
    kind
        What the command writes there.
    force
        Whether the user asked to replace an existing folder (``--force``).
    inputs
        The command's input files and folders: the output may be none of them and contain none.
    keep_unlisted
        Files crossrec did not write may stay (run folders keep checkpoints and logs next to what
        ``write_run`` replaces); otherwise any such file blocks the replacement.

    Raises
    ------
    OutputFolderError
        The folder exists without ``force``, is or contains an input, is not a crossrec ``kind``, or
        holds files crossrec did not write.
    """
    folder = Path(folder)
    check_not_input(folder, inputs)
    if not folder.exists() and not folder.is_symlink():
        return False
    name = _NAMES[kind]
    if not force:
        raise OutputFolderError(
            f"{folder} already exists; choose another folder or pass --force to replace it"
        )
    if folder.is_symlink() or not folder.is_dir():
        raise OutputFolderError(
            f"{folder} is not a folder crossrec wrote (it is a {'link' if folder.is_symlink() else 'file'}); "
            "--force replaces only a crossrec "
            f"{name}: remove it yourself or choose another folder"
        )
    written = crossrec_files(folder, kind)
    if written is None:
        raise OutputFolderError(
            f"{folder} is not a crossrec {name} (no manifest says so); --force replaces only a folder that "
            f"crossrec wrote as a {name}: remove it yourself or choose another folder"
        )
    if not keep_unlisted:
        unknown = sorted(_present(folder) - written)
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise OutputFolderError(
                f"{folder} holds files crossrec did not write there ({shown}); --force never deletes them: "
                "move them out, or choose another folder"
            )
    return True


# -------------------------------------------------------------------------------------- work folders

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_WORK = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>[a-z]+)-(?:(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-)?[A-Za-z0-9_]+$"
)


def work_path(parent: Path, name: str, kind: str) -> Path:
    """A fresh ``parent/.NAME.KIND-HOST-PID-RANDOM`` path (not created), e.g. to rename a folder to."""
    if kind not in _WORK_KINDS:
        raise ValueError(f"unknown work folder kind {kind!r}")
    return parent / f".{name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def make_work_folder(parent: Path, name: str, kind: str) -> Path:
    """Create ``parent/.NAME.KIND-HOST-PID-RANDOM``: a hidden folder that a later run can attribute."""
    if kind not in _WORK_KINDS:
        raise ValueError(f"unknown work folder kind {kind!r}")
    return Path(tempfile.mkdtemp(prefix=f".{name}.{kind}-{_HOST}-{os.getpid()}-", dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@dataclass(frozen=True)
class StaleFolders:
    """What :func:`clean_stale_work_folders` did: folders removed, and folders left with a reason."""

    removed: list[Path]
    left: list[Path]

    def messages(self) -> list[str]:
        """One line per folder left behind, saying how to remove it."""
        return [
            f"{path} looks like the work folder of an earlier crossrec run that did not finish; it was not "
            f"removed because its process cannot be checked: delete it if no crossrec run is using it "
            f"(rm -r '{path}')"
            for path in self.left
        ]


def clean_stale_work_folders(parent: Path, name: str) -> StaleFolders:
    """Remove ``parent/.NAME.{partial,scratch,tmp,old,staging}-*`` folders whose process on this host
    has ended; report the ones that cannot be attributed (another host, or an older naming)."""
    import shutil

    removed: list[Path] = []
    left: list[Path] = []
    if not parent.is_dir():
        return StaleFolders(removed, left)
    for path in sorted(parent.glob(f".{glob_escape(name)}.*-*")):
        match = _WORK.match(path.name)
        if not match or match["name"] != name or match["kind"] not in _WORK_KINDS or path.is_symlink():
            continue
        if not path.is_dir():
            continue
        if match["pid"] is not None and match["host"] == _HOST:
            if _alive(int(match["pid"])):
                continue  # a run in progress
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif match["pid"] is None or match["host"] != _HOST:
            left.append(path)
    return StaleFolders(removed, left)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
