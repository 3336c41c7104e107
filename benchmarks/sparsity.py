"""Benchmark: transfer on a sparse target, as a data-efficiency curve with a selection-aware guard.

Protocol (issue 15). movielens-cdr and the Amazon pairs: the target is split per user at random
80/10/10 (seed 2022). Canvas CNPC (``mooccube->canvas``): the published split (each learner's last 20%
is test) with validation = the last 20% of each learner's training part. At each point of the curve
every target user keeps ``max(1, round(f * n_u))`` of their ``n_u`` training interactions
(:func:`crossrec.evaluation.keep_training_fraction`, seed 2022, nested across fractions; on Canvas in
time order, the next-items protocol on the kept part of each sequence); validation and test never
change. Full ranking over all target items, excluding the kept training items (and validation items
at test; on Canvas the ranking for test follows the kept part plus the validation courses).

Selection. Every strategy/model family is searched over its grid (at most ``BUDGET`` configurations,
target-only and transfer alike) by :func:`crossrec.selection.select` with ``confirm=0.5`` (seed
2022): half of the validation users (A) choose, the other half (B) is held out. Candidates are fitted
with the validation interactions of A only (early stopping and a strategy's internal choices
included), and every choice - a family's configuration, the best target-only family, the best
transfer family - is made on A. The guard keeps the best transfer only when its paired bootstrap 95%
interval against the best target-only model *on B* (:class:`crossrec.selection.Comparison` of the two
selections' confirmation values) lies above zero. Test is read once per chosen configuration; the
gains reported are paired per-user bootstrap 95% intervals of test NDCG@10 against the best
target-only model (popularity, ItemKNN, EASE, BPR-MF, UserKNN and the target-only popularity blend;
on Canvas popularity, the transition model and target-only category transitions).

Rows (``benchmarks/results/sparsity.json``): one per pair, fraction and family, with the keys
issue 15 names; ``kept`` is true on the one row per point the guard kept. ``points`` has each
point's selection record (guard interval on half B, what was kept and its gain); ``pairs`` says how
Canvas is linked to its sources.

Run: ``OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/sparsity.py``
(``--pairs movielens-cdr --fractions 0.05,1`` for a subset; ``--quick``: fractions 0.05 and 1, on
movielens-cdr unless ``--pairs`` says otherwise;
``--source-profile`` adds the slow source_profile kernel-ridge family on the Amazon pairs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _amazon import load_amazon_pair
from _canvas import MOOCCUBE, CanvasCase, load_canvas_case
from _common import print_table, write_results
from education import CANVAS

from crossrec.data.builtin import load_movielens_cdr
from crossrec.evaluation.efficiency import keep_training_fraction, parse_fractions
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import BPRMF, EASE, ItemKNN, Popularity, PopularityBlend, ProfileKernelRidge, UserKNN
from crossrec.models.category import CategoryTransition, category_transition_prior
from crossrec.models.markov import TransitionRecommender
from crossrec.models.sequences import Sequences, evaluate_next_items
from crossrec.selection import (
    Comparison,
    NoTrialSucceededError,
    Selection,
    SequenceHoldout,
    select,
    split_users,
)
from crossrec.splitting import Split, random_split
from crossrec.transfer import (
    Joint,
    PopularityBlendTransfer,
    SourceProfile,
    TargetOnly,
    TransferData,
    TransferNotPossibleError,
    TransferStrategy,
)

SEED = 2022
BUDGET = 8
CONFIRM = 0.5  # share of the validation users held out of every choice (the guard's interval is theirs)
# ../shared/data of the checkout ($CROSSREC_SHARED_DATA first); a git worktree at /work/wt/NAME finds it
# one level further up
SHARED = Path(
    os.environ.get("CROSSREC_SHARED_DATA")
    or next(
        (
            folder / "shared" / "data"
            for folder in Path(__file__).resolve().parents[2:4]
            if (folder / "shared" / "data" / "amazon-disencdr").is_dir()
        ),
        Path(__file__).resolve().parents[2] / "shared" / "data",
    )
)
DATA = SHARED / "amazon-disencdr"
PAIRS = ("movielens-cdr", "sport->cloth", "phone->electronic", "mooccube->canvas")
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
ROW_KEYS = (
    "pair", "fraction", "strategy", "model", "ndcg@10", "recall@10", "best_target_only",
    "best_target_only_ndcg@10", "gain_ci_low", "gain_ci_high", "kept", "train_seconds",
)  # fmt: skip


def _log(message: str) -> None:
    print(message, flush=True)


# -- the families and their grids (the search budget) --------------------------------------------------
def bpr(**optim: Any) -> BPRMF:
    # the lean row-wise Adagrad step (dense Adam over a 39k-item table is ~8x slower per epoch);
    # validation (half A) every 5 epochs: early stopping ranks all target items
    settings = dict(
        optimizer="rowwise_adagrad", epochs=60, eval_every=5, patience=2, batch_size=2048, seed=SEED
    )
    settings["progress"] = False
    return BPRMF(dim=64, optim=settings | optim)


def families(
    item_linked: bool, source_profile: bool = False
) -> dict[str, tuple[str, list[TransferStrategy]]]:
    """Family name -> (``"target"`` or ``"transfer"``, its configurations, at most ``BUDGET``)."""
    target: dict[str, list[TransferStrategy]] = {
        "popularity": [TargetOnly(Popularity())],
        "item_knn": [TargetOnly(ItemKNN(k=k, shrink=s)) for k in (20, 50, 100, 200) for s in (0.0, 20.0)],
        "bpr_mf": [
            TargetOnly(bpr(learning_rate=lr, l2=l2)) for lr in (0.01, 0.03, 0.1) for l2 in (1e-5, 1e-3)
        ],
        "user_knn": [
            TargetOnly(UserKNN(k=k, popularity_weight=w)) for k in (50, 200) for w in (0.03, 0.3, 1.0, 3.0)
        ],
    }
    transfer: dict[str, list[TransferStrategy]]
    if item_linked:  # small catalogue, items linked: EASE-based families
        target["ease"] = [TargetOnly(EASE(reg=r)) for r in (10, 30, 100, 300, 1000, 3000, 10000, 30000)]
        target["ease_popularity"] = [
            TargetOnly(PopularityBlend("ease", {"reg": r}, w))
            for r in (300.0, 3000.0)
            for w in (0.5, 1, 2, 4)
        ]
        transfer = {
            "joint_ease": [
                Joint(EASE(reg=r), domain_weight=d) for d in (0.03, 0.1, 0.3, 1.0) for r in (300.0, 3000.0)
            ],
            "popularity_blend_ease": [
                PopularityBlendTransfer(EASE(reg=r), domain_weight=d, popularity_weight=w)
                for d in (0.1, 0.3)
                for r in (300.0, 3000.0)
                for w in (1.0, 2.0)
            ],
        }
    else:  # 39k-item catalogues (no dense EASE), users linked
        transfer = {
            "joint_item_knn": [
                Joint(ItemKNN(k=k, shrink=s), domain_weight=d)
                for d in (0.3, 1.0)
                for k in (50, 200)
                for s in (0.0, 10.0)
            ],
            "popularity_blend_user_knn": [
                PopularityBlendTransfer(UserKNN(k=k), domain_weight=d, popularity_weight=w)
                for d in (1.0, 3.0)
                for k in (200, 500)
                for w in (0.03, 0.1)
            ],
        }
        if source_profile:  # opt-in: 8 dense n_users^2 factorisations per point (750 s on sport->cloth)
            transfer["source_profile_kernel_ridge"] = [
                SourceProfile(ProfileKernelRidge(lam=lam, weighting="idf", popularity_exponent=g))
                for lam in (0.3, 1.0, 3.0, 10.0)
                for g in (0.0, 0.1)
            ]
    out = {name: ("target", grid) for name, grid in target.items()}
    out |= {name: ("transfer", grid) for name, grid in transfer.items()}
    for name, (_, grid) in out.items():
        assert len(grid) <= BUDGET, f"family {name} has {len(grid)} configurations, above the budget"
    return out


# -- Canvas CNPC: sequences, content-linked sources ---------------------------------------------------
def canvas_families(case: CanvasCase) -> dict[str, tuple[str, list[Any]]]:
    """Canvas's families: sequence models target-only, and the category prior learned on MOOCCube."""
    categories = case.disciplines.tolist()

    def category(prior: Any, weight: float, markov: float) -> CategoryTransition:
        return CategoryTransition(
            categories, prior=prior, category_weight=weight, markov_weight=markov, prior_strength=10.0,
            markov_preference=0.2,
        )  # fmt: skip

    target: dict[str, list[Any]] = {
        # log-popularity alone: the same ranking as popularity, through the next-items protocol
        "popularity": [CategoryTransition(categories, category_weight=0.0)],
        "markov": [
            TransitionRecommender(history=h, horizon=z, preference_weight=p)
            for h in (1, 4)
            for z in (1, 4)
            for p in (0.0, 0.2)
        ],
        # target-only category transitions: no preference ("uniform") or "stay in your discipline"
        # ("identity") as the prior, shrunk toward Canvas's own discipline transitions
        "category_markov": [
            category(prior, weight, markov)
            for prior in ("uniform", "identity")
            for weight in (3.0, 30.0)
            for markov in (10.0, 100.0)
        ],
    }
    learned = category_transition_prior(case.source, case.source_categories, sharpness=4.0)
    moderate = category_transition_prior(case.source, case.source_categories, sharpness=2.0)
    priors = {  # the source's lift, sharpened; or added to "stay in your discipline"
        "source": learned.tolist(),
        "source+identity": ((np.eye(len(moderate)) + moderate) / 2).tolist(),
    }
    transfer = {
        "category_prior_mooccube": [
            category(prior, weight, markov)
            for prior in priors.values()
            for weight in (3.0, 30.0)
            for markov in (10.0, 100.0)
        ]
    }
    out = {name: ("target", grid) for name, grid in target.items()}
    out |= {name: ("transfer", grid) for name, grid in transfer.items()}
    return out


# -- description and evaluation -------------------------------------------------------------------------
def describe(candidate: Any) -> str:
    """The configuration as one string: the model with its parameters, then the strategy's."""
    strategy = candidate if isinstance(candidate, TransferStrategy) else None
    model = candidate.model if strategy is not None else candidate
    extra = {k: v for k, v in strategy.get_params().items() if k != "model"} if strategy else {}
    hidden = {"optim", "progress", "seed", "block_size", "max_columns", "categories", *extra}
    shown = {k: v for k, v in model.get_params().items() if k not in hidden and v is not None}
    if isinstance(model, BPRMF):
        shown |= {"learning_rate": model.optim.learning_rate, "l2": model.optim.l2}
    if isinstance(model, CategoryTransition) and not isinstance(model.prior, str):
        shown["prior"] = "source"  # the matrix learned on the source (in the point's record)
    text = f"{model.name}(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"
    return text + "".join(f", {k}={v}" for k, v in extra.items())


def per_user(model, truth: sp.csr_matrix, exclude: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(ndcg@10, recall@10)`` of every user with a relevant item, in user order (full ranking)."""
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    result = evaluate_ranking(
        model.scorer(), truth, exclude, metrics=["ndcg", "recall"], ks=[10], users=users
    )
    frame = result.per_user.set_index("user").loc[users]
    return frame["ndcg@10"].to_numpy(), frame["recall@10"].to_numpy()


def ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    return paired_bootstrap_ci(a, b, n_resamples=2000, seed=SEED)


@dataclass(frozen=True)
class FitOnSelectionUsers:
    """A :class:`~crossrec.selection.Validation` whose candidates are fitted on ``fitting`` (its
    validation part holds the selection users only: early stopping and a strategy's internal choices
    never see the confirmation users) and scored on ``scoring`` (every validation user), so that
    :func:`crossrec.selection.select` with ``confirm=CONFIRM`` confirms on users nothing was fitted,
    stopped or chosen on."""

    fitting: Any
    scoring: Any

    def fit_candidate(self, candidate: Any) -> Any:
        return self.fitting.fit_candidate(candidate)

    def validation_users(self) -> np.ndarray:
        return self.scoring.validation_users()

    def per_user(self, model: Any, metric: str, users: np.ndarray | None = None):
        return self.scoring.per_user(model, metric, users)


@dataclass
class Point:
    """One fraction of one pair: what selection fits and scores on, and how test is read."""

    validation: FitOnSelectionUsers
    test: Callable[[Any], tuple[np.ndarray, np.ndarray]]  # model -> per-user (ndcg@10, recall@10)
    kept_training: int
    selection_users: np.ndarray
    confirmation_users: np.ndarray


# -- pairs --------------------------------------------------------------------------------------------
@dataclass
class Pair:
    name: str
    n_users: int
    n_items: int
    n_training: int
    families: dict[str, tuple[str, list[Any]]]
    point: Callable[[float], Point]
    record: dict[str, Any] = field(default_factory=dict)
    # target-only families beyond the list (a hand-set assumption, not a standard model): each
    # point also records the best transfer against the best target-only model *without* them
    extra_baselines: tuple[str, ...] = ()


def _parts(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The selection and confirmation users: the cut :func:`select` makes with ``confirm=CONFIRM``."""
    return split_users(users, CONFIRM, SEED)


def matrix_pair(name: str, split: Split, make_data: Callable[[Split], TransferData], item_linked: bool,
                source_profile: bool) -> Pair:  # fmt: skip
    """A pair whose target is a user x item split (movielens-cdr, the Amazon pairs)."""

    def point(fraction: float) -> Point:
        sparse = keep_training_fraction(split, fraction, seed=SEED)
        scoring = make_data(sparse)
        chosen, confirming = _parts(scoring.validation_users())
        valid_a = sparse.valid.take(np.isin(sparse.valid.user, chosen))
        fitting = make_data(replace(sparse, valid=valid_a))
        test, exclude = sparse.matrix("test"), sparse.matrix("train") + sparse.matrix("valid")
        return Point(
            FitOnSelectionUsers(fitting, scoring),
            lambda model: per_user(model, test, exclude),
            len(sparse.train),
            chosen,
            confirming,
        )

    return Pair(name, split.n_users, split.n_items, len(split.train),
                families(item_linked, source_profile), point)  # fmt: skip


def canvas_pair(case: CanvasCase) -> Pair:
    """Canvas CNPC: the curve thins each learner's training sequence (validation and test unchanged);
    models fit on the kept part in time order and rank after it (validation) or after it plus the
    validation courses (test), history excluded ("next items")."""
    n_users, n_items = case.head.n_users, case.head.n_items
    split = Split(
        train=case.head.to_interactions(), valid=case.valid.to_interactions(),
        test=case.test.to_interactions(), n_users=n_users, n_items=n_items, protocol="next_items",
        seed=SEED,
    )  # fmt: skip

    def point(fraction: float) -> Point:
        kept = Sequences.from_interactions(
            keep_training_fraction(split, fraction, seed=SEED).train, n_users, n_items
        )
        scoring = SequenceHoldout(kept, case.valid)
        chosen, confirming = _parts(scoring.validation_users())
        valid_a = Sequences.from_interactions(
            case.valid.to_interactions().take(np.isin(case.valid.user_of_event(), chosen)), n_users, n_items
        )
        history = kept.concat(case.valid)

        def test(model: Any) -> tuple[np.ndarray, np.ndarray]:
            frame = evaluate_next_items(model, history, case.test, metrics=["ndcg", "recall"]).per_user
            frame = frame.sort_values("user")
            return frame["ndcg@10"].to_numpy(), frame["recall@10"].to_numpy()

        return Point(
            FitOnSelectionUsers(SequenceHoldout(kept, valid_a), scoring), test, len(kept), chosen, confirming
        )

    record = {
        "target": "edu-canvas-cnpc (published split; validation = last 20% of each learner's training part)",
        "sources": {
            "edu-xuetangx-mooccube": (
                f"{case.source.n_users:,} learners, {len(case.source):,} enrolments; "
                f"{case.mapped_source_courses} of {case.source.n_items} courses linked to a Canvas "
                "discipline by content (TF-IDF of name + description vs the discipline names)"
            ),
            "edu-xuetangx-mooccubex": "not used: its files carry no course text or category to link by",
        },
        "disciplines": case.discipline_names,
    }
    return Pair(
        "mooccube->canvas", n_users, n_items, len(case.head), canvas_families(case), point, record,
        extra_baselines=("category_markov",),
    )  # fmt: skip


def load_pair(name: str, source_profile: bool = False) -> Pair:
    if name == "movielens-cdr":
        source, target = load_movielens_cdr()
        split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)

        def movielens_data(s: Split) -> TransferData:
            return TransferData.from_domains(
                target, s, [source], link_items="ids", link_users=None, seed=SEED
            )

        return matrix_pair(name, split, movielens_data, item_linked=True, source_profile=source_profile)
    if name == "mooccube->canvas":
        if not (SHARED / CANVAS).is_dir() or not (SHARED / MOOCCUBE).is_dir():
            raise SystemExit(f"{name}: {SHARED / CANVAS} or {SHARED / MOOCCUBE} is missing")
        return canvas_pair(load_canvas_case(SHARED))
    source_name, _, target_name = name.partition("->")
    if not DATA.is_dir():
        raise SystemExit(f"{name}: {DATA} is missing (the amazon-disencdr copy of ../shared/data)")
    source, target, links = load_amazon_pair(DATA, source_name, target_name)
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)

    def amazon_data(s: Split) -> TransferData:
        return TransferData.from_domains(target, s, [source], link_items=None, link_users=[links], seed=SEED)

    return matrix_pair(name, split, amazon_data, item_linked=False, source_profile=source_profile)


def select_family(name: str, grid: list[Any], point: Point) -> Selection | str:
    """The family's configurations through the library's selection loop: fitted with validation of
    the selection users only, chosen on them, the kept one scored on the confirmation users."""
    try:
        chosen = select(
            grid, point.validation, metric="ndcg@10", confirm=CONFIRM, seed=SEED,
            skip=(TransferNotPossibleError,),
        )  # fmt: skip
    except NoTrialSucceededError as error:
        return error.trials[0].reason.split(". Strategies possible")[0]
    if not np.array_equal(chosen.users, point.selection_users):  # pragma: no cover - one cut, one seed
        raise RuntimeError(f"{name}: select cut the validation users differently from the fitting part")
    _log(
        f"    {name:26s} {len(grid)} configs, chosen on A: {describe(chosen.candidate)}  valid A "
        f"{chosen.score:.4f} B {chosen.confirmation_score:.4f} ({chosen.seconds:.1f}s)"
    )
    return chosen


def strategy_name(candidate: Any, kind: str) -> str:
    """The strategy of a row: a transfer strategy's name, ``none`` for target-only, and for Canvas's
    models ``category_prior`` (the discipline prior learned on the source) when they transfer."""
    if isinstance(candidate, TransferStrategy):
        return candidate.name
    return "category_prior" if kind == "transfer" else "none"


def run_point(pair: Pair, fraction: float) -> tuple[list[dict], dict]:
    started = time.perf_counter()
    point = pair.point(fraction)
    _log(f"  {pair.name} f={fraction:g}: kept {point.kept_training:,} of {pair.n_training:,} training rows")
    searched: dict[str, Selection] = {}
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, (kind, grid) in pair.families.items():
        assert len(grid) <= BUDGET, f"family {name} has {len(grid)} configurations, above the budget"
        outcome = select_family(name, grid, point)
        if isinstance(outcome, str):
            skipped[name] = outcome
            _log(f"    {name:26s} skipped: {outcome}")
        else:
            searched[name], kinds[name] = outcome, kind

    def best_of(kind: str) -> str:
        return max((n for n in searched if kinds[n] == kind), key=lambda n: searched[n].score)

    target, transfer = best_of("target"), best_of("transfer")
    guard = Comparison.of_values(
        "ndcg@10", searched[transfer].confirmation_values, searched[target].confirmation_values,
        n_resamples=2000, seed=SEED,
    )  # fmt: skip
    kept = transfer if guard.significant else target

    tested = {name: point.test(s.model) for name, s in searched.items()}
    reference = tested[target][0]
    rows = []
    for name, s in searched.items():
        ndcg, recall = tested[name]
        low, high = (0.0, 0.0) if name == target else ci(ndcg, reference)
        rows.append(
            {
                "pair": pair.name,
                "fraction": fraction,
                "strategy": strategy_name(s.candidate, kinds[name]),
                "model": describe(s.candidate),
                "ndcg@10": float(ndcg.mean()),
                "recall@10": float(recall.mean()),
                "best_target_only": describe(searched[target].candidate),
                "best_target_only_ndcg@10": float(reference.mean()),
                "gain_ci_low": low,
                "gain_ci_high": high,
                "kept": name == kept,
                "train_seconds": round(s.best.seconds, 3),
            }
        )
    standard = {}
    if pair.extra_baselines:  # the transfer against the target-only families only
        plain = max(
            (n for n in searched if kinds[n] == "target" and n not in pair.extra_baselines),
            key=lambda n: searched[n].score,
        )
        on_b = Comparison.of_values(
            "ndcg@10", searched[transfer].confirmation_values, searched[plain].confirmation_values,
            n_resamples=2000, seed=SEED,
        )  # fmt: skip
        standard = {
            "without": list(pair.extra_baselines),
            "best_target_only_family": plain,
            "best_target_only_ndcg@10": float(tested[plain][0].mean()),
            "guard_valid_b_ci": [on_b.ci_low, on_b.ci_high],
            "transfer_gain_ci": list(ci(tested[transfer][0], tested[plain][0])),
        }
        _log(
            f"    without {', '.join(pair.extra_baselines)}: best target-only {plain} "
            f"{standard['best_target_only_ndcg@10']:.4f}; transfer on B [{on_b.ci_low:+.4f}, "
            f"{on_b.ci_high:+.4f}], test [{standard['transfer_gain_ci'][0]:+.4f}, "
            f"{standard['transfer_gain_ci'][1]:+.4f}]"
        )
    kept_ndcg = tested[kept][0]
    kept_low, kept_high = (0.0, 0.0) if kept == target else ci(kept_ndcg, reference)
    relative = float(kept_ndcg.mean() / reference.mean() - 1) if reference.mean() > 0 else None
    out = {
        "pair": pair.name,
        "fraction": fraction,
        "kept_training_interactions": point.kept_training,
        "valid_users_a": len(point.selection_users),
        "valid_users_b": len(point.confirmation_users),
        "test_users": len(reference),
        "best_target_only_family": target,
        "best_target_only": describe(searched[target].candidate),
        "best_target_only_ndcg@10": float(reference.mean()),
        "best_transfer_family": transfer,
        "best_transfer": describe(searched[transfer].candidate),
        "best_transfer_ndcg@10": float(tested[transfer][0].mean()),
        "guard_valid_b_gain": guard.difference,
        "guard_valid_b_ci": [guard.ci_low, guard.ci_high],
        "kept": "transfer" if kept == transfer else "target-only",
        "kept_family": kept,
        "kept_ndcg@10": float(kept_ndcg.mean()),
        "kept_relative_gain": relative,
        "kept_gain_ci": [kept_low, kept_high],
        "never_significantly_worse": kept_high >= 0,
        "skipped": skipped,
        **({"against_standard_target_only": standard} if standard else {}),
        "selection": {
            name: {k: v for k, v in s.to_dict().items() if k != "trials"} for name, s in searched.items()
        },
        "search_seconds": {name: round(s.seconds, 2) for name, s in searched.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    _log(
        f"  => {pair.name} f={fraction:g}: best target-only {target} {reference.mean():.4f}; best "
        f"transfer {transfer} {out['best_transfer_ndcg@10']:.4f}; guard on B "
        f"{guard.difference:+.4f} [{guard.ci_low:+.4f}, {guard.ci_high:+.4f}] -> kept {kept} "
        f"{kept_ndcg.mean():.4f} ({100 * (relative or 0):+.1f}%, test [{kept_low:+.4f}, {kept_high:+.4f}]) "
        f"[{out['seconds']:.0f}s]"
    )
    return rows, out


def main(argv: list[str] | None = None) -> None:
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(variable, "1")  # too late for BLAS already loaded: also set it in the shell
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default=None, help=f"comma-separated, from {PAIRS} (default: all)")
    parser.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS))
    parser.add_argument(
        "--quick", action="store_true", help="fractions 0.05 and 1 only, on movielens-cdr unless --pairs"
    )
    parser.add_argument(
        "--source-profile",
        action="store_true",
        help="add the source_profile kernel-ridge family on user-linked pairs (slow on sport->cloth)",
    )
    parser.add_argument("--name", default="sparsity", help="results file name (benchmarks/results/NAME.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    chosen = args.pairs or ("movielens-cdr" if args.quick else ",".join(PAIRS))
    pairs = [p.strip() for p in chosen.split(",") if p.strip()]
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown:
        parser.error(f"unknown pairs {unknown}; choose from {list(PAIRS)}")
    fractions = parse_fractions("0.05,1" if args.quick else args.fractions)
    started = time.perf_counter()
    rows, points, pair_seconds, records = [], [], {}, {}
    for name in pairs:
        pair_started = time.perf_counter()
        pair = load_pair(name, args.source_profile)
        _log(f"{name}: {pair.n_users:,} users x {pair.n_items:,} items")
        if pair.record:
            records[name] = pair.record
        for fraction in fractions:
            new_rows, point = run_point(pair, fraction)
            rows += new_rows
            points.append(point)
            pair_seconds[name] = round(time.perf_counter() - pair_started, 1)
            write(args.name, rows, points, fractions, pair_seconds, records, started, complete=False)
    assert all(tuple(row) == ROW_KEYS for row in rows)
    summary = [
        {
            "pair": p["pair"],
            "fraction": p["fraction"],
            "best target-only": p["best_target_only_family"],
            "ndcg@10": p["best_target_only_ndcg@10"],
            "best transfer": p["best_transfer_family"],
            "transfer ndcg@10": p["best_transfer_ndcg@10"],
            "guard B low": p["guard_valid_b_ci"][0],
            "kept": p["kept_family"],
            "kept ndcg@10": p["kept_ndcg@10"],
            "gain %": 100 * (p["kept_relative_gain"] or 0.0),
            "gain ci": f"[{p['kept_gain_ci'][0]:+.4f}, {p['kept_gain_ci'][1]:+.4f}]",
        }
        for p in points
    ]
    print_table("Sparse target: best target-only vs the guard's kept model (test NDCG@10)", summary)
    path = write(args.name, rows, points, fractions, pair_seconds, records, started, complete=True)
    _log(f"wrote {path}")


def write(
    name: str,
    rows: list[dict],
    points: list[dict],
    fractions: tuple[float, ...],
    pair_seconds: dict[str, float],
    records: dict[str, Any],
    started: float,
    *,
    complete: bool,
) -> Path:
    """Write the results so far (after every point, so an interrupted run keeps what it measured)."""
    return write_results(
        name,
        rows,
        complete=complete,
        protocol=__doc__.split("\n\n")[1:4],
        budget=BUDGET,
        seed=SEED,
        fractions=list(fractions),
        total_seconds=round(time.perf_counter() - started, 1),
        pair_seconds=pair_seconds,
        pairs=records,
        points=points,
        note="timings taken on a shared machine (other jobs running): not valid speed figures",
    )


if __name__ == "__main__":
    main()
