"""benchmarks/sparsity.py: its selection goes through crossrec.selection.select with a held-out
half, the Canvas case links its source by content only, and the committed results keep the shape
issue 15 asks for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from crossrec.models import ItemKNN, Popularity
from crossrec.splitting import random_split
from crossrec.transfer import TargetOnly, TransferData
from tests.conftest import make_domain

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RESULTS = BENCHMARKS / "results" / "sparsity.json"
ROW_KEYS = [
    "pair", "fraction", "strategy", "model", "ndcg@10", "recall@10", "best_target_only",
    "best_target_only_ndcg@10", "gain_ci_low", "gain_ci_high", "kept", "train_seconds",
]  # fmt: skip


@pytest.fixture(scope="module")
def sparsity():
    sys.path.insert(0, str(BENCHMARKS))
    import sparsity as module

    return module


def test_candidates_are_fitted_and_chosen_on_half_a_and_confirmed_on_half_b(sparsity) -> None:
    target = make_domain("target", n_users=80, n_items=30, density=0.25, seed=1)
    source = make_domain("source", n_users=60, n_items=30, density=0.25, seed=2)
    split = random_split(target.interactions, target.n_users, target.n_items, seed=3)
    fitted_on: list[np.ndarray] = []

    def make_data(s):
        fitted_on.append(np.unique(s.valid.user))
        return TransferData.from_domains(target, s, [source], link_items="ids", link_users=None)

    pair = sparsity.matrix_pair("toy", split, make_data, item_linked=True, source_profile=False)
    point = pair.point(0.5)
    scoring_users, fitting_users = fitted_on  # the scoring data first, then the fitting data
    assert np.array_equal(fitting_users, point.selection_users)
    assert len(np.intersect1d(point.selection_users, point.confirmation_users)) == 0
    assert np.array_equal(np.union1d(point.selection_users, point.confirmation_users), scoring_users)
    grid = [TargetOnly(Popularity()), TargetOnly(ItemKNN(k=5)), TargetOnly(ItemKNN(k=20))]
    chosen = sparsity.select_family("toy", grid, point)
    assert np.array_equal(chosen.users, point.selection_users)
    assert np.array_equal(chosen.confirmation_users, point.confirmation_users)
    assert len(chosen.confirmation_values) == len(point.confirmation_users)
    assert chosen.score == max(trial.score for trial in chosen.trials)  # chosen on half A


def test_course_text_is_linked_to_the_best_matching_discipline(sparsity) -> None:
    from _canvas import discipline_links

    names = ["Computer Science", "Humanities", "Business and Management"]
    texts = [
        "Computer programming in C++: a computer science course",
        "History and philosophy: the humanities",
        "Management of a small business",
        "Quantum fields",  # shares no word with any name
        "Computer networks",
    ]
    links = discipline_links(texts, names)
    assert links.argmax(axis=1)[[0, 1, 2, 4]].tolist() == [0, 1, 2, 0]
    assert links[3].sum() == 0 and (links.sum(axis=1) <= 1).all()


@pytest.mark.realdata
def test_the_canvas_case_shares_no_ids_with_its_source(sparsity, shared_data) -> None:
    from _canvas import load_canvas_case

    if not (shared_data / "edu-xuetangx-mooccube").is_dir():
        pytest.skip("edu-xuetangx-mooccube is not in the shared data")
    case = load_canvas_case(shared_data)
    assert case.head.n_users == case.valid.n_users == case.test.n_users == 6717
    assert len(case.head) + len(case.valid) == 45735 and len(case.test) == 11048
    assert case.disciplines.shape == (238,) and len(case.discipline_names) == 10
    assert case.source_categories.shape == (case.source.n_items, 10)
    assert 0 < case.mapped_source_courses < case.source.n_items  # some courses match no discipline


@pytest.fixture(scope="module")
def results() -> dict:
    if not RESULTS.is_file():
        pytest.skip(f"{RESULTS} not written yet (run benchmarks/sparsity.py)")
    return json.loads(RESULTS.read_text())


def test_results_rows_have_the_issue_keys_and_one_kept_model_per_point(results) -> None:
    assert results["rows"] and all(list(row) == ROW_KEYS for row in results["rows"])
    assert {"cpu", "cores", "load_average"} <= set(results["machine"])
    points = {(p["pair"], p["fraction"]): p for p in results["points"]}
    for key, point in points.items():
        rows = [r for r in results["rows"] if (r["pair"], r["fraction"]) == key]
        kept = [r for r in rows if r["kept"]]
        assert len(kept) == 1, key
        assert kept[0]["ndcg@10"] == pytest.approx(point["kept_ndcg@10"])
        assert point["valid_users_a"] > 0 and point["valid_users_b"] > 0  # the guard's held-out half
        low, high = point["guard_valid_b_ci"]
        assert (point["kept"] == "transfer") == (low > 0)  # kept only when B's interval is above zero
        best = [r for r in rows if r["gain_ci_low"] == r["gain_ci_high"] == 0.0]
        assert any(r["ndcg@10"] == pytest.approx(point["best_target_only_ndcg@10"]) for r in best)
