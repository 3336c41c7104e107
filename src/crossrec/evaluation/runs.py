"""Run folders: everything needed to re-evaluate, compare and report a set of evaluated models.

Layout of a run folder (written atomically by :func:`write_run`: everything is staged in a
temporary folder next to it and moved in only once complete)::

    RUN_DIR/
      results.json                 metrics, intervals, slices, comparison, config, split description,
                                   data manifest hash, versions, seeds, timings, learning curves
      report.html                  self-contained report (tables + base64 PNG charts)
      split/                       the exact split: train/valid/test.parquet + split.json
      per_user/<model>.parquet     per-user metric table of each model (column ``user`` + metrics)
      recommendations/<model>.npz  ``users`` and ``items`` (top-K lists, -1 = empty slot)
      side/item_categories.npy     optional, for category diversity when re-evaluating
      side/user_groups.parquet     optional boolean columns over all users, for slices

``crossrec evaluate RUN_DIR`` recomputes metrics from ``split/`` and ``recommendations/``;
``crossrec compare A B ...`` loads several run folders made on the same split (same fingerprint)
and writes a run folder of the comparison. Other files in an existing run folder (checkpoints,
logs) are left alone.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.outputs import check_not_input, check_replaceable
from crossrec.evaluation.evaluate import (
    ModelEvaluation,
    compare_models,
    evaluate_recommendations,
    model_intervals,
)
from crossrec.evaluation.report import baseline_pairs as _baseline_pairs
from crossrec.evaluation.report import main_metric, render_report
from crossrec.evaluation.slices import DEFAULT_ACTIVITY_EDGES, activity_buckets
from crossrec.metrics.significance import bootstrap_mean_ci
from crossrec.models.base import Recommender
from crossrec.splitting.splits import Split

__all__ = [
    "RunData",
    "check_run_folder",
    "compare_runs",
    "load_run",
    "reevaluate_run",
    "run_size_bytes",
    "write_run",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+=-]*$")
_ARTEFACTS = ("results.json", "report.html", "split", "per_user", "recommendations", "side", "models")


def check_run_folder(run_dir: str | Path, inputs: Sequence[str | Path] = ()) -> None:
    """Refuse to write a run into ``run_dir`` when it is or contains one of ``inputs``, or when it is
    an existing non-empty folder that is not a crossrec run folder (what the experiment runner should
    call before it writes anything into a run folder).

    Raises
    ------
    OutputFolderError
        With what to do instead.
    """
    run_dir = Path(run_dir)
    check_not_input(run_dir, inputs)
    if run_dir.is_dir() and not run_dir.is_symlink() and not any(run_dir.iterdir()):
        return  # an empty folder: nothing to lose
    check_replaceable(run_dir, kind="run", force=True, keep_unlisted=True)


def run_size_bytes(run_dir: str | Path) -> int:
    """Bytes of every file under ``run_dir`` (what a run folder costs on disk)."""
    return sum(path.stat().st_size for path in Path(run_dir).rglob("*") if path.is_file())


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("crossrec", "numpy", "scipy", "pandas", "torch", "matplotlib"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover
            found[package] = "not installed"
    return found


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def activity_intervals(
    evaluations: Mapping[str, ModelEvaluation],
    split: Split,
    pairs: Sequence[tuple[str, str]],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Bootstrap 95% intervals of the main metric per user-activity bucket (the report's slice
    chart), and of each model's paired per-user gain over its reference (``pairs``) in each bucket.

    Returns ``{"metric", "models": {name: {bucket: [low, high]}}, "gains": {"model - reference":
    {bucket: [difference, low, high]}}}``; buckets follow :func:`activity_buckets`.
    """
    if not evaluations:
        return {}
    first = next(iter(evaluations.values()))
    metric = main_metric(list(first.metrics), list(first.ks))
    if metric is None:
        return {}
    n_train = split.train.n_per_user(split.n_users)
    values: dict[str, pd.Series] = {}
    out: dict[str, Any] = {"metric": metric, "models": {}, "gains": {}}
    for name, evaluation in evaluations.items():
        if metric not in evaluation.per_user:
            continue
        table = evaluation.per_user[["user", metric]].dropna()
        values[name] = table.set_index("user")[metric]
        buckets = activity_buckets(n_train[table["user"].to_numpy()], DEFAULT_ACTIVITY_EDGES)
        out["models"][name] = {
            str(bucket): bootstrap_mean_ci(
                table[metric].to_numpy()[buckets == bucket], n_resamples=n_resamples, seed=seed
            ).tolist()
            for bucket in np.unique(buckets)
        }
    for model, reference in pairs:
        if model not in values or reference not in values:
            continue
        joined = pd.concat([values[model], values[reference]], axis=1, join="inner").dropna()
        users = joined.index.to_numpy()
        difference = (joined.iloc[:, 0] - joined.iloc[:, 1]).to_numpy()
        buckets = activity_buckets(n_train[users], DEFAULT_ACTIVITY_EDGES)
        gains = {}
        for bucket in np.unique(buckets):
            chosen = difference[buckets == bucket]
            low, high = bootstrap_mean_ci(chosen, n_resamples=n_resamples, seed=seed)
            gains[str(bucket)] = [float(chosen.mean()), float(low), float(high)]
        out["gains"][f"{model} - {reference}"] = gains
    return out


def write_run(
    run_dir: str | Path,
    evaluations: Mapping[str, ModelEvaluation],
    *,
    split: Split,
    config: Mapping[str, Any] | None = None,
    timings: Mapping[str, float] | None = None,
    learning_curves: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    seeds: Mapping[str, int] | None = None,
    data_manifest_hash: str | None = None,
    extra: Mapping[str, Any] | None = None,
    baseline: str | None = None,
    item_categories: np.ndarray | None = None,
    user_groups: Mapping[str, np.ndarray] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    title: str | None = None,
    models: Mapping[str, Recommender] | None = None,
    keep_models: bool = False,
    inputs: Sequence[str | Path] = (),
) -> Path:
    """Save evaluations, the split, ``results.json`` and ``report.html`` into ``run_dir`` atomically.

    Parameters
    ----------
    run_dir
        Target folder (created; other files already in it are kept).
    evaluations
        Model name (letters, digits, ``_.+=-``) -> evaluation on ``split``.
    split
        The split every evaluation was made on (checked by fingerprint).
    config, timings, learning_curves, seeds, data_manifest_hash, extra
        Recorded in ``results.json``; learning curves are lists of ``{"epoch": .., "loss": .., ...}``
        per model and are drawn in the report.
    baseline
        Reference model of the paired comparison (default: all pairs when two or more models).
    item_categories, user_groups
        Side data saved so that ``crossrec evaluate`` can recompute diversity and slices.
    n_resamples, seed
        Bootstrap settings of confidence intervals and comparisons.
    models, keep_models
        The fitted models by name; saved under ``models/<name>/`` only when ``keep_models`` (dense
        models such as EASE take hundreds of MB per copy; what re-evaluation needs, the per-user
        metrics, recommendations and split, is always written, and the kept model belongs in an
        artifact). ``results.json`` records ``size_bytes``, the bytes written besides itself.
    inputs
        Files and folders the run read: ``run_dir`` may be none of them and contain none. An existing
        ``run_dir`` must be a crossrec run folder (or empty); its other files are kept.

    Returns
    -------
    Path
        ``run_dir``.

    Raises
    ------
    ValueError
        No evaluation, a bad model name, or an evaluation made on another split. Nothing is
        written then.
    """
    run_dir = Path(run_dir)
    if not evaluations:
        raise ValueError("no evaluation to write")
    check_run_folder(run_dir, inputs)
    bad_names = [name for name in evaluations if not _NAME.match(name)]
    if bad_names:
        raise ValueError(f"model names {bad_names} must be letters, digits and _.+=- (they name files)")
    fingerprint = split.fingerprint()
    mismatched = {
        n: e.split_fingerprint for n, e in evaluations.items() if e.split_fingerprint != fingerprint
    }
    if mismatched:
        raise ValueError(f"evaluations {mismatched} were not made on this split (fingerprint {fingerprint})")
    results = _results(
        evaluations,
        split,
        comparison=compare_models(evaluations, baseline=baseline, n_resamples=n_resamples, seed=seed)
        if len(evaluations) > 1
        else None,
        n_resamples=n_resamples,
        seed=seed,
    )
    results.update(
        config=dict(config or {}),
        timings={"evaluation_seconds": {n: e.seconds for n, e in evaluations.items()}, **dict(timings or {})},
        learning_curves={k: list(v) for k, v in (learning_curves or {}).items()},
        seeds={"split": split.seed, "bootstrap": seed, **dict(seeds or {})},
        data_manifest_hash=data_manifest_hash,
        extra=dict(extra or {}),
        baseline=baseline,
    )
    results["activity_intervals"] = activity_intervals(
        evaluations, split, _baseline_pairs(results), n_resamples=n_resamples, seed=seed
    )
    popularity = split.train.n_per_item(split.n_items)
    page = render_report(
        results,
        {n: e.recommendations for n, e in evaluations.items()},
        popularity,
        title=title or f"crossrec evaluation: {run_dir.name}",
    )

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.staging-", dir=run_dir.parent))
    try:
        split.save(staging / "split")
        (staging / "per_user").mkdir()
        (staging / "recommendations").mkdir()
        for name, evaluation in evaluations.items():
            evaluation.per_user.to_parquet(staging / "per_user" / f"{name}.parquet", index=False)
            np.savez_compressed(
                staging / "recommendations" / f"{name}.npz",
                users=evaluation.per_user["user"].to_numpy(),
                items=evaluation.recommendations,
            )
        if item_categories is not None or user_groups:
            (staging / "side").mkdir()
            if item_categories is not None:
                np.save(staging / "side" / "item_categories.npy", np.asarray(item_categories))
            if user_groups:
                pd.DataFrame({k: np.asarray(v, dtype=bool) for k, v in user_groups.items()}).to_parquet(
                    staging / "side" / "user_groups.parquet", index=False
                )
        if keep_models and models:
            for name, model in models.items():
                model.save(staging / "models" / name)
        written = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        results["size_bytes"] = sum((staging / name).stat().st_size for name in written)
        results["run_files"] = [*written, "results.json"]
        (staging / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
        (staging / "report.html").write_text(page, encoding="utf-8")
        _commit(staging, run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_dir


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _commit(staging: Path, run_dir: Path) -> None:
    """Move the staged artefacts into ``run_dir`` (a single rename when it does not exist yet)."""
    if not run_dir.exists():
        staging.rename(run_dir)
        return
    for name in _ARTEFACTS:
        target = run_dir / name
        if name == "models" and not (staging / name).exists():
            continue  # models saved by an earlier writer stay unless new ones replace them
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (staging / name).exists():
            (staging / name).rename(target)


def _results(
    evaluations: Mapping[str, ModelEvaluation],
    split: Split,
    *,
    comparison: pd.DataFrame | None,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    first = next(iter(evaluations.values()))
    models = {}
    for name, evaluation in evaluations.items():
        models[name] = {
            "summary": evaluation.summary,
            "intervals": model_intervals(evaluation, n_resamples=n_resamples, seed=seed),
            "slices": _records(evaluation.slices),
            "n_users": len(evaluation.per_user),
            "seconds": evaluation.seconds,
            "sampled_negatives": evaluation.sampled_negatives,
            "metrics": list(evaluation.metrics),
            "ks": list(evaluation.ks),
            "info": evaluation.info,
        }
    return {
        "format": "crossrec-results/1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "part": first.part,
        "metrics": list(first.metrics),
        "ks": list(first.ks),
        "split": split.describe(),
        "models": models,
        "comparison": _records(comparison) if comparison is not None else [],
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "confidence": 0.95},
        "versions": _versions(),
    }


@dataclass(frozen=True)
class RunData:
    """What a run folder holds, loaded."""

    path: Path
    results: dict[str, Any]
    split: Split
    evaluations: dict[str, ModelEvaluation]
    item_categories: np.ndarray | None
    user_groups: dict[str, np.ndarray] | None


def load_run(run_dir: str | Path) -> RunData:
    """Load a run folder written by :func:`write_run`.

    Raises
    ------
    FileNotFoundError
        When ``run_dir`` is not a run folder (no ``results.json`` or ``split/``).
    """
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file() or not (run_dir / "split").is_dir():
        raise FileNotFoundError(f"{run_dir} is not a crossrec run folder (needs results.json and split/)")
    results = json.loads(results_path.read_text())
    split = Split.load(run_dir / "split")
    evaluations = {}
    for name, model in results["models"].items():
        per_user = pd.read_parquet(run_dir / "per_user" / f"{name}.parquet")
        with np.load(run_dir / "recommendations" / f"{name}.npz") as saved:
            items = saved["items"]
        evaluations[name] = ModelEvaluation(
            per_user=per_user,
            summary=model["summary"],
            slices=pd.DataFrame(model["slices"]),
            recommendations=items,
            part=results["part"],
            split_fingerprint=results["split"]["fingerprint"],
            metrics=tuple(model.get("metrics", results["metrics"])),
            ks=tuple(model.get("ks", results["ks"])),
            sampled_negatives=model.get("sampled_negatives"),
            seconds=model.get("seconds", 0.0),
            info=model.get("info", {}),
        )
    side = run_dir / "side"
    categories = np.load(side / "item_categories.npy") if (side / "item_categories.npy").is_file() else None
    groups = None
    if (side / "user_groups.parquet").is_file():
        table = pd.read_parquet(side / "user_groups.parquet")
        groups = {c: table[c].to_numpy(dtype=bool) for c in table.columns}
    return RunData(run_dir, results, split, evaluations, categories, groups)


def _carry_over(results: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "config": results.get("config"),
        "timings": results.get("timings"),
        "learning_curves": results.get("learning_curves"),
        "seeds": results.get("seeds"),
        "data_manifest_hash": results.get("data_manifest_hash"),
        "extra": results.get("extra"),
    }


def reevaluate_run(
    run_dir: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    ks: Sequence[int] | None = None,
    n_resamples: int | None = None,
) -> RunData:
    """Recompute every model's metrics from the run's split and saved top-K lists, then rewrite
    ``results.json``, ``per_user/`` and ``report.html`` (config, timings and curves are kept).

    Per-user columns that cannot be recomputed from the folder (e.g. embedding diversity, rating
    errors) are carried over from the saved per-user tables.
    """
    run = load_run(run_dir)
    results = run.results
    evaluations = {}
    for name, old in run.evaluations.items():
        fresh = evaluate_recommendations(
            old.recommendations,
            old.per_user["user"].to_numpy(),
            run.split,
            part=old.part,
            metrics=metrics or old.metrics,
            ks=ks or old.ks,
            item_categories=run.item_categories,
            user_groups=run.user_groups,
            head_fraction=float(old.info.get("head_fraction", 0.2)),
            sampled_negatives=old.sampled_negatives,
        )
        kept = [c for c in old.metric_columns if c not in fresh.per_user and not _is_accuracy(c)]
        if kept:
            per_user = fresh.per_user.join(old.per_user[kept])
            summary = fresh.summary | {c: float(per_user[c].mean()) for c in kept}
            summary |= {c: v for c, v in old.summary.items() if c in ("rmse", "mae")}
            fresh = replace(fresh, per_user=per_user, summary=summary)
        evaluations[name] = fresh
    carry = _carry_over(results)
    write_run(
        run.path,
        evaluations,
        split=run.split,
        baseline=results.get("baseline"),
        item_categories=run.item_categories,
        user_groups=run.user_groups,
        n_resamples=n_resamples or results.get("bootstrap", {}).get("n_resamples", 2000),
        seed=results.get("bootstrap", {}).get("seed", 0),
        config=carry["config"],
        timings={k: v for k, v in (carry["timings"] or {}).items() if k != "evaluation_seconds"},
        learning_curves=carry["learning_curves"],
        seeds=carry["seeds"],
        data_manifest_hash=carry["data_manifest_hash"],
        extra=carry["extra"],
    )
    return load_run(run.path)


def _is_accuracy(column: str) -> bool:
    from crossrec.metrics.accuracy import ACCURACY_METRICS

    return column.partition("@")[0] in ACCURACY_METRICS


def compare_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    baseline: str | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> RunData:
    """Compare the models of several run folders made on the same split; write a comparison run folder.

    Models are named ``<run folder name>/<model>`` when the runs' model names collide, else kept.

    Raises
    ------
    ValueError
        When fewer than two models are found, or the runs were made on different splits or parts
        (the error lists each run's split fingerprint). Nothing is written then.
    """
    if not run_dirs:
        raise ValueError("give at least one run folder to compare")
    runs = [load_run(path) for path in run_dirs]
    fingerprints = {str(run.path): run.results["split"]["fingerprint"] for run in runs}
    if len(set(fingerprints.values())) > 1:
        raise ValueError(f"runs were made on different splits and cannot be compared: {fingerprints}")
    parts = {str(run.path): run.results["part"] for run in runs}
    if len(set(parts.values())) > 1:
        raise ValueError(f"runs evaluated different parts of the split: {parts}")
    all_names = [name for run in runs for name in run.evaluations]
    collide = len(set(all_names)) < len(all_names)
    evaluations: dict[str, ModelEvaluation] = {}
    curves: dict[str, Any] = {}
    for index, run in enumerate(runs):
        prefix = f"{run.path.name or index}" if collide else ""
        for name, evaluation in run.evaluations.items():
            key = f"{prefix}.{name}" if prefix else name
            if key in evaluations:
                key = f"{index}.{key}"
            evaluations[key] = evaluation
            if name in (run.results.get("learning_curves") or {}):
                curves[key] = run.results["learning_curves"][name]
    if len(evaluations) < 2:
        raise ValueError(f"found {len(evaluations)} model(s) in {list(fingerprints)}; need two to compare")
    if baseline is not None and baseline not in evaluations:
        raise ValueError(f"baseline {baseline!r} is not among the models {list(evaluations)}")
    started = time.perf_counter()
    write_run(
        out_dir,
        evaluations,
        split=runs[0].split,
        baseline=baseline,
        config={"compared_runs": [str(run.path) for run in runs]},
        learning_curves=curves,
        n_resamples=n_resamples,
        seed=seed,
        timings={"compare_seconds": time.perf_counter() - started},
        item_categories=runs[0].item_categories,
        user_groups=runs[0].user_groups,
        title=f"crossrec comparison of {len(runs)} run(s)",
        inputs=[run.path for run in runs],
    )
    return load_run(out_dir)
