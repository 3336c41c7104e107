"""evaluate_model and compare_models on a small split with scorers of known quality."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.evaluation import compare_models, evaluate_model, evaluate_recommendations, random_split
from tests.conftest import make_domain
from tests.evaluation.conftest import oracle_scorer


def test_evaluate_model_tables_slices_and_exclusion(small_split) -> None:
    rng = np.random.default_rng(0)
    categories = rng.integers(0, 4, small_split.n_items)
    embeddings = rng.normal(size=(small_split.n_items, 5))
    linked = np.arange(small_split.n_users) % 2 == 0
    result = evaluate_model(
        oracle_scorer(small_split, 0.3, 1),
        small_split,
        ks=[5, 10],
        item_categories=categories,
        item_embeddings=embeddings,
        user_groups={"linked": linked},
    )
    test_users = np.unique(small_split.test.user)
    assert result.per_user["user"].tolist() == test_users.tolist()
    for column in ("ndcg@5", "novelty@10", "avg_pop@10", "tail@10", "ild_category@10", "ild_embedding@10"):
        assert column in result.per_user
        assert result.summary[column] == pytest.approx(result.per_user[column].mean())
    assert 0 < result.summary["coverage@10"] <= 1 and 0 <= result.summary["gini@10"] < 1
    assert result.summary["recall@10"] > 0.5  # the oracle finds its test items
    seen = (small_split.matrix("train") + small_split.matrix("valid")).toarray()
    recs = result.recommendations
    assert not seen[result.per_user["user"].to_numpy()[:, None], np.maximum(recs, 0)][recs >= 0].any()
    slices = result.slices
    assert set(slices["slice"]) == {"activity", "linked", "items"}
    assert slices.loc[slices["slice"] == "linked", "n_users"].sum() == len(test_users)
    assert slices.loc[slices["slice"] == "activity", "n_users"].sum() == len(test_users)
    assert set(slices.loc[slices["slice"] == "items", "group"]) == {"head", "tail"}
    # recomputing from the saved lists gives the same accuracy
    again = evaluate_recommendations(recs, result.per_user["user"].to_numpy(), small_split, ks=[5, 10])
    assert again.per_user["ndcg@10"].equals(result.per_user["ndcg@10"])


def test_rating_predictor_adds_rmse_mae(small_split) -> None:
    result = evaluate_model(
        oracle_scorer(small_split, 0.3, 1),
        small_split,
        ks=[5],
        rating_predictor=lambda u, i: np.full(len(u), 0.5),
    )
    assert result.summary["rmse"] == pytest.approx(0.5)  # implicit values are all 1.0
    assert result.summary["mae"] == pytest.approx(0.5)
    assert result.per_user["mae"].notna().all()


def test_compare_detects_the_better_model_with_holm(small_split) -> None:
    evaluations = {
        "good": evaluate_model(oracle_scorer(small_split, 0.2, 1), small_split, ks=[10]),
        "noisy": evaluate_model(oracle_scorer(small_split, 3.0, 2), small_split, ks=[10]),
        "noisy2": evaluate_model(oracle_scorer(small_split, 3.0, 3), small_split, ks=[10]),
    }
    table = compare_models(evaluations, baseline="noisy", metrics=["ndcg@10", "recall@10"], seed=1)
    row = table[(table["model"] == "good") & (table["metric"] == "ndcg@10")].iloc[0]
    assert row["difference"] > 0 and row["ci_low"] > 0 and row["significant"]
    assert row["p_adjusted"] >= row["p_value"]
    same = table[(table["model"] == "noisy2") & (table["metric"] == "ndcg@10")].iloc[0]
    assert same["ci_low"] < 0 < same["ci_high"]
    pairs = compare_models(evaluations, metrics=["ndcg@10"])
    assert len(pairs) == 3  # every pair without a baseline


def test_compare_rejects_different_splits_and_bad_requests(small_split) -> None:
    domain = make_domain(n_users=120, n_items=60, density=0.15, seed=3)
    other = random_split(domain.interactions, domain.n_users, domain.n_items, seed=8)
    a = evaluate_model(oracle_scorer(small_split, 0.3, 1), small_split, ks=[5])
    b = evaluate_model(oracle_scorer(other, 0.3, 1), other, ks=[5])
    with pytest.raises(ValueError, match="different splits"):
        compare_models({"a": a, "b": b})
    with pytest.raises(ValueError, match="at least two"):
        compare_models({"a": a})
    with pytest.raises(ValueError, match="baseline"):
        compare_models({"a": a, "c": a}, baseline="zzz")
    with pytest.raises(ValueError, match="unknown metric"):
        compare_models({"a": a, "c": a}, metrics=["ndcg@99"])
    with pytest.raises(ValueError, match="part must be"):
        evaluate_model(oracle_scorer(small_split, 0.3, 1), small_split, part="train")
