"""``crossrec recommend`` and ``crossrec serve``: use a saved model artifact from the shell or over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app

_USER_COLUMNS = ("user_id", "user")


def _fail(console: Console, message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)
    return typer.Exit(code)


def _read_user_ids(path: Path) -> list[str]:
    """User ids from a Parquet/CSV file (column ``user_id``, ``user`` or the only column) or a
    text file with one id per line."""
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".csv"}:
        frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, dtype=str)
        column = next((name for name in _USER_COLUMNS if name in frame.columns), None)
        if column is None and len(frame.columns) == 1:
            column = frame.columns[0]
        if column is None:
            raise ValueError(
                f"{path}: expected a column 'user_id' or 'user' (or a single column), "
                f"found {list(frame.columns)}"
            )
        return frame[column].astype(str).tolist()
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@app.command()
def recommend(
    artifact: Path = typer.Argument(
        ..., help="Artifact folder (written by save_artifact or `crossrec demo`)."
    ),
    user: str | None = typer.Option(None, "--user", help="Recommend for this known user."),
    item: str | None = typer.Option(None, "--item", help="Items similar to this item instead."),
    users_file: Path | None = typer.Option(
        None, "--users-file", help="Batch: user ids (Parquet/CSV column user_id, or one per line)."
    ),
    output: Path | None = typer.Option(None, "--output", help="Parquet file for --users-file results."),
    k: int = typer.Option(10, "--k", min=1, max=1000, help="List length."),
    exclude_seen: bool = typer.Option(
        True, "--exclude-seen/--include-seen", help="Leave out items the user interacted with in training."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    info: bool = typer.Option(
        False, "--info", help="Describe the artifact instead: model, sizes, evaluation and lineage."
    ),
    diversity: float | None = typer.Option(
        None,
        "--diversity",
        min=0.0,
        max=1.0,
        help="Re-ranking strength in [0, 1] with the artifact's saved re-ranking setting (0: plain "
        "lists; default: the saved strength, 0 without a setting).",
    ),
) -> None:
    """Top-K items for a user, items similar to an item, or a batch of users to Parquet."""
    from crossrec.artifacts import ArtifactError, load_artifact

    console = Console(stderr=True)
    if info:
        _print_info(console, artifact, as_json)
        return
    if sum(value is not None for value in (user, item, users_file)) != 1:
        raise _fail(console, "pass exactly one of --user, --item or --users-file", 2)
    if users_file is not None and output is None:
        raise _fail(console, "--users-file needs --output FILE.parquet for the results", 2)
    try:
        loaded = load_artifact(artifact)
        if users_file is not None:
            user_ids = _read_user_ids(users_file)
            frame = loaded.recommend_batch(user_ids, k=k, exclude_seen=exclude_seen, diversity=diversity)
            output.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(output, index=False)
            fallback = int(frame.loc[frame["path"] == "popularity", "user_id"].nunique())
            summary = {"users": len(set(user_ids)), "rows": len(frame), "popularity_fallback_users": fallback}
            if as_json:
                typer.echo(json.dumps({**summary, "output": str(output)}))
            else:
                console.print(
                    f"wrote {len(frame)} recommendations for {summary['users']} users to {output} "
                    f"({fallback} users unknown to the model got the popularity ranking)"
                )
            return
        for kind, raw, known, vocabulary in (
            ("user", user, loaded.has_user, loaded.users),
            ("item", item, loaded.has_item, loaded.items),
        ):
            if raw is not None and not known(raw):
                examples = ", ".join(repr(str(i)) for i in vocabulary.ids[:3])
                message = f"unknown {kind} {raw!r}: the model's {kind} ids look like {examples}, ..."
                raise _fail(console, message)
        if user is not None:
            result = loaded.recommend(user, k=k, exclude_seen=exclude_seen, diversity=diversity)
            subject = {"user_id": user}
        else:
            result = loaded.similar_items(item, k=k, diversity=diversity)
            subject = {"item_id": item}
    except (ArtifactError, ValueError, OSError) as error:
        raise _fail(console, str(error)) from None

    if as_json:
        items = [{"item_id": i, "score": s} for i, s in zip(result.item_ids, result.scores, strict=True)]
        strength = _strength(loaded, diversity)
        typer.echo(
            json.dumps({**subject, "k": k, "path": result.path, "diversity": strength, "items": items})
        )
        return
    what = f"user {user}" if user is not None else f"items similar to {item}"
    caption = f"model {loaded.metadata.model}, path {result.path}"
    strength = _strength(loaded, diversity)
    if strength:
        caption += f", re-ranked ({loaded.rerank.config.label}, diversity {strength:g})"
    table = Table(title=f"top {k} for {what}", caption=caption)
    table.add_column("rank", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    for rank, (item_id, score) in enumerate(zip(result.item_ids, result.scores, strict=True), start=1):
        table.add_row(str(rank), item_id, f"{score:.4f}")
    Console().print(table)


def _print_info(console: Console, artifact: Path, as_json: bool) -> None:
    """``recommend ARTIFACT --info``: what ``GET /v1/model`` serves, as JSON or a short summary."""
    from crossrec.artifacts import ArtifactError, load_artifact

    try:
        metadata = load_artifact(artifact).metadata.as_dict()
    except (ArtifactError, OSError) as error:
        raise _fail(console, str(error)) from None
    if as_json:
        typer.echo(json.dumps(metadata, indent=2, default=str))
        return
    out = Console()
    out.print(
        f"artifact {metadata['artifact_id'][:16]}  model {metadata['model']}  {metadata['n_users']} users x "
        f"{metadata['n_items']} items  dim {metadata['dim']}  created {metadata['created']}",
        highlight=False,
    )
    lineage = metadata.get("lineage") or {}
    if not lineage:
        out.print("lineage: none recorded", highlight=False)
    for key, value in lineage.items():
        if key != "parent_lineage":
            out.print(f"{key}: {json.dumps(value, default=str)}", highlight=False, soft_wrap=True)
    evaluation = {k: v for k, v in metadata.get("evaluation", {}).items() if isinstance(v, float)}
    if evaluation:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in list(evaluation.items())[:6])
        out.print(f"evaluation ({metadata['evaluation'].get('part', '?')}): {shown}", highlight=False)


def _strength(loaded: object, diversity: float | None) -> float:
    """The strength the lists were re-ranked at (``None``: the artifact's saved one, or 0)."""
    setting = getattr(loaded, "rerank", None)
    if diversity is not None:
        return float(diversity)
    return 0.0 if setting is None else float(setting.config.strength)


@app.command()
def serve(
    artifact: Path = typer.Argument(
        ..., help="Artifact folder; SIGHUP or POST /v1/admin/reload re-reads it."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    api_keys_file: Path | None = typer.Option(
        None, help="File with accepted read X-API-Key values, one per line (also read: $CROSSREC_API_KEYS)."
    ),
    admin_keys_file: Path | None = typer.Option(
        None,
        help="File with admin keys for POST /v1/admin/reload (also read: $CROSSREC_ADMIN_KEYS); "
        "without one there is no admin endpoint.",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow a non-loopback --host without read keys (anyone can query it)."
    ),
    max_body_bytes: int = typer.Option(64 * 1024, min=1024, help="Larger request bodies get 413."),
    request_timeout: float = typer.Option(
        10.0, min=0.1, help="Seconds a client has to send a whole request (headers and body) before 408."
    ),
    max_connections: int = typer.Option(2048, min=1, help="Open connections beyond this get 503."),
    docs: bool = typer.Option(True, help="Serve Swagger UI at /docs (assets from the package, no CDN)."),
    access_log: bool = typer.Option(True, help="JSON access log lines on stderr."),
    log_level: str = typer.Option("info", help="uvicorn/crossrec log level."),
) -> None:
    """Serve recommendations over HTTP (FastAPI + uvicorn); OpenAPI docs at /docs."""
    from pydantic import ValidationError

    from crossrec.artifacts import ArtifactError
    from crossrec.serving import ADMIN_KEYS_ENV, ServeSettings, load_api_keys, run_server

    console = Console(stderr=True)
    try:
        keys = load_api_keys(api_keys_file)
        admin_keys = load_api_keys(admin_keys_file, env_var=ADMIN_KEYS_ENV)
        settings = ServeSettings(
            artifact=artifact,
            host=host,
            port=port,
            api_keys=keys,
            admin_keys=admin_keys,
            insecure=insecure,
            max_body_bytes=max_body_bytes,
            request_timeout_s=request_timeout,
            max_connections=max_connections,
            docs=docs,
            access_log=access_log,
        )
    except ValidationError as error:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        raise _fail(console, problems, 2) from None
    except ValueError as error:
        raise _fail(console, str(error), 2) from None
    if insecure and not keys and not _is_loopback(host):
        console.print(
            f"[yellow]warning:[/yellow] serving on {host} without API keys (--insecure): anyone who can "
            "reach it can query it"
        )
    try:
        run_server(settings, log_level=log_level)
    except ArtifactError as error:
        raise _fail(console, str(error)) from None


def _is_loopback(host: str) -> bool:
    from crossrec.serving.settings import is_loopback

    return is_loopback(host)
