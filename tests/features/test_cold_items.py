"""The cold-item protocol: cold in every source, ranked among all and among cold items, real baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.evaluation import evaluate_cold_items, fit_warm_catalogue
from crossrec.features import FeatureTable
from crossrec.models import BPRMF, ContentKNN, FitInputs, TagPopularity
from crossrec.models.two_tower import TwoTower
from crossrec.splitting import isolate_cold_items, item_cold_start_split, normalized_titles


@pytest.fixture(scope="module")
def cold(featured_domain):
    return item_cold_start_split(
        featured_domain.interactions, featured_domain.n_users, featured_domain.n_items, fraction=0.25, seed=3
    )


def _domain(name: str, ids: list[str], titles: list[str], pairs: list[tuple[int, int]]) -> Domain:
    users, items = np.array(pairs).T
    return Domain(
        name=name,
        users=Vocabulary([f"u{u}" for u in range(users.max() + 1)]),
        items=Vocabulary(ids),
        interactions=Interactions(users, items, np.ones(len(pairs)), np.arange(len(pairs))),
        item_features=pd.DataFrame({"title": titles}),
        item_feature_kinds={"title": "text"},
    )


def test_normalized_titles_fold_case_accents_and_punctuation():
    assert list(normalized_titles(["Amélie (2001)", None, "  STAR-wars!  "])) == [
        "amelie 2001",
        "",
        "star wars",
    ]


def test_isolate_cold_items_drops_items_sharing_an_id_or_a_normalised_title():
    target = _domain("t", ["a", "b", "c"], ["Heat", "Alien", "Up"], [(0, 0), (0, 1), (1, 2), (1, 0)])
    source = _domain(
        "s",
        ["x", "b", "y", "z"],
        ["heat!", "Other", "Up", "Brazil"],
        [(0, 0), (0, 1), (1, 2), (1, 3), (2, 3), (2, 0)],
    )
    cold = item_cold_start_split(target.interactions, 2, 3, fraction=0.5, seed=0)
    cold = type(cold)(split=cold.split, cold_items=np.array([0, 1]))  # "Heat" and "Alien" (id b)
    isolated = isolate_cold_items(cold, target, [source])
    kept = isolated.sources[0]
    assert sorted(kept.items.ids) == ["y", "z"]  # x shares Heat's title, b shares Alien's id
    assert len(kept.interactions) == 3
    row = isolated.dropped.iloc[0]
    assert (row["items_dropped"], row["by_id"], row["by_title"], row["interactions_dropped"]) == (2, 1, 1, 3)
    only_titles = isolate_cold_items(cold, target, [source], match_ids=False).sources[0]
    assert "b" in set(only_titles.items.ids)


def test_cold_items_ranked_among_all_keep_warm_candidates_and_drop_own_warm_test_items(cold):
    seen = (cold.split.matrix("train") + cold.split.matrix("valid")).tocsr()
    among_cold = cold.exclude("cold", "cold").toarray() > 0
    among_all = cold.exclude("cold", "all").toarray() > 0
    warm_test = cold.truth("warm").toarray() > 0
    assert not among_all[:, cold.cold_items].any()  # every cold item is a candidate for every user
    assert not among_all.all(axis=1).any()
    np.testing.assert_array_equal(among_all, (seen.toarray() > 0) | warm_test)
    assert among_cold[:, ~cold.is_cold].all()
    with pytest.raises(ValueError, match="ranked_among"):
        cold.exclude("cold", "warm")


def test_content_knn_ranks_cold_items_of_the_users_cluster_far_above_random(featured_domain, cold):
    items = FeatureTable.from_domain(featured_domain, "item")
    split = cold.split
    model = ContentKNN(columns=["genre", "title"]).fit_with(
        split.matrix("train"), split.matrix("valid"), FitInputs(item_features=items)
    )
    results = evaluate_cold_items(model.score, cold)
    rng = np.random.default_rng(0)
    random = evaluate_cold_items(lambda b: rng.random((len(b), featured_domain.n_items)), cold)
    for setting in [("cold", "all"), ("cold", "cold")]:
        assert results[setting]["ndcg@10"].mean() > 2 * random[setting]["ndcg@10"].mean() + 0.05
    # cosine to the user's own items: a user of one item scores that item's twin at 1
    scores = model.score(np.arange(3))
    assert scores.max() <= 1 + 1e-5


def test_tag_popularity_is_the_mean_share_of_the_item_tags():
    target = _domain("t", ["a", "b", "c"], ["x", "y", "z"], [(0, 0), (0, 1), (1, 2)])
    target.item_features["genres"] = [["drama"], ["drama", "comedy"], ["horror"]]
    reference = _domain("s", ["p", "q"], ["p", "q"], [(0, 0), (1, 0), (2, 0), (0, 1)])
    reference.item_features["genres"] = [["drama"], ["comedy"]]  # drama 3/4, comedy 1/4
    items = FeatureTable(target.item_features, {"genres": "tags"}, target.items.ids)

    train = sp.csr_matrix((np.ones(3), ([0, 0, 1], [0, 1, 2])), shape=(2, 3))
    scores = TagPopularity("genres", reference=reference).fit_with(
        train, None, FitInputs(item_features=items)
    )
    np.testing.assert_allclose(scores.score(np.array([0]))[0], [0.75, 0.5, 0.0])
    own = TagPopularity("genres").fit_with(train, None, FitInputs(item_features=items))
    # in the training matrix: drama 2 of 4 tag counts, comedy 1, horror 1
    np.testing.assert_allclose(own.score(np.array([1]))[0], [0.5, 0.375, 0.25])


def test_warm_catalogue_models_never_see_cold_items_and_two_towers_score_them(featured_domain, cold):
    items = FeatureTable.from_domain(featured_domain, "item")
    tower = TwoTower(item_ids=False, user_modalities=[], optim={"epochs": 3, "seed": 0, "progress": False})
    scorer = fit_warm_catalogue(tower, cold, item_features=items)
    assert tower.n_items_ == featured_domain.n_items - len(cold.cold_items)
    scores = scorer(np.arange(5))
    assert np.isfinite(scores).all() and scores[:, cold.cold_items].std() > 0
    ids_only = BPRMF(optim={"epochs": 2, "seed": 0, "progress": False})
    id_scores = fit_warm_catalogue(ids_only, cold)(np.arange(5))
    assert np.isneginf(id_scores[:, cold.cold_items]).all()
    assert np.isfinite(id_scores[:, ~cold.is_cold]).all()
