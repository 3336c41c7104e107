"""Errors raised while reading sources, ingesting them and loading bundles.

Every message says where the problem is (file, source, key or column) and what to change.
"""

from __future__ import annotations

__all__ = ["BundleError", "CredentialError", "IngestError", "LinkKeyError", "SourcesError"]


class IngestError(Exception):
    """A source cannot be ingested as declared."""


class SourcesError(IngestError):
    """The sources file itself is invalid (unknown key, wrong type, missing value)."""


class CredentialError(IngestError):
    """A mapped column looks like a credential; crossrec refuses to ingest it."""


class LinkKeyError(IngestError):
    """Identity linking is configured but the HMAC key is missing or unusable."""


class BundleError(Exception):
    """A bundle is missing, tampered with or written by an incompatible crossrec version."""
