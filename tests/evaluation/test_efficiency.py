"""The data-efficiency protocol: what a sparse point of the curve keeps, and what it never touches."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from crossrec.data.interactions import Interactions
from crossrec.evaluation import efficiency_curve, keep_training_fraction, parse_fractions
from crossrec.splitting import Split, random_split
from tests.conftest import make_domain


@pytest.fixture(scope="module")
def split() -> Split:
    domain = make_domain(n_users=150, n_items=80, density=0.2, seed=11)
    return random_split(domain.interactions, domain.n_users, domain.n_items, seed=5)


def _pairs(part: Interactions) -> Counter:
    return Counter(zip(part.user.tolist(), part.item.tolist(), strict=True))


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.1, 0.5, 0.9])
def test_each_user_keeps_round_fraction_but_at_least_one(split, fraction):
    sparse = keep_training_fraction(split, fraction, seed=1)
    before = split.train.n_per_user(split.n_users)
    after = sparse.train.n_per_user(split.n_users)
    expected = np.where(before > 0, np.minimum(before, np.maximum(1, np.floor(fraction * before + 0.5))), 0)
    np.testing.assert_array_equal(after, expected)
    assert (after[before > 0] >= 1).all()


def test_kept_interactions_are_a_subset_of_the_training_part(split):
    sparse = keep_training_fraction(split, 0.2, seed=3)
    assert not (_pairs(sparse.train) - _pairs(split.train)), "a kept interaction was not in the training part"
    assert len(sparse.train) < len(split.train)


def test_validation_and_test_are_untouched(split):
    sparse = keep_training_fraction(split, 0.1, seed=3, user_fraction=0.5)
    for part in ("valid", "test"):
        np.testing.assert_array_equal(getattr(sparse, part).user, getattr(split, part).user)
        np.testing.assert_array_equal(getattr(sparse, part).item, getattr(split, part).item)
        assert (sparse.matrix(part) != split.matrix(part)).nnz == 0
    assert (sparse.n_users, sparse.n_items) == (split.n_users, split.n_items)


def test_same_seed_same_result_other_seed_other_result(split):
    first = keep_training_fraction(split, 0.3, seed=7)
    again = keep_training_fraction(split, 0.3, seed=7)
    other = keep_training_fraction(split, 0.3, seed=8)
    assert first.fingerprint() == again.fingerprint()
    assert first.fingerprint() != other.fingerprint()


def test_fraction_one_is_the_identity(split):
    same = keep_training_fraction(split, 1.0, seed=9)
    for column in ("user", "item", "value"):
        np.testing.assert_array_equal(getattr(same.train, column), getattr(split.train, column))
    assert same.fingerprint() == split.fingerprint()


def test_kept_sets_are_nested_across_fractions(split):
    curve = efficiency_curve(split, [0.5, 0.05, 0.2, 1], seed=4)
    assert [fraction for fraction, _ in curve] == [0.05, 0.2, 0.5, 1.0]
    for (_, smaller), (_, larger) in zip(curve, curve[1:], strict=False):
        assert not (_pairs(smaller.train) - _pairs(larger.train))


def test_user_fraction_keeps_the_fraction_for_a_sample_and_one_for_the_rest(split):
    sparse = keep_training_fraction(split, 0.8, seed=2, user_fraction=0.25)
    before = split.train.n_per_user(split.n_users)
    after = sparse.train.n_per_user(split.n_users)
    active = before > 0
    full = after[active] == np.minimum(before[active], np.maximum(1, np.floor(0.8 * before[active] + 0.5)))
    reduced = after[active] == 1
    assert (full | reduced).all()
    many = before[active] >= 3  # users for whom the two cases differ
    assert abs((full & many).sum() / many.sum() - 0.25) < 0.1


def test_the_split_records_the_protocol(split):
    sparse = keep_training_fraction(split, 0.1, seed=6)
    assert sparse.protocol == f"{split.protocol}+keep"
    assert sparse.params["keep_fraction"] == 0.1 and sparse.params["keep_seed"] == 6


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), "a lot", None])
def test_bad_fractions_are_refused(split, bad):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_training_fraction(split, bad)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_training_fraction(split, 0.5, user_fraction=bad)


def test_parse_fractions():
    assert parse_fractions("0.1, 0.05,1,0.1") == (0.05, 0.1, 1.0)
    assert parse_fractions([1, 0.25]) == (0.25, 1.0)
    with pytest.raises(ValueError, match="at least one fraction"):
        parse_fractions(" ,")
    with pytest.raises(ValueError, match=r"'2'.*\(0, 1\]"):
        parse_fractions("0.1,2")


def test_curve_needs_a_validation_part_and_checks_before_building(split):
    no_valid = Split(split.train, Interactions.empty(), split.test, split.n_users, split.n_items)
    with pytest.raises(ValueError, match="validation"):
        efficiency_curve(no_valid, "0.1,1")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        efficiency_curve(split, "0.1,0")
    with pytest.raises(ValueError, match="min_per_user"):
        keep_training_fraction(split, 0.5, min_per_user=0)
