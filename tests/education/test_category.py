"""CategoryTransition and the category prior learned on a source platform (hand-checked toys)."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.models import Recommender
from crossrec.models.category import CategoryTransition, category_transition_prior
from crossrec.models.sequences import Sequences

# six target items in three categories; item 0 and 1 are the most popular overall
CATEGORIES = [0, 0, 1, 1, 2, 2]


def _one_item_each(n_users: int = 30) -> Sequences:
    """A sparse target: every learner kept one enrolment, so no transition can be counted."""
    rng = np.random.default_rng(0)
    first = rng.choice([0, 1, 0, 2, 4], size=n_users)  # category 0 is the most popular
    return Sequences.from_lists([[int(i)] for i in first], n_items=6)


def test_uniform_prior_without_transitions_is_popularity() -> None:
    train = _one_item_each()
    model = CategoryTransition(CATEGORIES, prior="uniform", category_weight=30.0).fit(train)
    scores = model.score_histories(np.array([[2], [4]]))
    popularity = np.bincount(train.items, minlength=6)
    for row in scores:  # the category term is the same for every item: the order is popularity's
        assert list(np.argsort(-row, kind="stable")) == list(np.argsort(-popularity, kind="stable"))


def test_identity_prior_keeps_a_learner_in_her_category_and_shrinks_toward_target_counts() -> None:
    train = _one_item_each()
    model = CategoryTransition(CATEGORIES, prior="identity", category_weight=30.0).fit(train)
    top = np.argsort(-model.score_histories(np.array([[4]])), axis=1)[0, :2]
    assert set(top) == {4, 5}  # category 2 first, although category 0 is more popular
    # with target transitions the counts take over: T = (C + a P) / (n + a)
    moves = Sequences.from_lists([[0, 2]] * 30, n_items=6)  # category 0 -> 1, thirty times
    shrunk = CategoryTransition(CATEGORIES, prior="identity", prior_strength=10.0).fit(moves)
    assert shrunk.transitions_[0] == pytest.approx([10 / 40, 30 / 40, 0.0])
    assert shrunk.transitions_[1] == pytest.approx([0.0, 1.0, 0.0])  # no count: the prior alone


def test_a_prior_learned_on_the_source_shows_up_in_the_target() -> None:
    # source learners always go from category 0 to category 1; four source items, linked by content
    # to the target's categories (item 3 matched none: ignored)
    source = Sequences.from_lists([[0, 2], [1, 2], [0, 1, 2], [3, 0, 2]] * 10, n_items=4)
    links = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float)
    prior = category_transition_prior(source, links, sharpness=2.0)
    assert prior.shape == (3, 3) and prior.sum(axis=1) == pytest.approx(np.ones(3))
    assert prior[0].argmax() == 1  # what followed category 0 on the source
    # the target: one enrolment each, category 2 (items 4, 5) more popular than category 1
    train = Sequences.from_lists([[0], [1], [4], [4], [5], [5], [2]], n_items=6)
    transfer = CategoryTransition(CATEGORIES, prior=prior.tolist(), category_weight=30.0).fit(train)
    plain = CategoryTransition(CATEGORIES, prior="uniform", category_weight=30.0).fit(train)
    after_category_0 = np.array([[0], [1]])
    exclude = np.array([0, 1])
    for model, expected in ((transfer, {2, 3}), (plain, {4, 5})):
        scores = model.score_histories(after_category_0)
        scores[:, exclude] = -np.inf
        assert all(set(np.argsort(-row)[:2]) == expected for row in scores)
    # a sharper prior is more decided; the source's own mix is divided out (lift)
    assert category_transition_prior(source, links, sharpness=4.0)[0, 1] > prior[0, 1]


def test_the_item_transition_term_and_save_load(tmp_path) -> None:
    train = Sequences.from_lists([[0, 2, 4], [1, 3, 5], [0, 2, 4], [1, 3]], n_items=6)
    model = CategoryTransition(CATEGORIES, prior="identity", markov_weight=100.0).fit(train)
    assert np.argmax(model.score_histories(np.array([[0, 2]]))) == 4  # 2 -> 4 was seen, twice
    loaded = Recommender.load(model.save(tmp_path / "category"))
    users = np.arange(train.n_users)
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"categories": [0, 1]}, "one category >= 0 per item"),
        ({"categories": CATEGORIES, "prior": "nearest"}, "'uniform', 'identity' or a matrix"),
        ({"categories": CATEGORIES, "prior": [[1.0, 0.0], [0.0, 1.0]]}, r"must be \(3, 3\)"),
        ({"categories": CATEGORIES, "history": 0}, "history must be >= 1"),
        ({"categories": CATEGORIES, "markov_weight": -1.0}, "must be >= 0"),
    ],
)
def test_bad_settings_say_what_to_fix(params, words) -> None:
    with pytest.raises(ValueError, match=words):
        CategoryTransition(**params).fit(_one_item_each())


def test_a_prior_needs_weights_per_source_item_and_a_mapped_transition() -> None:
    source = Sequences.from_lists([[0, 1]], n_items=2)
    with pytest.raises(ValueError, match="one row per source item|source items = 2"):
        category_transition_prior(source, np.ones((3, 2)))
    with pytest.raises(ValueError, match="no source transition joins two items mapped"):
        category_transition_prior(source, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="sharpness > 0"):
        category_transition_prior(source, np.eye(2), sharpness=0.0)
