"""Pretrain once, transfer many times, deploy, update.

* :func:`pretrain_source` (``crossrec pretrain``): the model a transfer strategy starts from, trained
  on the source domain(s) once and saved as a *source artifact* (model, vocabularies, feature
  encoders inside the model, every source interaction, data fingerprint, config and the source
  holdout's validation metrics), in the same verified artifact format as any other.
* :func:`sources_from_artifacts` (``[transfer] from``, ``crossrec transfer --from``): the sources of a
  transfer read from source artifacts instead of retrained.
* :func:`refit_for_deployment`: the kept model of a run refit on every target interaction (train +
  valid + test) with the hyperparameters and epoch counts chosen on validation; the artifact that
  is served, whose "seen" items are then everything each user interacted with.
* :func:`update_artifact` (``crossrec update``): a deployed model continued on new interactions, new
  users and items added to its vocabularies and started by fold-in.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossrec.artifacts import Artifact, ArtifactError, load_artifact, save_artifact
from crossrec.artifacts.lineage import artifact_reference, data_fingerprint
from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.experiment.build import build_strategy
from crossrec.experiment.config import ExperimentConfig
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models.base import Recommender
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.fold_in import fold_in_users
from crossrec.models.gradient import GradientRecommender
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.splitting.splits import Split
from crossrec.transfer import Links, SourceData, TransferData, TransferNotPossibleError, TransferStrategy
from crossrec.transfer.base import STRATEGY_REGISTRY, get_strategy_class

__all__ = [
    "PretrainResult",
    "UpdateResult",
    "deployment_split",
    "merge_domains",
    "pretrain_source",
    "refit_for_deployment",
    "sources_from_artifacts",
    "strategies_from_artifact",
    "update_artifact",
]


def strategies_from_artifact() -> list[str]:
    """Names of the strategies that can transfer from a source artifact."""
    get_strategy_class("none")  # loads the optional strategies too
    return sorted(name for name, cls in STRATEGY_REGISTRY.items() if cls.transfers_from_artifact)


def check_transfers_from_artifact(strategy: TransferStrategy) -> None:
    """Refuse a strategy that does not start from a source model (it would need the source domain)."""
    if not strategy.transfers_from_artifact:
        raise TransferNotPossibleError(
            f"strategy {strategy.name!r} cannot transfer from a source artifact ([transfer] from / --from): "
            f"it does not start from a model trained on the source; strategies that can: "
            f"{', '.join(strategies_from_artifact())}. Remove [transfer] from to run it on the source domains"
        )


# -- source artifacts ------------------------------------------------------------------------------


def merge_domains(domains: Sequence[Domain], *, link_users: str | None, link_items: str | None) -> Domain:
    """One domain from several (``crossrec pretrain`` on more than one source domain).

    Entities are merged by raw id only where the data section says raw ids name the same entity
    across domains (``link_users`` / ``link_items`` = ``"ids"``); otherwise each id is prefixed with
    its domain name (``ml-1m:42``). Feature tables are dropped (their schemas may differ).
    """
    if len(domains) == 1:
        return domains[0]

    def raw(domain: Domain, vocabulary: Vocabulary, indices: np.ndarray, shared: bool) -> np.ndarray:
        ids = vocabulary.lookup(indices).astype(str)
        return ids if shared else np.char.add(f"{domain.name}:", ids)

    user_ids = [raw(d, d.users, d.interactions.user, link_users == "ids") for d in domains]
    item_ids = [raw(d, d.items, d.interactions.item, link_items == "ids") for d in domains]
    users = Vocabulary(dict.fromkeys(np.concatenate(user_ids).tolist()))
    items = Vocabulary(dict.fromkeys(np.concatenate(item_ids).tolist()))
    parts = [
        Interactions(users.index(u), items.index(i), d.interactions.value, d.interactions.timestamp)
        for d, u, i in zip(domains, user_ids, item_ids, strict=True)
    ]
    return Domain("+".join(d.name for d in domains), users, items, Interactions.concat(parts))


@dataclass
class PretrainResult:
    """What :func:`pretrain_source` saved: the artifact folder, the source holdout's validation
    metrics and the training seconds."""

    artifact: Path
    evaluation: dict[str, float]
    seconds: float
    model: Recommender


def _source_metrics(model: Recommender, source: SourceData, seed: int) -> dict[str, float]:
    train, valid = source.holdout(0.1, seed)
    result = evaluate_ranking(model.scorer(), valid, train, metrics=["ndcg", "recall"], ks=[10, 20])
    return {key: float(value) for key, value in result.mean().items()}


def _feature_schema(domain: Domain) -> dict[str, dict[str, str]]:
    return {"item": dict(domain.item_feature_kinds), "user": dict(domain.user_feature_kinds)}


def pretrain_source(
    config: ExperimentConfig,
    output: str | Path,
    *,
    strategy: str | None = None,
    overwrite: bool = False,
    console: Any = None,
) -> PretrainResult:
    """Train the model ``strategy`` (default: the file's ``[transfer]`` strategy) starts from on the
    source domain(s) of ``config.data`` and save it as a source artifact at ``output``.

    The model is fitted exactly as the strategy fits it inside a transfer (same configuration, same
    seed, early stopping on a 10% per-user holdout of the source), so ``crossrec transfer --from``
    gives the same model as a transfer that pretrains in-process. Several source domains are merged
    into one (:func:`merge_domains`). The artifact's seen items are every source interaction (what
    ``joint`` reads); its evaluation is the holdout's validation metrics.
    """
    from crossrec.experiment.runner import load_domains

    if config.transfer.sources:
        raise ValueError(
            "[transfer] from names source artifacts: pretraining reads the source domains instead"
        )
    name = strategy or config.transfer.strategy
    if name in ("none", "auto"):
        raise ValueError(
            f"say which strategy the source model is for (--strategy warm_start, ...): {name!r} does not "
            f"start from a source model; strategies that do: {', '.join(strategies_from_artifact())}"
        )
    chosen = build_strategy(config, name)
    check_transfers_from_artifact(chosen)
    _, sources, _, _ = load_domains(config)
    domain = merge_domains(sources, link_users=config.data.link_users, link_items=config.data.link_items)
    source = SourceData(
        domain.name, domain.interactions.to_csr(domain.n_users, domain.n_items), domain=domain
    )
    started = time.perf_counter()
    model = chosen.pretrain_source(source, config.seed)
    seconds = time.perf_counter() - started
    evaluation = _source_metrics(model, source, config.seed)
    lineage = {
        "role": "source",
        "strategy": name,
        "data": {
            "domains": [s.name for s in sources],
            "domain": domain.name,
            "fingerprint": data_fingerprint(source.interactions, domain.users, domain.items),
            "users": domain.n_users,
            "items": domain.n_items,
            "interactions": int(source.interactions.nnz),
        },
        "feature_schema": _feature_schema(domain),
        "holdout": 0.1,
        "seed": config.seed,
    }
    inputs = [path for path in (config.data.bundle, config.data.data_dir) if path is not None]
    folder = save_artifact(
        output, model, users=domain.users, items=domain.items, train=source.interactions,
        config={"experiment": json.loads(config.model_dump_json(by_alias=True)), "pretrain": name},
        evaluation={"part": "source holdout (10% per user)", "train_seconds": seconds, **evaluation},
        overwrite=overwrite, inputs=inputs, lineage=lineage,
    )  # fmt: skip
    if console is not None:
        console.print(
            f"pretrained {model.name} on {domain.name} ({source.interactions.nnz} interactions) in "
            f"{seconds:.1f} s: holdout ndcg@10 {evaluation.get('ndcg@10', float('nan')):.4f}",
            highlight=False,
        )
    return PretrainResult(artifact=Path(folder), evaluation=evaluation, seconds=seconds, model=model)


def _artifact_links(
    kind: str | None,
    entity: str,
    artifact: Artifact,
    target: Domain,
    bundle_path: Path | None,
) -> Links | None:
    """Links from the artifact's users/items to the target's, as ``data.link_users``/``link_items`` say."""
    vocabulary = artifact.items if entity == "item" else artifact.users
    target_vocabulary = target.items if entity == "item" else target.users
    if kind in (None, "none"):
        return None
    if kind == "ids":
        return Links.by_shared_ids(vocabulary, target_vocabulary)
    # "bundle": the bundle's link table indexes its own source domain; translate through raw ids
    from crossrec.data.bundle import load_bundle

    domains = artifact.metadata.lineage.get("data", {}).get("domains") or []
    if bundle_path is None or len(domains) != 1:
        raise ValueError(
            f"link_{entity}s = 'bundle' with a source artifact needs data.bundle holding the artifact's one "
            f"source domain (the artifact was trained on {domains or 'unrecorded domains'}); "
            "use 'ids' or 'none'"
        )
    bundle = load_bundle(bundle_path)
    if domains[0] not in bundle.domains or target.name not in bundle.domains:
        raise ValueError(
            f"link_{entity}s = 'bundle': {bundle_path} has no domain {domains[0]!r} to link the artifact's "
            f"{entity}s through (it has {sorted(bundle.domains)}); use 'ids' or 'none'"
        )
    pairs = (bundle.item_links if entity == "item" else bundle.user_links)(domains[0], target.name)
    source_domain, target_domain = bundle.domains[domains[0]], bundle.domains[target.name]
    source_vocab = source_domain.items if entity == "item" else source_domain.users
    bundle_target = target_domain.items if entity == "item" else target_domain.users
    source = vocabulary.index(source_vocab.lookup(pairs[0]), missing="minus_one")
    linked = target_vocabulary.index(bundle_target.lookup(pairs[1]), missing="minus_one")
    keep = (source >= 0) & (linked >= 0)
    _, first = np.unique(linked[keep], return_index=True)
    return Links(source[keep][first], linked[keep][first])


def sources_from_artifacts(
    config: ExperimentConfig, target: Domain
) -> tuple[list[SourceData], list[dict[str, Any]]]:
    """The sources of ``[transfer] from``: one :class:`SourceData` per source artifact (its model,
    vocabularies and stored interactions, linked to ``target`` as the data section says) and the
    reference of each artifact for the target's lineage."""
    sources, references = [], []
    for path in config.transfer.sources:
        try:
            artifact = load_artifact(path)
        except ArtifactError as error:
            raise ValueError(f"[transfer] from = {str(path)!r}: {error}") from error
        lineage = artifact.metadata.lineage
        name = str(lineage.get("data", {}).get("domain") or Path(path).name)
        domain = Domain(
            name,
            artifact.users,
            artifact.items,
            _interactions(artifact.seen),
        )
        weight = config.data.source_weights.get(name, 1.0)
        sources.append(
            SourceData(
                name,
                artifact.seen,
                item_links=_artifact_links(
                    config.data.link_items, "item", artifact, target, config.data.bundle
                ),
                user_links=_artifact_links(
                    config.data.link_users, "user", artifact, target, config.data.bundle
                ),
                weight=weight,
                domain=domain,
                model=artifact.model,
            )
        )
        references.append(artifact_reference(artifact))
    return sources, references


def _interactions(matrix: sp.csr_matrix) -> Interactions:
    coo = sp.csr_matrix(matrix).tocoo()
    return Interactions(coo.row.astype(np.int64), coo.col.astype(np.int64), np.ones(coo.nnz, np.float32))


# -- deployment refit ------------------------------------------------------------------------------


def deployment_split(split: Split) -> Split:
    """A split whose training part is every interaction of ``split`` (train + valid + test) and whose
    validation and test parts are empty: what a served model is refit on."""
    everything = Interactions.concat([split.train, split.valid, split.test])
    empty = Interactions.concat([])
    return Split(
        everything, empty, empty, split.n_users, split.n_items, protocol="deployment (train+valid+test)",
        seed=split.seed, params={"refit_of": split.protocol},
    )  # fmt: skip


def _fixed_epochs(model: Recommender, epochs: int) -> Recommender:
    """``model``'s configuration trained for exactly ``epochs`` epochs with no validation."""
    params = model.get_params()
    optim = params["optim"]
    optim = optim.model_dump(exclude_unset=True) if hasattr(optim, "model_dump") else dict(optim or {})
    params["optim"] = {**optim, "epochs": epochs, "eval_every": epochs + 1}
    return type(model)(**params)


def _with_chosen_epochs(
    strategy: TransferStrategy, fitted: Recommender
) -> tuple[TransferStrategy, int | None]:
    """A clone of ``strategy`` whose target model trains the epoch count validation chose for
    ``fitted`` (its best epoch), without validation; unchanged for models without epochs."""
    clone = strategy.clone()
    model = getattr(clone, "model", None)
    history = getattr(fitted, "history_", None)
    if not isinstance(model, GradientRecommender) or history is None:
        return clone, None
    epochs = max(1, int(history.best_epoch))
    clone.model = _fixed_epochs(model, epochs)
    return clone, epochs


def refit_for_deployment(
    strategy: TransferStrategy, fitted: Recommender, data: TransferData
) -> tuple[Recommender, dict[str, Any]]:
    """Refit ``strategy`` (the kept one, with the hyperparameters chosen on validation) on every
    target interaction, training ``fitted``'s best validation epoch count; models pretrained on a
    source are reused (a source artifact, or the run's cache). Returns the model and what was done."""
    chosen, epochs = _with_chosen_epochs(strategy, fitted)
    started = time.perf_counter()
    model = chosen.fit(dataclasses.replace(data, split=deployment_split(data.split)))
    return model, {
        "on": "train+valid+test",
        "interactions": int(len(data.split.train) + len(data.split.valid) + len(data.split.test)),
        "strategy": strategy.label,
        "epochs": epochs,
        "epochs_chosen_on": "validation (best epoch of the split-fitted model)" if epochs else None,
        "seconds": time.perf_counter() - started,
    }


def target_lineage(
    data: TransferData,
    strategy: TransferStrategy,
    kept: str,
    references: list[dict[str, Any]],
    refit: dict[str, Any],
) -> dict[str, Any]:
    """The lineage of a run's served artifact: its sources (artifact references for ``[transfer]
    from``, else the source domains trained in the run), strategy, target data and refit."""
    assert data.target is not None
    everything = deployment_split(data.split).matrix("train")
    if references:
        sources = references
    else:
        sources = [
            {
                "domain": s.name,
                "trained": "in this run",
                "data_fingerprint": None
                if s.domain is None
                else data_fingerprint(s.interactions, s.domain.users, s.domain.items),
            }
            for s in data.sources
        ] if strategy.name != "none" else []  # fmt: skip
    return {
        "role": "target",
        "strategy": strategy.name,
        "model": kept,
        "sources": sources,
        "target_data": {
            "domain": data.target.name,
            "fingerprint": data_fingerprint(everything, data.target.users, data.target.items),
            "split_fingerprint": data.split.fingerprint(),
            "users": data.n_users,
            "items": data.n_items,
            "interactions": int(everything.nnz),
        },
        "refit": refit,
    }


# -- updates ---------------------------------------------------------------------------------------


@dataclass
class UpdateResult:
    """What :func:`update_artifact` wrote: the artifact, the sizes added and the seconds."""

    artifact: Path
    new_users: int
    new_items: int
    new_interactions: int
    epochs: int | None
    seconds: float
    model: Recommender


def _extended(vocabulary: Vocabulary, raw: np.ndarray) -> Vocabulary:
    known = vocabulary.index(raw, missing="minus_one")
    added = list(dict.fromkeys(np.asarray(raw, dtype=object)[known < 0].astype(str).tolist()))
    return Vocabulary([*vocabulary.ids.tolist(), *added]) if added else vocabulary


def _padded(matrix: sp.csr_matrix, shape: tuple[int, int]) -> sp.csr_matrix:
    coo = sp.csr_matrix(matrix).tocoo()
    return sp.csr_matrix((coo.data, (coo.row, coo.col)), shape=shape)


def update_model(
    model: Recommender,
    old_seen: sp.csr_matrix,
    combined: sp.csr_matrix,
    *,
    epochs: int | None = None,
) -> tuple[Recommender, int | None]:
    """``model`` continued on ``combined`` (its old interactions plus new ones; rows and columns past
    ``old_seen``'s are new users and items).

    Embedding models keep their vectors; new items are folded in from the old users who took them,
    new users from their items; then training continues warm-started for ``epochs`` (default: a
    fifth of the model's epoch budget, at least 1) without validation. Other models (closed form:
    EASE, ItemKNN, popularity) are refit on ``combined``.
    """
    n_old_users, n_old_items = old_seen.shape
    if not isinstance(model, EmbeddingRecommender):
        if getattr(model, "item_modalities", None) or getattr(model, "user_modalities", None):
            raise ValueError(
                f"{model.name} encodes attributes, and an update carries no feature tables: retrain it "
                "with crossrec transfer"
            )
        return model.clone().fit(combined, None), None
    users, items = model.user_vectors(), model.item_vectors()
    if epochs is None:
        epochs = max(1, int(model.optim.epochs) // 5)
    n_users, n_items = combined.shape
    item_table = np.zeros((n_items, items.shape[1]), np.float32)
    item_table[:n_old_items] = items
    if n_items > n_old_items:  # new items from the (old) users who took them
        takers = combined[:n_old_users, n_old_items:].T.tocsr()
        item_table[n_old_items:] = fold_in_users(users, takers)
    user_table = np.zeros((n_users, users.shape[1]), np.float32)
    user_table[:n_old_users] = users
    if n_users > n_old_users:
        user_table[n_old_users:] = fold_in_users(item_table, combined[n_old_users:])
    continued = _fixed_epochs(model, epochs)
    init = EmbeddingInit(user=user_table, item=item_table)
    return continued.fit_with(combined, None, FitInputs(init=init, label="update")), epochs


def update_artifact(
    artifact_path: str | Path,
    bundle_path: str | Path,
    output: str | Path,
    *,
    domain: str | None = None,
    epochs: int | None = None,
    overwrite: bool = False,
    console: Any = None,
) -> UpdateResult:
    """Continue a deployed artifact on the interactions of ``domain`` in the bundle at
    ``bundle_path`` (default: its target domain, or its only one) and save the result at ``output``;
    its lineage names the parent (see :func:`update_model`)."""
    from crossrec.data.bundle import load_bundle

    parent = load_artifact(artifact_path)
    bundle = load_bundle(bundle_path)
    name = domain or ((bundle.target_domains or list(bundle.domains))[0] if len(bundle.domains) else None)
    if name not in bundle.domains:
        raise ValueError(f"domain {name!r} is not in {bundle_path}; it has {sorted(bundle.domains)}")
    new = bundle.domains[name]
    raw_users = new.users.lookup(new.interactions.user)
    raw_items = new.items.lookup(new.interactions.item)
    users, items = _extended(parent.users, raw_users), _extended(parent.items, raw_items)
    added = sp.csr_matrix(
        (np.ones(len(raw_users), np.float32), (users.index(raw_users), items.index(raw_items))),
        shape=(len(users), len(items)),
    )
    old = _padded(parent.seen, added.shape)
    combined = ((old + added) > 0).astype(np.float32).tocsr()
    new_interactions = int(combined.nnz - old.nnz)
    started = time.perf_counter()
    model, used_epochs = update_model(parent.model, parent.seen, combined, epochs=epochs)
    seconds = time.perf_counter() - started
    note = None
    if not isinstance(parent.model, EmbeddingRecommender) and parent.metadata.lineage.get("sources"):
        note = (
            f"{parent.metadata.model} is refit on the target's interactions only: the source data the "
            "parent was trained with is not in the artifact (rerun the transfer to keep it)"
        )
        if console is not None:
            console.print(f"[yellow]warning:[/yellow] {note}", highlight=False)
    lineage = {
        **{k: v for k, v in parent.metadata.lineage.items() if k not in ("parent", "parent_lineage")},
        "role": "update",
        "parent": artifact_reference(parent),
        "parent_lineage": dict(parent.metadata.lineage),
        "update": {
            "bundle_domain": name,
            "new_users": len(users) - len(parent.users),
            "new_items": len(items) - len(parent.items),
            "new_interactions": new_interactions,
            "epochs": used_epochs,
            "seconds": seconds,
            "data_fingerprint": data_fingerprint(combined, users, items),
            **({"note": note} if note else {}),
        },
    }
    folder = save_artifact(
        output, model, users=users, items=items, train=combined, config=dict(parent.metadata.config),
        evaluation={"part": "none (an update is not evaluated; see the parent's evaluation)"},
        overwrite=overwrite, inputs=[bundle_path, artifact_path], lineage=lineage,
    )  # fmt: skip
    if console is not None:
        console.print(
            f"updated {parent.metadata.model}: +{lineage['update']['new_users']} users, "
            f"+{lineage['update']['new_items']} items, +{new_interactions} interactions, "
            f"{used_epochs if used_epochs is not None else 'closed-form'} epochs in {seconds:.1f} s",
            highlight=False,
        )
    return UpdateResult(
        artifact=Path(folder), new_users=lineage["update"]["new_users"],
        new_items=lineage["update"]["new_items"], new_interactions=new_interactions, epochs=used_epochs,
        seconds=seconds, model=model,
    )  # fmt: skip
