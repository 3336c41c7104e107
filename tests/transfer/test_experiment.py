"""Experiment files, the Optuna search and the ``train`` / ``transfer`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crossrec.experiment import ExperimentFileError, load_experiment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "experiments"

SMALL = """
name = "tiny"
seed = 2022
output_dir = "{out}"
[data]
builtin = "movielens-cdr"
link_items = "ids"
link_users = "none"
max_users = 120
[model]
name = "ease"
params = {{ reg = 100.0 }}
[transfer]
strategy = "{strategy}"
params = {params}
"""


def _write(
    tmp_path: Path, strategy: str = "joint", params: str = "{ domain_weight = 0.15 }", extra: str = ""
) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text(SMALL.format(out=tmp_path / "runs", strategy=strategy, params=params) + extra)
    return path


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_validate(path):
    config = load_experiment(path)
    assert config.name


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path)
    path.write_text(path.read_text().replace("[model]", "[model]\nregularisation = 3"))
    with pytest.raises(ExperimentFileError, match=r"model.regularisation"):
        load_experiment(path)


def test_data_needs_one_origin(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[data]\n")
    with pytest.raises(ExperimentFileError, match="exactly one of data.builtin"):
        load_experiment(path)


def test_search_is_seeded_and_scores_trials_on_validation_only(tmp_path):
    from crossrec.experiment import build_strategy, prepare, tune
    from crossrec.experiment.search import apply_params
    from crossrec.testing.transfer import poisoned

    space = (
        '[search]\nn_trials = 3\n[search.space]\n"model.reg" = { low = 10.0, high = 1000.0, log = true }\n'
        '"transfer.domain_weight" = { low = 0.0, high = 0.5 }\n'
    )
    path = _write(tmp_path, extra=space)
    config = load_experiment(path)
    data = poisoned(prepare(config))  # reading the test part raises
    first, second = tune(config, data, strategy="joint"), tune(config, data, strategy="joint")
    assert [(t["params"], t["value"]) for t in first.trials] == [
        (t["params"], t["value"]) for t in second.trials
    ]
    assert len(first.trials) == 3 and set(first.best_params) == {"model.reg", "transfer.domain_weight"}
    assert len({t["value"] for t in first.trials}) == 3  # the parameters really change the model
    # every recorded value is that trial's validation NDCG@10, and the best is the highest of them
    for trial in first.trials:
        model = build_strategy(config, "joint", *apply_params(trial["params"])).fit(data)
        assert trial["value"] == pytest.approx(data.per_user(model, "ndcg@10")[1].mean())
    assert first.best_score == max(t["value"] for t in first.trials)


def test_cli_transfer_writes_run_with_guard(tmp_path):
    from crossrec.cli.main import app

    result = CliRunner().invoke(app, ["transfer", str(_write(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "negative-transfer guard" in result.output
    results = next((tmp_path / "runs").glob("*/results.json"))
    guard = json.loads(results.read_text())["extra"]["guard"]
    assert guard["strategy"] == "joint:ease"
    assert guard["kept"] == ("transfer" if guard["difference"] > 0 else "baseline")
    assert guard["ci_low"] <= guard["difference"] <= guard["ci_high"]
    document = json.loads(results.read_text())
    assert document["extra"]["kept"] == ("transfer" if guard["kept"] == "transfer" else "target_only")
    assert not (results.parent / "models").exists()  # no model copies unless --keep-models
    assert document["size_bytes"] == sum(
        p.stat().st_size
        for p in results.parent.rglob("*")
        if p.is_file() and p.name not in ("results.json", "report.html")
    )
    assert f"{document['size_bytes'] / 1e6:.1f} MB" in result.output


def test_cli_keep_models_saves_every_fitted_model(tmp_path):
    from crossrec.cli.main import app
    from crossrec.models.base import Recommender

    result = CliRunner().invoke(app, ["transfer", str(_write(tmp_path)), "--keep-models"])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").glob("*/results.json")).parent
    assert sorted(p.name for p in (run / "models").iterdir()) == ["target_only", "transfer"]
    assert Recommender.load(run / "models" / "transfer").score(np.array([0])).shape[0] == 1


def test_transfer_refuses_a_data_section_without_links(tmp_path):
    from crossrec.cli.main import app

    path = _write(tmp_path)
    path.write_text(path.read_text().replace('link_users = "none"\n', ""))
    result = CliRunner().invoke(app, ["transfer", str(path)])
    assert result.exit_code == 2
    assert "data.link_users" in result.output and "nothing is linked by default" in result.output
    assert not (tmp_path / "runs").exists()
    assert CliRunner().invoke(app, ["train", str(path)]).exit_code == 0  # training alone needs no links


def test_cli_train_and_impossible_strategy(tmp_path):
    from crossrec.cli.main import app

    runner = CliRunner()
    assert runner.invoke(app, ["train", str(_write(tmp_path))]).exit_code == 0
    result = runner.invoke(app, ["transfer", str(_write(tmp_path, "mapping", "{}")), "--no-search"])
    assert result.exit_code == 2
    assert "no source has users linked" in result.output and "joint" in result.output


@pytest.mark.parametrize("strength", [0.0, 0.8])
def test_a_rerank_table_adds_re_ranked_rows(tmp_path, strength):
    from crossrec.experiment.runner import run_experiment

    path = _write(
        tmp_path, extra=f'\n[rerank]\nmethod = "popularity"\nstrength = {strength}\ncandidates = 50\n'
    )
    result = run_experiment(load_experiment(path))
    assert {"target_only+rerank", "transfer+rerank"} <= set(result.summary)
    plain, reranked = result.summary["transfer"], result.summary["transfer+rerank"]
    if strength == 0:  # strength 0 is the plain top-k, exactly
        assert reranked["ndcg@10"] == plain["ndcg@10"] and reranked["coverage@10"] == plain["coverage@10"]
    else:  # the popularity penalty recommends more of the catalogue
        assert reranked["coverage@10"] > plain["coverage@10"]


def test_cli_curve_runs_every_fraction_on_the_same_validation_and_test(tmp_path):
    from crossrec.cli.main import app

    result = CliRunner().invoke(app, ["transfer", str(_write(tmp_path)), "--curve", "0.1,0.5,1"])
    assert result.exit_code == 0, result.output
    assert "data-efficiency curve" in result.output
    record = json.loads(next((tmp_path / "runs").glob("*/results.json")).read_text())
    points = record["extra"]["curve"]
    assert [p["fraction"] for p in points] == [0.1, 0.5, 1.0]
    sizes = [p["train_interactions"] for p in points]
    assert (
        sizes[0] < sizes[1] < sizes[2] == record["dataset"]["target"]["train"]
        if "dataset" in record
        else True
    )
    for point in points:
        assert point["best_target_only"] == "target_only" and point["kept"] in ("target_only", "transfer")
        assert point["gain_ci_low"] <= point["gain_ci_high"] and point["metric"] == "ndcg@10"
        for key in ("best_target_only", "kept"):  # each line of the chart has its 95% interval
            low, high = point[f"{key}_ndcg@10_ci"]
            assert low <= point[f"{key}_ndcg@10"] <= high and low < high
        if point["kept"] == "target_only":  # kept = the best target-only: no gain at all
            assert point["gain_ci_low"] == point["gain_ci_high"] == 0.0
    page = next((tmp_path / "runs").glob("*/report.html")).read_text()  # the chart and table
    assert '<section id="efficiency-curve">' in page and page.count("efficiency-curve-table") == 1
    # fraction 1 is the full run: the same test figure as the run's own target-only row
    full = points[-1]
    assert full["best_target_only_ndcg@10"] == pytest.approx(
        record["models"]["target_only"]["summary"]["ndcg@10"]
    )


def test_a_curve_on_a_split_without_validation_is_refused_before_training(tmp_path, monkeypatch):
    from crossrec.cli.main import app
    from crossrec.transfer.base import TransferData

    def never(*args, **kwargs):  # pragma: no cover - reached only if training started
        raise AssertionError("a model was fitted before the curve was refused")

    monkeypatch.setattr(TransferData, "fit_candidate", never)
    path = _write(tmp_path, extra="[split]\nratios = [0.9, 0.0, 0.1]\n")
    result = CliRunner().invoke(app, ["transfer", str(path), "--curve", "0.1,1"])
    assert result.exit_code == 2, result.output
    assert "curve needs a validation part" in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_bad_curve_is_refused_before_training(tmp_path):
    from crossrec.cli.main import app

    result = CliRunner().invoke(app, ["transfer", str(_write(tmp_path)), "--curve", "0,0.5"])
    assert result.exit_code == 2 and "(0, 1]" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
