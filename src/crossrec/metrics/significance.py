"""Paired significance of per-user metric differences: bootstrap confidence intervals, the
Wilcoxon signed-rank test, and Holm's correction for several comparisons.

All functions take per-user vectors aligned by user (``a[i]`` and ``b[i]`` belong to the same
user), so the variation between users is paired out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_mean_ci", "holm", "paired_bootstrap_ci", "wilcoxon_p"]

_CELLS_PER_CHUNK = 4_000_000  # resamples x users drawn at once


def bootstrap_mean_ci(
    values: np.ndarray, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> np.ndarray:
    """Percentile bootstrap confidence interval of the mean of each column.

    Parameters
    ----------
    values
        ``(n_users,)`` or ``(n_users, n_metrics)`` per-user values.
    n_resamples
        Bootstrap resamples (users drawn with replacement).
    confidence
        Coverage of the interval, e.g. 0.95.
    seed
        Seed of the resampling (same seed, same interval).

    Returns
    -------
    ndarray
        ``(2,)`` or ``(n_metrics, 2)``: lower and upper bounds.
    """
    values = np.asarray(values, dtype=np.float64)
    one_column = values.ndim == 1
    matrix = values[:, None] if one_column else values
    n = len(matrix)
    if n == 0:
        raise ValueError("cannot bootstrap an empty vector")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = np.empty((n_resamples, matrix.shape[1]))
    chunk = max(1, _CELLS_PER_CHUNK // n)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        draws = rng.integers(0, n, (size, n))
        # resample means as (counts of each user) @ values: one BLAS product per chunk
        counts = np.bincount((np.arange(size)[:, None] * n + draws).ravel(), minlength=size * n)
        means[start : start + size] = counts.reshape(size, n) @ matrix / n
    alpha = (1 - confidence) / 2
    bounds = np.quantile(means, [alpha, 1 - alpha], axis=0).T
    return bounds[0] if one_column else bounds


def paired_bootstrap_ci(
    a: np.ndarray, b: np.ndarray, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap confidence interval of ``mean(a - b)`` over users resampled in pairs."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired vectors differ in shape: {a.shape} vs {b.shape}")
    low, high = bootstrap_mean_ci(a - b, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return float(low), float(high)


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired Wilcoxon signed-rank test (1.0 when all differences are 0)."""
    difference = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not np.any(difference != 0):
        return 1.0
    from scipy import stats  # scipy.stats takes ~0.5 s to import: only when a test is run

    return float(stats.wilcoxon(difference, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(np.maximum.accumulate(p[order] * (m - np.arange(m))), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted
