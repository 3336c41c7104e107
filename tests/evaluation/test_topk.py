"""Exact top-k kernels: the dense path and the bfloat16-candidate path of dot-product scorers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrec.evaluation import evaluate_ranking
from crossrec.models.mf import BPRMF
from crossrec.ranking.topk import (
    FactorScorer,
    NaNScoresError,
    bf16_input_error,
    dense_top_k,
    set_kernel_threads,
)


def reference_top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None):
    """Value descending, ties to the lower item; excluded and -inf items never returned (-1 pads)."""
    scores = np.array(scores, dtype=np.float64)
    if exclude is not None:
        scores[exclude.toarray() != 0] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    values = np.take_along_axis(scores, order, axis=1)
    order[values == -np.inf] = -1
    if order.shape[1] < k:
        order = np.pad(order, ((0, 0), (0, k - order.shape[1])), constant_values=-1)
    return order


def random_exclusion(n_rows: int, n_items: int, density: float, seed: int) -> sp.csr_matrix:
    matrix = sp.random(n_rows, n_items, density=density, format="csr", random_state=seed)
    matrix.data[:] = 1
    return matrix


@pytest.mark.parametrize("n_items", [7, 50, 4_000, 4_001, 20_007])
@pytest.mark.parametrize("k", [1, 10, 50])
def test_dense_top_k_equals_a_full_sort(n_items: int, k: int) -> None:
    rng = np.random.default_rng(n_items + k)
    scores = rng.standard_normal((40, n_items)).astype(np.float32)
    scores[:, ::5] = -np.inf  # inadmissible, never returned
    exclude = random_exclusion(40, n_items, 0.05, seed=k)
    values, items = dense_top_k(scores.copy(), k, exclude)
    expected = reference_top_k(scores, k, exclude)
    assert np.array_equal(items, expected)
    found = items >= 0
    assert np.array_equal(values[found], np.take_along_axis(scores, np.maximum(items, 0), 1)[found])
    assert np.all(values[~found] == -np.inf)


def test_dense_top_k_breaks_ties_by_lower_item_and_survives_all_equal_rows() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(30, 3_000)).astype(np.float32)  # thousands of ties per row
    scores[0] = 0.0  # every item tied
    _, items = dense_top_k(scores.copy(), 50)
    assert np.array_equal(items, reference_top_k(scores, 50))
    assert items[0].tolist() == list(range(50))


def test_dense_top_k_reports_nan_but_not_infinities() -> None:
    scores = np.zeros((4, 500), dtype=np.float32)
    scores[1, 3], scores[1, 4] = np.inf, -np.inf  # inf + -inf is NaN in a row sum: not a NaN score
    values, items = dense_top_k(scores.copy(), 5)
    assert items[1, 0] == 3 and values[1, 0] == np.inf
    scores[2, 400] = np.nan
    with pytest.raises(NaNScoresError, match="NaN"):
        dense_top_k(scores, 5)


def test_dense_top_k_needs_writable_float32() -> None:
    with pytest.raises(TypeError, match="float32"):
        dense_top_k(np.zeros((2, 5)), 2)


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(1, 96),
    scale_users=st.floats(1e-6, 1e6),
    scale_items=st.floats(1e-6, 1e6),
    seed=st.integers(0, 10_000),
)
def test_bfloat16_scores_stay_within_the_rounding_bound(dim, scale_users, scale_items, seed) -> None:
    rng = np.random.default_rng(seed)
    users = (rng.standard_normal((20, dim)) * rng.lognormal(0, 2, (20, dim)) * scale_users).astype(np.float32)
    items = (rng.standard_normal((300, dim)) * rng.lognormal(0, 2, (300, dim)) * scale_items).astype(
        np.float32
    )
    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    approx = (torch.from_numpy(users).bfloat16() @ torch.from_numpy(items).bfloat16().T).double().numpy()
    bound = bf16_input_error(users, items)[:, None] + 2.0**-8 * np.abs(approx)
    assert np.all(np.abs(approx - exact) <= bound)


@pytest.mark.parametrize("path", ["bfloat16", "float32", "auto"])
@pytest.mark.parametrize("n_items", [30, 5_000, 20_011])
def test_factor_top_k_is_the_exact_ranking(n_items: int, path: str) -> None:
    rng = np.random.default_rng(n_items)
    users = rng.standard_normal((300, 32)).astype(np.float32)
    items = rng.standard_normal((n_items, 32)).astype(np.float32)
    exclude = random_exclusion(300, n_items, 0.01, seed=1)
    scorer = FactorScorer(users, items, path=path)
    if path == "auto":  # whichever path the probes choose, every call must be exact
        for _ in range(3):
            scorer.top_k(np.arange(300), 50, exclude)
    values, found, rescored = scorer.top_k(np.arange(300), 50, exclude)
    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    assert np.array_equal(found, reference_top_k(exact, 50, exclude))
    real = found >= 0
    assert np.allclose(values[real], np.take_along_axis(exact, np.maximum(found, 0), 1)[real], atol=1e-4)
    if path == "bfloat16" and n_items > 64 * 50:  # a large catalogue: a small share is re-scored
        assert rescored.mean() < 0.05 * n_items


def _near_tied(n_users: int = 400, n_items: int = 8_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    users = rng.standard_normal((n_users, 16)).astype(np.float32)
    base = rng.standard_normal(16).astype(np.float32)
    items = np.tile(base, (n_items, 1)) + 1e-6 * rng.standard_normal((n_items, 16)).astype(np.float32)
    return users, items.astype(np.float32)


def test_auto_path_probes_both_paths_on_a_few_users_and_leaves_near_tied_scores_to_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CROSSREC_BF16", "1")  # as on a CPU with native bfloat16 products
    users, items = _near_tied()
    scorer = FactorScorer(users, items)  # near-tied: the bfloat16 bound cannot prune
    ranked_on_bf16: list[int] = []
    bf16 = FactorScorer._top_k_bfloat16

    def recording(self, batch, *args):
        ranked_on_bf16.append(len(batch))
        return bf16(self, batch, *args)

    monkeypatch.setattr(FactorScorer, "_top_k_bfloat16", recording)
    paths = []
    for _ in range(20):
        _, found, _ = scorer.top_k(np.arange(400), 10)
        paths.append(scorer.chosen_path())
    assert set(scorer.measured_costs()) == {"bfloat16", "float32"}
    assert paths == ["float32"] * 20  # re-scoring every item never pays
    # the first call and the 17th probed; a probe ranks 64 users on the slow path, never the batch
    assert ranked_on_bf16 == [64, 64]
    _, reference, _ = FactorScorer(users, items, path="float32").top_k(np.arange(400), 10)
    assert np.array_equal(found, reference)  # whichever path ran, the same float32 ranking


def test_auto_path_takes_bfloat16_where_its_probe_is_cheaper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSREC_BF16", "1")
    rng = np.random.default_rng(4)
    scorer = FactorScorer(rng.standard_normal((200, 8)).astype(np.float32), rng.standard_normal((500, 8)))
    scorer.top_k(np.arange(200), 5)
    costs = scorer.measured_costs()
    assert scorer.chosen_path() == min(costs, key=costs.get)
    scorer._state["seconds_per_user"].update(bfloat16=1e-9, float32=1.0)  # as measured on a bf16 CPU
    assert scorer.chosen_path() == "bfloat16"


def test_auto_path_never_runs_bfloat16_without_native_products(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSREC_BF16", "0")  # as on this project's AVX2 machines
    users, items = _near_tied(100, 2_000)
    scorer = FactorScorer(users, items)
    monkeypatch.setattr(FactorScorer, "_top_k_bfloat16", lambda *a: pytest.fail("bfloat16 path ran"))
    for _ in range(3):
        scorer.top_k(np.arange(100), 10)
    assert scorer.chosen_path() == "float32" and scorer.measured_costs() == {}


def test_factor_top_k_separates_items_that_bfloat16_cannot() -> None:
    # item vectors differ by ~1e-3 relative: below bfloat16's resolution (~4e-3), far above float32's
    rng = np.random.default_rng(5)
    base = rng.standard_normal(16).astype(np.float32)
    items = np.vstack([base * (1 + 1e-3 * rng.standard_normal()) for _ in range(3_000)]).astype(np.float32)
    items = np.vstack([items, rng.standard_normal((3_000, 16)).astype(np.float32) * 0.1])
    users = (base[None, :] + 0.01 * rng.standard_normal((50, 16))).astype(np.float32)
    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    approx = (torch.from_numpy(users).bfloat16() @ torch.from_numpy(items).bfloat16().T).float().numpy()
    naive = np.argsort(-approx, axis=1, kind="stable")[:, :20]
    expected = reference_top_k(exact, 20)
    assert not np.array_equal(naive, expected)  # ranking the bfloat16 scores alone would be wrong
    _, found, rescored = FactorScorer(users, items, path="bfloat16").top_k(np.arange(50), 20)
    assert np.array_equal(found, expected)
    assert rescored.min() >= 20


def test_factor_top_k_handles_scores_beyond_bfloat16_range() -> None:
    rng = np.random.default_rng(2)
    users = (rng.standard_normal((10, 64)) * 1e19).astype(np.float32)
    items = (rng.standard_normal((200, 64)) * 1e18).astype(np.float32)  # |u| |v| > bfloat16's largest
    scorer = FactorScorer(users, items)
    assert not scorer.bf16_safe
    _, found, rescored = scorer.top_k(np.arange(10), 5)
    assert np.array_equal(found, reference_top_k(users.astype(np.float64) @ items.T.astype(np.float64), 5))
    assert np.all(rescored == 200)


def test_factor_scorer_rejects_non_finite_or_mismatched_factors() -> None:
    with pytest.raises(NaNScoresError):
        FactorScorer(np.array([[np.nan, 1.0]]), np.ones((3, 2)))
    with pytest.raises(ValueError, match="dim"):
        FactorScorer(np.ones((2, 3)), np.ones((4, 2)))


def test_evaluation_with_a_factor_scorer_equals_the_dense_scorer() -> None:
    rng = np.random.default_rng(9)
    users = rng.standard_normal((500, 24)).astype(np.float32)
    items = rng.standard_normal((6_000, 24)).astype(np.float32)
    train = random_exclusion(500, 6_000, 0.004, seed=2)
    truth = random_exclusion(500, 6_000, 0.002, seed=3)
    truth = (truth - truth.multiply(train)).tocsr()
    truth.eliminate_zeros()
    fast = evaluate_ranking(FactorScorer(users, items), truth, train, ks=[10, 50], batch_size=128)
    dense = evaluate_ranking(lambda u: users[u] @ items.T, truth, train, ks=[10, 50], batch_size=128)
    assert np.array_equal(fast.recommendations, dense.recommendations)
    assert fast.per_user.equals(dense.per_user)


def test_embedding_models_hand_evaluation_a_factor_scorer() -> None:
    rng = np.random.default_rng(0)
    train = sp.csr_matrix((rng.random((60, 90)) < 0.1).astype(np.float32))
    model = BPRMF(dim=8, optim={"epochs": 2, "seed": 0}).fit(train)
    scorer = model.scorer()
    assert isinstance(scorer, FactorScorer)
    users = np.arange(60)
    assert np.allclose(scorer(users), model.score(users), atol=1e-5)


def test_concurrent_callers_get_their_own_exact_results() -> None:
    rng = np.random.default_rng(4)
    scores = [rng.standard_normal((64, 3_000)).astype(np.float32) for _ in range(6)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = dense_top_k(scores[i].copy(), 20)[1]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(6):
        assert np.array_equal(results[i], reference_top_k(scores[i], 20))


@pytest.mark.parametrize("offset", [-3.0, -0.9, -0.8, 0.0])
def test_factor_top_k_is_exact_when_the_best_scores_are_negative_or_near_zero(offset: float) -> None:
    # every score negative (offset -3), or the top scores straddling zero: the raw-bits fast path
    # cannot decide these rows, the order-preserving-key path must
    rng = np.random.default_rng(11)
    users = np.abs(rng.standard_normal((200, 8))).astype(np.float32)
    items = (0.1 * rng.standard_normal((6_000, 8)) + offset / 8).astype(np.float32)
    exclude = random_exclusion(200, 6_000, 0.01, seed=4)
    _, found, _ = FactorScorer(users, items, path="bfloat16").top_k(np.arange(200), 50, exclude)
    exact = users.astype(np.float64) @ items.T.astype(np.float64)
    assert np.array_equal(found, reference_top_k(exact, 50, exclude))


def test_serial_kernels_give_the_parallel_results() -> None:
    rng = np.random.default_rng(8)
    scores = rng.standard_normal((300, 5_000)).astype(np.float32)
    users = rng.standard_normal((300, 16)).astype(np.float32)
    items = rng.standard_normal((5_000, 16)).astype(np.float32)
    parallel = dense_top_k(scores.copy(), 20)[1], FactorScorer(users, items).top_k(np.arange(300), 20)[1]
    set_kernel_threads(1)
    try:
        serial = dense_top_k(scores.copy(), 20)[1], FactorScorer(users, items).top_k(np.arange(300), 20)[1]
    finally:
        set_kernel_threads(None)
    assert all(np.array_equal(a, b) for a, b in zip(parallel, serial, strict=True))
    with pytest.raises(ValueError, match="at least 1"):
        set_kernel_threads(0)
