"""Run an experiment file: load the domains, split the target, (optionally) search
hyperparameters on validation, fit target-only or transfer with the negative-transfer guard (one
model, or several model families each guarded against its own target-only model), evaluate on test
and write a run folder (``results.json``, ``report.html``, split, per-user tables, models and,
when asked, a verified artifact of the kept model)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.domain import Domain
from crossrec.evaluation.contribution import contribution_on_test
from crossrec.evaluation.diversity import frontier_k, frontier_record, rerank_stage
from crossrec.evaluation.efficiency import efficiency_curve, parse_fractions
from crossrec.evaluation.evaluate import ModelEvaluation, evaluate_model
from crossrec.evaluation.runs import check_run_folder, write_run
from crossrec.experiment.build import build_model, build_strategy
from crossrec.experiment.config import ExperimentConfig
from crossrec.experiment.search import SearchResult, apply_params, tune
from crossrec.metrics.significance import bootstrap_mean_ci, paired_bootstrap_ci
from crossrec.models.base import Recommender
from crossrec.selection import select
from crossrec.splitting.cold_users import user_cold_start_split
from crossrec.splitting.splits import (
    Split,
    cold_start_split,
    leave_one_out_split,
    random_split,
    temporal_split,
)
from crossrec.transfer.base import SourceData, TransferData, TransferStrategy, no_overlap_reason
from crossrec.transfer.guard import (
    AutoResult,
    GuardResult,
    auto_transfer,
    candidates_for,
    guarded_transfer,
)
from crossrec.transfer.links import Links
from crossrec.transfer.multisource import MultiSourceResult, guarded_sources, with_weights
from crossrec.transfer.target_only import TargetOnly

__all__ = [
    "AutoSettings",
    "ExperimentResult",
    "build_model",
    "build_strategy",
    "item_categories",
    "linked_users",
    "load_domains",
    "make_split",
    "prepare",
    "run_experiment",
]


@dataclass
class ExperimentResult:
    """What a run produced.

    Attributes
    ----------
    run_dir
        The run folder.
    summary, evaluations
        Test metrics of every fitted model (means, and the full evaluations).
    kept
        Key of the model the run keeps (``"transfer"`` / ``"target_only"`` for one model; with
        families, the best on validation of what each family's guard kept).
    guard, auto, search
        The guard's decision, what ``auto`` tried, the search (one-model runs).
    guards
        Family name -> the guard's decision (runs with families).
    models, train_seconds
        Fitted models and their training seconds, by key.
    data
        The target split and sources the run used.
    extra
        What ``results.json`` records under ``extra`` (guard decisions, search, data).
    artifact
        The kept model's artifact folder (``save_artifact = true``).
    """

    run_dir: Path
    summary: dict[str, dict[str, float]]
    kept: str = "target_only"
    guard: GuardResult | None = None
    auto: AutoResult | None = None
    search: SearchResult | None = None
    guards: dict[str, GuardResult] = field(default_factory=dict)
    models: dict[str, Recommender] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    evaluations: dict[str, ModelEvaluation] = field(default_factory=dict, repr=False)
    data: TransferData | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    artifact: Path | None = None


@dataclass
class _Fitted:
    """Fitted models of a run before evaluation, with what to record about them."""

    models: dict[str, Recommender] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    kept: str = "target_only"
    extra: dict[str, Any] = field(default_factory=dict)
    guard: GuardResult | None = None
    guards: dict[str, GuardResult] = field(default_factory=dict)
    auto: AutoResult | None = None
    search: SearchResult | None = None
    #: The unfitted strategy behind each fitted model (what a deployment refit fits again).
    strategies: dict[str, TransferStrategy] = field(default_factory=dict)
    multi: MultiSourceResult | None = None


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
    """``(target, sources, item_links, user_links)`` as the data section asks (no sources when
    ``[transfer] from`` names source artifacts: those stand in for them)."""
    data = config.data
    bundle = None
    from_artifacts = bool(config.transfer.sources)
    if data.builtin == "movielens-cdr":
        from crossrec.data.builtin import load_movielens_cdr

        source, target = load_movielens_cdr(data.data_dir)
        if "bundle" in (data.link_users, data.link_items):
            raise ValueError("link_items/link_users = 'bundle' needs data.bundle, not a builtin dataset")
        sources = [] if from_artifacts else [source]
    else:
        from crossrec.data.bundle import load_bundle

        bundle = load_bundle(data.bundle)
        target_name = data.target or (bundle.target_domains or [None])[0]
        if target_name not in bundle.domains:
            raise ValueError(
                f"target domain {target_name!r} is not in {data.bundle}; it has {sorted(bundle.domains)}"
            )
        source_names = data.sources or [n for n in bundle.source_domains if n != target_name]
        if from_artifacts:
            source_names = []
        missing = [n for n in source_names if n not in bundle.domains]
        if missing or (not source_names and not from_artifacts):
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
            if kind in (None, "none"):  # not said: only target-only training reads these domains
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


def linked_users(user_links: list[Links | None], n_users: int) -> np.ndarray:
    """Boolean mask of the target users linked to at least one source."""
    mask = np.zeros(n_users, dtype=bool)
    for links in user_links:
        if links is not None:
            mask[links.target] = True
    return mask


def make_split(config: ExperimentConfig, target: Domain, linked: np.ndarray | None = None) -> Split:
    """The target split of the configured protocol (``linked``: mask of linked target users, the
    pool of cold users when ``split.cold_users = "linked"``)."""
    s, args = config.split, (target.interactions, target.n_users, target.n_items)
    if s.protocol == "random":
        return random_split(*args, ratios=s.ratios, seed=config.seed)
    if s.protocol == "leave_one_out":
        return leave_one_out_split(*args, seed=config.seed)
    if s.protocol == "temporal":
        return temporal_split(*args, ratios=s.ratios, seed=config.seed)
    if s.protocol == "no_history":
        raise ValueError("split.protocol = 'no_history' needs the user links: prepare() builds that split")
    candidates = None
    if s.cold_users == "linked":
        if linked is None or not linked.any():
            raise ValueError(
                "split.cold_users = 'linked' needs target users linked to a source: set data.link_users "
                "to 'ids' or 'bundle' (no target user is linked now)"
            )
        candidates = np.flatnonzero(linked)
    return cold_start_split(
        *args, n_train=s.n_train, fraction=s.fraction, seed=config.seed, candidates=candidates
    )


def decided_on(split: Split) -> dict[str, Any]:
    """Which users validation (selection and the guard) judges on, for the run record and report."""
    users = int(len(np.unique(split.valid.user)))
    if split.allows_cold_users:
        return {
            "slice": "cold users",
            "users": users,
            "description": f"validation of {users} cold users (linked to a source, no target training data)",
        }
    return {"slice": "all users", "users": users, "description": f"validation of {users} users"}


def prepare(config: ExperimentConfig, *, links_required: bool = True) -> TransferData:
    """Load domains, split the target and build the :class:`TransferData`.

    ``links_required`` (default) refuses a data section that does not say how sources are linked
    (``link_items`` / ``link_users``); target-only training passes ``False`` (it reads no link).
    With ``[transfer] from``, the sources are the source artifacts (their models, vocabularies and
    interactions), linked to the target as the data section says.
    """
    return _prepare(config, links_required=links_required)[0]


def _prepare(
    config: ExperimentConfig, *, links_required: bool = True
) -> tuple[TransferData, list[dict[str, Any]]]:
    """:func:`prepare`, and the references of the source artifacts it read (for the lineage)."""
    no_history = config.split.protocol == "no_history"
    if links_required or no_history:
        config.data.require_links()
    target, sources, item_links, user_links = load_domains(config)
    artifact_sources: list[SourceData] = []
    references: list[dict[str, Any]] = []
    if config.transfer.sources and links_required:
        from crossrec.experiment.registry import sources_from_artifacts

        artifact_sources, references = sources_from_artifacts(config, target)
        user_links = [s.user_links for s in artifact_sources]
    split = (
        _no_history_split(config, target, user_links)
        if no_history
        else make_split(config, target, linked_users(user_links, target.n_users))
    )
    weights = [config.data.source_weights.get(s.name, 1.0) for s in sources]
    unknown = set(config.data.source_weights) - {s.name for s in sources} - {s.name for s in artifact_sources}
    if unknown:
        raise ValueError(
            f"data.source_weights names unknown sources {sorted(unknown)}; "
            f"sources: {[s.name for s in sources]}"
        )
    data = TransferData.from_domains(
        target,
        split,
        sources,
        weights=weights,
        link_items=item_links,
        link_users=user_links[: len(sources)],
        seed=config.seed,
    )
    if artifact_sources:
        data = dataclasses.replace(data, sources=tuple(artifact_sources))
    return data, references


def _no_history_split(config: ExperimentConfig, target: Domain, user_links: list[Links | None]) -> Split:
    """``split.protocol = "no_history"``: a seeded share of the users linked to any source keeps no
    target training data; the run trains on the warm users and selects, guards and tests on the
    cold ones (:meth:`~crossrec.splitting.UserColdSplit.served_split`)."""
    linked = [links.target for links in user_links if links is not None and len(links.target)]
    if not linked:
        raise ValueError(
            "split.protocol = 'no_history' makes linked users cold, but no source has user links: set "
            "data.link_users to 'ids' or 'bundle'"
        )
    cold = user_cold_start_split(
        target.interactions,
        target.n_users,
        target.n_items,
        linked_users=np.unique(np.concatenate(linked)),
        fraction=config.split.fraction,
        holdout=config.split.holdout,
        ratios=config.split.ratios,
        seed=config.seed,
    )
    return cold.served_split()


def _new_run_dir(root: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, suffix = root / f"{stamp}-{name}", 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{name}-{suffix}"
    return run_dir


def _target_only(
    config: ExperimentConfig, data: TransferData, model: Recommender
) -> tuple[Recommender, float, float]:
    """``(fitted, train seconds, validation score)`` of ``model`` trained on the target alone."""
    chosen = select([TargetOnly(model)], data, metric=config.transfer.guard.metric)
    return chosen.model, chosen.best.seconds, chosen.score


@dataclass(frozen=True)
class AutoSettings:
    """How ``--strategy auto`` chooses: the experiment's model only, or other families too, and
    an optional time budget (seconds) for the candidates and the search."""

    other_families: bool = False
    budget_seconds: float | None = None


def _auto(
    config: ExperimentConfig,
    data: TransferData,
    model_params: dict[str, Any],
    settings: AutoSettings,
    console: Any,
) -> AutoResult:
    """``auto`` around the experiment's ``[model]`` (other families only when asked), guarded
    against that model target-only, within the time budget; prints each candidate as it starts."""
    model = build_model(config, model_params)
    candidates, skipped = candidates_for(model, other_families=settings.other_families)
    if config.transfer.sources:  # source artifacts stand in for the sources: only strategies that take one
        skipped += [
            {"strategy": c.label, "reason": "it cannot transfer from a source artifact ([transfer] from)"}
            for c in candidates
            if not c.transfers_from_artifact
        ]
        candidates = [c for c in candidates if c.transfers_from_artifact]
    own = config.transfer.strategy
    if own not in ("none", "auto"):  # the file's strategy runs with the file's parameters
        candidates = [
            build_strategy(config, own, model_params)
            if c.name == own and getattr(c, "model", None) is not None and c.model.name == model.name
            else c
            for c in candidates
        ]
    guard = config.transfer.guard
    started = time.perf_counter()

    def on_start(number: int, total: int, label: str) -> None:
        if console is not None:
            budget = "" if settings.budget_seconds is None else f" of {settings.budget_seconds:g} s"
            console.print(
                f"auto {number + 1}/{total}: fitting {label} ({time.perf_counter() - started:.0f} s{budget} "
                "spent)",
                highlight=False,
            )

    result = auto_transfer(
        data, candidates=candidates, baseline=TargetOnly(model.clone()), metric=guard.metric,
        require_significant=guard.require_significant, budget_seconds=settings.budget_seconds,
        seed=config.seed, console=console, on_start=on_start,
    )  # fmt: skip
    result.skipped[:0] = skipped
    if console is not None:
        for entry in result.skipped:
            console.print(f"auto skipped {entry['strategy']}: {entry['reason']}", highlight=False)
        if not settings.other_families:
            console.print(
                f"auto tried strategies around \\[model] {model.name} only; --auto-families also tries "
                "other model families",
                highlight=False,
            )
    return result


def _fit_one(
    config: ExperimentConfig,
    data: TransferData,
    mode: str,
    strategy: str | None,
    console: Any,
    auto: AutoSettings | None = None,
) -> _Fitted:
    """``[model]`` target-only, or with ``[transfer]``'s strategy (or ``auto``) and the guard."""
    name = "none" if mode == "train" else (strategy or config.transfer.strategy)
    out = _Fitted(extra={"strategy": name})
    model_params: dict[str, Any] = {}
    transfer_params: dict[str, Any] = {}
    if config.search is not None and config.search.space and name != "auto":
        out.search = tune(config, data, strategy=name, console=console)
        model_params, transfer_params = apply_params(out.search.best_params)
        out.extra["search"] = out.search.to_dict()
    guard_config = config.transfer.guard
    if name == "none":
        template = build_model(config, model_params)
        model, seconds, _ = _target_only(config, data, template)
        out.models["target_only"], out.seconds["target_only"] = model, seconds
        out.strategies["target_only"] = TargetOnly(template)
        return out
    if name == "auto":
        settings = auto or AutoSettings()
        out.auto = _auto(config, data, model_params, settings, console)
        out.guard = out.auto.guard
        out.extra["auto"] = {
            "tried": out.auto.tried,
            "skipped": out.auto.skipped,
            "other_families": settings.other_families,
            "budget_seconds": settings.budget_seconds,
        }
        assert out.auto.selection is not None
        out.strategies = {
            "target_only": TargetOnly(build_model(config, model_params)),
            "transfer": out.auto.selection.candidate,
        }
    elif _multi_source(config, data):
        chosen = build_strategy(config, name, model_params, transfer_params)
        _check_from_artifact(config, chosen)
        out.strategies = {"target_only": chosen.baseline(), "transfer": chosen}
        out.multi = guarded_sources(
            chosen, data, weights=config.transfer.weights, levels=config.transfer.weight_levels,
            contribution=config.transfer.contribution is not False, keep=config.transfer.keep_sources,
            metric=guard_config.metric,
            require_significant=guard_config.require_significant, seed=config.seed, console=console,
        )  # fmt: skip
        out.guard = out.multi.guard
        out.extra["multi_source"] = out.multi.to_dict()
    else:
        chosen = build_strategy(config, name, model_params, transfer_params)
        _check_from_artifact(config, chosen)
        out.strategies = {"target_only": chosen.baseline(), "transfer": chosen}
        out.guard = guarded_transfer(
            chosen, data, metric=guard_config.metric, require_significant=guard_config.require_significant,
            seed=config.seed, console=console,
        )  # fmt: skip
    out.models = {"target_only": out.guard.baseline_model, "transfer": out.guard.transfer_model}
    out.seconds = {"target_only": out.guard.seconds["baseline"], "transfer": out.guard.seconds["transfer"]}
    out.kept = "transfer" if out.guard.kept == "transfer" else "target_only"
    out.extra["guard"] = out.guard.to_dict()
    return out


def _multi_source(config: ExperimentConfig, data: TransferData) -> bool:
    """Whether a one-model transfer goes through :func:`guarded_sources` (weights chosen on validation,
    each source's contribution, unhelpful sources dropped): ``weights = "auto"``, ``contribution = true``,
    or several sources unless ``contribution = false``."""
    t = config.transfer
    return t.weights == "auto" or bool(t.contribution) or (t.contribution is None and len(data.sources) > 1)


def _check_multi_source(config: ExperimentConfig, strategy: str | None) -> None:
    t = config.transfer
    if t.weights != "auto" and not t.contribution:
        return
    if config.families:
        raise ValueError(
            "transfer.weights = 'auto' and transfer.contribution apply to one [model] with one strategy; "
            "this experiment has [[families]]: run the family as its own experiment"
        )
    if (strategy or t.strategy) in ("none", "auto"):
        raise ValueError(
            f"transfer.weights = 'auto' and transfer.contribution need a transfer strategy, not "
            f"{strategy or t.strategy!r}: name one (e.g. --strategy joint)"
        )


def _check_overlap(data: TransferData) -> None:
    """Refuse sources that share nothing with the target, by name, before any training."""
    disjoint = data.sources_without_overlap()
    if disjoint:
        raise ValueError(no_overlap_reason(disjoint))


def _contribution_table(data: TransferData, fitted: _Fitted, seed: int, console: Any) -> dict[str, Any]:
    """The run's source-contribution table: validation rows plus the same differences on test."""
    assert fitted.multi is not None and fitted.multi.contribution is not None
    measured = fitted.multi.contribution
    rows = contribution_on_test(measured, data.split, seed=seed)
    if console is not None:
        console.print(
            f"source contribution ({measured.metric}; leave-one-out = mix - mix without the source, "
            "alone = the source alone - target-only; paired 95% CI):",
            highlight=False,
        )
        for row in rows:
            console.print(
                f"  {row['source']:<20} {row['effect']:<13} valid {row['valid_difference']:+.4f} "
                f"[{row['valid_ci_low']:+.4f}, {row['valid_ci_high']:+.4f}]  "
                f"test {row['test_difference']:+.4f} "
                f"[{row['test_ci_low']:+.4f}, {row['test_ci_high']:+.4f}]",
                highlight=False,
            )
    return {
        "metric": measured.metric,
        "weights": measured.weights,
        "kept_weights": fitted.multi.weights,
        "definition": "leave_one_out: the mix at the given weights minus the mix without the source; alone: "
        "the source alone minus the target-only model; paired per-user bootstrap 95% intervals",
        "rows": rows,
    }


def _fit_families(config: ExperimentConfig, data: TransferData, mode: str, console: Any) -> _Fitted:
    """Every family: its model target-only and, in transfer mode, its strategy guarded against it.
    The run keeps the best on validation of what each guard kept."""
    out = _Fitted(extra={"strategy": "families"})
    guard_config = config.transfer.guard
    kept_valid: dict[str, float] = {}
    decisions = []
    for family in config.families:
        model = build_model(config, model=family.model)
        if mode == "train" or family.transfer_name is None:
            fitted, seconds, score = _target_only(config, data, model)
            out.models[family.name], out.seconds[family.name] = fitted, seconds
            out.strategies[family.name] = TargetOnly(model)
            kept_valid[family.name] = score
            continue
        strategy = build_strategy(config, family.strategy, model=family.model, params=family.params)
        _check_from_artifact(config, strategy)
        out.strategies[family.name], out.strategies[family.transfer_name] = strategy.baseline(), strategy
        guard = guarded_transfer(
            strategy, data, metric=guard_config.metric, require_significant=guard_config.require_significant,
            seed=config.seed, console=console,
        )  # fmt: skip
        out.guards[family.name] = guard
        out.models[family.name], out.models[family.transfer_name] = guard.baseline_model, guard.transfer_model
        out.seconds[family.name] = guard.seconds["baseline"]
        out.seconds[family.transfer_name] = guard.seconds["transfer"]
        transfer_kept = guard.kept == "transfer"
        kept = family.transfer_name if transfer_kept else family.name
        kept_valid[kept] = guard.transfer_score if transfer_kept else guard.baseline_score
        decisions.append(
            {**guard.to_dict(), "baseline": family.name, "candidate": family.transfer_name, "chosen": kept}
        )
    out.kept = max(kept_valid, key=kept_valid.__getitem__)
    out.extra["families"] = [[f.name, f.transfer_name] for f in config.families if f.transfer_name]
    out.extra["negative_transfer_guard"] = {
        "metric": guard_config.metric,
        "families": decisions,
        "kept_valid": kept_valid,
        "chosen": out.kept,
        f"chosen_valid_{guard_config.metric}": kept_valid[out.kept],
    }
    return out


def _check_from_artifact(config: ExperimentConfig, strategy: TransferStrategy) -> None:
    """With ``[transfer] from``, refuse a strategy that does not start from a source model."""
    if config.transfer.sources:
        from crossrec.experiment.registry import check_transfers_from_artifact

        check_transfers_from_artifact(strategy)


def _describe_domain(domain: Domain | None) -> dict[str, Any] | None:
    if domain is None:
        return None
    return {
        "name": domain.name,
        "users": domain.n_users,
        "items": domain.n_items,
        "interactions": len(domain.interactions),
    }


def _describe_data(config: ExperimentConfig, data: TransferData) -> dict[str, Any]:
    return {
        "name": config.data.builtin or str(config.data.bundle),
        "target": _describe_domain(data.target),
        "sources": [_describe_domain(s.domain) or {"name": s.name} for s in data.sources],
        "shared_items": int(sum(s.n_item_links for s in data.sources)),
        "linked_users": int(sum(s.n_user_links for s in data.sources)),
    }


def item_categories(domain: Domain | None, column: str) -> np.ndarray:
    """One integer category per item: the (first) value of attribute ``column`` (lists, e.g. genres,
    give their first entry; an item without one gets its own empty category)."""
    table = None if domain is None else domain.item_features
    if table is None or column not in table:
        have = [] if table is None else list(table.columns)
        raise ValueError(
            f"evaluation.item_categories = {column!r}, but the target's items have no such attribute "
            f"(they have: {have or 'none'})"
        )
    first = [
        (value[0] if len(value) else "") if isinstance(value, list | tuple | np.ndarray) else value
        for value in table[column]
    ]
    codes, _ = pd.factorize(pd.Series(first, dtype=object).fillna(""))
    return codes.astype(np.int64)


def _target_only_keys(config: ExperimentConfig, fitted: _Fitted) -> list[str]:
    if config.families:
        return [family.name for family in config.families if family.name in fitted.models]
    return [key for key in ("target_only",) if key in fitted.models]


def _curve_point(
    config: ExperimentConfig,
    data: TransferData,
    fraction: float,
    sparse: Split,
    mode: str,
    strategy: str | None,
    console: Any,
    auto: AutoSettings | None = None,
    full: _Fitted | None = None,
) -> dict[str, Any]:
    """One point of a data-efficiency curve: the whole run (search, guard, families) on ``sparse``
    (each target user keeps ``fraction`` of her training data; validation and test unchanged); the
    best target-only model and the kept model chosen on validation, both scored once on test.
    ``full`` is the run's own fit, reused for ``fraction == 1`` (the same data) instead of refitting."""
    metric = config.transfer.guard.metric
    point = dataclasses.replace(data, split=sparse) if fraction < 1 else data
    started = time.perf_counter()
    if fraction == 1 and full is not None:
        fitted = full
    elif config.families:
        fitted = _fit_families(config, point, mode, console)
    else:
        fitted = _fit_one(config, point, mode, strategy, console, auto)
    on_valid = {
        key: float(point.per_user(fitted.models[key], metric)[1].mean())
        for key in _target_only_keys(config, fitted)
    }
    best = max(on_valid, key=on_valid.__getitem__)
    tests = {
        key: evaluate_model(
            fitted.models[key].scorer(),
            sparse,
            part="test",
            metrics=[metric.partition("@")[0]],
            ks=[int(metric.partition("@")[2])],
            seed=config.seed,
        )
        for key in {best, fitted.kept}
    }
    kept_values = tests[fitted.kept].per_user[metric].to_numpy()
    best_values = tests[best].per_user[metric].to_numpy()
    low, high = paired_bootstrap_ci(kept_values, best_values, seed=config.seed)
    out = {
        "fraction": fraction,
        "metric": metric,
        "train_interactions": len(sparse.train),
        "best_target_only": best,
        f"best_target_only_{metric}": float(best_values.mean()),
        f"best_target_only_{metric}_ci": [float(v) for v in bootstrap_mean_ci(best_values, seed=config.seed)],
        "kept": fitted.kept,
        f"kept_{metric}": float(kept_values.mean()),
        f"kept_{metric}_ci": [float(v) for v in bootstrap_mean_ci(kept_values, seed=config.seed)],
        "gain_ci_low": low,
        "gain_ci_high": high,
        "seconds": time.perf_counter() - started,
    }
    if console is not None:
        console.print(
            f"curve {fraction:g}: best target-only {best} {metric} {out[f'best_target_only_{metric}']:.4f}, "
            f"kept {fitted.kept} {out[f'kept_{metric}']:.4f} (gain CI [{low:+.4f}, {high:+.4f}])"
        )
    return out


def run_experiment(
    config: ExperimentConfig,
    *,
    mode: str = "transfer",
    strategy: str | None = None,
    console: Any = None,
    auto: AutoSettings | None = None,
    curve: str | Sequence[float] | None = None,
) -> ExperimentResult:
    """Run ``config``: ``mode="train"`` fits the model(s) target-only; ``"transfer"`` runs the strategy
    (``strategy`` overrides the file's; ``"auto"`` tries what the data allows around ``[model]``,
    see ``auto``) with the guard, or every family of ``[[families]]`` each with its own guard. Only
    validation is read until the final evaluation on test.

    ``auto.budget_seconds`` bounds ``auto``'s candidates and, when the file's ``[search]`` sets no
    ``timeout_seconds``, the search.

    ``curve`` (e.g. ``"0.05,0.1,0.25,0.5,1"``) also runs the experiment with each fraction of every
    target user's training interactions (:func:`crossrec.evaluation.efficiency_curve`; validation and
    test unchanged, so every point is scored on the same users and items) and records the best
    target-only and the kept model of each point under ``extra["curve"]`` in ``results.json``."""
    import torch

    started = time.perf_counter()
    fractions = parse_fractions(curve) if curve is not None else ()
    if config.families and strategy is not None:
        raise ValueError(
            f"--strategy {strategy} replaces the [transfer] strategy, but this experiment has [[families]]; "
            "set each family's strategy in the file instead"
        )
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    budget = auto.budget_seconds if auto is not None else None
    if budget is not None and config.search is not None and config.search.timeout_seconds is None:
        config.search.timeout_seconds = budget
    # refuse a run folder inside the inputs before any training, not after it
    inputs = [path for path in (config.data.bundle, config.data.data_dir) if path is not None]
    run_dir = _new_run_dir(config.output_dir, config.name)
    check_run_folder(run_dir, inputs)
    if mode != "train":
        _check_multi_source(config, strategy)
    data, references = _prepare(config, links_required=mode != "train")
    if mode != "train":
        _check_overlap(data)
    data = data.with_pretraining_cache()  # a deployment refit reuses the source models
    categories = (
        item_categories(data.target, config.evaluation.item_categories)
        if config.evaluation.item_categories
        else None
    )
    # every point of a curve is built (and a split without validation refused) before any training
    curve_splits = efficiency_curve(data.split, fractions, seed=config.seed) if fractions else []
    if config.families:
        fitted = _fit_families(config, data, mode, console)
    else:
        fitted = _fit_one(config, data, mode, strategy, console, auto)

    # a linked vs unlinked slice whenever some target users are linked to a source
    linked = np.zeros(data.split.n_users, dtype=bool)
    for source in data.sources:
        if source.user_links is not None:
            linked[source.user_links.target] = True
    groups = {"linked": linked} if linked.any() else None

    def on_test(model: Recommender, rerank: Any = None) -> ModelEvaluation:
        return evaluate_model(
            model.scorer(), data.split, part="test", metrics=config.evaluation.metrics,
            ks=config.evaluation.ks, item_categories=categories, user_groups=groups, rerank=rerank,
            seed=config.seed,
        )  # fmt: skip

    evaluations = {key: on_test(model) for key, model in fitted.models.items()}
    rerank_extra: dict[str, Any] = {}
    if config.rerank is not None:  # every model's lists re-ranked too (rows "<model>+rerank")
        stages = _rerank_stages(config, data, fitted, categories, rerank_extra)
        evaluations |= {f"{key}+rerank": on_test(fitted.models[key], stage) for key, stage in stages.items()}
        if fitted.kept in stages:
            rerank_extra["frontier"] = _frontier(config, data, fitted, stages[fitted.kept], categories)
    points = [
        _curve_point(config, data, fraction, sparse, mode, strategy, console, auto, fitted)
        for fraction, sparse in curve_splits
    ]
    if fitted.multi is not None and fitted.multi.contribution is not None:
        fitted.extra["source_contribution"] = _contribution_table(data, fitted, config.seed, console)
    extra: dict[str, Any] = {
        **fitted.extra,
        **rerank_extra,
        **({"curve": points} if points else {}),
        "kept": fitted.kept,
        "decided_on": decided_on(data.split),
        "data": data.describe(),
        "dataset": _describe_data(config, data),
    }
    curves = {k: m.history_.epochs for k, m in fitted.models.items() if hasattr(m, "history_")}
    baseline = "target_only" if not config.families and len(evaluations) > 1 else None
    write_run(
        run_dir, evaluations, split=data.split, config=json.loads(config.model_dump_json()),
        timings={"train_seconds": fitted.seconds, "total_seconds": time.perf_counter() - started},
        learning_curves=curves, seeds={"experiment": config.seed}, extra=extra, baseline=baseline,
        item_categories=categories, seed=config.seed, title=config.title or config.name,
        models=_models_to_keep(config, fitted), keep_models=config.keep_models or config.save_artifact,
        inputs=inputs, user_groups=groups,
    )  # fmt: skip
    summary = {key: evaluation.summary for key, evaluation in evaluations.items()}
    artifact = None
    if config.save_artifact:
        artifact = _save_kept(
            config, data, run_dir, fitted, summary[fitted.kept], references, console, categories
        )
    return ExperimentResult(
        run_dir=run_dir,
        summary=summary,
        kept=fitted.kept,
        guard=fitted.guard,
        auto=fitted.auto,
        search=fitted.search,
        guards=fitted.guards,
        models=fitted.models,
        train_seconds=fitted.seconds,
        evaluations=evaluations,
        data=data,
        extra=extra,
        artifact=artifact,
    )


def _models_to_keep(config: ExperimentConfig, fitted: _Fitted) -> dict[str, Recommender]:
    """Every fitted model with ``keep_models``; else, when an artifact is saved, the split-fitted
    kept model (the one evaluated; the artifact holds its refit on all data)."""
    if config.keep_models:
        return fitted.models
    return {fitted.kept: fitted.models[fitted.kept]} if config.save_artifact else {}


def _rerank_stages(
    config: ExperimentConfig,
    data: TransferData,
    fitted: _Fitted,
    categories: np.ndarray | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Each model's test stage of ``[rerank]`` (history: the known items, as an artifact serves); models
    without item vectors are skipped under ``similarity = 'embedding'`` (listed in ``extra``)."""
    assert config.rerank is not None
    stages, skipped = {}, []
    for key, model in fitted.models.items():
        if config.rerank.similarity == "embedding" and model.item_vectors() is None:
            skipped.append(key)
            continue
        stages[key] = rerank_stage(
            config.rerank, data.split, part="test", model=model, item_categories=categories
        )
    if skipped:
        extra["rerank_skipped"] = {"models": skipped, "why": "no item vectors for MMR over embeddings"}
    return stages


def _frontier(
    config: ExperimentConfig, data: TransferData, fitted: _Fitted, stage: Any, categories: np.ndarray | None
) -> dict[str, Any]:
    """The kept model's accuracy-diversity frontier on test (report.html draws it)."""
    model = fitted.models[fitted.kept]
    ks = config.evaluation.ks
    return frontier_record(
        model.scorer(), data.split, stage, model=fitted.kept, k=frontier_k(ks), list_length=max(ks),
        item_categories=categories, item_embeddings=model.item_vectors() if categories is None else None,
        seed=config.seed,
    )  # fmt: skip


def _save_kept(
    config: ExperimentConfig,
    data: TransferData,
    run_dir: Path,
    fitted: _Fitted,
    summary: dict[str, float],
    references: list[dict[str, Any]],
    console: Any = None,
    categories: np.ndarray | None = None,
) -> Path:
    """The kept model as a verified artifact in ``run_dir/artifact``: refit on every target
    interaction (``refit_artifact``, default; seen items: all of them), else the split-fitted
    model (seen items: train + valid). Its manifest records the lineage."""
    from crossrec.artifacts import save_artifact
    from crossrec.experiment.registry import deployment_split, refit_for_deployment, target_lineage

    if data.target is None:  # pragma: no cover - prepare() always sets the target domain
        raise ValueError("save_artifact needs the target domain's vocabularies")
    strategy = fitted.strategies[fitted.kept]
    model = fitted.models[fitted.kept]
    if config.refit_artifact:
        weighted = data if fitted.multi is None else with_weights(data, fitted.multi.weights)
        model, refit = refit_for_deployment(strategy, model, weighted)
        seen = deployment_split(data.split).matrix("train")
        if console is not None:
            epochs = "" if refit["epochs"] is None else f", {refit['epochs']} epochs chosen on validation"
            console.print(
                f"deployment refit of {fitted.kept} on train+valid+test ({refit['interactions']} "
                f"interactions{epochs}): {refit['seconds']:.1f} s",
                highlight=False,
            )
    else:
        refit = {"on": "train", "note": "split-fitted model (refit_artifact = false)"}
        seen = data.train + data.valid
    return save_artifact(
        run_dir / "artifact",
        model,
        users=data.target.users,
        items=data.target.items,
        train=seen,
        config={"experiment": json.loads(config.model_dump_json(by_alias=True)), "model": fitted.kept},
        evaluation={"part": "test", "evaluated_model": f"models/{fitted.kept}", **summary},
        lineage=target_lineage(data, strategy, fitted.kept, references, refit),
        **_artifact_rerank(config, categories, model),
    )


def _artifact_rerank(
    config: ExperimentConfig, categories: np.ndarray | None, model: Recommender
) -> dict[str, Any]:
    """What ``save_artifact`` needs to re-rank served lists as the ``+rerank`` rows were evaluated
    (nothing when there is no ``[rerank]``, or MMR over embeddings and the model has none)."""
    if config.rerank is None or (config.rerank.similarity == "embedding" and model.item_vectors() is None):
        return {}
    needs = config.rerank.method == "calibration" or config.rerank.similarity != "embedding"
    return {
        "rerank": config.rerank,
        "item_categories": categories if needs else None,
        "rerank_seed": config.seed,
    }
