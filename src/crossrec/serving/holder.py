"""The one reference to the served model, swapped atomically on reload."""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crossrec.artifacts import Artifact, load_artifact
from crossrec.serving._json import finite

__all__ = ["LoadedModel", "ModelHolder", "redact_message", "redact_paths"]

logger = logging.getLogger("crossrec.serving")


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """An artifact as served: immutable, so a request that read it sees one consistent model."""

    artifact: Artifact
    loaded_at: str
    metadata_json: bytes

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> LoadedModel:
        loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        metadata = artifact.metadata.as_dict()
        metadata.pop("path", None)  # the server's file system is nobody's business
        payload = finite(redact_paths({**metadata, "loaded_at": loaded_at}))
        return cls(artifact, loaded_at, json.dumps(payload, allow_nan=False).encode())


_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:[\\/]|\\\\)")
_SEPARATORS = re.compile(r"[\\/]")
_EMBEDDED = re.compile(r"(?<![\w.:/>])/(?:[^\s:'\"/]+/)*[^\s:'\",;)]*")


def redact_paths(value: Any) -> Any:
    """Copy of ``value`` (JSON-like) with absolute paths shortened to ``<path>/<last part>``."""
    if isinstance(value, str):
        if not _ABSOLUTE.match(value):
            return value
        return "<path>/" + _SEPARATORS.split(value.rstrip("/\\"))[-1]
    if isinstance(value, dict):
        return {key: redact_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_paths(item) for item in value]
    return value


def redact_message(message: str, folder: Path) -> str:
    """An error message without the server's paths: the artifact folder becomes ``<artifact>``,
    any other absolute path ``<path>``."""
    for prefix in {str(folder.resolve()), str(folder.absolute()), str(folder)}:
        message = message.replace(prefix, "<artifact>")
    return _EMBEDDED.sub("<path>", message)


class ModelHolder:
    """Holds the current :class:`LoadedModel`; :meth:`reload` loads a new one and swaps it in.

    Requests read :attr:`current` once and use that object to the end, so a reload never mixes
    two models in one answer and never blocks a request. A failed reload leaves the current
    model in place.
    """

    def __init__(self, artifact: Artifact | str | Path) -> None:
        if isinstance(artifact, Artifact):
            if artifact.path is None:
                raise ValueError("the artifact has no folder to reload from: load it with load_artifact()")
            self._path = artifact.path
            self._current = LoadedModel.from_artifact(artifact)
        else:
            self._path = Path(artifact)
            self._current = LoadedModel.from_artifact(load_artifact(self._path))
        self._reload_lock = threading.Lock()

    @property
    def path(self) -> Path:
        """The folder reloads read."""
        return self._path

    @property
    def current(self) -> LoadedModel:
        return self._current

    def reload(self) -> LoadedModel:
        """Load the artifact folder again and make it current (one reload at a time).

        Raises
        ------
        crossrec.artifacts.ArtifactError
            The folder does not hold a valid artifact now; the previous model stays current.
        """
        with self._reload_lock:
            new = LoadedModel.from_artifact(load_artifact(self._path))
            previous, self._current = self._current, new  # a single reference assignment
        logger.info(
            "reloaded artifact %s -> %s",
            previous.artifact.metadata.artifact_id[:12],
            new.artifact.metadata.artifact_id[:12],
        )
        return new
