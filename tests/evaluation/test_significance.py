"""Paired bootstrap, Wilcoxon and Holm on synthetic per-user vectors with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.evaluation import bootstrap_mean_ci, holm, paired_bootstrap_ci, wilcoxon_p


def test_known_difference_is_detected() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(400)
    better = base + 0.05 + rng.normal(0, 0.05, 400)
    low, high = paired_bootstrap_ci(better, base, seed=1)
    assert 0 < low < 0.05 < high
    assert wilcoxon_p(better, base) < 1e-6


def test_no_difference_is_not_detected() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(400)
    same = base + rng.normal(0, 0.05, 400)
    low, high = paired_bootstrap_ci(same, base, seed=1)
    assert low < 0 < high
    assert wilcoxon_p(same, base) > 0.05
    assert wilcoxon_p(base, base) == 1.0


def test_bootstrap_is_seeded_and_matches_the_normal_interval() -> None:
    rng = np.random.default_rng(2)
    values = rng.random((2000, 2))
    a = bootstrap_mean_ci(values, n_resamples=3000, seed=5)
    assert np.array_equal(a, bootstrap_mean_ci(values, n_resamples=3000, seed=5))
    half_width = 1.96 * values.std(axis=0) / np.sqrt(len(values))
    np.testing.assert_allclose(a[:, 1] - a[:, 0], 2 * half_width, rtol=0.1)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_mean_ci(np.array([]))
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap_ci(np.ones(3), np.ones(4))


def test_holm_adjustment() -> None:
    adjusted = holm(np.array([0.01, 0.04, 0.03, 0.005]))
    # sorted 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1 -> monotone 0.06
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.6, 0.9])).tolist() == [1.0, 1.0]
    assert holm(np.array([])).size == 0
