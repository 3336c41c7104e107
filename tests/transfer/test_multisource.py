"""Several sources: weights chosen on validation, each source's contribution, a noise source dropped,
and a source that shares nothing with the target named before training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.evaluation.contribution import contribution_on_test
from crossrec.evaluation.report import render_report
from crossrec.models import EASE
from crossrec.models.two_tower import TwoTower
from crossrec.splitting.splits import Split
from crossrec.transfer import (
    FineTune,
    Joint,
    Links,
    SourceData,
    TransferData,
    TransferNotPossibleError,
    choose_source_weights,
    guarded_sources,
    source_contribution,
)


def _interactions(users: np.ndarray, items: np.ndarray) -> Interactions:
    return Interactions(users, items, np.ones(len(users), np.float32))


def _rows(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    n_users, per_user = items.shape
    users = np.repeat(np.arange(n_users), per_user)
    return sp.csr_matrix((np.ones(items.size, np.float32), (users, items.ravel())), shape=(n_users, n_items))


def _grouped(rng: np.random.Generator, n_users: int, n_items: int, per_user: int) -> np.ndarray:
    """Each user's ``per_user`` items, all from her taste group (``item % 6``)."""
    group = rng.integers(0, 6, n_users)
    other = (np.arange(n_items)[None, :] % 6) != group[:, None]
    return np.argsort(rng.random((n_users, n_items)) + other, axis=1)[:, :per_user]


@pytest.fixture(scope="module")
def noisy():
    """A sparse target (one training item per user, so only a source reveals which items go
    together), a real source with the target's item groups, and a bigger noise source whose users
    hold random items; both share every item with the target."""
    rng = np.random.default_rng(0)
    n_items, n_users = 60, 400
    own = _grouped(rng, n_users, n_items, 3)
    users = np.arange(n_users)
    split = Split(
        _interactions(users, own[:, 0]), _interactions(users, own[:, 1]), _interactions(users, own[:, 2]),
        n_users, n_items, protocol="synthetic",
    )  # fmt: skip
    real = _rows(_grouped(rng, 300, n_items, 8), n_items)
    noise = _rows(np.argsort(rng.random((1500, n_items)), axis=1)[:, :8], n_items)
    links = Links(np.arange(n_items), np.arange(n_items))
    sources = (SourceData("real", real, item_links=links), SourceData("noise", noise, item_links=links))
    return TransferData(split, sources)


def joint() -> Joint:
    return Joint(EASE(reg=10.0), domain_weight=1.0)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str, **_: object) -> None:
        self.lines.append(text)


def test_auto_weights_give_the_noise_source_about_zero_and_the_run_says_so(noisy):
    console = Lines()
    result = guarded_sources(joint(), noisy, weights="auto", console=console)
    assert result.weights["real"] > 0
    assert result.weights["noise"] <= 0.05 * result.weights["real"]
    assert result.weighting is not None and result.weighting.dropped == ["noise"]
    assert len(result.weighting.trials) == 8  # every weighting of two sources over (0, 0.5, 1) but (0, 0)
    assert result.guard.kept == "transfer"
    assert any("source 'noise' dropped" in line for line in console.lines)
    record = result.to_dict()
    assert record["weighting"]["chosen"] == result.weights and record["dropped"] == ["noise"]
    json.dumps(record)  # recorded in results.json as it is


def test_choose_weights_never_tries_all_sources_off_and_checks_levels(noisy):
    chosen = choose_source_weights(joint(), noisy, levels=(0.0, 1.0))
    assert [t["weights"] for t in chosen.trials] == [
        {"real": 0.0, "noise": 1.0}, {"real": 1.0, "noise": 0.0}, {"real": 1.0, "noise": 1.0},
    ]  # fmt: skip
    assert chosen.weights == {"real": 1.0, "noise": 0.0}
    with pytest.raises(ValueError, match="at least one above 0"):
        choose_source_weights(joint(), noisy, levels=(0.0,))


def test_contribution_table_on_validation_and_test(noisy):
    measured = source_contribution(joint(), noisy)
    rows = {(r["source"], r["effect"]): r for r in measured.rows}
    assert set(rows) == {(s, e) for s in ("real", "noise") for e in ("leave_one_out", "alone")}
    assert rows["real", "leave_one_out"]["valid_ci_low"] > 0  # the mix needs the real source
    assert rows["real", "alone"]["valid_ci_low"] > 0
    assert rows["noise", "leave_one_out"]["valid_ci_high"] < 0  # the mix is better without the noise
    assert measured.harmful() == ["noise"]
    for row in measured.rows:
        assert row["valid_ci_low"] <= row["valid_difference"] <= row["valid_ci_high"]
    # two sources: "without real" is "only noise", fitted once
    assert measured.models["without real"] is measured.models["only noise"]
    tested = contribution_on_test(measured, noisy.split)
    assert [r["effect"] for r in tested] == [r["effect"] for r in measured.rows]
    for row in tested:
        assert row["test_ci_low"] <= row["test_difference"] <= row["test_ci_high"]
        assert row["n_test_users"] == noisy.n_users
    real_loo = next(r for r in tested if r["source"] == "real" and r["effect"] == "leave_one_out")
    assert real_loo["test_difference"] > 0


def test_given_weights_drop_a_source_that_does_not_help_on_held_out_validation_users(noisy):
    console = Lines()
    result = guarded_sources(joint(), noisy, weights=None, contribution=False, console=console)
    assert result.weights == {"real": 1.0, "noise": 0.0} and result.dropped == ["noise"]
    first = {t["source"]: t for t in result.source_tests if t["round"] == 0}
    assert first["real"]["passes"] and first["real"]["ci_low"] > 0
    assert first["noise"]["dropped"] and first["noise"]["ci_low"] <= 0
    assert first["noise"]["n_users"] == noisy.n_users // 2  # half the validation users test, half choose
    assert any("source 'noise' dropped (mixing it in changes valid ndcg@10" in line for line in console.lines)
    kept_all = guarded_sources(joint(), noisy, weights=None, contribution=False, keep="all")
    assert kept_all.weights == {"real": 1.0, "noise": 1.0} and kept_all.source_tests == []


def test_a_source_with_no_overlap_is_named_before_training(noisy):
    island = SourceData("island", sp.random(30, 10, density=0.3, format="csr", random_state=0))
    data = TransferData(noisy.split, (*noisy.sources, island))
    assert data.sources_without_overlap() == ["island"]
    assert data.overlap(island) == {
        "linked_users": 0, "shared_items": 0, "shared_item_attributes": 0, "shared_user_attributes": 0,
    }  # fmt: skip
    with pytest.raises(TransferNotPossibleError, match="source 'island' shares nothing with the target"):
        joint().fit(data)
    with pytest.raises(TransferNotPossibleError, match="'island'"):
        guarded_sources(joint(), data, weights="auto")


def test_finetune_refuses_two_weighted_sources_for_a_two_tower_model(noisy):
    strategy = FineTune(TwoTower(dim=4))
    reason = strategy.check(noisy)
    assert reason is not None and "real, noise" in reason and "content" in reason


def test_report_draws_the_contribution_section():
    rows = [
        {"source": s, "effect": e, "weight": 1.0, "valid_difference": d, "valid_ci_low": d - 0.01,
         "valid_ci_high": d + 0.01, "test_difference": d, "test_ci_low": d - 0.02, "test_ci_high": d + 0.02}
        for s, e, d in (("real", "leave_one_out", 0.3), ("noise", "leave_one_out", -0.05))
    ]  # fmt: skip
    results = {
        "models": {"m": {"summary": {"ndcg@10": 0.1}, "slices": []}},
        "metrics": ["ndcg"], "ks": [10],
        "extra": {"source_contribution": {"metric": "ndcg@10", "kept_weights": {"real": 1, "noise": 0},
                                          "rows": rows}},
    }  # fmt: skip
    page = render_report(results)
    assert 'id="source-contribution-table"' in page and "noise 0" in page
    assert 'alt="Source contribution to ndcg@10 with 95% CI' in page
    assert "Source contribution" not in render_report({**results, "extra": {}})


def test_experiment_with_auto_weights_records_weights_and_contribution(tmp_path):
    from typer.testing import CliRunner

    from crossrec.cli.main import app

    path = tmp_path / "experiment.toml"
    path.write_text(
        f'name = "multi"\nseed = 2022\noutput_dir = "{tmp_path / "runs"}"\n'
        '[data]\nbuiltin = "movielens-cdr"\nlink_items = "ids"\nlink_users = "none"\nmax_users = 120\n'
        '[model]\nname = "ease"\nparams = { reg = 100.0 }\n'
        '[transfer]\nstrategy = "joint"\nparams = { domain_weight = 0.15 }\nweights = "auto"\n'
        "weight_levels = [0.5, 1.0]\ncontribution = true\n"
    )
    result = CliRunner().invoke(app, ["transfer", str(path)])
    assert result.exit_code == 0, result.output
    assert "source weights chosen on validation" in result.output and "source contribution" in result.output
    run = next((tmp_path / "runs").glob("*/results.json")).parent
    extra = json.loads((run / "results.json").read_text())["extra"]
    weighting = extra["multi_source"]["weighting"]
    assert [t["weights"] for t in weighting["trials"]] == [{"ml-1m": 0.5}, {"ml-1m": 1.0}]
    assert weighting["chosen"] == extra["multi_source"]["weights"]
    rows = extra["source_contribution"]["rows"]
    assert [(r["source"], r["effect"]) for r in rows] == [("ml-1m", "alone")]
    assert {"valid_ci_low", "valid_ci_high", "test_difference", "test_ci_low", "test_ci_high"} <= set(rows[0])
    page = (run / "report.html").read_text()
    assert 'id="source-contribution-table"' in page and "Source contribution to ndcg@10" in page


def test_experiment_names_a_source_without_overlap_before_training(tmp_path, monkeypatch, noisy):
    from crossrec.experiment import load_experiment, runner

    island = SourceData("island", sp.random(30, 10, density=0.3, format="csr", random_state=0))
    monkeypatch.setattr(
        runner, "_prepare", lambda *a, **k: (TransferData(noisy.split, (*noisy.sources, island)), [])
    )
    path = tmp_path / "experiment.toml"
    path.write_text(
        f'output_dir = "{tmp_path / "runs"}"\n[data]\nbuiltin = "movielens-cdr"\nlink_items = "ids"\n'
        'link_users = "none"\n[transfer]\nstrategy = "joint"\n'
    )
    with pytest.raises(ValueError, match="source 'island' shares nothing with the target"):
        runner.run_experiment(load_experiment(path))
    assert not (tmp_path / "runs").exists()


def test_content_trains_one_model_on_every_weighted_source(monkeypatch):
    from crossrec.splitting.splits import random_split
    from crossrec.transfer.content import ContentTransfer
    from tests.features.conftest import make_featured_domain

    first, second, target = (make_featured_domain(n, n_users=u, seed=s) for n, u, s in
                             (("first", 80, 1), ("second", 60, 3), ("target", 50, 2)))  # fmt: skip
    split = random_split(target.interactions, target.n_users, target.n_items, seed=0)
    data = TransferData.from_domains(
        target, split, [first, second], link_items=None, link_users=None, weights=[1.0, 0.5]
    )
    assert data.sources_without_overlap() == []  # shared item attributes are an overlap
    optim = {"epochs": 3, "batch_size": 512, "progress": False, "threads": 1}
    seen = {}
    fit_with = TwoTower.fit_with

    def spy(self, train, valid, inputs):
        seen.update(shape=train.shape, weights=inputs.weights, rows=len(inputs.item_features))
        return fit_with(self, train, valid, inputs)

    monkeypatch.setattr(TwoTower, "fit_with", spy)
    model = ContentTransfer(TwoTower(dim=8, id_dropout=0.5, optim=optim)).fit(data)
    assert seen["shape"] == (first.n_users + second.n_users, first.n_items + second.n_items)
    assert seen["rows"] == first.n_items + second.n_items
    assert sorted(np.unique(seen["weights"])) == [0.5, 1.0]
    assert model.score(np.arange(4)).shape == (4, target.n_items)
    assert np.isfinite(model.score(np.arange(4))).all()
