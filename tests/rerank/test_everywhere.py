"""Re-ranking everywhere lists come out: an experiment's ``[rerank]`` table saves its stage in the
artifact, and the artifact (library, ``crossrec recommend --diversity``) serves the lists that were
evaluated; ``crossrec evaluate RUN --rerank`` adds the same rows to a run; report.html draws the
frontier and says whether transfer changed diversity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crossrec.artifacts import ArtifactCapabilityError, load_artifact
from crossrec.cli.main import app
from crossrec.experiment import load_experiment
from crossrec.experiment.runner import run_experiment
from tests.transfer.test_experiment import _write

EVALUATION = '[evaluation]\nmetrics = ["ndcg", "recall"]\nks = [5, 10]\nitem_categories = "genres"\n'
MMR = '[rerank]\nmethod = "mmr"\nstrength = 0.5\ncandidates = 30\n'


def _run(root: Path, rerank: str = MMR):
    """The experiment tests' small movielens-cdr transfer run, with an artifact and its models kept.

    The artifact holds the split-fitted model (``refit_artifact = false``), the one whose lists were
    evaluated, so that served lists can be compared with the evaluated ones item by item (a deployment
    refit on all data is a different model: tests/transfer/test_registry.py)."""
    config = load_experiment(_write(root, extra=f"\n{EVALUATION}{rerank}"))
    config.save_artifact = config.keep_models = True
    config.refit_artifact = False
    return run_experiment(config)


@pytest.fixture(scope="module")
def diverse(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("diverse"))


def _saved_lists(run_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(run_dir / "recommendations" / f"{name}.npz") as saved:
        return saved["users"], saved["items"]


def test_the_artifact_serves_the_re_ranked_lists_that_were_evaluated(diverse):
    artifact = load_artifact(diverse.artifact)
    assert artifact.rerank is not None and artifact.rerank.config.strength == 0.5
    assert artifact.metadata.capabilities["rerank"]["method"] == "mmr"
    users, evaluated = _saved_lists(diverse.run_dir, f"{diverse.kept}+rerank")
    _, plain = _saved_lists(diverse.run_dir, diverse.kept)
    assert (evaluated != plain).any(), "strength 0.5 changes some lists"
    ids = diverse.data.target.users.ids[users]
    frame = artifact.recommend_batch(ids, k=evaluated.shape[1])  # default: the saved strength
    served = frame.pivot(index="user_id", columns="rank", values="item_id").loc[ids.astype(str)]
    assert (served.to_numpy() == artifact.items.ids[evaluated]).all()
    # one user at a time gives the same list; diversity 0 is the plain evaluated list
    one = artifact.recommend(str(ids[0]), k=evaluated.shape[1])
    assert one.item_ids == list(artifact.items.ids[evaluated[0]])
    zero = artifact.recommend(str(ids[0]), k=plain.shape[1], diversity=0)
    assert zero.item_ids == list(artifact.items.ids[plain[0]])


def test_diversity_raises_intra_list_diversity_of_served_lists(diverse):
    from crossrec.metrics import intra_list_diversity_categories

    artifact = load_artifact(diverse.artifact)
    categories = artifact.rerank.item_categories
    ids = diverse.data.target.users.ids[:60]
    ild = {}
    for strength in (0.0, 1.0):
        frame = artifact.recommend_batch(ids, k=10, diversity=strength)
        lists = artifact.items.index(frame["item_id"].to_numpy()).reshape(len(ids), 10)
        ild[strength] = intra_list_diversity_categories(lists, categories, 10).mean()
    assert ild[1.0] > ild[0.0] + 0.05
    for value in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            artifact.recommend(str(ids[0]), diversity=value)
    cold = artifact.recommend_cold(list(artifact.items.ids[:5]), k=10, diversity=1.0)
    assert len(cold.item_ids) == 10 and not set(cold.item_ids) & set(artifact.items.ids[:5])


def test_the_frontier_row_at_the_configured_strength_is_the_rerank_row(diverse):
    record = json.loads((diverse.run_dir / "results.json").read_text())
    frontier = record["extra"]["frontier"]
    assert frontier["model"] == diverse.kept and frontier["k"] == 10
    rows = frontier["rows"]
    assert [r["strength"] for r in rows][0] == 0.0 and sum(r["chosen"] for r in rows) == 1
    chosen = next(r for r in rows if r["chosen"])
    summary = record["models"][f"{diverse.kept}+rerank"]["summary"]
    assert chosen["ndcg@10"] == pytest.approx(summary["ndcg@10"])
    assert chosen["ild@10"] == pytest.approx(summary["ild_category@10"])
    assert chosen["coverage@10"] == pytest.approx(summary["coverage@10"])
    plain = record["models"][diverse.kept]["summary"]
    assert rows[0]["ndcg@10"] == pytest.approx(plain["ndcg@10"])  # strength 0: the plain lists
    for row in rows:
        for metric in ("ndcg@10", "ild@10", "coverage@10"):
            assert row[f"{metric}_low"] <= row[metric] <= row[f"{metric}_high"]
    assert rows[-1]["ild@10"] > rows[0]["ild@10"]


def test_the_report_draws_the_frontier_and_the_transfer_diversity_table(diverse):
    page = (diverse.run_dir / "report.html").read_text()
    frontier = page[page.index('<section id="frontier"') :]
    frontier = frontier[: frontier.index("</section>")]
    assert "<img" in frontier and "ild@10" in frontier and "coverage@10" in frontier
    assert 'id="frontier-table"' in frontier
    table = page[page.index('<section id="transfer-diversity"') :]
    table = table[: table.index("</section>")]
    for metric in ("coverage@10", "ild_category@10", "novelty@10", "gini@10"):
        assert metric in table
    assert "target_only" in table and "+rerank" not in table


def test_cli_recommend_diversity(diverse):
    runner = CliRunner()
    user = str(diverse.data.target.users.ids[0])
    args = ["recommend", str(diverse.artifact), "--user", user, "--json"]
    plain = json.loads(runner.invoke(app, [*args, "--diversity", "0"]).stdout)
    saved = json.loads(runner.invoke(app, args).stdout)
    assert plain["diversity"] == 0.0 and saved["diversity"] == 0.5
    assert [i["item_id"] for i in saved["items"]] == load_artifact(diverse.artifact).recommend(user).item_ids
    strong = runner.invoke(app, [*args, "--diversity", "1"])
    assert strong.exit_code == 0 and json.loads(strong.stdout)["items"] != plain["items"]
    bad = runner.invoke(app, [*args, "--diversity", "1.5"])
    assert bad.exit_code == 2 and "less than or equal to 1" in bad.output


def test_cli_recommend_diversity_needs_a_saved_setting(tmp_path, diverse):
    run = _run(tmp_path, rerank="")
    assert load_artifact(run.artifact).rerank is None
    result = CliRunner().invoke(
        app,
        ["recommend", str(run.artifact), "--user", str(run.data.target.users.ids[0]), "--diversity", "0.3"],
    )
    assert result.exit_code == 1 and "without a re-ranking setting" in result.output
    with pytest.raises(ArtifactCapabilityError):
        load_artifact(run.artifact).similar_items(str(run.data.target.items.ids[0]), diversity=0.3)
    # a run without [rerank] gets the same rows from `crossrec evaluate --rerank`
    evaluated = CliRunner().invoke(
        app, ["evaluate", str(run.run_dir), "--rerank", "mmr:0.5", "--candidates", "30"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    record = json.loads((run.run_dir / "results.json").read_text())
    assert {f"{run.kept}+rerank", "target_only+rerank"} <= set(record["models"])
    assert record["extra"]["frontier"]["model"] in record["models"]
    assert 'id="frontier"' in (run.run_dir / "report.html").read_text()
    # the same figures as the same experiment with the [rerank] table
    theirs = json.loads((diverse.run_dir / "results.json").read_text())["models"]
    for name in (f"{run.kept}+rerank", "target_only+rerank"):
        for metric in ("ndcg@10", "ild_category@10", "coverage@10"):
            assert record["models"][name]["summary"][metric] == pytest.approx(theirs[name]["summary"][metric])


def test_cli_evaluate_rerank_errors(tmp_path, diverse):
    runner = CliRunner()
    bad = runner.invoke(app, ["evaluate", str(diverse.run_dir), "--rerank", "mmr:2"])
    assert bad.exit_code == 2 and "strength" in bad.output
    unknown = runner.invoke(app, ["evaluate", str(diverse.run_dir), "--rerank", "shuffle:0.2"])
    assert unknown.exit_code == 2 and "method" in unknown.output
