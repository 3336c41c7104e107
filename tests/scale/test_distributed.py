"""Data-parallel BPR-MF: 2 gloo ranks match 1 process on the movielens-cdr target; rank-0 outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.distributed import DistributedResult, DistributedTrainConfig, train_distributed
from crossrec.models.base import Recommender

# small and fast, with the lean row-wise step (the 1-process run reaches the BPR-MF baseline's NDCG@10)
LEAN = {"optimizer": "rowwise_adagrad", "learning_rate": 0.05, "progress": False}
MOVIELENS_BPR = {"dim": 64, "optim": LEAN | {"epochs": 12, "batch_size": 1024, "seed": 0}}


def test_two_gloo_ranks_match_one_process_on_movielens_target(movielens_cdr, tmp_path) -> None:
    runs = {}
    for nproc in (1, 2):
        config = DistributedTrainConfig(
            builtin="movielens-cdr",
            params=MOVIELENS_BPR,
            output=tmp_path / f"n{nproc}",
            work_dir=tmp_path / "data",
        )
        runs[nproc] = train_distributed(config, nproc)
    one, two = runs[1], runs[2]
    assert (one.world_size, two.world_size, two.backend) == (1, 2, "gloo")
    assert one.evaluated_users == two.evaluated_users == 943
    assert one.metrics["ndcg@10"] > 0.2
    assert abs(one.metrics["ndcg@10"] - two.metrics["ndcg@10"]) <= 0.01
    # the same global batches, negatives and updates: losses agree to float rounding
    assert np.allclose([h["loss"] for h in one.history], [h["loss"] for h in two.history], rtol=1e-5)
    # rank 0 wrote the model, the per-user table and the result
    model = Recommender.load(tmp_path / "n2" / "model")
    assert model.score(np.array([0, 1])).shape == (2, 1196)
    assert DistributedResult.load(tmp_path / "n2").metrics == two.metrics
    assert (tmp_path / "n2" / "per_user.csv").read_text().count("\n") == 944


def test_resume_from_checkpoint_equals_uninterrupted(synthetic_bundle, tmp_path) -> None:
    bpr = {"dim": 16, "optim": LEAN | {"epochs": 4, "batch_size": 2048}}
    common = {"bundle": synthetic_bundle, "domain": "source", "eval_users": 300}
    full = train_distributed(DistributedTrainConfig(**common, params=bpr, output=tmp_path / "full"))
    short_params = {"dim": 16, "optim": bpr["optim"] | {"epochs": 2}}
    short = DistributedTrainConfig(**common, params=short_params, output=tmp_path / "r")
    train_distributed(short)
    resumed = train_distributed(short.model_copy(update={"params": bpr, "resume": True}))
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.best_epoch == full.best_epoch and resumed.history == [
        {**h, "seconds": r["seconds"]} for h, r in zip(full.history, resumed.history, strict=True)
    ]
    assert resumed.metrics == full.metrics
    assert resumed.evaluated_users == 300
    from safetensors.torch import load_file

    a, b = (
        load_file(str(p / "checkpoint" / "tables.safetensors")) for p in (tmp_path / "full", tmp_path / "r")
    )
    assert torch.equal(a["user"], b["user"]) and torch.equal(a["item"], b["item"])


def test_config_and_cli_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="exactly one of builtin"):
        DistributedTrainConfig()
    result = CliRunner().invoke(app, ["train-distributed", "--output", str(tmp_path)])
    assert result.exit_code == 2 and "exactly one of builtin" in result.output
    run_file = tmp_path / "run.toml"
    run_file.write_text('builtin = "movielens-cdr"\nunknown_key = 1\n')
    result = CliRunner().invoke(app, ["train-distributed", "--config", str(run_file)])
    assert result.exit_code == 2 and "unknown_key" in result.output
    run_file.write_text('builtin = "movielens-cdr"\n[bpr]\nepochs = 3\n')
    result = CliRunner().invoke(app, ["train-distributed", "--config", str(run_file)])
    assert result.exit_code == 2 and "bpr -> params" in result.output


def test_cli_trains_on_a_bundle(synthetic_bundle, tmp_path) -> None:
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["train-distributed", "--bundle", str(synthetic_bundle), "--epochs", "2", "--dim", "8",
         "--batch-size", "4096", "--eval-users", "200", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ndcg@10" in result.output
    payload = json.loads((out / "result.json").read_text())
    assert payload["config"]["domain"] is None and payload["evaluated_users"] == 200
    assert len(payload["history"]) == 2
    # the default optimiser is the single-process one (Adam), with the CLI's overrides
    assert payload["optim"]["optimizer"] == "adam" and payload["optim"]["epochs"] == 2
    assert payload["optim"]["batch_size"] == 4096 and payload["stop_reason"] == "epoch_budget"
