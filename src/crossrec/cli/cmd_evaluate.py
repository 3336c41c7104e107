"""``crossrec evaluate RUN_DIR`` and ``crossrec compare RUN_A RUN_B ... [-o OUT_DIR]``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app


def _summary_table(title: str, models: dict[str, dict], columns: list[str]) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for column in columns:
        table.add_column(column, justify="right")
    for name, model in models.items():
        table.add_row(name, *(f"{model['summary'].get(c, float('nan')):.4f}" for c in columns))
    return table


def _main_columns(results: dict) -> list[str]:
    columns = [f"{m}@{k}" for m in results["metrics"] for k in results["ks"]]
    k = max(results["ks"])
    return columns + [
        c
        for c in (f"coverage@{k}", f"gini@{k}", f"novelty@{k}", "rmse", "mae")
        if any(c in m["summary"] for m in results["models"].values())
    ]


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
    Console().print(
        _summary_table(
            f"{run_dir} ({run.results['part']})", run.results["models"], _main_columns(run.results)
        )
    )
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
    Console().print(
        _summary_table(
            "modality ablation (contribution = full - masked)",
            {str(r["modality"]): {"summary": r} for r in rows},
            [c for c in table.columns if c != "modality"],
        )
    )


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders made on the same split.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default runs/compare-<time>).")
    ] = None,
    baseline: Annotated[str | None, typer.Option(help="Reference model (default: every pair).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """Compare models across run folders: paired differences, bootstrap 95% CIs, Wilcoxon, Holm."""
    from crossrec.evaluation.runs import compare_runs

    out = out or Path("runs") / f"compare-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        result = compare_runs(runs, out, baseline=baseline, n_resamples=resamples, seed=seed)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
        return
    console = Console()
    console.print(_summary_table("models", result.results["models"], _main_columns(result.results)))
    table = Table(title="paired differences (model - reference)")
    for column in ("model", "reference", "metric", "difference", "95% CI", "p (Holm)"):
        table.add_column(column, justify="right")
    main = {f"{m}@{kk}" for m in result.results["metrics"] for kk in result.results["ks"]}
    for row in result.results["comparison"]:
        if row["metric"] in main:
            mark = " *" if row["significant"] else ""
            table.add_row(
                row["model"],
                row["reference"],
                row["metric"],
                f"{row['difference']:+.4f}",
                f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]",
                f"{row['p_adjusted']:.3g}{mark}",
            )
    console.print(table)
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.html'}")
