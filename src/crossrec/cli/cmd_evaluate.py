"""``crossrec evaluate RUN_DIR`` and ``crossrec compare RUN_A RUN_B ... [-o OUT_DIR]``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app
from crossrec.cli._tables import (
    choose_columns,
    hidden_caption,
    metric_columns,
    metrics_table,
    print_table,
    run_labels,
)

_WIDE = typer.Option("--wide", help="Show every metric column (the table may exceed 100 columns).")


def _summary_table(
    title: str,
    models: dict[str, dict],
    columns: list[str],
    every: list[str] | None = None,
    *,
    wide: bool = False,
    names: dict[str, str] | None = None,
) -> Table:
    """Metric table of ``models`` (``results.json`` entries): ``columns`` by default, trimmed to fit
    100 columns, or every column with ``wide``; ``names`` relabels rows (short run labels)."""
    every = every or columns
    rows = {(names or {}).get(name, name): model["summary"] for name, model in models.items()}
    shown = every if wide else choose_columns(list(rows), columns)
    return metrics_table(title, rows, shown, caption=None if wide else hidden_caption(shown, every))


def _main_columns(results: dict, asked: list[str] | None = None) -> tuple[list[str], list[str]]:
    """``(default, every)`` columns; metrics the user asked for (``--metrics``) are the default."""
    default, every = metric_columns(results)
    if asked:
        wanted = [c for c in every if c.partition("@")[0] in asked or c in asked]
        return wanted or default, every
    return default, every


def _fail(error: Exception) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {error}")
    raise typer.Exit(code=2)


@app.command()
def evaluate(
    run_dir: Annotated[
        Path, typer.Argument(help="Run folder written by crossrec (results.json, split/, ...).")
    ],
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", help="Comma-separated accuracy metrics (default: those of the run)."),
    ] = None,
    k: Annotated[list[int] | None, typer.Option("--k", "-k", help="Cut-off; repeat for several.")] = None,
    resamples: Annotated[int | None, typer.Option(help="Bootstrap resamples for intervals.")] = None,
    ablate_modalities: Annotated[
        bool,
        typer.Option(
            "--ablate-modalities",
            help="Re-evaluate --model with each modality masked; add the contributions to the report.",
        ),
    ] = False,
    model: Annotated[
        Path | None, typer.Option(help="Saved multi-modal model folder (needed by --ablate-modalities).")
    ] = None,
    wide: Annotated[bool, _WIDE] = False,
) -> None:
    """Recompute a run's metrics from its saved split and top-K lists; rewrite results and report."""
    from crossrec.evaluation.runs import reevaluate_run

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else None
    if ablate_modalities:
        _record_ablation(run_dir, model)
    try:
        run = reevaluate_run(run_dir, metrics=names, ks=k or None, n_resamples=resamples)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
        return
    columns, every = _main_columns(run.results, names)
    table = _summary_table(
        f"{run_dir} ({run.results['part']})", run.results["models"], columns, every, wide=wide
    )
    print_table(table, wide=wide)
    typer.echo(f"wrote {run_dir / 'results.json'} and {run_dir / 'report.html'}")


def _record_ablation(run_dir: Path, model_dir: Path | None) -> None:
    """Mask each modality of ``model_dir`` on the run's split and store the table in results.json."""
    import json

    import crossrec.models.two_tower  # noqa: F401 - registers two_tower for loading
    from crossrec.evaluation.ablation import ablate_modalities
    from crossrec.models.base import Recommender
    from crossrec.splitting.splits import Split

    if model_dir is None or not model_dir.is_dir():
        _fail(ValueError("--ablate-modalities needs --model DIR, the saved multi-modal model of this run"))
    results_path = run_dir / "results.json"
    if not results_path.is_file() or not (run_dir / "split").is_dir():
        _fail(FileNotFoundError(f"{run_dir} is not a crossrec run folder (needs results.json and split/)"))
    recommender = Recommender.load(model_dir)
    if not hasattr(recommender, "modalities"):
        _fail(
            ValueError(f"{model_dir} holds a {type(recommender).__name__}, which has no modalities to mask")
        )
    results = json.loads(results_path.read_text())
    split = Split.load(run_dir / "split")
    try:
        table = ablate_modalities(recommender, split, part=results.get("part", "test"))  # type: ignore[arg-type]
    except ValueError as error:
        _fail(error)
    results.setdefault("extra", {})
    results["extra"] = dict(results["extra"] or {}, ablation=table.to_dict(orient="records"))
    results_path.write_text(json.dumps(results, indent=2, default=str))
    rows = table.to_dict(orient="records")
    columns = [c for c in table.columns if c != "modality"]
    ablation = metrics_table(
        "modality ablation (contribution = full - masked)",
        {str(r["modality"]): r for r in rows},
        columns,
    )
    ablation.columns[0].header = "modality"
    Console().print(ablation)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders made on the same split.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default runs/compare-<time>).")
    ] = None,
    baseline: Annotated[str | None, typer.Option(help="Reference model (default: every pair).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics", help="Comma-separated metrics to show, e.g. ndcg@10,recall@20 (default: ndcg@10)."
        ),
    ] = None,
    wide: Annotated[bool, _WIDE] = False,
) -> None:
    """Compare models across run folders: paired differences, bootstrap 95% CIs, Wilcoxon, Holm.

    Runs are labelled A, B, ... in the tables (the legend names their folders); every pair and
    metric is in the output's ``results.json``."""
    from crossrec.evaluation.runs import compare_runs

    out = out or Path("runs") / f"compare-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        result = compare_runs(runs, out, baseline=baseline, n_resamples=resamples, seed=seed)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
        return
    console = Console()
    labels = run_labels(runs)
    names = {name: _short(name, labels) for name in result.results["models"]}
    for run, label in labels.items():
        console.print(f"{label} = {run}", highlight=False, soft_wrap=True)
    asked = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    columns, every = _main_columns(result.results, asked)
    print_table(
        _summary_table("models", result.results["models"], columns, every, wide=wide, names=names),
        wide=wide,
    )
    shown = set(every if wide else asked or [_primary(result.results)])
    table = Table(title="paired differences (model - reference), * Holm-adjusted p < 0.05")
    for column in ("model", "reference", "metric", "difference", "95% CI", "p (Holm)"):
        table.add_column(column, justify="right" if column not in ("model", "reference") else "left",
                         no_wrap=True)  # fmt: skip
    for row in result.results["comparison"]:
        if row["metric"] in shown or row["metric"].partition("@")[0] in shown:
            mark = " *" if row["significant"] else ""
            table.add_row(
                names.get(row["model"], row["model"]),
                names.get(row["reference"], row["reference"]),
                row["metric"],
                f"{row['difference']:+.4f}",
                f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
                f"{row['p_adjusted']:.3g}{mark}",
            )
    print_table(table, wide=wide)
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.html'}")


def _short(name: str, labels: dict[str, str]) -> str:
    """``RUN.model`` with the run folder's name replaced by its label (``A.ease``)."""
    for run, label in labels.items():
        if name.startswith(f"{run}."):
            return f"{label}.{name[len(run) + 1 :]}"
    return name


def _primary(results: dict) -> str:
    """The metric a comparison shows by default: the first accuracy metric at 10 (or the first k)."""
    ks = sorted(results.get("ks") or [10])
    metrics = list(results.get("metrics") or ["ndcg"])
    metric = "ndcg" if "ndcg" in metrics else metrics[0]
    return f"{metric}@{10 if 10 in ks else ks[0]}"
