"""Artifacts with valid checksums but crafted contents: every one is refused with a clear error by
``load_artifact``, ``crossrec recommend`` and a service reload (which keeps serving the old model).

Each case edits the arrays or JSON of a saved artifact and rewrites the manifest, so that every sha256
matches: only the contents checks stand between the file and the scoring kernels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from typer.testing import CliRunner

from crossrec.artifacts import ArtifactIntegrityError, load_artifact, save_artifact
from crossrec.artifacts._manifest import write_manifest
from crossrec.cli.main import app
from tests.artifacts.helpers import Trained
from tests.serving.conftest import make_client


def _save(trained: Trained, folder: Path) -> Path:
    return save_artifact(folder, trained.model, users=trained.users, items=trained.items, train=trained.train)


def _edit_arrays(file: str, change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        arrays = {k: v.copy() for k, v in load_file(str(folder / file)).items()}
        change(arrays)
        save_file(arrays, str(folder / file))

    return edit


def _set(name: str, position: object, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[name][position] = value

    return change


def _replace(name: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = np.ascontiguousarray(make(arrays[name]))

    return change


def _edit_json(file: str, **changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / file
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    return edit


WEIGHTS, INDEX = "model/weights.safetensors", "index.safetensors"

#: case -> (model, edit of the saved folder, words the error must contain)
CASES: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "seen index entry 1e9": ("bpr_mf", _edit_arrays(INDEX, _set("seen_indices", 0, 1e9)), "outside"),
    "seen index negative": ("ease", _edit_arrays(INDEX, _set("seen_indices", 3, -5)), "outside"),
    "seen pointers not monotone": (
        "bpr_mf",
        _edit_arrays(INDEX, _set("seen_indptr", 5, 10**6)),
        "row pointers",
    ),
    "seen pointers too short": (
        "popularity",
        _edit_arrays(INDEX, _replace("seen_indptr", lambda a: a[:-3])),
        "seen_indptr",
    ),
    "seen index as floats": (
        "popularity",
        _edit_arrays(INDEX, _replace("seen_indices", lambda a: a.astype(np.float32))),
        "integer",
    ),
    "popularity NaN": ("bpr_mf", _edit_arrays(INDEX, _set("item_popularity", 2, np.nan)), "NaN"),
    "popularity wrong length": (
        "bpr_mf",
        _edit_arrays(INDEX, _replace("item_popularity", lambda a: a[:-1])),
        "item_popularity",
    ),
    "item vectors NaN": ("bpr_mf", _edit_arrays(WEIGHTS, _set("item_vectors", (0, 0), np.nan)), "NaN"),
    "item vectors inf": ("bpr_mf", _edit_arrays(WEIGHTS, _set("item_vectors", (1, 1), np.inf)), "infinite"),
    "user vectors -inf": ("bpr_mf", _edit_arrays(WEIGHTS, _set("user_vectors", (2, 0), -np.inf)), "infinite"),
    "item vectors one row short": (
        "bpr_mf",
        _edit_arrays(WEIGHTS, _replace("item_vectors", lambda a: a[:-1])),
        "item vectors",
    ),
    "user vectors wider than item vectors": (
        "bpr_mf",
        _edit_arrays(WEIGHTS, _replace("user_vectors", lambda a: np.hstack([a, a]))),
        "dimension",
    ),
    "vectors overflow to infinite scores": (
        "bpr_mf",
        _edit_arrays(
            WEIGHTS,
            lambda arrays: arrays.update(
                {name: np.full_like(arrays[name], 3e38) for name in ("user_vectors", "item_vectors")}
            ),
        ),
        "finite",
    ),
    "similarity wrong shape": (
        "ease",
        _edit_arrays(WEIGHTS, _replace("similarity", lambda a: np.vstack([a, a[:1]]))),
        "item-item matrix",
    ),
    "similarity too narrow": (
        "ease",
        _edit_arrays(WEIGHTS, _replace("similarity", lambda a: a[:, :-2])),
        "shape",
    ),
    "similarity NaN": ("ease", _edit_arrays(WEIGHTS, _set("similarity", (3, 4), np.nan)), "NaN"),
    "similarity inf": ("ease", _edit_arrays(WEIGHTS, _set("similarity", (1, 2), np.inf)), "infinite"),
    "history index 1e9": ("ease", _edit_arrays(WEIGHTS, _set("history.indices", 0, 1e9)), "outside"),
    "history shape larger": (
        "ease",
        _edit_arrays(WEIGHTS, _set("history.shape", 0, 10**6)),
        "cannot be loaded|rows",
    ),
    "history pointers past the end": (
        "ease",
        _edit_arrays(WEIGHTS, _set("history.indptr", -1, 10**9)),
        "cannot be loaded|row pointers",
    ),
    "knn similarity index out of range": (
        "item_knn",
        _edit_arrays(WEIGHTS, _set("similarity.indices", 0, 10**7)),
        "outside",
    ),
    "knn similarity data NaN": (
        "item_knn",
        _edit_arrays(WEIGHTS, _set("similarity.data", 0, np.nan)),
        "NaN",
    ),
    "popularity counts inf": (
        "popularity",
        _edit_arrays(WEIGHTS, _set("item_counts", 0, np.inf)),
        "infinite",
    ),
    "popularity counts short": (
        "popularity",
        _edit_arrays(WEIGHTS, _replace("item_counts", lambda a: a[:-4])),
        "scor",
    ),
    "markov history item out of range": (
        "markov",
        _edit_arrays(WEIGHTS, _set("recent", (0, -1), 10**6)),
        "histories",
    ),
    "markov votes index out of range": (
        "markov",
        _edit_arrays(WEIGHTS, _set("votes0_indices", 0, 10**6)),
        "outside",
    ),
    "missing weight array": (
        "bpr_mf",
        _edit_arrays(WEIGHTS, lambda arrays: arrays.pop("item_vectors")),
        "cannot be loaded",
    ),
    "unknown model parameter": (
        "ease",
        _edit_json("model/model.json", params={"evil": 1}),
        "cannot be loaded",
    ),
    "model sizes disagree": ("ease", _edit_json("model/model.json", n_items=3), "vocabularies"),
    "metadata sizes disagree": ("bpr_mf", _edit_json("metadata.json", n_users=2), "metadata.json says"),
    "metadata model differs": ("bpr_mf", _edit_json("metadata.json", model="ease"), "metadata says"),
}


@pytest.fixture
def crafted(request: pytest.FixtureRequest, trained_models: dict[str, Trained], tmp_path: Path) -> Path:
    model, edit, _ = CASES[request.param]
    folder = _save(trained_models[model], tmp_path / "artifact")
    edit(folder)
    write_manifest(folder)  # every checksum matches the crafted files
    return folder


@pytest.mark.parametrize("crafted", sorted(CASES), indirect=True)
def test_crafted_artifact_is_refused_by_load_recommend_and_reload(
    crafted: Path, request: pytest.FixtureRequest, trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    case = request.node.callspec.params["crafted"]
    words = CASES[case][2]
    with pytest.raises(ArtifactIntegrityError, match=words):
        load_artifact(crafted)

    result = CliRunner().invoke(app, ["recommend", str(crafted), "--user", "u1", "--json"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error:") and "Traceback" not in result.output

    served = _save(trained_models["popularity"], tmp_path / "served")
    with make_client(served, admin_keys=frozenset({"admin-key-1"})) as client:
        before = client.get("/healthz").json()["artifact_id"]
        _swap_in(crafted, served)
        reload = client.post("/v1/admin/reload", headers={"X-API-Key": "admin-key-1"})
        assert reload.status_code == 409, reload.text
        assert str(tmp_path) not in reload.text  # no server paths in responses
        assert client.get("/healthz").json()["artifact_id"] == before
        assert client.get("/v1/users/u1/recommendations").status_code == 200


def _swap_in(source: Path, target: Path) -> None:
    """Replace the served folder's files by the crafted ones (same folder, new contents)."""
    import shutil

    for path in sorted(target.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    for path in sorted(source.rglob("*")):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def test_manifest_size_that_is_not_a_number_is_named(
    trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    folder = _save(trained_models["bpr_mf"], tmp_path / "a")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["metadata.json"]["bytes"] = str(manifest["files"]["metadata.json"]["bytes"])
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match="whole number of bytes"):
        load_artifact(folder)


def test_safetensors_header_that_lies_about_offsets_is_refused(
    trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    folder = _save(trained_models["bpr_mf"], tmp_path / "a")
    path = folder / WEIGHTS
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    header["item_vectors"]["shape"][0] += 1000  # claims more rows than the bytes hold
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data[8 + length :])
    _rehash(folder, WEIGHTS)  # write_manifest itself would refuse to declare such a file
    with pytest.raises(ArtifactIntegrityError, match="offsets"):
        load_artifact(folder)


def test_arrays_that_differ_from_the_declared_ones_are_refused(
    trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    folder = _save(trained_models["bpr_mf"], tmp_path / "a")
    manifest = json.loads((folder / "manifest.json").read_text())
    declared = manifest["files"][WEIGHTS]["arrays"]
    assert declared["item_vectors"] == {"dtype": "F32", "shape": [25, 4]}
    _edit_arrays(WEIGHTS, _replace("item_vectors", lambda a: a[:-1]))(folder)
    _rehash(folder, WEIGHTS)  # checksums match, the old declaration stays
    with pytest.raises(ArtifactIntegrityError, match="declares"):
        load_artifact(folder)


def _rehash(folder: Path, name: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / name).read_bytes()
    manifest["files"][name].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_symbolic_link_inside_an_artifact_is_refused(
    trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    folder = _save(trained_models["bpr_mf"], tmp_path / "a")
    outside = tmp_path / "outside.json"
    outside.write_text((folder / "config.json").read_text())
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(outside)
    with pytest.raises(ArtifactIntegrityError, match="symbolic link"):
        load_artifact(folder)


def test_every_unmodified_model_still_loads_and_recommends(
    trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    for name, trained in trained_models.items():
        artifact = load_artifact(_save(trained, tmp_path / name))
        assert len(artifact.recommend("u1", k=5).item_ids) == 5, name
