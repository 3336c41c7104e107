"""Terminal tables fit 100 columns: few columns by default, model names never cut, ``--wide`` for all."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from crossrec.cli._tables import WIDTH, choose_columns, metric_columns, metrics_table, print_table, run_labels

RESULTS = {
    "metrics": ["recall", "ndcg", "hit", "precision", "mrr"],
    "ks": [10, 20],
    "models": {
        name: {
            "summary": {
                **{
                    f"{m}@{k}": 0.1234
                    for m in ("recall", "ndcg", "hit", "precision", "mrr")
                    for k in (10, 20)
                },
                **{f"{m}@{k}": 0.5 for m in ("coverage", "gini", "novelty", "tail") for k in (10, 20)},
            }
        }
        for name in ("popularity", "bpr_mf+warm_start", "a_rather_long_model_name+joint:ease")
    },
}


def _render(table, wide: bool = False) -> str:
    buffer = StringIO()
    print_table(table, wide=wide, console=Console(file=buffer, width=WIDTH))
    return buffer.getvalue()


def test_default_columns_fit_100_columns_and_keep_names_whole() -> None:
    default, every = metric_columns(RESULTS)
    assert default[:5] == ["recall@10", "ndcg@10", "hit@10", "precision@10", "mrr@10"]
    assert len(every) == 18 and every[:10] == [f"{m}@{k}" for m in RESULTS["metrics"] for k in (10, 20)]
    rows = {name: model["summary"] for name, model in RESULTS["models"].items()}
    shown = choose_columns(list(rows), default, fixed=["train s"])
    text = _render(metrics_table("t", rows, shown, extra={"train s": dict.fromkeys(rows, "1.0")}))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert "…" not in text
    assert all(name in text for name in rows)


def test_wide_shows_every_column_uncut() -> None:
    _, every = metric_columns(RESULTS)
    rows = {name: model["summary"] for name, model in RESULTS["models"].items()}
    text = _render(metrics_table("t", rows, every), wide=True)
    assert "…" not in text
    assert all(column in text for column in every)
    assert max(len(line) for line in text.splitlines()) > WIDTH


def test_run_labels_are_short_and_ordered() -> None:
    labels = run_labels([f"runs/2026-{i}-experiment" for i in range(28)])
    assert list(labels.values())[:3] == ["A", "B", "C"]
    assert list(labels.values())[26:] == ["AA", "AB"]
