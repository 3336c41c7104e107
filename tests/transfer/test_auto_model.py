"""``auto`` around the experiment's model, its time budget, and the experiment-file overrides."""

from __future__ import annotations

import time

import pytest
import typer

from crossrec.cli.cmd_train import parse_budget
from crossrec.experiment.build import build_strategy
from crossrec.experiment.config import ExperimentConfig, ExperimentFileError, apply_overrides
from crossrec.models import EASE
from crossrec.models.base import Recommender
from crossrec.models.gradient import GradientRecommender
from crossrec.transfer.guard import auto_transfer, candidates_for
from crossrec.transfer.joint import Joint


def test_candidates_for_a_model_only_build_strategies_around_it() -> None:
    candidates, skipped = candidates_for(EASE(reg=50.0))
    assert candidates and all(c.model.name == "ease" for c in candidates)
    assert {c.name for c in candidates} >= {"joint", "warm_start"}
    assert [s["strategy"] for s in skipped] == ["content:ease"]  # needs a two-tower model
    assert "TwoTower" in skipped[0]["reason"]


def test_other_families_come_only_when_asked_and_cheap_ones_first() -> None:
    own, _ = candidates_for(EASE())
    every, _ = candidates_for(EASE(), other_families=True)
    assert {c.model.name for c in own} == {"ease"}
    assert {"item_knn", "bpr_mf"} <= {c.model.name for c in every}
    gradient = [isinstance(c.model, GradientRecommender) for c in every]
    assert gradient == sorted(gradient)  # closed-form models before gradient-trained ones
    labels = [c.label for c in every]
    assert len(labels) == len(set(labels))


class _Slow(Joint):
    """Joint EASE that takes a while to fit (so a budget is spent after the first trial)."""

    def _fit(self, data) -> Recommender:
        time.sleep(0.3)
        return super()._fit(data)


def test_auto_budget_lists_what_it_did_not_start(synthetic) -> None:
    data, _ = synthetic
    candidates = [_Slow(EASE(reg=r)) for r in (1.0, 10.0, 100.0)]
    started: list[str] = []
    result = auto_transfer(
        data,
        candidates=candidates,
        budget_seconds=0.1,
        on_start=lambda n, t, label: started.append(label),
    )
    assert len(result.tried) == 1 and len(started) == 1
    budget = [s for s in result.skipped if "time budget" in s["reason"]]
    assert len(budget) == 2


def test_parse_budget_reads_units() -> None:
    assert parse_budget("10m") == 600.0
    assert parse_budget("90s") == 90.0
    assert parse_budget("1.5h") == 5400.0
    assert parse_budget("45") == 45.0
    assert parse_budget(None) is None
    for bad in ("soon", "0m", "-3"):
        with pytest.raises(typer.BadParameter):
            parse_budget(bad)


def test_overrides_nest_and_parse_toml_values() -> None:
    document = {"data": {"builtin": "movielens-cdr"}, "model": {"name": "bpr_mf", "params": {}}}
    apply_overrides(
        document, ["data.max_users=200", "model.params.optim.epochs=3", "name=quick", "save_artifact=true"]
    )
    assert document["data"]["max_users"] == 200
    assert document["model"]["params"]["optim"] == {"epochs": 3}
    assert document["name"] == "quick" and document["save_artifact"] is True
    with pytest.raises(ExperimentFileError, match="KEY=VALUE"):
        apply_overrides(document, ["data.max_users"])
    with pytest.raises(ExperimentFileError, match="not a table"):
        apply_overrides(document, ["name.sub=1"])


def test_file_transfer_params_apply_to_the_file_strategy_only() -> None:
    config = ExperimentConfig.model_validate(
        {
            "data": {"builtin": "movielens-cdr"},
            "model": {"name": "ease"},
            "transfer": {"strategy": "joint", "params": {"domain_weight": 0.15}},
        }
    )
    assert build_strategy(config).domain_weight == 0.15
    target_only = build_strategy(config, "none")  # the target-only side of a search
    assert target_only.name == "none"
