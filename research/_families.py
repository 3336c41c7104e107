"""Model families of the sparsity study, each with its hyperparameter grid (the search budget).

A family is a generator ``family(context)`` that yields ``(params, scorer_for)`` once per
configuration, where ``scorer_for(phase)`` gives the scorer for ``"valid"`` or ``"test"`` (they differ
only on Canvas, whose test-time context also holds the validation enrolments). The runner times
the work between two yields as that configuration's training time; what depends only on the
source (``SourceCache``) is computed once per pair and timed separately.

Every family has at most ``BUDGET`` configurations, target-only and transfer alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
import scipy.sparse as sp

from _data import Histories, RatioPair, SequencePair
from _models import (
    Scorer,
    bpr_factors,
    constant_scorer,
    cosine_knn_weights,
    dense_scorer,
    dual_ease_scorer,
    ease_toward,
    ease_weights,
    factor_scorer,
    inverse_spd,
    item_counts,
    kernel_ridge_scorer,
    matrix_scorer,
    per_user_max_normalise,
    top_k_per_column,
    user_knn_weights,
)

BUDGET = 8
PhaseScorer = Callable[[str], Scorer]
Family = Callable[["RatioContext"], Iterator[tuple[dict[str, Any], PhaseScorer]]]


def same(scorer: Scorer) -> PhaseScorer:
    return lambda phase: scorer


# ====================================================================================================
# ratio-split pairs (movielens-cdr, Amazon)
# ====================================================================================================
@dataclass
class SourceCache:
    """Source-only quantities, computed once per pair (they do not depend on the target fraction)."""

    pair: RatioPair
    seconds: float = 0.0
    _store: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._store:
            started = time.perf_counter()
            self._store[key] = build()
            self.seconds += time.perf_counter() - started
        return self._store[key]

    # movielens-cdr: item-linked
    def gram(self) -> np.ndarray:
        """Source Gram matrix over target items (through the title links), float64."""
        return self.get(
            "gram",
            lambda: (lambda s: (s.T @ s).toarray().astype(np.float64))(self.pair.source_in_target_items()),
        )

    def ease(self, l2: float) -> np.ndarray:
        return self.get(f"ease{l2}", lambda: ease_weights(self.gram(), l2))

    def pmi(self, smoothing: float = 10.0) -> np.ndarray:
        """Smoothed pointwise mutual information of item pairs in the source, ``log((G_ij + k) / (c_i c_j / N + k))``."""

        def build() -> np.ndarray:
            gram = self.gram()
            counts = np.diag(gram).copy()
            n_users = self.pair.source.shape[0]
            pmi = np.log((gram + smoothing) / (np.outer(counts, counts) / n_users + smoothing))
            np.fill_diagonal(pmi, 0.0)
            return pmi

        return self.get(f"pmi{smoothing}", build)

    def group_lift(self, smoothing: float = 100.0) -> np.ndarray:
        """``(n_target_users, n_items)``: sum over the demographic columns of
        ``log((n_gj + k) / (n_g n_j / N + k))`` for the user's group g, counted on source users."""

        def build() -> np.ndarray:
            pair = self.pair
            assert pair.source_groups is not None and pair.target_groups is not None
            linked = pair.source_in_target_items()
            lift = np.zeros((pair.n_users, pair.n_items))
            for column in range(pair.source_groups.shape[1]):
                groups = pair.source_groups[:, column]
                n_groups = int(max(groups.max(), pair.target_groups[:, column].max())) + 1
                membership = sp.csr_matrix(
                    (np.ones(len(groups)), (groups, np.arange(len(groups)))), shape=(n_groups, len(groups))
                )
                counts = (membership @ linked).toarray()
                expected = np.outer(counts.sum(1), counts.sum(0)) / max(counts.sum(), 1.0)
                lift += np.log((counts + smoothing) / (expected + smoothing))[pair.target_groups[:, column]]
            return lift

        return self.get(f"lift{smoothing}", build)

    # Amazon: user-linked
    def source_profiles(self) -> sp.csr_matrix:
        return self.get("profiles", self.pair.source_of_target_users)

    def source_kernel(self) -> np.ndarray:
        """``S S^T`` over target users (their source histories), dense float32."""
        return self.get(
            "kernel", lambda: (self.source_profiles() @ self.source_profiles().T).toarray().astype(np.float32)
        )

    def source_inverse(self, l2: float) -> np.ndarray:
        return self.get(f"inverse{l2}", lambda: inverse_spd(self.source_kernel(), l2))

    def neighbours(self, k: int) -> sp.csr_matrix:
        return self.get(f"knn{k}", lambda: user_knn_weights(self.source_profiles(), k))


@dataclass
class RatioContext:
    pair: RatioPair
    kept: sp.csr_matrix  # the kept target training part
    cache: SourceCache
    seed: int = 2022

    @property
    def log_popularity(self) -> np.ndarray:
        return np.log1p(item_counts(self.kept))


# -- target-only ------------------------------------------------------------------------------------
def popularity(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    yield {}, same(constant_scorer(item_counts(context.kept)))


def item_knn(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    for k, shrink in product((20, 50, 100, 200), (0.0, 20.0)):
        yield (
            {"k": k, "shrink": shrink},
            same(matrix_scorer(context.kept, cosine_knn_weights(context.kept, k, shrink))),
        )


def ease(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    kept = context.kept
    if kept.shape[1] <= 5000:
        gram = (kept.T @ kept).toarray().astype(np.float64)
        for l2 in (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0):
            yield {"l2": l2}, same(matrix_scorer(kept, ease_weights(gram, l2)))
    else:  # 30-40k items: the dual (users x users) form; each l2 costs one 10k x 10k inverse
        kernel = (kept @ kept.T).toarray().astype(np.float32)
        for l2 in (10.0, 100.0, 1000.0):
            yield {"l2": l2, "solver": "dual"}, same(dual_ease_scorer(kept, kernel, l2))


def bpr(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    checkpoints = (10, 30)
    for learning_rate, l2 in product((1e-3, 3e-3), (1e-5, 1e-3)):
        factors = bpr_factors(
            context.kept,
            dim=64,
            learning_rate=learning_rate,
            l2=l2,
            checkpoints=checkpoints,
            seed=context.seed,
        )
        for epochs in checkpoints:
            params = {"dim": 64, "learning_rate": learning_rate, "l2": l2, "epochs": epochs}
            yield params, same(factor_scorer(*factors[epochs]))


TARGET_ONLY_RATIO: dict[str, Family] = {
    "popularity": popularity,
    "item_knn": item_knn,
    "ease": ease,
    "bpr_mf": bpr,
}


# -- transfer: item-linked (movielens-cdr) ----------------------------------------------------------------
def source_ease(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """EASE trained on the source over linked items, applied to each target user's kept items."""
    for l2 in (100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0):
        yield {"source_l2": l2}, same(matrix_scorer(context.kept, context.cache.ease(l2)))


def joint_ease(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """crossrec's Joint strategy with EASE, re-tuned per fraction: ``G = X^T X + w S^T S``."""
    gram = (context.kept.T @ context.kept).toarray().astype(np.float64)
    for weight, l2 in product((0.01, 0.03, 0.1, 0.3), (300.0, 3000.0)):
        yield (
            {"domain_weight": weight, "l2": l2},
            same(matrix_scorer(context.kept, ease_weights(gram + weight * context.cache.gram(), l2))),
        )


def ease_toward_source(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Target EASE shrunk toward the source's EASE weights on the linked items (closed form)."""
    gram = (context.kept.T @ context.kept).toarray().astype(np.float64)
    for source_l2, l2 in product((1000.0, 3000.0), (30.0, 100.0, 300.0, 1000.0)):
        weights = ease_toward(gram, l2, context.cache.ease(source_l2))
        yield {"source_l2": source_l2, "l2": l2}, same(matrix_scorer(context.kept, weights))


def _profile_pmi(context: RatioContext) -> np.ndarray:
    """Mean source PMI between each candidate item and the user's kept items."""
    sizes = np.maximum(np.asarray(context.kept.sum(axis=1)), 1.0)
    return np.asarray(context.kept @ context.cache.pmi()) / sizes


def popularity_lift(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Target popularity times source association: ``log(1 + c_j) + g_i mean_i PMI_S(i, j) + g_d lift_S(j | group)``."""
    base = context.log_popularity[None, :]
    association = _profile_pmi(context)
    groups = context.cache.group_lift() if context.pair.source_groups is not None else None
    for item_weight, group_weight in product((0.3, 1.0), (0.0, 0.5, 1.0, 2.0)):
        scores = base + item_weight * association
        if groups is not None:
            scores = scores + group_weight * groups
        elif group_weight:
            continue
        yield {"item_weight": item_weight, "group_weight": group_weight}, same(dense_scorer(scores))


def lift_ease_blend(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Source-shrunk EASE (per-user max-normalised) plus ``a`` times the popularity/group prior."""
    gram = (context.kept.T @ context.kept).toarray().astype(np.float64)
    prior = context.log_popularity[None, :]
    if context.pair.source_groups is not None:
        prior = prior + context.cache.group_lift()
    for l2 in (300.0, 3000.0):
        personal = per_user_max_normalise(
            np.asarray(context.kept @ ease_toward(gram, l2, context.cache.ease(3000.0)))
        )
        for weight in (0.1, 0.3, 1.0, 3.0):
            yield (
                {"l2": l2, "source_l2": 3000.0, "prior_weight": weight},
                same(dense_scorer(personal + weight * prior)),
            )


def oracle_full_target_ease(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """NOT a method (it reads the target training rows the protocol hides): EASE trained on the *full*
    target training part, applied to the kept profiles, plus ``a`` times the prior of
    ``lift_ease_blend``. The ceiling of any item-item transfer at this fraction."""
    full = context.pair.train
    gram = (full.T @ full).toarray().astype(np.float64)
    prior = context.log_popularity[None, :]
    if context.pair.source_groups is not None:
        prior = prior + context.cache.group_lift()
    for l2 in (300.0, 3000.0, 10000.0, 30000.0):
        personal = per_user_max_normalise(np.asarray(context.kept @ ease_weights(gram, l2)))
        for weight in (0.0, 0.3):
            yield {"l2": l2, "prior_weight": weight}, same(dense_scorer(personal + weight * prior))


ORACLE_ITEM_LINKED: dict[str, Family] = {"oracle_full_target_ease": oracle_full_target_ease}

TRANSFER_ITEM_LINKED: dict[str, Family] = {
    "source_ease": source_ease,
    "joint_ease": joint_ease,
    "ease_toward_source": ease_toward_source,
    "popularity_lift": popularity_lift,
    "lift_ease_blend": lift_ease_blend,
}


# -- transfer: user-linked (Amazon) ----------------------------------------------------------------
def user_knn_source(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Users similar in the source (cosine of source histories) vote with their kept target items."""
    log_popularity = context.log_popularity[None, :].astype(np.float32)
    for k, weight in product((50, 200, 500, 2000), (0.0, 0.03)):
        neighbours = context.cache.neighbours(k)
        votes = neighbours @ context.kept

        def score(users: np.ndarray, votes: sp.csr_matrix = votes, weight: float = weight) -> np.ndarray:
            out = per_user_max_normalise(votes[users].toarray())
            return (out + weight * log_popularity).astype(np.float32)

        yield {"k": k, "popularity_weight": weight}, same(score)


def joint_item_knn(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Item-item cosine between the columns of ``Z = [w S | X]`` and the target columns, ``k`` per target
    item; a user's source and kept target items both vote (crossrec's Joint with ItemKNN, re-tuned)."""
    source = context.cache.source_profiles().astype(np.float32)
    kept = context.kept.astype(np.float32)
    for weight in (0.3, 1.0):
        joint = sp.hstack([weight * source, kept]).tocsr()
        cross = (joint.T @ kept).tocoo()  # (source + target items) x target items
        norms = np.sqrt(np.asarray(joint.multiply(joint).sum(axis=0)).ravel())
        offset = source.shape[1]
        keep = cross.row != cross.col + offset
        row, col = cross.row[keep], cross.col[keep]
        for k, shrink in product((50, 200), (0.0, 10.0)):
            value = cross.data[keep] / (norms[row] * norms[col + offset] + shrink)
            weights = top_k_per_column(row, col, value, k, cross.shape)
            yield {"domain_weight": weight, "k": k, "shrink": shrink}, same(matrix_scorer(joint, weights))


def source_ridge(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Kernel ridge regression from each user's source history to their kept target items."""
    kept_csc = context.kept.tocsc().astype(np.float32)
    for l2 in (3.0, 30.0, 300.0):
        inverse = context.cache.source_inverse(l2)
        yield (
            {"l2": l2},
            same(
                lambda users, inverse=inverse: (
                    -np.asarray((kept_csc.T @ inverse[:, users]).T, dtype=np.float32)
                )
            ),
        )


def dual_joint_ease(context: RatioContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """EASE over the concatenated ``[sqrt(w) S | X]`` columns, target outputs, in user space."""
    target_kernel = (context.kept @ context.kept.T).toarray().astype(np.float32)
    for weight, l2 in product((0.3, 1.0), (30.0, 300.0)):
        kernel = weight * context.cache.source_kernel() + target_kernel
        yield {"domain_weight": weight, "l2": l2}, same(dual_ease_scorer(context.kept, kernel, l2))


TRANSFER_USER_LINKED: dict[str, Family] = {
    "user_knn_source": user_knn_source,
    "joint_item_knn": joint_item_knn,
    "source_ridge": source_ridge,
    "dual_joint_ease": dual_joint_ease,
}

_ = kernel_ridge_scorer  # the same scorer as source_ridge, without the cache


# ====================================================================================================
# Canvas: next items with XuetangX disciplines
# ====================================================================================================
@dataclass
class SequenceContext:
    pair: SequencePair
    kept: Histories  # kept recent part of each learner's head
    contexts: dict[str, Histories]  # "valid": kept; "test": kept then validation

    @property
    def kept_matrix(self) -> sp.csr_matrix:
        return self.kept.matrix()


def _transitions(histories: Histories, gap: int) -> sp.csr_matrix:
    """Row-normalised counts of ``earlier -> later`` pairs ``gap`` steps apart within a learner."""
    position = histories.position()
    later = np.flatnonzero(position >= gap)
    counts = sp.csr_matrix(
        (np.ones(len(later)), (histories.item[later - gap], histories.item[later])),
        shape=(histories.n_items,) * 2,
    )
    counts.sum_duplicates()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    return (sp.diags(1.0 / np.maximum(totals, 1.0)) @ counts).tocsr()


def _transition_scores(
    context: SequenceContext, phase: str, history: int, horizon: int, decay: float = 0.5
) -> np.ndarray:
    """Multi-gap transition model: the ``history`` latest context items vote for what followed them
    1..``horizon`` steps later in the kept data, weights ``decay^k * 0.6^step``."""
    recent = context.contexts[phase].recent(history)
    gaps = {gap: _transitions(context.kept, gap) for gap in range(1, history + horizon)}
    scores = np.zeros((context.pair.n_users, context.pair.n_items))
    for k in range(history):
        items = recent[:, -1 - k]
        has = items >= 0
        votes = sum(0.6**step * gaps[k + 1 + step] for step in range(horizon))
        scores[has] += decay**k * votes[items[has]].toarray()
    return scores


def _discipline_votes(
    context: SequenceContext, phase: str, table: np.ndarray, history: int = 3, decay: float = 0.5
) -> np.ndarray:
    """``sum_k decay^k table[d(c_k), d(j)]`` over the ``history`` latest context items c_k."""
    recent = context.contexts[phase].recent(history)
    discipline = context.pair.discipline
    out = np.zeros((context.pair.n_users, context.pair.n_items))
    for k in range(history):
        items = recent[:, -1 - k]
        has = items >= 0
        out[has] += decay**k * table[discipline[items[has]]][:, discipline]
    return out


def canvas_popularity(context: SequenceContext) -> Iterator[tuple[dict, PhaseScorer]]:
    yield {}, same(constant_scorer(item_counts(context.kept_matrix)))


def canvas_item_knn(context: SequenceContext) -> Iterator[tuple[dict, PhaseScorer]]:
    for k, shrink in product((20, 50, 100, 200), (0.0, 20.0)):
        weights = cosine_knn_weights(context.kept_matrix, k, shrink)
        yield (
            {"k": k, "shrink": shrink},
            lambda phase, w=weights: matrix_scorer(context.contexts[phase].matrix(), w),
        )


def canvas_ease(context: SequenceContext) -> Iterator[tuple[dict, PhaseScorer]]:
    gram = (context.kept_matrix.T @ context.kept_matrix).toarray().astype(np.float64)
    for l2 in (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0):
        weights = ease_weights(gram, l2)
        yield {"l2": l2}, lambda phase, w=weights: matrix_scorer(context.contexts[phase].matrix(), w)


def canvas_transition(context: SequenceContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """The multi-gap transition (Markov) model, with popularity ``1e-3 * c_j / max c`` breaking ties."""
    counts = item_counts(context.kept_matrix)
    ties = 1e-3 * counts / max(counts.max(), 1.0)
    for history, horizon in ((1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 2), (4, 4)):
        cache: dict[str, np.ndarray] = {}

        def scorer(phase: str, history: int = history, horizon: int = horizon, cache: dict = cache) -> Scorer:
            if phase not in cache:
                cache[phase] = _transition_scores(context, phase, history, horizon) + ties
            return dense_scorer(cache[phase])

        scorer("valid")
        yield {"history": history, "horizon": horizon}, scorer


TARGET_ONLY_SEQUENCE: dict[str, Family] = {
    "popularity": canvas_popularity,
    "item_knn": canvas_item_knn,
    "ease": canvas_ease,
    "transition": canvas_transition,
}


def _blend_family(context: SequenceContext, table: np.ndarray) -> Iterator[tuple[dict, PhaseScorer]]:
    """``transition(history, horizon) + a log(1 + c_j) / log(1 + max c) + g * discipline votes`` (g > 0)."""
    counts = item_counts(context.kept_matrix)
    log_popularity = np.log1p(counts) / np.log1p(max(counts.max(), 1.0))
    for (history, horizon), popularity_weight, discipline_weight in product(
        ((2, 2), (4, 4)), (0.1, 0.3), (0.02, 0.1)
    ):

        def scorer(
            phase: str,
            h: int = history,
            g_: int = horizon,
            a: float = popularity_weight,
            g: float = discipline_weight,
        ) -> Scorer:
            transition = _transition_scores(context, phase, h, g_)
            return dense_scorer(
                transition + a * log_popularity[None, :] + g * _discipline_votes(context, phase, table)
            )

        params = {
            "history": history,
            "horizon": horizon,
            "popularity_weight": popularity_weight,
            "discipline_weight": discipline_weight,
        }
        yield params, scorer


def discipline_source_prior(context: SequenceContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Transfer: what MOOCCube learners take after a course of discipline a, as a lift
    ``log(P_S(b | a) / P_S(b))`` (add-one smoothed), voted by the learner's latest courses."""
    counts = context.pair.source_transitions + 1.0
    lift = np.log(counts / counts.sum(1, keepdims=True) / (counts.sum(0) / counts.sum())[None, :])
    yield from _blend_family(context, lift)


def discipline_affinity(context: SequenceContext) -> Iterator[tuple[dict, PhaseScorer]]:
    """Target-only control with the same form: a vote for courses of the same discipline (identity table)."""
    yield from _blend_family(context, np.eye(len(context.pair.disciplines)))


TRANSFER_SEQUENCE: dict[str, Family] = {"discipline_source_prior": discipline_source_prior}
CONTROL_SEQUENCE: dict[str, Family] = {"discipline_affinity": discipline_affinity}
