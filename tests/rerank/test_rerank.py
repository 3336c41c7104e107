"""Re-rankers: identity at strength 0, each objective on a constructed case, batch = per-user reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from pydantic import ValidationError

from crossrec.metrics import (
    catalog_coverage,
    evaluate_ranking,
    intra_list_diversity_categories,
    intra_list_diversity_embeddings,
)
from crossrec.ranking import FactorScorer, rank_users, recommend
from crossrec.rerank import MMR, Calibration, PopularityPenalty, RerankConfig, pool_relevance

N_USERS, N_ITEMS, N_CATEGORIES, DIM = 60, 80, 5, 6


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(7)
    history = sp.csr_matrix((rng.random((N_USERS, N_ITEMS)) < 0.1).astype(np.float32))
    return {
        "rng": rng,
        "categories": rng.integers(0, N_CATEGORIES, N_ITEMS),
        "embeddings": rng.normal(size=(N_ITEMS, DIM)),
        "popularity": rng.integers(0, 50, N_ITEMS).astype(float),
        "history": history,
        "users": rng.normal(size=(N_USERS, DIM)).astype(np.float32),
        "items": rng.normal(size=(N_ITEMS, DIM)).astype(np.float32),
    }


def rerankers(world, strength: float, candidates: int = 30):
    return [
        MMR(strength, item_categories=world["categories"], candidates=candidates),
        MMR(strength, item_embeddings=world["embeddings"], candidates=candidates),
        Calibration(
            strength, item_categories=world["categories"], history=world["history"], candidates=candidates
        ),
        PopularityPenalty(strength, item_popularity=world["popularity"], candidates=candidates),
    ]


def ids(reranker) -> str:
    return f"{type(reranker).__name__}-{reranker.get_params().get('similarity', '')}"


# --- strength 0 is no re-ranking ------------------------------------------------------------------


@pytest.mark.parametrize("index", range(4))
def test_strength_zero_is_exactly_plain_top_k(world, index):
    reranker = rerankers(world, 0.0)[index]
    # one fixed exact path: "auto" may switch paths between calls, which moves scores by an ulp
    scorer = FactorScorer(world["users"], world["items"], path="float32")
    users = np.arange(N_USERS)
    exclude = world["history"]
    plain = rank_users(scorer, users, 10, exclude, n_items=N_ITEMS)
    reranked = reranker.rank_users(scorer, users, 10, exclude, n_items=N_ITEMS)
    np.testing.assert_array_equal(reranked[1], plain[1])
    np.testing.assert_array_equal(reranked[0], plain[0])
    truth = sp.csr_matrix((world["rng"].random((N_USERS, N_ITEMS)) < 0.05).astype(np.float32))
    truth = truth - truth.multiply(exclude > 0)
    truth.eliminate_zeros()
    base = evaluate_ranking(scorer, truth, exclude, ks=(5, 10))
    again = evaluate_ranking(scorer, truth, exclude, ks=(5, 10), ranker=reranker.rank_users)
    np.testing.assert_array_equal(again.recommendations, base.recommendations)
    assert again.per_user.equals(base.per_user)


def test_strength_zero_keeps_ties_in_the_kernels_seeded_order(world):
    scores = np.zeros((4, N_ITEMS), np.float32)  # every item tied
    for reranker in rerankers(world, 0.0):
        items, _ = reranker.rerank_scores(scores, 10, users=np.arange(4), seed=3)
        expected = recommend(lambda u: np.zeros((len(u), N_ITEMS), np.float32), np.arange(4), 10, seed=3)[0]
        np.testing.assert_array_equal(items, expected)


# --- each objective on a constructed case ---------------------------------------------------------


def test_calibration_matches_the_history_category_mix():
    # 40 items: 0..19 in category 0 (all scored above) 20..39 in category 1; history 60% / 40%.
    categories = np.repeat([0, 1], 20)
    history = sp.csr_matrix(np.isin(np.arange(40), [0, 1, 2, 20, 21]).astype(float)[None, :])
    scores = np.linspace(1.0, 0.0, 40)[None, :]
    exclude = history
    calibrated = Calibration(1.0, item_categories=categories, history=history, candidates=40)
    items, _ = calibrated.rerank_scores(scores, 10, exclude)
    np.testing.assert_array_equal(np.bincount(categories[items[0]], minlength=2), [6, 4])
    # the model's order within each category is kept
    for category in (0, 1):
        chosen = items[0][categories[items[0]] == category]
        np.testing.assert_array_equal(chosen, np.sort(chosen))
    plain, _ = calibrated.__class__(0.0, item_categories=categories, history=history).rerank_scores(
        scores, 10, exclude
    )
    assert np.bincount(categories[plain[0]], minlength=2).tolist() == [10, 0]


def _kl(target: np.ndarray, counts: np.ndarray, smoothing: float = 0.01) -> float:
    q = (1 - smoothing) * counts / counts.sum() + smoothing * target
    return float(sum(p * math.log(p / qc) for p, qc in zip(target, q, strict=True) if p > 0))


def test_calibration_divergence_falls_as_strength_rises(world):
    history = world["history"]
    scorer = FactorScorer(world["users"], world["items"])
    users = np.arange(N_USERS)
    mix = Calibration(0.5, item_categories=world["categories"], history=history).target_mix(users)
    means = []
    for strength in (0.0, 0.3, 0.6, 1.0):
        reranker = Calibration(strength, item_categories=world["categories"], history=history, candidates=50)
        _, items = reranker.rank_users(scorer, users, 10, history, n_items=N_ITEMS)
        counts = np.stack([np.bincount(world["categories"][row], minlength=N_CATEGORIES) for row in items])
        means.append(np.mean([_kl(mix[u], counts[u]) for u in users]))
        np.testing.assert_allclose(reranker.miscalibration(users, items, 10).mean(), means[-1])
    assert all(b <= a + 1e-12 for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] < 0.5 * means[0]


def test_mmr_raises_category_ild_monotonically():
    # 5 categories; the model scores all of category 0 first, then 1, ...: plain lists are one category
    categories = np.repeat(np.arange(5), 10)
    rng = np.random.default_rng(0)
    scores = -categories[None, :] + 0.1 * rng.random((20, 50))
    ilds = []
    for strength in np.linspace(0, 1, 11):
        items, _ = MMR(strength, item_categories=categories, candidates=50).rerank_scores(scores, 10)
        ilds.append(intra_list_diversity_categories(items, categories, 10).mean())
    assert ilds[0] == 0.0
    assert all(b >= a for a, b in zip(ilds, ilds[1:], strict=False)), ilds
    assert ilds[-1] == pytest.approx(1 - 5 * 2 / 90)  # two items of each of 5 categories: the maximum


def test_mmr_raises_embedding_ild_monotonically():
    rng = np.random.default_rng(1)
    # the best-scored items all point the same way: plain lists have low embedding diversity
    directions = rng.normal(size=(4, 8))
    embeddings = directions[np.repeat(np.arange(4), 15)] + 0.05 * rng.normal(size=(60, 8))
    scores = -np.repeat(np.arange(4), 15)[None, :] + 0.1 * rng.random((30, 60))
    ilds = []
    for strength in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        items, _ = MMR(strength, item_embeddings=embeddings, candidates=60).rerank_scores(scores, 8)
        ilds.append(intra_list_diversity_embeddings(items, embeddings, 8).mean())
    assert all(b >= a - 1e-9 for a, b in zip(ilds, ilds[1:], strict=False)), ilds
    assert ilds[-1] > ilds[0] + 0.3


def test_popularity_penalty_raises_coverage():
    rng = np.random.default_rng(2)
    n_items = 200
    popularity = np.arange(n_items, 0, -1).astype(float)  # item 0 most popular
    # every user's scores favour popular items, with personal noise
    scores = -np.arange(n_items)[None, :] / n_items + 0.3 * rng.random((100, n_items))
    coverages = []
    for strength in (0.0, 0.3, 0.6, 0.9):
        penalty = PopularityPenalty(strength, item_popularity=popularity, candidates=100)
        items, _ = penalty.rerank_scores(scores, 10)
        coverages.append(catalog_coverage(items, n_items, 10))
    assert all(b >= a for a, b in zip(coverages, coverages[1:], strict=False)), coverages
    assert coverages[-1] > 1.5 * coverages[0]


# --- the vectorised batch equals a per-user reference ---------------------------------------------


def _reference(reranker, user: int, items: np.ndarray, scores: np.ndarray, k: int, world) -> list[int]:
    """One user, plain Python: the documented objective evaluated candidate by candidate."""
    pool = [(int(i), float(s)) for i, s in zip(items, scores, strict=True) if i >= 0]
    if not pool:
        return [-1] * k
    low, high = min(s for _, s in pool), max(s for _, s in pool)
    relevance = {i: (s - low) / (high - low) if high > low else 1.0 for i, s in pool}
    strength = reranker.strength
    if isinstance(reranker, PopularityPenalty):
        top = math.log1p(world["popularity"].max())
        value = {
            i: (1 - strength) * relevance[i] - strength * math.log1p(world["popularity"][i]) / top
            for i, _ in pool
        }
        order = sorted(range(len(pool)), key=lambda p: (-value[pool[p][0]], p))
        chosen = [pool[p][0] for p in sorted(order[:k])]  # the chosen set in the model's order
        return chosen + [-1] * (k - len(chosen))
    if isinstance(reranker, Calibration):
        row = world["history"][user].toarray()[0]
        mix = np.bincount(world["categories"], weights=row, minlength=N_CATEGORIES)
        mix = mix / mix.sum() if mix.sum() > 0 else mix
    chosen: list[int] = []
    while len(chosen) < k and len(chosen) < len(pool):
        best, best_value = None, -math.inf
        for i, _ in pool:
            if i in chosen:
                continue
            if isinstance(reranker, MMR) and not chosen:
                gain = 0.0
            elif isinstance(reranker, MMR) and reranker.similarity == "category":
                gain = sum(world["categories"][i] != world["categories"][j] for j in chosen) / len(chosen)
            elif isinstance(reranker, MMR):
                e = world["embeddings"]
                cos = [e[i] @ e[j] / np.linalg.norm(e[i]) / np.linalg.norm(e[j]) for j in chosen]
                gain = 1 - sum(cos) / len(chosen)
            else:
                counts = np.bincount(world["categories"][[*chosen, i]], minlength=N_CATEGORIES)
                gain = -_kl(mix, counts) if mix.sum() > 0 else 0.0
            value = (1 - strength) * relevance[i] + strength * gain
            if value > best_value + 1e-12:  # mathematically tied values: the better-ranked candidate
                best, best_value = i, value
        chosen.append(best)
    in_model_order = [i for i, _ in pool if i in chosen]
    return in_model_order + [-1] * (k - len(chosen))


@pytest.mark.parametrize("strength", [0.2, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("index", range(4))
def test_vectorised_batch_equals_per_user_reference(world, strength, index):
    rng = np.random.default_rng(int(strength * 100) + index)
    reranker = rerankers(world, strength)[index]
    pool_size, k = 25, 8
    items = np.stack([rng.permutation(N_ITEMS)[:pool_size] for _ in range(N_USERS)])
    scores = -np.sort(-rng.normal(size=(N_USERS, pool_size)), axis=1)
    n_valid = rng.integers(0, pool_size + 1, N_USERS)  # short pools, padded like rank_users pads
    n_valid[:3] = [0, 3, pool_size]
    padded = np.arange(pool_size)[None, :] >= n_valid[:, None]
    items[padded], scores[padded] = -1, -np.inf
    users = rng.permutation(N_USERS)
    got = reranker.rerank(users, items, scores, k)
    for row, user in enumerate(users):
        expected = _reference(reranker, int(user), items[row], scores[row], k, world)
        assert got[row].tolist() == expected, (ids(reranker), row)


@pytest.mark.parametrize("index", range(4))
def test_lists_are_admissible_distinct_and_batch_size_free(world, index):
    reranker = rerankers(world, 0.6, candidates=40)[index]
    scorer = FactorScorer(world["users"], world["items"])
    users = np.arange(N_USERS)
    exclude = world["history"]
    items, values = reranker.recommend(scorer, users, 12, exclude, n_items=N_ITEMS, batch_size=7)
    whole, _ = reranker.recommend(scorer, users, 12, exclude, n_items=N_ITEMS)
    np.testing.assert_array_equal(items, whole)
    seen = exclude.toarray() > 0
    for row in range(N_USERS):
        assert len(set(items[row])) == 12
        assert not seen[row, items[row]].any()
    np.testing.assert_allclose(values, np.take_along_axis(scorer(users), items, axis=1), rtol=1e-5)
    dense, _ = reranker.rerank_scores(scorer(users), 12, exclude, users=users)
    np.testing.assert_array_equal(dense, items)


def test_pool_relevance_is_min_max_over_admissible_candidates():
    scores = np.array([[3.0, 2.0, 1.0, -np.inf], [5.0, 5.0, -np.inf, -np.inf]])
    valid = np.isfinite(scores)
    np.testing.assert_allclose(pool_relevance(scores, valid), [[1, 0.5, 0, 0], [1, 1, 0, 0]])


def test_short_catalogue_pads_with_minus_one(world):
    reranker = MMR(0.5, item_categories=world["categories"][:3], candidates=10)
    items, values = reranker.rerank_scores(np.array([[0.3, 0.2, 0.1]]), 5)
    assert items[0, 3:].tolist() == [-1, -1] and np.isneginf(values[0, 3:]).all()
    assert sorted(items[0, :3].tolist()) == [0, 1, 2]


# --- configuration and errors ---------------------------------------------------------------------


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan"), "strong"])
def test_strength_outside_unit_interval_is_refused(world, strength):
    with pytest.raises(ValueError, match="strength"):
        MMR(strength, item_categories=world["categories"])
    with pytest.raises(ValidationError, match="strength"):
        RerankConfig(method="mmr", strength=strength)


def test_unknown_method_and_misplaced_fields_are_refused():
    with pytest.raises(ValidationError, match="'mmr', 'calibration' or 'popularity'"):
        RerankConfig(method="shuffle", strength=0.3)
    with pytest.raises(ValidationError, match="similarity applies to method 'mmr' only"):
        RerankConfig(method="popularity", strength=0.3, similarity="embedding")
    with pytest.raises(ValidationError, match="extra"):
        RerankConfig(method="mmr", strength=0.3, lambda_=0.2)
    with pytest.raises(ValidationError, match="candidates"):
        RerankConfig(method="mmr", strength=0.3, candidates=0)
    with pytest.raises(ValueError, match="method:strength"):
        RerankConfig.parse("mmr")


def test_missing_item_data_names_what_to_pass(world):
    with pytest.raises(ValueError, match="needs item_categories"):
        RerankConfig(method="mmr", strength=0.3).build(item_popularity=world["popularity"])
    with pytest.raises(ValueError, match="needs item_embeddings"):
        RerankConfig(method="mmr", strength=0.3, similarity="embedding").build(
            item_categories=world["categories"]
        )
    with pytest.raises(ValueError, match="needs history"):
        RerankConfig(method="calibration", strength=0.3).build(item_categories=world["categories"])
    with pytest.raises(ValueError, match="needs item_popularity"):
        RerankConfig(method="popularity", strength=0.3).build()
    with pytest.raises(ValueError, match="exactly one"):
        MMR(0.3)
    with pytest.raises(ValueError, match="negative codes"):
        MMR(0.3, item_categories=np.array([0, -1, 2]))
    with pytest.raises(ValueError, match="integer codes"):
        MMR(0.3, item_categories=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="history has 3 item columns"):
        Calibration(0.3, item_categories=world["categories"], history=sp.csr_matrix((2, 3)))
    with pytest.raises(ValueError, match="beyond the 3 items"):
        MMR(0.3, item_categories=np.array([0, 1, 0])).rerank_scores(np.ones((1, 5)), 2)
    with pytest.raises(ValueError, match="candidates"):
        MMR(0.3, item_categories=world["categories"], candidates=0)


def test_config_parses_and_builds_each_method(world):
    data = dict(
        item_categories=world["categories"],
        item_embeddings=world["embeddings"],
        item_popularity=world["popularity"],
        history=world["history"],
    )
    built = {
        text: RerankConfig.parse(text, candidates=20).build(**data)
        for text in (
            "mmr:0.3",
            "mmr-embedding:0.2",
            "calibration:0.5",
            "popularity:1",
        )
    }
    assert isinstance(built["mmr:0.3"], MMR) and built["mmr:0.3"].similarity == "category"
    assert built["mmr-embedding:0.2"].similarity == "embedding"
    assert isinstance(built["calibration:0.5"], Calibration)
    assert built["popularity:1"].get_params() == {"strength": 1.0, "candidates": 20, "relevance": "score"}
    assert RerankConfig.parse("mmr-embedding:0.2").label == "mmr-embedding"


def test_rerank_refuses_sampled_evaluation(world):
    truth = sp.csr_matrix(np.eye(N_USERS, N_ITEMS, dtype=np.float32))
    with pytest.raises(ValueError, match="full rankings"):
        evaluate_ranking(
            FactorScorer(world["users"], world["items"]),
            truth,
            sampled_negatives=10,
            ranker=MMR(0.3, item_categories=world["categories"]).rank_users,
        )


def test_build_for_reads_popularity_and_history_from_the_training_matrix(world):
    train = world["history"]
    penalty = RerankConfig(method="popularity", strength=0.4).build_for(train)
    np.testing.assert_allclose(penalty.item_popularity, np.asarray(abs(train).sum(axis=0)).ravel())
    calibration = RerankConfig(method="calibration", strength=0.4).build_for(
        train, item_categories=world["categories"]
    )
    users = np.arange(3)
    counts = np.stack(
        [np.bincount(world["categories"][train[u].indices], minlength=N_CATEGORIES) for u in users]
    )
    np.testing.assert_allclose(calibration.target_mix(users), counts / counts.sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="needs item_categories"):
        RerankConfig(method="mmr", strength=0.4).build_for(train)


# --- the compiled greedy is the array reference ------------------------------------------------------


@pytest.mark.parametrize("index", range(3))
@pytest.mark.parametrize("strength", [0.2, 0.7, 1.0])
def test_compiled_selection_equals_the_array_greedy(world, index, strength):
    from crossrec.rerank import GreedyReranker

    reranker = rerankers(world, strength)[index]  # MMR (categories, embeddings), calibration
    rng = np.random.default_rng(int(strength * 10) + index)
    users = np.arange(N_USERS)
    items = np.stack([rng.permutation(N_ITEMS)[:30] for _ in users])
    items[::7, 25:] = -1  # some short pools
    valid = items >= 0
    relevance = pool_relevance(rng.random(items.shape), valid)
    compiled = reranker._select(users, items, relevance, valid, 10)
    reference = GreedyReranker._select(reranker, users, items, relevance, valid, 10)
    np.testing.assert_array_equal(compiled, reference)


# --- relevance from the ranking's positions --------------------------------------------------------


def test_rank_relevance_is_the_scaled_dcg_discount_of_each_valid_position():
    from crossrec.rerank import rank_relevance

    valid = np.array([[True, True, True, True], [True, True, False, False]])
    relevance = rank_relevance(valid)
    discount = 1 / np.log2(2 + np.arange(4))
    np.testing.assert_allclose(relevance[0], (discount - discount[3]) / (discount[0] - discount[3]))
    np.testing.assert_allclose(relevance[1], [1.0, 0.0, 0.0, 0.0])


def test_rank_relevance_ignores_the_score_scale_and_strength_zero_is_still_plain(world):
    rng = np.random.default_rng(3)
    users = np.arange(20)
    items = np.stack([rng.permutation(N_ITEMS)[:30] for _ in users])
    scores = -np.sort(-rng.random(items.shape), axis=1)
    make = lambda s: PopularityPenalty(s, item_popularity=world["popularity"], relevance="rank")  # noqa: E731
    np.testing.assert_array_equal(make(0.0).rerank(users, items, scores, 10), items[:, :10])
    once = make(0.4).rerank(users, items, scores, 10)
    np.testing.assert_array_equal(once, make(0.4).rerank(users, items, scores**5 * 100, 10))
    assert (once != items[:, :10]).any()


def test_parse_reads_rank_relevance_and_the_label_reads_back():
    config = RerankConfig.parse("popularity@rank:0.3")
    assert (config.method, config.strength, config.relevance) == ("popularity", 0.3, "rank")
    assert config.label == "popularity@rank" and RerankConfig.parse(f"{config.label}:0.3") == config
    with pytest.raises(ValueError, match="relevance"):
        MMR(0.3, item_categories=np.zeros(3, dtype=int), relevance="softmax")
