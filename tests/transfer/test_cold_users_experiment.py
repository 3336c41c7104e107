"""Users with no target history through an experiment file: ``split.protocol = "no_history"``.

The run trains on warm users only, and selection, the guard and the test figures are on cold users
(linked to the source, no target training data); results.json says which slice decided."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crossrec.data import ingest
from crossrec.data.interactions import Interactions
from crossrec.data.synthetic import SynthConfig, generate_synthetic
from crossrec.experiment import load_experiment
from crossrec.experiment.runner import run_experiment
from crossrec.splitting import Split


@pytest.fixture(scope="module")
def linked_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cold-users")
    synth = generate_synthetic(
        root / "data",
        SynthConfig(interactions=12_000, users=800, items=600, seed=5, chunk_rows=4_000, shard_rows=6_000),
    )
    return ingest(synth.sources, root / "bundle").path


def _experiment(tmp_path: Path, bundle: Path, link_users: str = "ids", holdout: str = "users") -> Path:
    path = tmp_path / "cold.toml"
    path.write_text(
        f"""
name = "cold"
seed = 7
output_dir = "{tmp_path / "runs"}"

[data]
bundle = "{bundle}"
link_users = "{link_users}"
link_items = "bundle"

[split]
protocol = "no_history"
fraction = 0.5
holdout = "{holdout}"

[model]
name = "kernel_ridge"

[transfer]
strategy = "source_profile"
"""
    )
    return path


@pytest.mark.parametrize("holdout", ["users", "interactions"])
def test_a_cold_user_run_selects_guards_and_tests_on_cold_users(linked_bundle, tmp_path, holdout):
    result = run_experiment(load_experiment(_experiment(tmp_path, linked_bundle, holdout=holdout)))
    split = result.data.split
    train_users = np.unique(split.train.user)
    valid_users, test_users = np.unique(split.valid.user), np.unique(split.test.user)
    assert len(valid_users) >= 10 and len(test_users) >= 10
    assert not np.isin(valid_users, train_users).any()  # validation users have no target training
    assert not np.isin(test_users, train_users).any()
    if holdout == "users":
        assert not np.intersect1d(valid_users, test_users).size
    else:
        assert np.array_equal(valid_users, test_users)
    # the guard judged on exactly the cold validation users
    assert result.guard is not None and result.guard.n_users == len(valid_users)
    record = json.loads((result.run_dir / "results.json").read_text())
    assert record["extra"]["decided_on"]["slice"] == "cold users"
    assert record["extra"]["decided_on"]["users"] == len(valid_users)
    # the test figures are the cold test users'
    for evaluation in result.evaluations.values():
        assert set(evaluation.per_user["user"]) <= set(test_users)
    assert result.summary["transfer"]["ndcg@10"] > 0


def test_cold_users_need_user_links(linked_bundle, tmp_path):
    with pytest.raises(ValueError, match="no source has user links"):
        run_experiment(load_experiment(_experiment(tmp_path, linked_bundle, link_users="none")))


def test_only_a_split_that_says_so_holds_users_without_training_data():
    train = Interactions(np.array([0, 1]), np.array([0, 1]), np.ones(2, np.float32))
    held = Interactions(np.array([2]), np.array([0]), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="no training data"):
        Split(train, held, held, 3, 2)
    assert Split(train, held, held, 3, 2, params={"cold_users": True}).allows_cold_users
