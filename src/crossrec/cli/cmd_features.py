"""``crossrec two-tower`` (train a multi-modal two-tower model on movielens-cdr) and ``crossrec ablate``
(each modality's contribution to a saved multi-modal model)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app


@app.command("two-tower")
def two_tower(
    out: Path = typer.Option(
        Path("runs/two_tower"), help="Folder for the model (model/) and the split (split/)."
    ),
    data_dir: Path | None = typer.Option(
        None, help="Dataset cache folder (default: $CROSSREC_DATA_DIR or XDG)."
    ),
    fusion: str = typer.Option("concat", help="Fusion of modalities: concat, gated or attention."),
    item_modalities: str | None = typer.Option(None, help="Comma-separated item attributes (default: all)."),
    user_modalities: str | None = typer.Option(None, help="Comma-separated user attributes (default: all)."),
    text_encoder: str = typer.Option("tfidf", help="Text encoder: tfidf or minilm (needs crossrec[text])."),
    epochs: int = typer.Option(100, help="Maximum epochs."),
    seed: int = typer.Option(2022, help="Seed of the split and of training."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Train a two-tower model with item and user attributes on the target of movielens-cdr (ML-100K);
    write a run folder (``results.json``, ``split/``, ``report.html``) with the model in ``model/``."""
    from crossrec.data.builtin import DatasetUnavailableError, load_movielens_cdr
    from crossrec.evaluation import evaluate_model, random_split
    from crossrec.features import FeatureTable
    from crossrec.models.inputs import FitInputs
    from crossrec.models.two_tower import TwoTower

    console = Console()
    try:
        _, target = load_movielens_cdr(data_dir)
    except DatasetUnavailableError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    split = random_split(target.interactions, target.n_users, target.n_items, seed=seed)
    model = TwoTower(
        fusion=fusion,  # type: ignore[arg-type]
        item_modalities=_columns(item_modalities),
        user_modalities=_columns(user_modalities),
        text_encoder=text_encoder,  # type: ignore[arg-type]
        optim={"epochs": epochs, "seed": seed, "progress": progress},
    )
    inputs = FitInputs(
        item_features=FeatureTable.from_domain(target, "item"),
        user_features=FeatureTable.from_domain(target, "user"),
    )
    try:
        model.fit_with(split.matrix("train"), split.matrix("valid"), inputs)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    from crossrec.evaluation.runs import write_run

    evaluation = evaluate_model(model.scorer(), split, ks=(10, 20), seed=seed)
    # a run folder (results.json, split/, report.html) that `crossrec evaluate` re-reads, and the model
    write_run(
        out, {"two_tower": evaluation}, split=split, seeds={"split": seed},
        config={"fusion": fusion, "text_encoder": text_encoder, "epochs": epochs},
        learning_curves={"two_tower": model.history_.epochs} if hasattr(model, "history_") else None,
        title="two-tower on ML-100K", seed=seed,
    )  # fmt: skip
    model.save(out / "model")
    summary = evaluation.summary
    console.print(f"test NDCG@10 {summary['ndcg@10']:.4f}  Recall@10 {summary['recall@10']:.4f}")
    console.print(f"run: {out} (results.json, report.html)  model: {out / 'model'}", highlight=False)
    console.print(
        f"modality contributions: crossrec evaluate {out} --ablate-modalities --model {out / 'model'}",
        highlight=False,
    )


def _columns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [c.strip() for c in text.split(",") if c.strip()]


@app.command()
def ablate(
    model_dir: Path = typer.Argument(
        ..., help="Folder of a saved multi-modal model (e.g. crossrec two-tower)."
    ),
    split_dir: Path = typer.Argument(
        ..., help="Folder of the split it was trained on (split.json + parquet)."
    ),
    part: str = typer.Option("test", help="Evaluate on test or valid."),
    out: Path | None = typer.Option(None, help="Write ablation.csv and ablation.png here."),
    modalities: str | None = typer.Option(None, help="Comma-separated modalities to mask (default: all)."),
    n_resamples: int = typer.Option(2000, help="Paired bootstrap resamples for the confidence intervals."),
) -> None:
    """Re-evaluate a saved model with each modality masked; report each one's contribution to NDCG@10."""
    import crossrec.models.two_tower  # noqa: F401 - registers the two_tower model for loading
    from crossrec.evaluation import Split
    from crossrec.evaluation.ablation import ablate_modalities, plot_ablation
    from crossrec.models.base import Recommender

    console = Console()
    for label, folder in (("model", model_dir), ("split", split_dir)):
        if not folder.is_dir():
            console.print(f"[red]error:[/red] {label} folder {folder} does not exist")
            raise typer.Exit(2)
    model = Recommender.load(model_dir)
    if not hasattr(model, "modalities"):
        console.print(
            f"[red]error:[/red] {model_dir} holds a {type(model).__name__}, which has no modalities"
        )
        raise typer.Exit(2)
    split = Split.load(split_dir)
    try:
        table = ablate_modalities(
            model,  # type: ignore[arg-type]
            split,
            part=part,
            modalities=_columns(modalities),
            n_resamples=n_resamples,
        )
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    metric = table.attrs["metric"]
    rich_table = Table(title=f"modality ablation on {part} ({metric}; contribution = full - masked)")
    for column in table.columns:
        rich_table.add_column(column, justify="right")
    for row in table.itertuples(index=False):
        rich_table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(rich_table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "ablation.csv", index=False)
        plot_ablation(table, out / "ablation.png")
        console.print(f"wrote {out / 'ablation.csv'} and {out / 'ablation.png'}")
