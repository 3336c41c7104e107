"""Evaluation, selection and the held-out guard of the sparsity study.

* :func:`ranking_metrics`: full ranking over all target items (``crossrec.evaluation.evaluate_ranking``),
  per-user NDCG@10 and Recall@10.
* Selection half / confirmation half: validation users are split at random (seeded) in two halves.
  Every choice (a family's configuration, the best target-only family, the best transfer family)
  is made on half A; the guard keeps the transfer only when its paired 95% bootstrap interval
  against the best target-only model *on half B* lies above zero, and that interval is reported.
* :func:`selection_bias`: how optimistic "choose on validation, report the interval on the same
  validation users" is, by repeated random halving of the validation users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci

from _models import Scorer

SEED = 2022


def ranking_metrics(
    scorer: Scorer, truth: sp.csr_matrix, exclude: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, ndcg@10, recall@10)`` over every user with a relevant item, full ranking, ``exclude`` skipped."""
    batch = max(64, min(4096, 20_000_000 // truth.shape[1]))
    ramp = -np.arange(truth.shape[1], dtype=np.float32)

    def untied(users: np.ndarray) -> np.ndarray:
        # a row whose scores are all equal ranks its lowest item indices first; the top-k kernel is
        # slow on such rows, so give them a strictly decreasing ramp, which ranks the same way
        scores = np.array(scorer(users), dtype=np.float32, copy=True)
        flat = scores.max(axis=1) == scores.min(axis=1)
        scores[flat] = ramp
        return scores

    result = evaluate_ranking(untied, truth, exclude, metrics=["ndcg", "recall"], ks=[10], batch_size=batch)
    frame = result.per_user
    return frame["user"].to_numpy(), frame["ndcg@10"].to_numpy(), frame["recall@10"].to_numpy()


def halves(n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (A, B) of a seeded random halving of ``n`` validation users."""
    order = np.random.default_rng(seed).permutation(n)
    a = np.zeros(n, dtype=bool)
    a[order[: n // 2]] = True
    return a, ~a


def ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return paired_bootstrap_ci(a, b, n_resamples=2000, seed=SEED)


@dataclass
class SelectionBias:
    """Optimism of reporting the selected model's gain on the users it was selected on."""

    same_users_gain: float  # full validation: gain of the full-validation-selected transfer vs target
    same_users_ci: tuple[float, float]
    test_gain: float  # the same two models on test
    test_ci: tuple[float, float]
    resampled_optimism: float  # mean over random halvings of gain_A(selected on A) - gain_B(same)
    resampled_share_a_significant: float  # share of halvings where the A interval (normal approx.) > 0
    resampled_share_b_significant: float  # ... and where the B interval of the same choice is > 0


def _normal_low(differences: np.ndarray) -> float:
    return float(differences.mean() - 1.96 * differences.std(ddof=1) / np.sqrt(len(differences)))


def selection_bias_resampled(
    transfer_valid: np.ndarray, target_valid: np.ndarray, repeats: int = 200, seed: int = SEED
) -> tuple[float, float, float]:
    """``transfer_valid``/``target_valid``: ``(n_configs, n_users)`` per-user validation NDCG of every
    transfer and every target-only configuration. For each random halving, pick the best of each on
    A, and compare the A gain with the B gain of the same pair of configurations."""
    rng = np.random.default_rng(seed)
    n = transfer_valid.shape[1]
    optimism, a_significant, b_significant = [], 0, 0
    for _ in range(repeats):
        a = np.zeros(n, dtype=bool)
        a[rng.permutation(n)[: n // 2]] = True
        best_transfer = int(transfer_valid[:, a].mean(1).argmax())
        best_target = int(target_valid[:, a].mean(1).argmax())
        difference = transfer_valid[best_transfer] - target_valid[best_target]
        optimism.append(difference[a].mean() - difference[~a].mean())
        a_significant += _normal_low(difference[a]) > 0
        b_significant += _normal_low(difference[~a]) > 0
    return float(np.mean(optimism)), a_significant / repeats, b_significant / repeats
