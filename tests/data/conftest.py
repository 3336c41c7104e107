"""Fixtures for ingestion tests: small synthetic sources written into tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

LINK_KEY = "test-link-key-0123456789abcdef"


@pytest.fixture
def link_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Set the default HMAC key variable for the test."""
    monkeypatch.setenv("CROSSREC_LINK_KEY", LINK_KEY)
    return LINK_KEY


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write dedented text (a CSV, a TOML file) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding=encoding)
    return path


def sources(tmp_path: Path, toml: str) -> Path:
    """A sources file in tmp_path."""
    return write(tmp_path / "sources.toml", toml)
