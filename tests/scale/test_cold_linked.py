"""``split.cold_users = "linked"``: the cold-start protocol draws its cold users among linked users
only, and runs with linked users get a linked vs unlinked slice."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.experiment.config import ExperimentConfig
from crossrec.experiment.runner import prepare, run_experiment


def _config(bundle, tmp_path, cold_users: str) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": f"cold-{cold_users}",
            "output_dir": str(tmp_path),
            "data": {"bundle": str(bundle), "link_users": "ids", "link_items": "bundle"},
            "split": {"protocol": "cold_start", "n_train": 2, "fraction": 0.3, "cold_users": cold_users},
            "model": {"name": "popularity"},
        }
    )


def _cold_and_linked(data) -> tuple[np.ndarray, np.ndarray]:
    cold = np.union1d(data.split.valid.user, data.split.test.user)
    linked = np.unique(
        np.concatenate([s.user_links.target for s in data.sources if s.user_links is not None])
    )
    return cold, linked


def test_cold_users_come_from_linked_users_when_asked(synthetic_bundle, tmp_path) -> None:
    cold, linked = _cold_and_linked(prepare(_config(synthetic_bundle, tmp_path, "linked")))
    assert len(cold) and np.isin(cold, linked).all()
    cold_all, linked_all = _cold_and_linked(prepare(_config(synthetic_bundle, tmp_path, "all")))
    assert not np.isin(cold_all, linked_all).all()  # the default pool holds unlinked users too


def test_runs_with_linked_users_slice_by_link(synthetic_bundle, tmp_path) -> None:
    result = run_experiment(_config(synthetic_bundle, tmp_path, "all"), mode="train")
    groups = set(result.evaluations["target_only"].slices.query("slice == 'linked'")["group"])
    assert groups == {"linked", "not linked"}


def test_linked_pool_needs_linked_users(synthetic_bundle, tmp_path) -> None:
    config = _config(synthetic_bundle, tmp_path, "linked")
    config.data.link_users = "none"
    with pytest.raises(ValueError, match="needs target users linked"):
        prepare(config)
