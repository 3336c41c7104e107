"""Fixtures of the scale tests: a small synthetic dataset and its bundle (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossrec.data import ingest
from crossrec.data.synthetic import SynthConfig, SynthResult, generate_synthetic

SMALL = SynthConfig(
    interactions=30_000, users=1_000, items=1_500, seed=3, chunk_rows=4_000, shard_rows=10_000
)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate_synthetic(tmp_path_factory.mktemp("synth") / "data", SMALL)


@pytest.fixture(scope="session")
def synthetic_bundle(synthetic: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ingest(synthetic.sources, tmp_path_factory.mktemp("bundle") / "bundle").path
