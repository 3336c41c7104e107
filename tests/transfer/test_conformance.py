"""Every registered strategy, the guard, ``auto``, the search and the experiment runner go through
the shipped conformance suite on a poisoned split (its test part raises when read too early)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crossrec.experiment import ExperimentConfig, run_experiment
from crossrec.experiment import runner as runner_module
from crossrec.models import BPRMF, EASE, ItemKNN, LightGCN
from crossrec.models.two_tower import TwoTower
from crossrec.testing.transfer import (
    TestPartReadError,
    TransferStrategyConformance,
    check_auto,
    check_search,
    check_transfer_strategy,
    open_test_part,
    transfer_fixture,
)
from crossrec.transfer import (
    STRATEGY_REGISTRY,
    FineTune,
    Joint,
    Mapping,
    TargetOnly,
    TransferData,
    TransferStrategy,
    WarmStart,
)
from crossrec.transfer.base import _load_optional_strategies
from crossrec.transfer.content import ContentTransfer
from crossrec.transfer.source_profile import SourceProfile


def mf() -> BPRMF:
    return BPRMF(
        dim=8, optim={"epochs": 5, "batch_size": 256, "learning_rate": 0.02, "seed": 0, "progress": False}
    )


class TestTargetOnly(TransferStrategyConformance):
    def make_strategy(self):
        return TargetOnly(EASE(reg=10.0))


class TestJointItemKNN(TransferStrategyConformance):
    def make_strategy(self):
        return Joint(ItemKNN(k=10), domain_weight=0.5)


class TestJointEASE(TransferStrategyConformance):
    def make_strategy(self):
        return Joint(EASE(reg=10.0), domain_weight=0.5)


class TestJointBPRMF(TransferStrategyConformance):
    def make_strategy(self):
        return Joint(mf(), domain_weight=0.5)


class TestWarmStart(TransferStrategyConformance):
    def make_strategy(self):
        return WarmStart(mf(), pretrain_params={"optim": {"batch_size": 512}})


class TestWarmStartLightGCN(TransferStrategyConformance):
    def make_strategy(self):
        return WarmStart(LightGCN(dim=8, layers=1, optim={"epochs": 3, "batch_size": 256, "progress": False}))


class TestFineTune(TransferStrategyConformance):
    def make_strategy(self):
        return FineTune(mf(), freeze=("item",))


class TestMapping(TransferStrategyConformance):
    def make_strategy(self):
        return Mapping(mf(), cold_threshold=3, epochs=5, hidden=8)


class TestMappingMeta(TransferStrategyConformance):
    def make_strategy(self):
        return Mapping(mf(), bridge="meta", cold_threshold=3, epochs=5, hidden=8)


class TestContent(TransferStrategyConformance):
    def make_strategy(self):
        return ContentTransfer(TwoTower(dim=8, optim={"epochs": 3, "batch_size": 256, "progress": False}))


class TestSourceProfile(TransferStrategyConformance):
    def make_strategy(self):
        from crossrec.models.source_profile import ProfileKernelRidge

        return SourceProfile(ProfileKernelRidge(lam=3.0))


class TestSourceProfileUserKNN(TransferStrategyConformance):
    def make_strategy(self):
        from crossrec.models.source_profile import LinkedUserKNN

        return SourceProfile(LinkedUserKNN())


class TestPopularityBlendEASE(TransferStrategyConformance):
    def make_strategy(self):
        from crossrec.models import EASE
        from crossrec.transfer import PopularityBlendTransfer

        return PopularityBlendTransfer(EASE(reg=10.0), domain_weight=0.5, popularity_weight=0.5)


class TestPopularityBlendUserKNN(TransferStrategyConformance):
    def make_strategy(self):
        from crossrec.models import UserKNN
        from crossrec.transfer import PopularityBlendTransfer

        return PopularityBlendTransfer(UserKNN(k=10), domain_weight=1.0, popularity_weight=0.1)


COVERED = {
    case().make_strategy().name
    for case in list(globals().values())
    if isinstance(case, type)
    and issubclass(case, TransferStrategyConformance)
    and case is not TransferStrategyConformance
}


def test_every_registered_strategy_has_a_conformance_case():
    _load_optional_strategies()
    assert set(STRATEGY_REGISTRY) <= COVERED, f"no conformance case for {set(STRATEGY_REGISTRY) - COVERED}"


class _Leaky(TransferStrategy):
    """Early-stops on the test part: exactly what the poisoned split must catch."""

    name = "leaky_for_test"

    def __init__(self, model=None):
        self.model = model if model is not None else EASE(reg=10.0)

    def _fit(self, data: TransferData):
        data.split.matrix("test")
        return self.model.clone().fit(data.train)


def test_a_strategy_that_reads_test_fails_the_suite():
    with pytest.raises(TestPartReadError, match="before the final evaluation"):
        check_transfer_strategy(_Leaky())


def test_the_test_part_opens_for_the_final_evaluation():
    data = transfer_fixture()
    with pytest.raises(TestPartReadError):
        len(data.split.test)
    open_test_part(data.split)
    assert data.split.matrix("test").nnz == len(data.split.test) > 0


def test_auto_over_every_default_candidate_never_reads_test():
    candidates = [
        Joint(ItemKNN(k=10), domain_weight=0.5),
        Joint(EASE(reg=10.0), domain_weight=0.5),
        WarmStart(mf()),
        Mapping(mf(), cold_threshold=3, epochs=5, hidden=8),
        WarmStart(EASE()),  # refused by its check: recorded as skipped
    ]
    result = check_auto(candidates=candidates, baseline=TargetOnly(EASE(reg=10.0)))
    assert len(result.tried) == 4 and [row["strategy"] for row in result.skipped] == ["warm_start:ease"]


def test_search_never_reads_test():
    check_search("ease", {"model.reg": {"low": 1.0, "high": 100.0, "log": True}}, n_trials=3)
    check_search(
        "item_knn",
        {"transfer.domain_weight": {"low": 0.1, "high": 1.0}},
        strategy="joint",
        model_params={"k": 10},
        n_trials=2,
    )


@pytest.fixture
def poisoned_runner(monkeypatch):
    """The runner on the poisoned fixture; its final evaluation (and only that) opens the test part."""
    data = transfer_fixture()
    monkeypatch.setattr(runner_module, "prepare", lambda config, links_required=True: data)
    evaluate = runner_module.evaluate_model

    def final_evaluation(scorer, split, **kwargs):
        assert kwargs["part"] == "test"
        open_test_part(split)
        return evaluate(scorer, split, **kwargs)

    monkeypatch.setattr(runner_module, "evaluate_model", final_evaluation)
    return data


def _config(tmp_path, **sections) -> ExperimentConfig:
    document = {
        "name": "poisoned",
        "output_dir": str(tmp_path),
        "data": {"builtin": "movielens-cdr", "link_items": "ids", "link_users": "none"},  # not loaded
        **sections,
    }
    return ExperimentConfig.model_validate(document)


@pytest.mark.parametrize(
    "sections, strategy",
    [
        ({"model": {"name": "item_knn", "params": {"k": 10}}, "transfer": {"strategy": "joint"}}, None),
        (
            {
                "model": {"name": "ease"},
                "transfer": {"strategy": "joint"},
                "search": {"n_trials": 2, "space": {"model.reg": {"low": 1.0, "high": 50.0}}},
            },
            None,
        ),
        ({"model": {"name": "ease", "params": {"reg": 10.0}}}, "auto"),
        (
            {
                "families": [
                    {"model": {"name": "popularity"}},
                    {"model": {"name": "ease", "params": {"reg": 10.0}}, "strategy": "joint"},
                ]
            },
            None,
        ),
    ],
    ids=["guard", "search", "auto", "families"],
)
def test_runner_reads_test_only_in_the_final_evaluation(
    poisoned_runner, monkeypatch, tmp_path, sections, strategy
):
    from crossrec.transfer import guard

    # auto's default candidates train full-size default models: two quick ones stand in
    monkeypatch.setattr(guard, "default_candidates", lambda model=None: [Joint(ItemKNN(k=10)), Joint(EASE())])
    result = run_experiment(_config(tmp_path, **sections), strategy=strategy)
    assert result.summary and all(np.isfinite(s["ndcg@10"]) for s in result.summary.values())
    assert json.loads((result.run_dir / "results.json").read_text())["extra"]["kept"] == result.kept
