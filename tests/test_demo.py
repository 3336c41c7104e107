"""End-to-end: the demo job on a small sample of the real movielens-cdr data."""

from __future__ import annotations

import json
import shlex

import pytest
from typer.testing import CliRunner

from crossrec.cli.main import app


@pytest.mark.slow
def test_demo_command_trains_transfers_and_writes_results(demo_run):
    result, tmp_path = demo_run
    assert result.exit_code == 0, result.output
    assert "bpr_mf+warm_start" in result.output and "ease+joint" in result.output
    (run_dir,) = list(tmp_path.iterdir())
    payload = json.loads((run_dir / "results.json").read_text())
    models = payload["models"]
    assert set(models) == {"popularity", "bpr_mf", "bpr_mf+warm_start", "ease", "ease+joint"}
    for model in models.values():
        for name in ("recall@10", "ndcg@10", "hit@10", "precision@10", "mrr@10"):
            assert 0.0 <= model["summary"][name] <= 1.0
    # the two MF models were really trained separately
    assert models["bpr_mf"]["summary"]["ndcg@10"] != models["bpr_mf+warm_start"]["summary"]["ndcg@10"]
    dataset = payload["extra"]["dataset"]
    assert dataset["target"]["users"] <= 150
    assert dataset["shared_items"] > 0
    guard = payload["extra"]["negative_transfer_guard"]
    for family in guard["families"]:
        assert family["chosen"] in {family["baseline"], family["candidate"]}
        assert family["ci_low"] <= family["difference"] <= family["ci_high"]
        # the guard keeps the transfer exactly when it is better on validation
        assert (family["chosen"] == family["candidate"]) == (family["difference"] > 0)
    assert guard["chosen"] in {family["chosen"] for family in guard["families"]}
    compared = {frozenset((row["model"], row["reference"])) for row in payload["comparison"]}
    assert {frozenset(("bpr_mf", "bpr_mf+warm_start")), frozenset(("ease", "ease+joint"))} <= compared
    assert (run_dir / "split" / "split.json").is_file()
    html = (run_dir / "report.html").read_text()
    assert "<table" in html and "data:image/png;base64," in html
    assert payload["learning_curves"]["bpr_mf"][0]["epoch"] == 1

    # the kept model is saved as an artifact and the printed commands work as printed
    assert (run_dir / "artifact" / "manifest.json").is_file()
    commands = [line.strip() for line in result.output.splitlines() if line.strip().startswith("crossrec ")]
    assert any(" serve " in c for c in commands)
    for command in commands:
        if " recommend " not in command:
            continue
        argv = shlex.split(command)[1:] + ["--json"]
        answer = CliRunner().invoke(app, argv)
        assert answer.exit_code == 0, (command, answer.output)
        assert len(json.loads(answer.output)["items"]) == 10
