"""Pretrain once, transfer a saved source model, refit for deployment, update: on a small synthetic
two-domain bundle (taste groups by parity, items shared by id)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from crossrec.artifacts import ArtifactVersionError, load_artifact
from crossrec.artifacts.lineage import data_fingerprint
from crossrec.cli.main import app
from crossrec.data import ingest
from crossrec.experiment.config import load_experiment
from crossrec.experiment.registry import pretrain_source, update_artifact
from crossrec.experiment.runner import run_experiment
from crossrec.transfer.base import SourceData, TransferNotPossibleError

SOURCES = """
version = 1
[sources.books.interactions]
path = "books.csv"
user = "user"
item = "item"
timestamp = "ts"
timestamp_format = "epoch_s"
[sources.shop.interactions]
path = "shop.csv"
user = "user"
item = "item"
timestamp = "ts"
timestamp_format = "epoch_s"
[domains.books]
role = "source"
[domains.shop]
role = "target"
"""

EXPERIMENT = """
name = "{name}"
seed = 7
num_threads = 1
output_dir = "runs"
save_artifact = true
[data]
bundle = "bundle"
link_items = "ids"
link_users = "none"
[model]
name = "{model}"
params = {params}
[transfer]
strategy = "{strategy}"
[evaluation]
metrics = ["ndcg"]
ks = [10]
"""

BPR = (
    "{ dim = 8, optim = { epochs = 12, patience = 3, batch_size = 256, learning_rate = 0.02, "
    "progress = false } }"
)


def _events(rng: np.random.Generator, n_users: int, n_items: int, per_user: int, prefix: str) -> list[str]:
    """Users of two tastes (parity) taking mostly items of their taste, one line per interaction."""
    rows = []
    for user in range(n_users):
        own = np.arange(user % 2, n_items, 2)
        chosen = rng.choice(own, size=min(per_user, len(own)), replace=False)
        for k, item in enumerate(chosen):
            rows.append(f"{prefix}{user},i{item},{1_000_000 + 1000 * k + user}")
    return rows


def _write_bundle(folder: Path, name: str, shop_rows: list[str], book_rows: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "books.csv").write_text("user,item,ts\n" + "\n".join(book_rows) + "\n")
    (folder / "shop.csv").write_text("user,item,ts\n" + "\n".join(shop_rows) + "\n")
    (folder / "sources.toml").write_text(textwrap.dedent(SOURCES))
    return ingest(folder / "sources.toml", folder / name).path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("registry")
    rng = np.random.default_rng(0)
    _write_bundle(folder, "bundle", _events(rng, 60, 30, 8, "s"), _events(rng, 120, 40, 12, "b"))
    return folder


def _experiment(
    workspace: Path, name: str, model: str = "bpr_mf", params: str = BPR, strategy: str = "warm_start"
):
    path = workspace / f"{name}.toml"
    path.write_text(EXPERIMENT.format(name=name, model=model, params=params, strategy=strategy))
    return load_experiment(path)


@pytest.fixture(scope="module")
def source_artifact(workspace: Path) -> Path:
    result = pretrain_source(_experiment(workspace, "pretrain"), workspace / "source-bpr")
    return result.artifact


@pytest.fixture(scope="module")
def from_artifact(workspace: Path, source_artifact: Path):
    """A warm-start transfer from the source artifact, run with source training made impossible."""
    config = _experiment(workspace, "from-artifact")
    config.transfer.sources = [source_artifact]

    def no_source_training(*args, **kwargs):
        raise AssertionError("the source was trained again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SourceData, "holdout", no_source_training)
        return run_experiment(config)


def test_source_artifact_holds_model_vocabularies_interactions_fingerprint_and_metrics(
    source_artifact: Path,
) -> None:
    artifact = load_artifact(source_artifact)
    lineage = artifact.metadata.lineage
    assert lineage["role"] == "source" and lineage["strategy"] == "warm_start"
    assert lineage["data"]["domains"] == ["books"]
    assert artifact.metadata.model == "bpr_mf" and artifact.metadata.dim == 8
    assert artifact.seen.nnz == lineage["data"]["interactions"] == 120 * 12  # every source interaction
    assert lineage["data"]["fingerprint"] == data_fingerprint(artifact.seen, artifact.users, artifact.items)
    assert 0 < artifact.metadata.evaluation["ndcg@10"] <= 1


def test_transfer_from_artifact_trains_no_source_and_equals_the_in_process_transfer(
    workspace: Path, from_artifact
) -> None:
    scratch = run_experiment(_experiment(workspace, "scratch"))
    reused = from_artifact
    np.testing.assert_allclose(
        reused.models["transfer"].item_vectors(), scratch.models["transfer"].item_vectors(), atol=1e-5
    )
    assert reused.summary["transfer"]["ndcg@10"] == pytest.approx(scratch.summary["transfer"]["ndcg@10"])


def test_target_manifest_records_lineage_shown_by_info_and_the_service(
    source_artifact: Path, from_artifact
) -> None:
    result = from_artifact
    manifest = json.loads((result.artifact / "manifest.json").read_text())
    source_manifest = json.loads((source_artifact / "manifest.json").read_text())
    lineage = manifest["lineage"]
    source = load_artifact(source_artifact)
    assert lineage["role"] == "target" and lineage["strategy"] == "warm_start"
    assert lineage["sources"][0]["artifact_id"] == source.metadata.artifact_id
    assert (
        lineage["sources"][0]["model_sha256"]
        == source_manifest["files"]["model/weights.safetensors"]["sha256"]
    )
    assert lineage["sources"][0]["data_fingerprint"] == source.metadata.lineage["data"]["fingerprint"]
    target = load_artifact(result.artifact)
    assert lineage["target_data"]["fingerprint"] == data_fingerprint(target.seen, target.users, target.items)
    shown = CliRunner().invoke(app, ["recommend", str(result.artifact), "--info", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["lineage"]["sources"][0]["artifact_id"] == source.metadata.artifact_id
    from fastapi.testclient import TestClient

    from crossrec.serving import create_app

    with TestClient(create_app(result.artifact)) as client:
        served = client.get("/v1/model").json()
    assert served["lineage"]["sources"][0]["artifact_id"] == source.metadata.artifact_id
    assert served["lineage"]["target_data"]["fingerprint"] == lineage["target_data"]["fingerprint"]


def test_refit_artifact_is_fitted_on_all_data_and_excludes_every_seen_item(workspace: Path) -> None:
    result = run_experiment(
        _experiment(workspace, "refit", model="ease", params="{ reg = 10.0 }", strategy="joint")
    )
    split = result.data.split
    everything = (split.matrix("train") + split.matrix("valid") + split.matrix("test")) > 0
    artifact = load_artifact(result.artifact)
    assert (artifact.seen != everything).nnz == 0
    served = artifact.recommend_batch(artifact.users.ids, k=artifact.metadata.n_items)
    users = artifact.users.index(served["user_id"].to_numpy())
    items = artifact.items.index(served["item_id"].to_numpy())
    assert not np.asarray(everything[users, items]).any()  # no test or validation item comes back
    # every user gets every item they never took, so nothing but their own items is left out
    per_user = np.bincount(users, minlength=artifact.metadata.n_users)
    np.testing.assert_array_equal(per_user, artifact.metadata.n_items - np.diff(everything.tocsr().indptr))
    kept = result.models[result.kept]
    assert not np.allclose(artifact.model.similarity_, kept.similarity_)  # refit on more data
    assert (result.run_dir / "models" / result.kept).is_dir()  # the split-fitted model stays in the run
    assert artifact.metadata.lineage["refit"]["on"] == "train+valid+test"


def test_refit_trains_the_epoch_count_chosen_on_validation(from_artifact) -> None:
    result = from_artifact
    kept = result.models[result.kept]
    lineage = load_artifact(result.artifact).metadata.lineage
    assert lineage["refit"]["epochs"] == kept.history_.best_epoch
    refit = load_artifact(result.artifact).model
    assert refit.optim.epochs == kept.history_.best_epoch


def test_incompatible_source_artifacts_are_refused_with_what_to_change(
    workspace: Path, source_artifact: Path
) -> None:
    config = _experiment(workspace, "dim", params=BPR.replace("dim = 8", "dim = 16"))
    config.transfer.sources = [source_artifact]
    with pytest.raises(TransferNotPossibleError, match=r"8-dimensional.*dim = 16"):
        run_experiment(config)
    config = _experiment(workspace, "family", model="lightgcn", params="{ dim = 8, optim = { epochs = 2 } }")
    config.transfer.sources = [source_artifact]
    with pytest.raises(TransferNotPossibleError, match=r"'bpr_mf' model.*'lightgcn'"):
        run_experiment(config)
    config = _experiment(
        workspace, "refused", model="ease", params="{ reg = 10.0 }", strategy="popularity_blend"
    )
    config.transfer.sources = [source_artifact]
    with pytest.raises(TransferNotPossibleError, match=r"cannot transfer from a source artifact.*warm_start"):
        run_experiment(config)


def test_unknown_artifact_format_is_refused(workspace: Path, source_artifact: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "future"
    shutil.copytree(source_artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    config = _experiment(workspace, "future")
    config.transfer.sources = [copy]
    with pytest.raises(ValueError, match="format 99") as error:
        run_experiment(config)
    assert isinstance(error.value.__cause__, ArtifactVersionError)


def test_update_adds_new_users_and_items_by_fold_in_and_names_its_parent(
    workspace: Path, from_artifact
) -> None:
    deployed = from_artifact.artifact
    parent = load_artifact(deployed)
    rng = np.random.default_rng(1)
    new_rows = _events(rng, 6, 30, 6, "new") + [f"s0,i{n},3000000" for n in (40, 42)]
    bundle = _write_bundle(workspace / "new", "bundle", new_rows, _events(rng, 4, 10, 3, "b"))
    result = update_artifact(deployed, bundle, workspace / "updated", epochs=2)
    updated = load_artifact(result.artifact)
    assert result.new_users == 6 and result.new_items == 2 and result.epochs == 2
    assert list(updated.users.ids[: len(parent.users)]) == list(parent.users.ids)  # old indices kept
    lineage = updated.metadata.lineage
    assert lineage["role"] == "update" and lineage["parent"]["artifact_id"] == parent.metadata.artifact_id
    assert lineage["parent_lineage"] == dict(parent.metadata.lineage)
    assert updated.has_user("new3") and updated.has_item("i42")
    seen = updated.seen[updated.users.index(["s0"])[0]]
    assert set(updated.items.index(["i40", "i42"])) <= set(seen.indices)
    recommended = updated.recommend("new3", k=5)
    assert len(recommended.item_ids) == 5 and recommended.path == "model"
    # a new user's taste (odd items) comes from fold-in: most of her list is odd items
    assert sum(int(item[1:]) % 2 == 1 for item in recommended.item_ids) >= 3


def test_pretrain_and_update_commands(workspace: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    experiment = workspace / "pretrain.toml"
    out = runner.invoke(app, ["pretrain", str(experiment), "-o", str(tmp_path / "source")])
    assert out.exit_code == 0, out.output
    assert "source artifact" in out.output
    again = runner.invoke(app, ["pretrain", str(experiment), "-o", str(tmp_path / "source")])
    assert again.exit_code == 2 and "already exists" in again.output
    info = runner.invoke(app, ["recommend", str(tmp_path / "source"), "--info"])
    assert info.exit_code == 0 and "role" in info.output and "books" in info.output
    updated = runner.invoke(
        app,
        ["update", str(tmp_path / "source"), "--bundle", str(workspace / "bundle"), "--domain", "books",
         "--epochs", "1", "-o", str(tmp_path / "updated")],
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    assert load_artifact(tmp_path / "updated").metadata.lineage["parent"]["role"] == "source"


def test_data_fingerprint_names_interactions_by_raw_ids() -> None:
    from crossrec.data.vocabulary import Vocabulary

    matrix = sp.csr_matrix(np.array([[1, 0], [0, 1]], np.float32))
    users, items = Vocabulary(["a", "b"]), Vocabulary(["x", "y"])
    same = data_fingerprint(matrix, users, items)
    assert same == data_fingerprint(matrix.copy(), Vocabulary(["a", "b"]), items)
    assert same != data_fingerprint(matrix, Vocabulary(["b", "a"]), items)
    assert same != data_fingerprint(sp.csr_matrix(np.ones((2, 2), np.float32)), users, items)
