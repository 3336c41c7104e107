"""The committed ``benchmarks/results/diversity.json`` keeps the shape issue 22 asks for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "diversity.json"
ROW_KEYS = {"case", "reranker", "strength", "ndcg@10", "ild@10", "coverage@10", "gini@10", "novelty@10"}


@pytest.fixture(scope="module")
def results() -> dict:
    if not RESULTS.is_file():
        pytest.skip(f"{RESULTS} not written yet (run benchmarks/diversity.py)")
    return json.loads(RESULTS.read_text())


def test_rows_have_exactly_the_issue_keys_and_the_machine(results):
    assert results["rows"], "no rows"
    assert all(set(row) == ROW_KEYS for row in results["rows"])
    assert {"cpu", "cores", "load_average"} <= set(results["machine"])
    assert all(0.0 <= row["strength"] <= 1.0 for row in results["rows"])


def test_strength_zero_is_the_same_plain_lists_for_every_reranker(results):
    plain: dict[str, set[tuple[float, ...]]] = {}
    for row in results["rows"]:
        if row["strength"] == 0.0:
            values = tuple(round(row[key], 12) for key in sorted(ROW_KEYS - {"case", "reranker", "strength"}))
            plain.setdefault(row["case"], set()).add(values)
    assert plain and all(len(values) == 1 for values in plain.values()), plain


def test_details_follow_rows_and_mark_one_chosen_point_per_reranker(results):
    details = results["details"]
    assert len(details) == len(results["rows"])
    for row, detail in zip(results["rows"], details, strict=True):
        assert {key: detail[key] for key in ROW_KEYS} == row
    chosen: dict[tuple[str, str], int] = {}
    for detail in details:
        chosen[(detail["case"], detail["reranker"])] = chosen.get(
            (detail["case"], detail["reranker"]), 0
        ) + int(detail["chosen"])
    assert set(chosen.values()) == {1}, chosen
