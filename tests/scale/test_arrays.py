"""Memory-mapped interaction arrays: bundles streamed in, per-user splits in bounded chunks."""

from __future__ import annotations

import numpy as np
import pytest

import crossrec.data.arrays as arrays_module
from crossrec.data import Interactions, load_bundle
from crossrec.data.arrays import InteractionArrays, materialize_domain, split_arrays, write_arrays
from crossrec.evaluation import random_split


def test_write_and_open_round_trip(tmp_path) -> None:
    interactions = Interactions(np.array([2, 0, 1, 0]), np.array([1, 3, 0, 0]), np.ones(4), np.arange(4) * 10)
    arrays = write_arrays(interactions, 3, 4, tmp_path / "a", user_ids=["a", "b", "c"])
    assert isinstance(arrays.user, np.memmap) and arrays.user.dtype == np.int32
    assert arrays.user.tolist() == [0, 0, 1, 2] and arrays.item.tolist() == [0, 3, 0, 1]
    assert arrays.timestamp is not None and arrays.timestamp.tolist() == [30, 10, 20, 0]
    reopened = InteractionArrays.open(tmp_path / "a")
    assert (reopened.n_users, reopened.n_items, len(reopened)) == (3, 4, 4)
    assert reopened.to_csr().toarray().tolist() == [[1, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]]
    assert reopened.to_csr(users=np.array([1])).toarray().sum() == 1
    assert reopened.vocabulary("user").ids.tolist() == ["a", "b", "c"]
    assert reopened.item_ids() is None
    with pytest.raises(FileExistsError, match="overwrite"):
        write_arrays(interactions, 3, 4, tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="materialize_domain"):
        InteractionArrays.open(tmp_path)


def test_materialize_matches_bundle_and_is_reused(synthetic_bundle, tmp_path) -> None:
    bundle = load_bundle(synthetic_bundle)
    domain = bundle.domains["target"]
    arrays = materialize_domain(synthetic_bundle, "target", tmp_path / "t")
    assert (arrays.n_users, arrays.n_items) == (len(domain.users), len(domain.items))
    assert np.array_equal(arrays.user, domain.interactions.user)
    assert np.array_equal(arrays.item, domain.interactions.item)
    assert arrays.vocabulary("item") == domain.items
    marker = (tmp_path / "t" / "user.i32").stat().st_mtime_ns
    again = materialize_domain(synthetic_bundle, "target", tmp_path / "t")
    assert (tmp_path / "t" / "user.i32").stat().st_mtime_ns == marker and len(again) == len(arrays)
    with pytest.raises(Exception, match="no domain 'nope'"):
        materialize_domain(synthetic_bundle, "nope", tmp_path / "x")


def test_split_follows_the_random_split_rule_over_several_chunks(
    synthetic_bundle, tmp_path, monkeypatch
) -> None:
    arrays = materialize_domain(synthetic_bundle, "source", tmp_path / "s")
    monkeypatch.setattr(arrays_module, "_CHUNK", 997)  # many chunks, each ending on a user boundary
    parts = split_arrays(arrays, tmp_path / "split", seed=5)
    assert sum(len(part) for part in parts.values()) == len(arrays)
    keys = {
        name: set((part.user.astype(np.int64) * arrays.n_items + part.item).tolist())
        for name, part in parts.items()
    }
    assert (
        not keys["train"] & keys["test"]
        and not keys["train"] & keys["valid"]
        and not keys["valid"] & keys["test"]
    )
    reference = random_split(arrays.to_interactions(), arrays.n_users, arrays.n_items, seed=5)
    for name, part in parts.items():
        assert np.array_equal(part.user_counts(), getattr(reference, name).n_per_user(arrays.n_users))
        assert np.all(np.diff(part.user) >= 0)
    with pytest.raises(ValueError, match="summing to 1"):
        split_arrays(arrays, tmp_path / "bad", ratios=(0.5, 0.1, 0.1))
