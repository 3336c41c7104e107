"""End-to-end: the demo job on a small sample of the real movielens-cdr data."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.data.builtin import DatasetUnavailableError, movielens_cdr_dir


@pytest.fixture(scope="module")
def movielens_available():
    try:
        movielens_cdr_dir()
    except DatasetUnavailableError as error:
        pytest.skip(f"movielens-cdr not available here: {error}")


@pytest.mark.slow
def test_demo_command_trains_transfers_and_writes_results(movielens_available, tmp_path):
    result = CliRunner().invoke(
        app,
        ["demo", "--max-users", "150", "--epochs", "15", "--runs-dir", str(tmp_path), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "bpr_mf+warm_start" in result.output
    (run_dir,) = list(tmp_path.iterdir())
    payload = json.loads((run_dir / "results.json").read_text())
    assert set(payload["metrics"]) >= {"popularity", "bpr_mf", "bpr_mf+warm_start"}
    for metrics in payload["metrics"].values():
        for name in ("recall@10", "ndcg@10", "hit@10", "precision@10", "mrr@10"):
            assert 0.0 <= metrics[name] <= 1.0
    # trained models beat popularity on the sample, and the numbers are not copies of each other
    assert payload["metrics"]["bpr_mf"]["ndcg@10"] != payload["metrics"]["bpr_mf+warm_start"]["ndcg@10"]
    assert payload["dataset"]["target"]["users"] <= 150
    assert payload["dataset"]["shared_items"] > 0
    assert (run_dir / "split" / "split.json").is_file()
    assert payload["split"]["train"] > payload["split"]["test"] > 0
