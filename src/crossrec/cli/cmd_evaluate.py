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
        Path | None,
        typer.Option(
            help="Saved model folder: the multi-modal model of --ablate-modalities, or the model "
            "--rerank re-ranks (default: the run's artifact/ and models/)."
        ),
    ] = None,
    rerank: Annotated[
        str | None,
        typer.Option(
            "--rerank",
            help="Also evaluate the run's saved models re-ranked, e.g. mmr:0.3, mmr-embedding:0.2, "
            "calibration:0.5, popularity:0.4 (rows '<model>+rerank', and the frontier in the report).",
        ),
    ] = None,
    candidates: Annotated[
        int, typer.Option("--candidates", min=1, help="Re-ranking pool: the model's best items per user.")
    ] = 100,
    wide: Annotated[bool, _WIDE] = False,
) -> None:
    """Recompute a run's metrics from its saved split and top-K lists; rewrite results and report.

    With ``--rerank`` the run's saved models (its ``artifact/``, ``models/`` or ``--model``) are also
    evaluated re-ranked on the same split, as an experiment's ``[rerank]`` table would."""
    from crossrec.evaluation.runs import reevaluate_run

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else None
    if ablate_modalities:
        _record_ablation(run_dir, model)
    try:
        stage = _parse_rerank(rerank, candidates) if rerank is not None else None
        run = reevaluate_run(run_dir, metrics=names, ks=k or None, n_resamples=resamples)
        if stage is not None:
            _record_rerank(run_dir, stage, None if ablate_modalities else model)
            run = _reloaded(run_dir)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
        return
    columns, every = _main_columns(run.results, names)
    table = _summary_table(
        f"{run_dir} ({run.results['part']})", run.results["models"], columns, every, wide=wide
    )
    print_table(table, wide=wide)
    typer.echo(f"wrote {run_dir / 'results.json'} and {run_dir / 'report.html'}")


def _reloaded(run_dir: Path):
    from crossrec.evaluation.runs import load_run

    return load_run(run_dir)


def _run_models(run_dir: Path, model_dir: Path | None) -> dict:
    """The run's fitted models by row name: ``--model DIR`` (named by the artifact's config, else the
    folder), else the run's ``artifact/`` (its kept model) and ``models/<name>/``."""
    import json

    from crossrec.models.base import Recommender

    def from_folder(folder: Path) -> tuple[str | None, Recommender]:
        if (folder / "manifest.json").is_file():  # an artifact: verified, named by its config
            from crossrec.artifacts import load_artifact

            artifact = load_artifact(folder)
            return artifact.metadata.config.get("model"), artifact.model
        return None, Recommender.load(folder)

    rows = set(json.loads((run_dir / "results.json").read_text()).get("models") or {})
    if model_dir is not None:
        if not model_dir.is_dir():
            raise FileNotFoundError(f"--model {model_dir} is not a folder")
        name, recommender = from_folder(model_dir)
        name = name or model_dir.name
        if name not in rows:
            raise ValueError(
                f"--model {model_dir} is row {name!r}, which {run_dir} does not have ({sorted(rows)})"
            )
        return {name: recommender}
    found = {}
    if (run_dir / "artifact").is_dir():
        name, recommender = from_folder(run_dir / "artifact")
        if name in rows:
            found[name] = recommender
    for folder in sorted((run_dir / "models").glob("*")) if (run_dir / "models").is_dir() else []:
        if folder.name in rows and folder.name not in found:
            found[folder.name] = Recommender.load(folder)
    if not found:
        raise FileNotFoundError(
            f"{run_dir} keeps no model to re-rank: run the experiment with save_artifact = true (or "
            "keep_models = true), or pass --model DIR"
        )
    return found


def _parse_rerank(text: str, candidates: int):
    """``--rerank method:strength`` as a validated configuration (before anything is rewritten)."""
    from pydantic import ValidationError

    from crossrec.rerank import RerankConfig

    try:
        return RerankConfig.parse(text, candidates=candidates)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ValueError(f"--rerank {text!r}: {problems}") from None


def _record_rerank(run_dir: Path, config, model_dir: Path | None) -> None:
    """Evaluate the run's models re-ranked by ``config`` and print the new rows."""
    from crossrec.evaluation.diversity import rerank_run

    added = rerank_run(run_dir, config, _run_models(run_dir, model_dir))
    typer.echo(f"re-ranked ({config.label}, strength {config.strength:g}): {', '.join(added)}")


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
