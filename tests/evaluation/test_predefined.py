"""Loading a split from train/valid/test files of raw ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crossrec.data.vocabulary import Vocabulary
from crossrec.evaluation import random_split
from crossrec.splitting.predefined import load_predefined_split
from tests.conftest import make_domain


def _write(folder: Path, frames: dict[str, pd.DataFrame], suffix: str) -> list[Path]:
    paths = []
    for name, frame in frames.items():
        path = folder / f"{name}{suffix}"
        if suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
        paths.append(path)
    return paths


def _raw_frames(domain, split) -> dict[str, pd.DataFrame]:
    return {
        name: pd.DataFrame(
            {
                "user_id": domain.users.lookup(getattr(split, name).user),
                "item_id": domain.items.lookup(getattr(split, name).item),
                "rating": 4.0,
            }
        )
        for name in ("train", "valid", "test")
    }


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".tsv"])
def test_round_trip_through_domain_vocabularies(tmp_path: Path, suffix: str) -> None:
    domain = make_domain(n_users=30, n_items=25, seed=1)
    split = random_split(domain.interactions, domain.n_users, domain.n_items, seed=5)
    paths = _write(tmp_path, _raw_frames(domain, split), suffix)

    loaded, users, items = load_predefined_split(*paths, users=domain.users, items=domain.items)

    assert users is domain.users and items is domain.items
    assert loaded.fingerprint() == split.fingerprint()
    assert loaded.protocol == "predefined"
    assert loaded.params["test"] == str(paths[2])


def test_builds_sorted_vocabularies_when_none_given(tmp_path: Path) -> None:
    frames = {
        "train": pd.DataFrame({"u": ["b", "a", "a"], "i": ["x", "y", "z"]}),
        "valid": pd.DataFrame({"u": ["a"], "i": ["x"]}),
        "test": pd.DataFrame({"u": ["b"], "i": ["y"]}),
    }
    split, users, items = load_predefined_split(*_write(tmp_path, frames, ".csv"), user_col="u", item_col="i")

    assert users.ids.tolist() == ["a", "b"] and items.ids.tolist() == ["x", "y", "z"]
    assert split.matrix("train").toarray().tolist() == [[0, 1, 1], [1, 0, 0]]
    assert split.matrix("valid").toarray().tolist() == [[1, 0, 0], [0, 0, 0]]
    assert split.matrix("test").toarray().tolist() == [[0, 0, 0], [0, 1, 0]]


def test_csv_ids_keep_leading_zeros(tmp_path: Path) -> None:
    frames = {
        "train": pd.DataFrame({"user_id": ["007", "7"], "item_id": ["01", "01"]}),
        "valid": pd.DataFrame({"user_id": ["007"], "item_id": ["02"]}),
        "test": pd.DataFrame({"user_id": ["7"], "item_id": ["02"]}),
    }
    _, users, items = load_predefined_split(*_write(tmp_path, frames, ".csv"))
    assert users.ids.tolist() == ["007", "7"] and items.ids.tolist() == ["01", "02"]


def test_unknown_id_names_file_and_ids(tmp_path: Path) -> None:
    domain = make_domain(n_users=20, n_items=15, seed=2)
    split = random_split(domain.interactions, domain.n_users, domain.n_items, seed=5)
    frames = _raw_frames(domain, split)
    frames["test"].loc[0, "item_id"] = "not-an-item"
    paths = _write(tmp_path, frames, ".parquet")

    with pytest.raises(ValueError, match=r"test\.parquet.*item ids.*'not-an-item'"):
        load_predefined_split(*paths, users=domain.users, items=domain.items)


def test_overlapping_parts_are_rejected(tmp_path: Path) -> None:
    frames = {
        "train": pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"]}),
        "valid": pd.DataFrame({"user_id": ["a"], "item_id": ["z"]}),
        "test": pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
    }
    with pytest.raises(ValueError, match=r"both 'train' and 'test'.*\('a', 'x'\)"):
        load_predefined_split(*_write(tmp_path, frames, ".csv"))


def test_overlap_keep_records_counts(tmp_path: Path) -> None:
    frames = {
        "train": pd.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "y"]}),
        "valid": pd.DataFrame({"user_id": ["a"], "item_id": ["z"]}),
        "test": pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
    }
    split, _, _ = load_predefined_split(*_write(tmp_path, frames, ".csv"), overlap="keep")
    assert split.params["overlaps"] == {"train&valid": 0, "train&test": 1, "valid&test": 0}
    assert split.matrix("test").toarray().tolist() == [[1, 0, 0]]


def test_missing_column_lists_what_was_found(tmp_path: Path) -> None:
    frames = {name: pd.DataFrame({"user": ["a"], "item_id": ["x"]}) for name in ("train", "valid", "test")}
    with pytest.raises(ValueError, match=r"missing column\(s\) \['user_id'\]; found \['user', 'item_id'\]"):
        load_predefined_split(*_write(tmp_path, frames, ".parquet"))


def test_user_without_training_data_is_rejected(tmp_path: Path) -> None:
    frames = {
        "train": pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
        "valid": pd.DataFrame({"user_id": ["a"], "item_id": ["y"]}),
        "test": pd.DataFrame({"user_id": ["b"], "item_id": ["x"]}),
    }
    with pytest.raises(ValueError, match="no training data"):
        load_predefined_split(*_write(tmp_path, frames, ".csv"))


def test_unsupported_suffix(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="unsupported suffix '.json'"):
        load_predefined_split(path, path, path)


def test_given_vocabulary_keeps_unused_ids(tmp_path: Path) -> None:
    frames = {
        "train": pd.DataFrame({"user_id": ["a"], "item_id": ["x"]}),
        "valid": pd.DataFrame({"user_id": ["a"], "item_id": ["y"]}),
        "test": pd.DataFrame({"user_id": ["a"], "item_id": ["z"]}),
    }
    items = Vocabulary(["w", "x", "y", "z"])
    split, _, _ = load_predefined_split(*_write(tmp_path, frames, ".csv"), items=items)
    assert split.n_items == 4
    np.testing.assert_array_equal(split.test.item, [3])
