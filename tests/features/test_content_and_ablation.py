"""The content strategy (zero-shot transfer through shared attributes), ablation and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from crossrec.evaluation import evaluate_ranking, random_split
from crossrec.evaluation.ablation import ablate_modalities, plot_ablation
from crossrec.features import FeatureTable
from crossrec.models.inputs import FitInputs
from crossrec.models.two_tower import TwoTower
from crossrec.transfer import TransferData, TransferNotPossibleError, make_strategy
from crossrec.transfer.content import ContentTransfer, content_transfer

from .conftest import make_featured_domain

FAST = {
    "dim": 16,
    "optim": {"epochs": 10, "batch_size": 512, "learning_rate": 1e-2, "patience": 10, "progress": False,
              "threads": 1},
}  # fmt: skip


@pytest.fixture(scope="module")
def domains():
    return make_featured_domain("source", n_users=150, seed=1), make_featured_domain(
        "target", n_users=60, seed=2
    )


@pytest.fixture(scope="module")
def target_split(domains):
    target = domains[1]
    return random_split(target.interactions, target.n_users, target.n_items, seed=0)


def ndcg(scorer, split) -> float:
    exclude = (split.matrix("train") + split.matrix("valid")).tocsr()
    return evaluate_ranking(scorer, split.matrix("test"), exclude, metrics=["ndcg"], ks=[5]).mean()["ndcg@5"]


@pytest.fixture(scope="module")
def transferred(domains, target_split):
    source, target = domains
    return content_transfer(source, target, target_split, model=TwoTower(id_dropout=0.5, **FAST))


def test_content_transfer_scores_target_items_it_never_saw(transferred, target_split):
    assert transferred.score(np.arange(3)).shape == (3, target_split.n_items)
    rng = np.random.default_rng(0)
    random = ndcg(lambda users: rng.random((len(users), target_split.n_items)), target_split)
    assert ndcg(transferred.score, target_split) > random + 0.1  # random ~0.014, the model ~0.16-0.19
    assert transferred.modalities == ["item:title", "item:year", "item:genre", "item:tags"]


def test_content_transfer_with_user_attributes(domains, target_split):
    source, target = domains
    model = content_transfer(
        source, target, target_split, model=TwoTower(id_dropout=0.5, **FAST), user_representation="attributes"
    )
    assert "user:group" in model.modalities and "user:id" not in model.modalities
    assert np.isfinite(model.score(np.arange(5))).all()


def test_content_strategy_is_registered_and_checks_the_schema(domains, target_split):
    source, target = domains
    data = TransferData.from_domains(target, target_split, [source], link_items=None, link_users=None)
    assert isinstance(make_strategy("content"), ContentTransfer)
    strategy = ContentTransfer(model=TwoTower(item_modalities=["plot"], **FAST))
    with pytest.raises(TransferNotPossibleError, match="not shared"):
        strategy.fit(data)


def test_saved_transferred_model_scores_the_same(transferred, tmp_path):
    from crossrec.models.base import Recommender

    transferred.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.score(np.arange(4)), transferred.score(np.arange(4)), atol=1e-5)
    np.testing.assert_allclose(
        loaded.vectors(["item:genre"])[0], transferred.vectors(["item:genre"])[0], atol=1e-4
    )


@pytest.fixture(scope="module")
def target_model(domains, target_split):
    target = domains[1]
    return TwoTower(id_dropout=0.3, user_modalities=[], item_modalities=["genre", "year"], **FAST).fit_with(
        target_split.matrix("train"),
        target_split.matrix("valid"),
        FitInputs(item_features=FeatureTable.from_domain(target, "item")),
    )


def test_ablation_reports_each_modality_with_a_confidence_interval(target_model, target_split, tmp_path):
    table = ablate_modalities(target_model, target_split, n_resamples=200)
    assert table["modality"].iloc[0] == "none"
    assert set(table["modality"]) == {"none", "user:id", "item:id", "item:genre", "item:year"}
    assert {"ndcg@10", "recall@10", "contribution", "ci_low", "ci_high"} <= set(table.columns)
    assert (table["ci_low"] <= table["contribution"] + 1e-9).all()
    assert (table["contribution"] <= table["ci_high"] + 1e-9).all()
    figure = plot_ablation(table, tmp_path / "ablation.png")
    assert figure is not None and (tmp_path / "ablation.png").stat().st_size > 0


def test_cli_ablate_prints_and_writes(target_model, target_split, tmp_path):
    from crossrec.cli.main import app

    target_model.save(tmp_path / "model")
    target_split.save(tmp_path / "split")
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "ablate",
            str(tmp_path / "model"),
            str(tmp_path / "split"),
            "--out",
            str(tmp_path / "out"),
            "--n-resamples",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "item:genre" in result.output
    assert (tmp_path / "out" / "ablation.csv").exists() and (tmp_path / "out" / "ablation.png").exists()
    missing = runner.invoke(app, ["ablate", str(tmp_path / "nope"), str(tmp_path / "split")])
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.output.split())


def test_evaluate_ablate_modalities_adds_the_chart_to_the_run_report(target_model, target_split, tmp_path):
    import json

    from crossrec.cli.main import app
    from crossrec.evaluation import evaluate_model, write_run

    run_dir = write_run(
        tmp_path / "run",
        {"two_tower": evaluate_model(target_model.score, target_split, ks=(10,))},
        split=target_split,
        n_resamples=100,
    )
    target_model.save(tmp_path / "model")
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", str(run_dir), "--ablate-modalities", "--model", str(tmp_path / "model")]
    )
    assert result.exit_code == 0, result.output
    ablation = json.loads((run_dir / "results.json").read_text())["extra"]["ablation"]
    assert {row["modality"] for row in ablation} >= {"item:genre", "item:id"}
    html = (run_dir / "report.html").read_text()
    assert "Modality ablation" in html and 'alt="Modality ablation' in html
    without_model = runner.invoke(app, ["evaluate", str(run_dir), "--ablate-modalities"])
    assert without_model.exit_code == 2 and "--model" in without_model.output


def test_content_transfers_from_a_source_artifact_and_refuses_another_schema(domains, target_split, tmp_path):
    import dataclasses

    from crossrec.artifacts import load_artifact, save_artifact

    source, target = domains
    data = TransferData.from_domains(target, target_split, [source], link_items=None, link_users=None)
    strategy = ContentTransfer(model=TwoTower(id_dropout=0.5, **FAST))
    pretrained = strategy.pretrain_source(data.sources[0], data.seed)
    interactions = data.sources[0].interactions
    save_artifact(tmp_path / "source", pretrained, users=source.users, items=source.items, train=interactions)
    saved = load_artifact(tmp_path / "source").model
    from_artifact = dataclasses.replace(
        data, sources=(dataclasses.replace(data.sources[0], model=saved, domain=None),)
    )
    moved, direct = strategy.fit(from_artifact), strategy.fit(data)
    np.testing.assert_allclose(moved.score(np.arange(5)), direct.score(np.arange(5)), atol=1e-4)
    column = next(iter(target.item_feature_kinds))
    narrower = dataclasses.replace(
        target,
        item_features=target.item_features.drop(columns=[column]),
        item_feature_kinds={c: k for c, k in target.item_feature_kinds.items() if c != column},
    )
    with pytest.raises(
        TransferNotPossibleError, match=rf"{column} \(\w+ in the source, missing in the target\)"
    ):
        strategy.fit(dataclasses.replace(from_artifact, target=narrower))
