"""The frontier chart is a pure function of benchmark rows."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from crossrec.rerank import plot_frontier


def rows():
    out = []
    for method, slope in (("mmr", 0.02), ("popularity", 0.05)):
        for strength in (0.0, 0.5, 1.0):
            ndcg = 0.3 - slope * strength
            out.append(
                {
                    "reranker": method,
                    "strength": strength,
                    "ndcg@10": ndcg,
                    "ndcg@10_low": ndcg - 0.01,
                    "ndcg@10_high": ndcg + 0.01,
                    "ild@10": 0.6 + 0.2 * strength,
                    "coverage@10": 0.3 + 0.3 * strength,
                    "chosen": strength == 0.5,
                }
            )
    return out


def test_frontier_has_a_panel_per_diversity_metric_and_a_line_per_reranker(tmp_path):
    figure = plot_frontier(rows(), title="toy")
    axes = figure.get_axes()
    assert [axis.get_xlabel() for axis in axes] == ["ild@10", "coverage@10"]
    assert all(axis.get_ylabel() == "ndcg@10" for axis in axes)
    labels = [line.get_label() for line in axes[0].get_lines() if not line.get_label().startswith("_")]
    assert labels == ["mmr", "popularity"]
    x, y = axes[1].get_lines()[0].get_data()
    assert list(x) == pytest.approx([0.3, 0.45, 0.6]) and list(y) == pytest.approx([0.3, 0.29, 0.28])
    figure.savefig(tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").stat().st_size > 1000


def test_frontier_says_which_columns_are_missing():
    with pytest.raises(ValueError, match="lack"):
        plot_frontier([{"reranker": "mmr", "strength": 0.0, "ndcg@10": 0.3}])
    with pytest.raises(ValueError, match="at least one row"):
        plot_frontier([])
