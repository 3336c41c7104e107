"""Run an experiment file: load the domains, split the target, (optionally) search
hyperparameters on validation, fit target-only or transfer with the negative-transfer guard,
evaluate on test and write a run folder (``results.json``, ``report.html``, split, per-user tables)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from crossrec.data.domain import Domain
from crossrec.evaluation.evaluate import ModelEvaluation, evaluate_model
from crossrec.evaluation.runs import write_run
from crossrec.experiment.config import ExperimentConfig
from crossrec.experiment.search import SearchResult, apply_params, tune
from crossrec.models.base import Recommender, get_model_class
from crossrec.models.gradient import GradientRecommender
from crossrec.splitting.splits import (
    Split,
    cold_start_split,
    leave_one_out_split,
    random_split,
    temporal_split,
)
from crossrec.training.optim import OptimConfig
from crossrec.transfer.base import TransferData, make_strategy
from crossrec.transfer.guard import AutoResult, GuardResult, auto_transfer, guarded_transfer
from crossrec.transfer.links import Links
from crossrec.transfer.target_only import TargetOnly

__all__ = [
    "ExperimentResult",
    "build_model",
    "build_strategy",
    "load_domains",
    "make_split",
    "prepare",
    "run_experiment",
]


@dataclass
class ExperimentResult:
    """What a run produced."""

    run_dir: Path
    summary: dict[str, dict[str, float]]
    guard: GuardResult | None = None
    auto: AutoResult | None = None
    search: SearchResult | None = None
    models: dict[str, Recommender] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)


def _sample_users(domain: Domain, max_users: int | None, seed: int) -> Domain:
    if max_users is None or domain.n_users <= max_users:
        return domain
    keep = np.random.default_rng(seed).choice(domain.n_users, size=max_users, replace=False)
    return domain.subset(np.isin(domain.interactions.user, keep))


def _unique_target(source: np.ndarray, target: np.ndarray) -> Links:
    _, first = np.unique(target, return_index=True)
    return Links(source[first], target[first])


def load_domains(
    config: ExperimentConfig,
) -> tuple[Domain, list[Domain], list[Links | None], list[Links | None]]:
    """``(target, sources, item_links, user_links)`` as the data section asks."""
    data = config.data
    bundle = None
    if data.builtin == "movielens-cdr":
        from crossrec.data.builtin import load_movielens_cdr

        source, target = load_movielens_cdr(data.data_dir)
        if data.link_users == "bundle" or data.link_items == "bundle":
            raise ValueError("link_items/link_users = 'bundle' needs data.bundle, not a builtin dataset")
        sources = [source]
    else:
        from crossrec.data.bundle import load_bundle

        bundle = load_bundle(data.bundle)
        target_name = data.target or (bundle.target_domains or [None])[0]
        if target_name not in bundle.domains:
            raise ValueError(
                f"target domain {target_name!r} is not in {data.bundle}; it has {sorted(bundle.domains)}"
            )
        source_names = data.sources or [n for n in bundle.source_domains if n != target_name]
        missing = [n for n in source_names if n not in bundle.domains]
        if missing or not source_names:
            raise ValueError(
                f"source domains {missing or source_names} not usable; "
                f"the bundle has {sorted(bundle.domains)}"
            )
        target = bundle.domains[target_name]
        sources = [bundle.domains[n] for n in source_names]
    target = _sample_users(target, data.max_users, config.seed)
    if data.max_users is not None:
        sources = [_sample_users(s, data.max_users * 4, config.seed) for s in sources]

    def links(kind: str, entity: str) -> list[Links | None]:
        out: list[Links | None] = []
        for source in sources:
            if kind == "none":
                out.append(None)
            elif kind == "ids":
                pair = (source.items, target.items) if entity == "item" else (source.users, target.users)
                out.append(Links.by_shared_ids(*pair))
            else:
                pairs = (bundle.item_links if entity == "item" else bundle.user_links)(
                    source.name, target.name
                )
                out.append(_unique_target(*pairs))
        return out

    return target, sources, links(data.link_items, "item"), links(data.link_users, "user")


def make_split(config: ExperimentConfig, target: Domain) -> Split:
    """The target split of the configured protocol."""
    s, args = config.split, (target.interactions, target.n_users, target.n_items)
    if s.protocol == "random":
        return random_split(*args, ratios=s.ratios, seed=config.seed)
    if s.protocol == "leave_one_out":
        return leave_one_out_split(*args, seed=config.seed)
    if s.protocol == "temporal":
        return temporal_split(*args, ratios=s.ratios, seed=config.seed)
    return cold_start_split(*args, n_train=s.n_train, fraction=s.fraction, seed=config.seed)


def prepare(config: ExperimentConfig) -> TransferData:
    """Load domains, split the target and build the :class:`TransferData`."""
    target, sources, item_links, user_links = load_domains(config)
    split = make_split(config, target)
    weights = [config.data.source_weights.get(s.name, 1.0) for s in sources]
    unknown = set(config.data.source_weights) - {s.name for s in sources}
    if unknown:
        raise ValueError(
            f"data.source_weights names unknown sources {sorted(unknown)}; "
            f"sources: {[s.name for s in sources]}"
        )
    return TransferData.from_domains(
        target,
        split,
        sources,
        weights=weights,
        link_items=item_links,
        link_users=user_links,
        seed=config.seed,
    )


def build_model(config: ExperimentConfig, params: dict[str, Any] | None = None) -> Recommender:
    """The configured model (search overrides in ``params``); quiet progress unless asked."""
    cls = get_model_class(config.model.name)
    kwargs = _merged(config.model.params, params or {})
    accepted = cls.__init__.__code__.co_varnames
    if issubclass(cls, GradientRecommender):  # seed and threads are optimiser settings
        run = {"seed": config.seed} | ({"threads": config.num_threads} if config.num_threads else {})
        given = kwargs.get("optim") or {}
        given = given.model_dump(exclude_unset=True) if isinstance(given, OptimConfig) else dict(given)
        kwargs["optim"] = run | given
    if "seed" in accepted and "seed" not in kwargs:
        kwargs["seed"] = config.seed
    if "num_threads" in accepted and config.num_threads and "num_threads" not in kwargs:
        kwargs["num_threads"] = config.num_threads
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"model {config.model.name!r}: {error}") from error


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overrides``, nested dicts (e.g. ``optim``) merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = _merged(out[key], value)
        out[key] = value
    return out


def build_strategy(
    config: ExperimentConfig, strategy: str | None = None, model_params=None, transfer_params=None
):
    """The configured strategy with the configured model (search overrides applied)."""
    name = strategy or config.transfer.strategy
    model = build_model(config, model_params)
    params = {**config.transfer.params, **(transfer_params or {})}
    try:
        return make_strategy(name, model=model, **params)
    except TypeError as error:
        raise ValueError(f"transfer strategy {name!r}: {error}") from error


def _new_run_dir(root: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, suffix = root / f"{stamp}-{name}", 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{name}-{suffix}"
    return run_dir


def run_experiment(
    config: ExperimentConfig,
    *,
    mode: str = "transfer",
    strategy: str | None = None,
    console: Any = None,
) -> ExperimentResult:
    """Run ``config``: ``mode="train"`` fits the model target-only; ``"transfer"`` runs the strategy
    (``strategy`` overrides the file's; ``"auto"`` tries what the data allows) with the guard."""
    import torch

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    data = prepare(config)
    name = "none" if mode == "train" else (strategy or config.transfer.strategy)
    search_result = None
    model_params: dict[str, Any] = {}
    transfer_params: dict[str, Any] = {}
    if config.search is not None and config.search.space and name != "auto":
        search_result = tune(config, data, strategy=name, console=console)
        model_params, transfer_params = apply_params(search_result.best_params)

    fitted: dict[str, Recommender] = {}
    seconds: dict[str, float] = {}
    guard = auto = None
    if name == "none":
        started = time.perf_counter()
        fitted["target_only"] = TargetOnly(build_model(config, model_params)).fit(data)
        seconds["target_only"] = time.perf_counter() - started
    elif name == "auto":
        auto = auto_transfer(
            data, metric=config.transfer.guard.metric,
            require_significant=config.transfer.guard.require_significant,
            seed=config.seed, console=console,
        )  # fmt: skip
        guard = auto.guard
    else:
        chosen = build_strategy(config, name, model_params, transfer_params)
        guard = guarded_transfer(
            chosen, data, metric=config.transfer.guard.metric,
            require_significant=config.transfer.guard.require_significant, seed=config.seed, console=console,
        )  # fmt: skip
    if guard is not None:
        fitted["target_only"] = guard.baseline_model
        fitted["transfer"] = guard.transfer_model
        seconds = {"target_only": guard.seconds["baseline"], "transfer": guard.seconds["transfer"]}

    evaluations: dict[str, ModelEvaluation] = {
        key: evaluate_model(
            model.scorer(),
            data.split,
            part="test",
            metrics=config.evaluation.metrics,
            ks=config.evaluation.ks,
        )
        for key, model in fitted.items()
    }
    run_dir = _new_run_dir(config.output_dir, config.name)
    extra: dict[str, Any] = {"strategy": name, "data": data.describe()}
    if guard is not None:
        extra["guard"] = guard.to_dict()
    if auto is not None:
        extra["auto"] = {"tried": auto.tried, "skipped": auto.skipped}
    if search_result is not None:
        extra["search"] = search_result.to_dict()
    curves = {k: m.history_.epochs for k, m in fitted.items() if hasattr(m, "history_")}
    write_run(
        run_dir, evaluations, split=data.split, config=json.loads(config.model_dump_json()), timings=seconds,
        learning_curves=curves, seeds={"experiment": config.seed}, extra=extra,
        baseline="target_only" if len(evaluations) > 1 else None, seed=config.seed, title=config.name,
    )  # fmt: skip
    kept = guard.kept if guard is not None else "baseline"
    for key, model in fitted.items():
        model.save(run_dir / "models" / key)
    (run_dir / "models" / "KEPT").write_text("transfer\n" if kept == "transfer" else "target_only\n")
    return ExperimentResult(
        run_dir=run_dir,
        summary={key: evaluation.summary for key, evaluation in evaluations.items()},
        guard=guard,
        auto=auto,
        search=search_result,
        models=fitted,
        train_seconds=seconds,
    )
