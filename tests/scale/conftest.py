"""Fixtures of the scale tests: a small synthetic dataset and its bundle (built once per session), and
the built-in movielens-cdr data (skipped where it cannot be loaded)."""

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


@pytest.fixture(scope="session")
def movielens_cdr() -> None:
    from crossrec.data.builtin import load_movielens_cdr

    try:
        load_movielens_cdr()
    except Exception as error:
        pytest.skip(f"movielens-cdr cannot be loaded here: {error}")
