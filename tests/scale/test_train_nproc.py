"""``crossrec train EXPERIMENT --nproc N``: an experiment file routed to data-parallel training with the
same model, optimiser, early stopping, search and evaluation as the single-process run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.experiment.config import load_experiment
from crossrec.experiment.runner import build_model


def _experiment(tmp_path, bundle, model: str, params: str, extra: str = "") -> str:
    path = tmp_path / "experiment.toml"
    path.write_text(
        f'name = "ddp"\nseed = 7\noutput_dir = "{tmp_path / "runs"}"\n\n'
        f'[data]\nbundle = "{bundle}"\n\n[model]\nname = "{model}"\nparams = {params}\n{extra}'
    )
    return str(path)


def test_train_with_nproc_trains_the_single_process_optimiser(synthetic_bundle, tmp_path) -> None:
    experiment = _experiment(
        tmp_path, synthetic_bundle, "bpr_mf",
        "{ dim = 8, optim = { epochs = 2, batch_size = 4096, patience = 3, progress = false } }",
        '\n[evaluation]\nmetrics = ["ndcg", "mrr"]\nks = [5]\n',
    )  # fmt: skip
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "1"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "runs" / "ddp-nproc1" / "result.json").read_text())
    single = build_model(load_experiment(experiment))
    assert payload["optim"] == single.optim.model_dump()  # Adam, 2 epochs, patience 3, seed 7
    assert payload["optim"]["optimizer"] == "adam" and payload["optim"]["seed"] == 7
    assert payload["world_size"] == 1 and len(payload["history"]) == 2
    assert all("valid_ndcg@10" in record for record in payload["history"])  # early stopping watches it
    assert set(payload["metrics"]) == {"ndcg@5", "mrr@5"}  # [evaluation] honoured
    assert payload["config"]["params"]["dim"] == 8
    assert payload["stop_reason"] == "epoch_budget"
    if payload["still_improving"]:
        assert "still improving" in result.output and "raise optim.epochs" in result.output


def test_train_with_nproc_honours_search_on_validation(synthetic_bundle, tmp_path) -> None:
    experiment = _experiment(
        tmp_path, synthetic_bundle, "bpr_mf",
        "{ dim = 8, optim = { epochs = 1, batch_size = 4096, progress = false } }",
        '\n[search]\nn_trials = 2\nmetric = "recall@10"\n[search.space]\n'
        '"model.optim.learning_rate" = { choices = [0.001, 0.02] }\n',
    )  # fmt: skip
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "ddp-nproc1"
    trials = sorted((run / "search").glob("trial-*/result.json"))
    assert len(trials) == 2
    for trial in trials:
        payload = json.loads(trial.read_text())
        assert payload["metrics"] == {} and payload["valid_score"] is not None  # test never ranked
    scores = {
        json.loads(t.read_text())["optim"]["learning_rate"]: json.loads(t.read_text())["valid_score"]
        for t in trials
    }
    final = json.loads((run / "result.json").read_text())
    assert final["optim"]["learning_rate"] == max(scores, key=scores.get)  # the best on validation
    assert "search: best" in result.output


def test_train_with_nproc_refuses_what_it_cannot_honour(synthetic_bundle, tmp_path) -> None:
    experiment = _experiment(tmp_path, synthetic_bundle, "ease", "{ reg = 100.0 }")
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "2"])
    assert result.exit_code == 2
    assert "bpr_mf" in result.output and "ease" in result.output
    unknown = _experiment(tmp_path, synthetic_bundle, "bpr_mf", "{ dimension = 8 }")
    result = CliRunner().invoke(app, ["train", unknown, "--nproc", "2"])
    assert result.exit_code == 2 and "dimension" in result.output
    protocol = _experiment(
        tmp_path, synthetic_bundle, "bpr_mf", "{ dim = 8 }", '\n[split]\nprotocol = "temporal"\n'
    )
    result = CliRunner().invoke(app, ["train", protocol, "--nproc", "2"])
    assert result.exit_code == 2 and "split.protocol 'temporal'" in result.output
    sampled = _experiment(
        tmp_path,
        synthetic_bundle,
        "bpr_mf",
        "{ dim = 8 }",
        '\n[search.space]\n"transfer.x" = { low = 0, high = 1 }\n',
    )
    result = CliRunner().invoke(app, ["train", sampled, "--nproc", "2"])
    assert result.exit_code == 2 and "transfer.x" in result.output


def test_train_with_nproc_routes_lightgcn_and_two_tower(synthetic_bundle, tmp_path) -> None:
    from crossrec.models.base import Recommender
    from crossrec.models.lightgcn import LightGCN

    experiment = _experiment(
        tmp_path,
        synthetic_bundle,
        "lightgcn",
        "{ dim = 8, layers = 1, optim = { epochs = 2, batch_size = 4096, learning_rate = 0.01, "
        "progress = false } }",
    )
    result = CliRunner().invoke(app, ["train", experiment, "--nproc", "1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "ddp-nproc1"
    payload = json.loads((run / "result.json").read_text())
    assert payload["model"] == "lightgcn" and len(payload["history"]) == 2
    assert payload["config"]["params"]["layers"] == 1 and payload["optim"]["seed"] == 7
    model = Recommender.load(run / "model")
    assert isinstance(model, LightGCN) and model.layers == 1 and model.dim == 8
    assert model.optim.learning_rate == 0.01
    # the data-parallel user tower is ID-only: user attributes are refused with the reason
    tower = _experiment(tmp_path, synthetic_bundle, "two_tower", '{ dim = 8, user_modalities = ["age"] }')
    result = CliRunner().invoke(app, ["train", tower, "--nproc", "2"])
    assert result.exit_code == 2 and "user attributes are not supported" in result.output
