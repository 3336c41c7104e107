"""``crossrec train EXPERIMENT --nproc N``: an experiment file routed to data-parallel training."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crossrec.cli.main import app


def _experiment(tmp_path, bundle, model: str, params: str) -> str:
    path = tmp_path / "experiment.toml"
    path.write_text(
        f'name = "ddp"\nseed = 7\noutput_dir = "{tmp_path / "runs"}"\n\n'
        f'[data]\nbundle = "{bundle}"\n\n[model]\nname = "{model}"\nparams = {params}\n'
    )
    return str(path)


def test_train_with_nproc_runs_the_experiment_data_parallel(synthetic_bundle, tmp_path) -> None:
    experiment = _experiment(
        tmp_path, synthetic_bundle, "bpr_mf", "{ dim = 8, epochs = 2, batch_size = 4096, patience = 3 }"
    )
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "1"])
    assert result.exit_code == 0, result.output
    assert "ignored" in result.output  # patience belongs to the single-process trainer
    payload = json.loads((tmp_path / "runs" / "ddp-nproc1" / "result.json").read_text())
    assert payload["world_size"] == 1 and len(payload["history"]) == 2
    assert 0.0 <= payload["metrics"]["ndcg@10"] <= 1.0
    assert payload["config"]["bpr"]["dim"] == 8 and payload["config"]["bpr"]["seed"] == 7


def test_train_with_nproc_refuses_models_it_cannot_parallelise(synthetic_bundle, tmp_path) -> None:
    experiment = _experiment(tmp_path, synthetic_bundle, "ease", "{ reg = 100.0 }")
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "2"])
    assert result.exit_code == 2
    assert "bpr_mf" in result.output and "ease" in result.output
    unknown = _experiment(tmp_path, synthetic_bundle, "bpr_mf", "{ dimension = 8 }")
    result = CliRunner().invoke(app, ["train", unknown, "--nproc", "2"])
    assert result.exit_code == 2 and "dimension" in result.output


def test_train_with_nproc_routes_lightgcn_and_two_tower(synthetic_bundle, tmp_path) -> None:
    from crossrec.models.base import Recommender
    from crossrec.models.lightgcn import LightGCN

    experiment = _experiment(
        tmp_path,
        synthetic_bundle,
        "lightgcn",
        "{ dim = 8, layers = 1, epochs = 2, batch_size = 4096, learning_rate = 0.01, patience = 3 }",
    )
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "1"])
    assert result.exit_code == 0, result.output
    assert "ignored" in result.output  # patience belongs to the single-process trainer
    run = tmp_path / "runs" / "ddp-nproc1"
    payload = json.loads((run / "result.json").read_text())
    assert payload["model"] == "lightgcn" and len(payload["history"]) == 2
    assert payload["config"]["lightgcn"]["layers"] == 1 and payload["config"]["lightgcn"]["seed"] == 7
    model = Recommender.load(run / "model")
    assert isinstance(model, LightGCN) and model.layers == 1 and model.dim == 8
    # the data-parallel user tower is ID-only: user attributes are refused with the reason
    tower = _experiment(tmp_path, synthetic_bundle, "two_tower", '{ dim = 8, user_modalities = ["age"] }')
    result = CliRunner().invoke(app, ["train", tower, "--nproc", "2"])
    assert result.exit_code == 2 and "user attributes are not supported" in result.output
