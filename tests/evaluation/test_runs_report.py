"""Run folders, report.html (also rendered in headless Chromium) and the CLI."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.evaluation import evaluate_model, load_run, random_split, write_run
from crossrec.evaluation.diversity import frontier_record
from crossrec.rerank import MMR
from tests.conftest import make_domain
from tests.evaluation.conftest import oracle_scorer

CURVES = {"good": [{"epoch": e, "loss": 1 / (e + 1), "valid_ndcg@10": 0.1 * e} for e in range(4)]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_split) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    categories = np.arange(small_split.n_items) % 3
    linked = {"linked": np.arange(small_split.n_users) % 2 == 0}
    good = evaluate_model(
        oracle_scorer(small_split, 0.2, 1),
        small_split,
        ks=[5, 10],
        item_categories=categories,
        user_groups=linked,
    )
    noisy = evaluate_model(
        oracle_scorer(small_split, 3.0, 2),
        small_split,
        ks=[5, 10],
        item_categories=categories,
        user_groups=linked,
    )
    a = write_run(
        root / "A",
        {"good": good},
        split=small_split,
        learning_curves=CURVES,
        config={"model": "good"},
        item_categories=categories,
        user_groups=linked,
        data_manifest_hash="abc123",
        n_resamples=300,
    )
    b = write_run(root / "B", {"noisy": noisy}, split=small_split, config={"model": "noisy"}, n_resamples=300)
    both = write_run(
        root / "both",
        {"good": good, "noisy": noisy},
        split=small_split,
        learning_curves=CURVES,
        n_resamples=300,
        timings={"train_seconds": 1.5},
    )
    frontier = frontier_record(
        oracle_scorer(small_split, 0.2, 1),
        small_split,
        MMR(0.3, item_categories=categories, candidates=30),
        model="transfer",
        item_categories=categories,
        list_length=10,
    )
    guarded = write_run(
        root / "guarded",
        {"target_only": noisy, "transfer": good},
        split=small_split,
        baseline="target_only",
        learning_curves={"transfer": CURVES["good"]},
        n_resamples=300,
        item_categories=categories,
        extra={
            "guard": GUARD,
            "kept": "transfer",
            "dataset": {"target": {"name": "toy", "users": 120}},
            "frontier": frontier,
        },
    )
    curved = write_run(
        root / "curved",
        {"target_only": noisy, "transfer": good},
        split=small_split,
        baseline="target_only",
        n_resamples=300,
        extra={"guard": GUARD, "kept": "transfer", "curve": CURVE},
    )
    return {"A": a, "B": b, "both": both, "guarded": guarded, "curved": curved, "root": root}


def _point(fraction: float, best: float, kept: float, low: float, high: float) -> dict:
    return {
        "fraction": fraction, "metric": "ndcg@10", "train_interactions": int(1000 * fraction),
        "best_target_only": "target_only", "best_target_only_ndcg@10": best,
        "best_target_only_ndcg@10_ci": [best - 0.01, best + 0.01], "kept": "transfer",
        "kept_ndcg@10": kept, "kept_ndcg@10_ci": [kept - 0.012, kept + 0.012],
        "gain_ci_low": low, "gain_ci_high": high,
    }  # fmt: skip


CURVE = [
    _point(0.05, 0.05, 0.09, 0.02, 0.06),
    _point(0.25, 0.12, 0.15, 0.01, 0.05),
    _point(1.0, 0.3, 0.31, -0.01, 0.03),
]


GUARD = {
    "strategy": "joint:ease",
    "kept": "transfer",
    "metric": "ndcg@10",
    "transfer_valid": 0.31,
    "baseline_valid": 0.25,
    "difference": 0.06,
    "ci_low": 0.02,
    "ci_high": 0.1,
    "n_users": 118,
}


def test_run_folder_layout_and_results(runs, small_split) -> None:
    run = runs["both"]
    for path in (
        "results.json",
        "report.html",
        "split/split.json",
        "split/test.parquet",
        "per_user/good.parquet",
        "recommendations/noisy.npz",
    ):
        assert (run / path).exists(), path
    results = json.loads((run / "results.json").read_text())
    assert results["split"]["fingerprint"] == small_split.fingerprint()
    assert {
        "config",
        "versions",
        "seeds",
        "timings",
        "learning_curves",
        "comparison",
        "data_manifest_hash",
    } <= set(results)
    assert results["timings"]["train_seconds"] == 1.5 and "evaluation_seconds" in results["timings"]
    good = results["models"]["good"]
    low, high = good["intervals"]["ndcg@10"]
    assert low <= good["summary"]["ndcg@10"] <= high
    assert any(row["metric"] == "ndcg@10" and row["significant"] for row in results["comparison"])
    loaded = load_run(run)
    assert loaded.split.fingerprint() == small_split.fingerprint()
    assert loaded.evaluations["good"].per_user["ndcg@10"].mean() == pytest.approx(good["summary"]["ndcg@10"])
    assert not list(run.parent.glob(".*staging*"))


def test_report_html_has_table_and_embedded_charts(runs) -> None:
    page = (runs["both"] / "report.html").read_text()
    assert '<table id="metrics-accuracy">' in page and '<table id="comparison">' in page
    assert '<table id="metrics-beyond-10">' in page  # beyond-accuracy metrics apart, one table per K
    assert page.count("data:image/png;base64,") == 4  # metrics, curves, activity, coverage
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "Learning curves" in page and "by user activity" in page


def test_report_draws_the_frontier_and_compares_diversity_with_the_target_only_model(runs) -> None:
    page = (runs["guarded"] / "report.html").read_text()
    frontier = page[page.index('<section id="frontier"') :]
    frontier = frontier[: frontier.index("</section>")]
    assert frontier.count("data:image/png;base64,") == 1 and frontier.count("<tr>") == 12  # head + 11
    results = json.loads((runs["guarded"] / "results.json").read_text())
    rows = results["extra"]["frontier"]["rows"]
    assert rows[0]["ndcg@10"] >= rows[-1]["ndcg@10"] and rows[0]["ild@10"] < rows[-1]["ild@10"]
    table = page[page.index('<section id="transfer-diversity"') :]
    table = table[: table.index("</section>")]
    summary = {name: results["models"][name]["summary"] for name in ("transfer", "target_only")}
    difference = summary["transfer"]["coverage@10"] - summary["target_only"]["coverage@10"]
    assert "<td>coverage@10</td>" in table and f"<td>{difference:.4f}</td>" in table
    assert "ild_category@5" in table and "novelty@10" in table and "gini@10" in table
    assert 'id="frontier"' not in (runs["both"] / "report.html").read_text()  # no frontier recorded
    assert 'id="transfer-diversity"' not in (runs["both"] / "report.html").read_text()  # no transfer


def test_write_run_refuses_an_evaluation_from_another_split(tmp_path, small_split) -> None:
    domain = make_domain(n_users=120, n_items=60, density=0.15, seed=3)
    other = random_split(domain.interactions, domain.n_users, domain.n_items, seed=99)
    evaluation = evaluate_model(oracle_scorer(other, 0.3, 1), other, ks=[5])
    with pytest.raises(ValueError, match="not made on this split"):
        write_run(tmp_path / "bad", {"m": evaluation}, split=small_split)
    with pytest.raises(ValueError, match="model names"):
        write_run(tmp_path / "bad", {"a/b": evaluation}, split=other)
    assert list(tmp_path.iterdir()) == []  # nothing written


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(runs, tmp_path) -> None:
    page = runs["both"] / "report.html"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    script = (
        "<script>document.title=[...document.images]"
        ".filter(i=>i.complete&&i.naturalWidth>100).length+' images'</script>"
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="metrics-accuracy">' in dom.stdout
    assert "<title>4 images</title>" in dom.stdout  # every chart decoded to a real bitmap
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000


def test_cli_evaluate_recomputes_and_rewrites(runs) -> None:
    run = runs["A"]
    before = json.loads((run / "results.json").read_text())
    (run / "report.html").unlink()
    result = CliRunner().invoke(app, ["evaluate", str(run), "--metrics", "ndcg,recall", "-k", "5"])
    assert result.exit_code == 0, result.output
    assert "ndcg@5" in result.output and "good" in result.output
    after = json.loads((run / "results.json").read_text())
    assert after["models"]["good"]["summary"]["ndcg@5"] == pytest.approx(
        before["models"]["good"]["summary"]["ndcg@5"]
    )
    assert "ndcg@10" not in after["models"]["good"]["summary"]
    assert "ild_category@5" in after["models"]["good"]["summary"]  # side data was saved and reused
    assert after["config"] == {"model": "good"} and after["learning_curves"] == before["learning_curves"]
    assert (run / "report.html").is_file()
    bad = CliRunner().invoke(app, ["evaluate", str(run), "-k", "50"])
    assert bad.exit_code == 2 and "fewer than the largest K" in bad.output
    missing = CliRunner().invoke(app, ["evaluate", str(runs["root"] / "nope")])
    assert missing.exit_code == 2 and "not a crossrec run folder" in missing.output


def test_cli_compare_runs(runs) -> None:
    out = runs["root"] / "cmp"
    result = CliRunner().invoke(
        app, ["compare", str(runs["A"]), str(runs["B"]), "-o", str(out), "--resamples", "300"]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"good", "noisy"}
    assert results["comparison"] and "paired differences" in result.output
    assert '<table id="comparison">' in (out / "report.html").read_text()


def test_cli_compare_refuses_runs_on_different_splits(runs, tmp_path) -> None:
    domain = make_domain(n_users=120, n_items=60, density=0.15, seed=3)
    other = random_split(domain.interactions, domain.n_users, domain.n_items, seed=123)
    evaluation = evaluate_model(oracle_scorer(other, 0.3, 1), other, ks=[5, 10])
    elsewhere = write_run(tmp_path / "C", {"other": evaluation}, split=other, n_resamples=100)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(app, ["compare", str(runs["A"]), str(elsewhere), "-o", str(out)])
    assert result.exit_code == 2
    assert "different splits" in result.output
    assert not out.exists()


def test_report_says_what_was_kept_and_pairs_each_model_with_its_baseline(runs) -> None:
    page = (runs["guarded"] / "report.html").read_text()
    decision = page[page.index('<section id="decision"') : page.index("</section>")]
    assert page.index('id="decision"') < page.index("<h2>Accuracy</h2>")  # the first section
    assert "kept the transfer" in decision and "[95% CI +0.0200, +0.1000]" in decision
    assert "over 118 validation users" in decision and "validation" in decision
    results = json.loads((runs["guarded"] / "results.json").read_text())
    gains = results["activity_intervals"]["gains"]["transfer - target_only"]
    assert all(low <= mean <= high for mean, low, high in gains.values())
    # the paired table: only transfer vs its baseline, accuracy metrics; every row in results.json
    both = (runs["both"] / "report.html").read_text()
    assert "rows shown" in both


def test_report_draws_the_data_efficiency_curve_with_its_table(runs) -> None:
    page = (runs["curved"] / "report.html").read_text()
    section = page[page.index('<section id="efficiency-curve">') :]
    section = section[: section.index("</section>")]
    table = section[section.index('<table id="efficiency-curve-table">') : section.index("</table>")]
    assert table.count("<tr>") == 1 + len(CURVE)  # the header and one row per fraction
    assert "5%" in table and "25%" in table and "100%" in table
    assert "[0.0400, 0.0600]" in table and "[0.0780, 0.1020]" in table
    assert "[+0.0200, +0.0600]" in table and "[-0.0100, +0.0300]" in table
    charts = re.findall(r'<img class="chart" alt="([^"]*)" data-axes="([^"]*)"', section)
    assert len(charts) == 1, "one curve chart in the section"
    axes = html.unescape(charts[0][1])
    assert "share of each target user's training interactions kept" in axes and "test ndcg@10" in axes
    # runs without a curve have no such section
    assert 'id="efficiency-curve"' not in (runs["guarded"] / "report.html").read_text()


def test_the_curve_chart_is_drawn_from_the_recorded_intervals() -> None:
    pytest.importorskip("matplotlib")
    from crossrec.evaluation.report import _efficiency_curve

    figure = _efficiency_curve(CURVE)
    axis = figure.axes[0]
    assert axis.get_xscale() == "log" and axis.get_ylabel().startswith("test ndcg@10")
    lines = [line for line in axis.get_lines() if len(line.get_xdata()) == len(CURVE)]
    means = sorted(tuple(np.round(line.get_ydata(), 4)) for line in lines if line.get_marker() in ("o", "s"))
    assert means == [(0.05, 0.12, 0.3), (0.09, 0.15, 0.31)]  # best target-only and kept, in order
    # the error bars span each recorded 95% interval
    spans = sorted(
        round(float(np.ptp(segment[:, 1])), 4)
        for collection in axis.collections
        for segment in collection.get_segments()
    )
    assert spans == [0.02] * 3 + [0.024] * 3
    assert _efficiency_curve([]) is None


BROWSER_PROBE = """<script>
window.addEventListener('load', () => {
  const charts = [...document.querySelectorAll('img.chart')];
  const labelled = charts.filter(i => /x: [^-,;]/.test(i.dataset.axes) && /y: [^-,;]/.test(i.dataset.axes));
  document.title = JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    decision: !!document.querySelector('#decision h2'),
    decisionText: (document.querySelector('#decision') || {}).innerText || '',
    curveRows: document.querySelectorAll('#efficiency-curve-table tbody tr').length,
    curveCharts: [...document.querySelectorAll('#efficiency-curve img.chart')]
      .filter(i => i.complete && i.naturalWidth > 100 && /x: [^-,;]/.test(i.dataset.axes)).length,
    charts: charts.length,
    decoded: charts.filter(i => i.complete && i.naturalWidth > 100).length,
    labelled: labelled.length,
    frontier: [...document.querySelectorAll('#frontier img.chart')].map(i => ({
      decoded: i.complete && i.naturalWidth > 100, axes: i.dataset.axes,
      visible: i.getBoundingClientRect().width > 300})),
    frontierRows: document.querySelectorAll('#frontier-table tbody tr').length,
    transferDiversity: ((document.querySelector('#transfer-diversity') || {}).innerText || ''),
  });
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("run", ["guarded", "curved"])
def test_report_fits_1280_px_with_the_guard_first_and_labelled_charts(runs, tmp_path, run) -> None:
    page = runs[run] / "report.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--window-size=1280,1000",
             f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", BROWSER_PROBE + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, *flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r"<title>(\{.*?\})</title>", dom.stdout)
    assert found, "the probe did not run"
    seen = json.loads(html.unescape(found.group(1)))
    assert seen["scrollWidth"] <= 1280, f"the report scrolls sideways at 1280 px: {seen['scrollWidth']} px"
    assert seen["decision"] and "kept the transfer" in seen["decisionText"]
    assert seen["charts"] >= 3 and seen["decoded"] == seen["charts"]
    assert seen["labelled"] == seen["charts"], "every chart names its x and y axes"
    if run == "guarded":
        # the accuracy-diversity frontier: one decoded chart (NDCG vs ILD and coverage), a row per strength
        (chart,) = seen["frontier"]
        assert chart["decoded"] and chart["visible"]
        assert "ild@10" in chart["axes"] and "coverage@10" in chart["axes"] and "ndcg@10" in chart["axes"]
        assert seen["frontierRows"] == 11
        assert "Did transfer change diversity?" in seen["transferDiversity"]
        assert "coverage@10" in seen["transferDiversity"] and "ild_category@10" in seen["transferDiversity"]
    if run == "curved":  # the curve section rendered: its table and its decoded, labelled chart
        assert seen["curveRows"] == len(CURVE) and seen["curveCharts"] == 1
    else:
        assert seen["curveRows"] == 0 and seen["curveCharts"] == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, *flags, f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000
