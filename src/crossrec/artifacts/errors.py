"""Errors raised when an artifact cannot be saved, loaded or asked for something it cannot do."""

from __future__ import annotations

__all__ = [
    "ArtifactCapabilityError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactVersionError",
    "ColdStartInputError",
    "UnknownIdError",
]


class ArtifactError(Exception):
    """Base class of every artifact error; the message says what is wrong and what to do."""


class ArtifactIntegrityError(ArtifactError):
    """The folder is not the artifact its manifest describes: a file is missing, extra,
    truncated or changed, or a file's content is not what it should be."""


class ArtifactVersionError(ArtifactError):
    """The artifact was written in a format (or for a model) this crossrec cannot read."""


class ArtifactCapabilityError(ArtifactError):
    """The loaded model cannot do what was asked (e.g. similar items without item vectors)."""


class ColdStartInputError(ArtifactError, ValueError):
    """A new user's attributes do not fit what the model's cold-start scorer encodes."""


class UnknownIdError(ArtifactError, KeyError):
    """A user or item id that the model does not know."""

    def __init__(self, kind: str, raw_id: str, hint: str = "") -> None:
        self.kind = kind
        self.raw_id = raw_id
        message = f"unknown {kind} {raw_id!r}: the model has no such {kind}"
        super().__init__(message + (f"; {hint}" if hint else ""))

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])
