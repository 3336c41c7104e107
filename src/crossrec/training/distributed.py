"""Data-parallel BPR-MF training over several processes (one machine or many) with ``torch.distributed``.

How the work is shared
----------------------
Every rank holds a full replica of the user and item tables. Each epoch has one seeded permutation of
the training interactions, cut into global batches; rank ``r`` computes the ``r``-th contiguous part of
every global batch (a per-rank shard of the permutation, like ``DistributedSampler``, but aligned on
steps so that every rank takes the same number of steps). Negatives are drawn per global step from a
generator seeded by ``(seed, epoch, step)``.

How gradients are combined, and why not dense all-reduce or sharded tables
--------------------------------------------------------------------------
A step touches ``3 B`` rows out of hundreds of thousands, so a dense all-reduce of the table gradients
(``torch.nn.parallel.DistributedDataParallel``) would move the whole tables on every step. The BPR
gradient of each touched row is one scalar times another row of the replicated tables
(``d/du = c (p - n)``, ``d/dp = c u``, ``d/dn = -c u``), so ranks **all-gather four numbers per
interaction** (user, positive, negative, ``c``) and every rank applies the update of the whole global
batch to its replica: the sparse gradient is all-reduced exactly, at ``16`` bytes per interaction
instead of ``3 * 4 * dim``. Sharded tables (each rank owning a slice of rows, with all-to-all
exchanges of rows and gradients) would also split the update work and the memory, and are the better
choice only when the tables no longer fit in one machine's memory (over ~10^8 rows at ``dim`` 64);
replicas keep the step simple, deterministic and equal to the one-process step.

Consequences: the same seed and world size give identical tables (CPU ``index_add_`` is
deterministic); a different world size gives the same updates up to the order of floating-point
additions. Rank 0 writes checkpoints and the final model; the evaluation is sharded by users and the
per-user results are gathered on rank 0.

Entry points: :func:`train_distributed` (library; spawns ``nproc`` ranks through
``torch.distributed.run``), :func:`launch_with_torchrun` (relaunch any crossrec command line) and
:func:`run_rank` (what each rank runs; it reads ``RANK``/``WORLD_SIZE`` set by torchrun).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossrec.data.arrays import InteractionArrays, materialize_domain, split_arrays, write_arrays
from crossrec.training.fast_bpr import (
    BatchTerms,
    BPRTables,
    FastBPRConfig,
    GradientSync,
    PositiveFilter,
    run_epoch,
)

__all__ = [
    "DistributedResult",
    "DistributedTrainConfig",
    "RankContext",
    "evaluate_tables",
    "free_port",
    "launch_with_torchrun",
    "prepare_data",
    "run_rank",
    "train_distributed",
]

_PARTS = ("train", "valid", "test")


class DistributedTrainConfig(BaseModel):
    """A distributed training run: data, model, evaluation and output (validated once, here)."""

    model_config = ConfigDict(extra="forbid")

    builtin: Literal["movielens-cdr"] | None = Field(
        None, description="Train on a built-in dataset's target."
    )
    data_dir: Path | None = Field(None, description="Cache folder of built-in datasets.")
    bundle: Path | None = Field(None, description="A bundle folder from `crossrec ingest`.")
    domain: str | None = Field(
        None, description="Domain of the bundle to train on (default: its first target)."
    )
    split_ratios: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="Per-user train/valid/test."
    )
    split_seed: int = Field(2022, description="Seed of the split.")
    model: Literal["bpr_mf"] = Field("bpr_mf", description="Model (BPR-MF is the data-parallel one).")
    bpr: FastBPRConfig = Field(default_factory=FastBPRConfig, description="BPR-MF settings.")
    num_threads: int = Field(1, ge=1, description="torch threads per rank (use more ranks for more cores).")
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="Process-group backend; auto: nccl when CUDA is available, else gloo."
    )
    metrics: tuple[str, ...] = Field(("ndcg", "recall", "hit"), description="Test metrics.")
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs of the test metrics.")
    eval_users: int | None = Field(
        None, ge=1, description="Evaluate a seeded sample of this many test users."
    )
    eval_every: int = Field(0, ge=0, description="Epochs between validation NDCG@10 records (0: never).")
    checkpoint_every: int = Field(0, ge=0, description="Epochs between rank-0 checkpoints (0: only the end).")
    resume: bool = Field(False, description="Continue from output/checkpoint when it exists.")
    output: Path = Field(
        Path("runs/distributed"), description="Run folder: model/, checkpoint/, result.json."
    )
    work_dir: Path | None = Field(None, description="Where the split arrays go (default output/data).")
    progress: bool = Field(True, description="Print one line per epoch on rank 0.")

    @model_validator(mode="after")
    def _one_dataset(self) -> DistributedTrainConfig:
        if (self.builtin is None) == (self.bundle is None):
            raise ValueError("give exactly one of builtin (e.g. 'movielens-cdr') or bundle (a folder)")
        if len(self.split_ratios) != 3 or not np.isclose(sum(self.split_ratios), 1.0):
            raise ValueError(f"split_ratios must be three shares summing to 1, got {self.split_ratios}")
        return self

    @property
    def data_folder(self) -> Path:
        return self.work_dir if self.work_dir is not None else self.output / "data"


@dataclass
class DistributedResult:
    """What a run wrote (rank 0's view; also ``output/result.json``)."""

    output: Path
    world_size: int
    backend: str
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    evaluated_users: int = 0
    model_path: Path | None = None

    @classmethod
    def load(cls, output: str | Path) -> DistributedResult:
        """Read ``output/result.json``."""
        payload = json.loads((Path(output) / "result.json").read_text())
        payload["output"] = Path(payload["output"])
        payload["model_path"] = Path(payload["model_path"]) if payload.get("model_path") else None
        return cls(**{name: payload[name] for name in cls.__dataclass_fields__ if name in payload})


# --------------------------------------------------------------------------------------------- data


def prepare_data(config: DistributedTrainConfig) -> dict[str, InteractionArrays]:
    """Write the train/valid/test arrays once, before ranks start (they memory-map them).

    The built-in dataset uses :func:`crossrec.evaluation.random_split` (RecBole's split of the target);
    a bundle domain is streamed to arrays and split per user in bounded chunks
    (:func:`crossrec.data.arrays.split_arrays`). A data folder prepared from the same data and split
    settings (``prepared.json``) is reused.
    """
    folder = config.data_folder
    key = {
        "builtin": config.builtin, "data_dir": str(config.data_dir), "bundle": _bundle_key(config),
        "domain": config.domain, "ratios": list(config.split_ratios), "seed": config.split_seed,
    }  # fmt: skip
    marker = folder / "prepared.json"
    if marker.is_file() and json.loads(marker.read_text()) == key:
        return _open_parts(config)
    marker.unlink(missing_ok=True)
    parts = _prepare(config, folder)
    marker.write_text(json.dumps(key))
    return parts


def _bundle_key(config: DistributedTrainConfig) -> str | None:
    if config.bundle is None:
        return None
    manifest = json.loads((config.bundle / "manifest.json").read_text())
    return f"{config.bundle.resolve()}:{manifest['files']['interactions.parquet']['sha256']}"


def _prepare(config: DistributedTrainConfig, folder: Path) -> dict[str, InteractionArrays]:
    if config.builtin is not None:
        from crossrec.data.builtin import load_movielens_cdr
        from crossrec.evaluation import random_split

        _, target = load_movielens_cdr(config.data_dir)
        split = random_split(
            target.interactions, len(target.users), len(target.items), config.split_ratios, config.split_seed
        )
        return {
            part: write_arrays(
                getattr(split, part),
                split.n_users,
                split.n_items,
                folder / part,
                user_ids=target.users.ids,
                item_ids=target.items.ids,
                overwrite=True,
            )  # fmt: skip
            for part in _PARTS
        }
    assert config.bundle is not None
    domain = config.domain or _default_domain(config.bundle)
    arrays = materialize_domain(config.bundle, domain)
    return split_arrays(arrays, folder, config.split_ratios, config.split_seed, overwrite=True)


def _default_domain(bundle: Path) -> str:
    manifest = json.loads((bundle / "manifest.json").read_text())
    domains = manifest["domains"]
    targets = [name for name, info in domains.items() if info["role"] == "target"]
    return (targets or list(domains))[0]


def _open_parts(config: DistributedTrainConfig) -> dict[str, InteractionArrays]:
    return {part: InteractionArrays.open(config.data_folder / part) for part in _PARTS}


# ------------------------------------------------------------------------------------------ ranks


@dataclass(frozen=True)
class RankContext:
    """This process's place in the run (read from torchrun's environment variables)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @classmethod
    def from_environment(cls, backend: str = "auto") -> RankContext:
        """Join the process group when ``WORLD_SIZE`` is set (by torchrun); else a single process."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if "WORLD_SIZE" not in os.environ:
            return cls()
        if backend == "auto":
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        device = torch.device("cpu")
        if backend == "nccl":
            if not torch.cuda.is_available():
                raise RuntimeError("backend 'nccl' needs CUDA GPUs; use backend 'gloo' on CPUs")
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, init_method="env://")
        return cls(rank, world_size, local_rank, backend, device)


def _gather_sync(context: RankContext) -> GradientSync:
    """All-gather every rank's (user, positive, negative, coefficient) of the step, in rank order."""
    world = context.world_size

    def sync(terms: BatchTerms) -> BatchTerms:
        n = torch.tensor([len(terms.users)], dtype=torch.int64, device=context.device)
        sizes = [torch.zeros_like(n) for _ in range(world)]
        dist.all_gather(sizes, n)
        counts = [int(size) for size in sizes]
        width = max(counts)
        packed = torch.zeros(4, width, dtype=torch.int64, device=context.device)
        own = len(terms.users)
        packed[0, :own], packed[1, :own], packed[2, :own] = terms.users, terms.positives, terms.negatives
        packed[3, :own] = terms.coefficient.to(torch.float64).view(torch.int64)  # exact bits, one message
        gathered = [torch.empty_like(packed) for _ in range(world)]
        dist.all_gather(gathered, packed)
        whole = torch.cat([part[:, :count] for part, count in zip(gathered, counts, strict=True)], dim=1)
        coefficient = whole[3].contiguous().view(torch.float64).to(terms.coefficient.dtype)
        return BatchTerms(whole[0], whole[1], whole[2], coefficient, terms.loss)

    return sync


def _all_sum(values: list[float], context: RankContext) -> list[float]:
    if not context.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def evaluate_tables(
    user_table: torch.Tensor,
    item_table: torch.Tensor,
    truth: InteractionArrays,
    exclude: list[InteractionArrays],
    users: np.ndarray,
    *,
    metrics: tuple[str, ...] = ("ndcg", "recall", "hit"),
    ks: tuple[int, ...] = (10, 20),
) -> pd.DataFrame:
    """Full-ranking per-user metrics of ``users`` for dot-product tables (see
    :func:`crossrec.evaluation.evaluate_ranking`); items in ``exclude`` are never recommended."""
    from crossrec.evaluation import evaluate_ranking

    users = np.asarray(users, dtype=np.int64)
    if len(users) == 0:
        return pd.DataFrame(columns=["user"])
    truth_csr = truth.to_csr(users)
    exclude_csr = None
    for part in exclude:
        matrix = part.to_csr(users)
        exclude_csr = matrix if exclude_csr is None else exclude_csr + matrix
    user_table, item_table = user_table.detach().cpu(), item_table.detach().cpu()

    def scorer(batch: np.ndarray) -> torch.Tensor:
        return user_table[torch.as_tensor(batch)] @ item_table.T

    result = evaluate_ranking(scorer, truth_csr, exclude_csr, metrics=metrics, ks=ks, users=users)
    return result.per_user


def _evaluation_users(test: InteractionArrays, sample: int | None, seed: int) -> np.ndarray:
    users = np.flatnonzero(test.user_counts() > 0)
    if sample is not None and sample < len(users):
        users = np.sort(np.random.default_rng(seed).choice(users, size=sample, replace=False))
    return users


def _validation_ndcg(
    tables: BPRTables, parts: dict[str, InteractionArrays], context: RankContext, seed: int
) -> float:
    users = _evaluation_users(parts["valid"], 2_000, seed)[context.rank :: context.world_size]
    frame = evaluate_tables(
        tables.user, tables.item, parts["valid"], [parts["train"]], users, metrics=("ndcg",), ks=(10,)
    )
    total, count = _all_sum(
        [float(frame["ndcg@10"].sum()) if len(frame) else 0.0, float(len(frame))], context
    )
    return total / max(count, 1.0)


def _save_checkpoint(folder: Path, tables: BPRTables, epoch: int, history: list[dict[str, float]]) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / ".tables.safetensors.tmp"
    save_file({k: v.detach().cpu().contiguous() for k, v in tables.state_dict().items()}, str(temporary))
    os.replace(temporary, folder / "tables.safetensors")
    (folder / ".state.json.tmp").write_text(json.dumps({"epoch": epoch, "history": history}))
    os.replace(folder / ".state.json.tmp", folder / "state.json")


def _load_checkpoint(
    folder: Path, device: torch.device
) -> tuple[BPRTables, int, list[dict[str, float]]] | None:
    from safetensors.torch import load_file

    if not (folder / "state.json").is_file():
        return None
    state = json.loads((folder / "state.json").read_text())
    tensors = {k: v.to(device) for k, v in load_file(str(folder / "tables.safetensors")).items()}
    return BPRTables.from_state_dict(tensors), int(state["epoch"]), list(state["history"])


def run_rank(config: DistributedTrainConfig, context: RankContext | None = None) -> DistributedResult | None:
    """Train and evaluate as one rank (the whole run when there is a single process).

    Parameters
    ----------
    config
        The run; its data must have been written by :func:`prepare_data`.
    context
        This process's rank; default: from torchrun's environment (joining the process group).

    Returns
    -------
    DistributedResult or None
        The result on rank 0, ``None`` on the other ranks.
    """
    context = context or RankContext.from_environment(config.backend)
    torch.set_num_threads(config.num_threads)
    try:
        return _run(config, context)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _run(config: DistributedTrainConfig, context: RankContext) -> DistributedResult | None:
    parts = _open_parts(config)
    train = parts["train"]
    if len(train) == 0:
        raise ValueError(f"{train.folder}: no training interactions")
    bpr = config.bpr
    checkpoint_dir = config.output / "checkpoint"
    restored = _load_checkpoint(checkpoint_dir, context.device) if config.resume else None
    if restored is not None:
        tables, first_epoch, history = restored[0], restored[1] + 1, restored[2]
    else:
        tables, first_epoch, history = BPRTables.initialise(train.n_users, train.n_items, bpr), 1, []
        tables = BPRTables.from_state_dict({k: v.to(context.device) for k, v in tables.state_dict().items()})
    if context.distributed:  # replicas start equal even if a rank's RNG differs
        for tensor in tables.state_dict().values():
            dist.broadcast(tensor, src=0)
    negative_filter = PositiveFilter(train, device=context.device) if bpr.reject_positives else None
    sync = _gather_sync(context) if context.distributed else None
    started = time.perf_counter()
    for epoch in range(first_epoch, bpr.epochs + 1):
        stats = run_epoch(
            tables, train, negative_filter, bpr, epoch,
            rank=context.rank, world_size=context.world_size, sync=sync, device=context.device,
        )  # fmt: skip
        loss, count = _all_sum([stats.loss, float(stats.interactions)], context)
        record = {"epoch": epoch, "loss": loss / max(count, 1.0), "seconds": stats.seconds}
        if config.eval_every and epoch % config.eval_every == 0:
            record["valid_ndcg@10"] = _validation_ndcg(tables, parts, context, config.split_seed)
        history.append(record)
        if context.rank == 0 and config.progress:
            extra = f"  valid ndcg@10 {record['valid_ndcg@10']:.4f}" if "valid_ndcg@10" in record else ""
            print(
                f"epoch {epoch}/{bpr.epochs}  loss {record['loss']:.4f}  {stats.seconds:.1f}s{extra}",
                flush=True,
            )
        if context.rank == 0 and config.checkpoint_every and epoch % config.checkpoint_every == 0:
            _save_checkpoint(checkpoint_dir, tables, epoch, history)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    users = _evaluation_users(parts["test"], config.eval_users, config.split_seed)
    mine = users[context.rank :: context.world_size]
    frame = evaluate_tables(
        tables.user, tables.item, parts["test"], [parts["train"], parts["valid"]], mine,
        metrics=config.metrics, ks=config.ks,
    )  # fmt: skip
    if context.distributed:
        frames: list[Any] = [None] * context.world_size
        dist.all_gather_object(frames, frame)
        frame = pd.concat([f for f in frames if f is not None and len(f)], ignore_index=True).sort_values(
            "user"
        )
    eval_seconds = time.perf_counter() - started
    if context.rank != 0:
        return None
    return _write_outputs(config, context, tables, history, frame, train_seconds, eval_seconds)


def _write_outputs(
    config: DistributedTrainConfig,
    context: RankContext,
    tables: BPRTables,
    history: list[dict[str, float]],
    per_user: pd.DataFrame,
    train_seconds: float,
    eval_seconds: float,
) -> DistributedResult:
    from crossrec.models.mf import BPRMF

    output = config.output
    output.mkdir(parents=True, exist_ok=True)
    _save_checkpoint(output / "checkpoint", tables, config.bpr.epochs, history)
    model = BPRMF(dim=config.bpr.dim, seed=config.bpr.seed).with_vectors(
        tables.user.detach().cpu().numpy(), tables.item.detach().cpu().numpy()
    )
    model_path = model.save(output / "model")
    per_user.to_csv(output / "per_user.csv", index=False)
    metrics = {column: float(per_user[column].mean()) for column in per_user.columns if column != "user"}
    result = DistributedResult(
        output=output,
        world_size=context.world_size,
        backend=context.backend,
        metrics=metrics,
        history=history,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        evaluated_users=len(per_user),
        model_path=model_path,
    )
    payload = asdict(result) | {"config": json.loads(config.model_dump_json())}
    (output / "result.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return result


# ------------------------------------------------------------------------------------------ launch


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_with_torchrun(
    argv: list[str],
    nproc: int,
    *,
    master_port: int | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> int:
    """Run ``python -m crossrec ARGV`` as ``nproc`` ranks on this machine through ``torch.distributed.run``.

    Parameters
    ----------
    argv
        crossrec command line, e.g. ``["train-distributed", "--config", "run.toml"]``.
    nproc
        Ranks to start (each gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1``
        and ``MASTER_PORT``).
    master_port
        Rendezvous port (default: a free one).
    env
        Extra environment variables for the ranks.
    check
        Raise ``RuntimeError`` when a rank fails.

    Returns
    -------
    int
        torchrun's exit status.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes=1", f"--nproc-per-node={nproc}", "--node-rank=0",
        "--master-addr=127.0.0.1", f"--master-port={master_port or free_port()}",
        "--module", "crossrec", *argv,
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    completed = subprocess.run(command, env=environment, check=False)
    if check and completed.returncode != 0:
        raise RuntimeError(
            f"torchrun exited with status {completed.returncode}; see the ranks' output above "
            f"(command: {' '.join(command)})"
        )
    return completed.returncode


def train_distributed(config: DistributedTrainConfig, nproc: int = 1) -> DistributedResult:
    """Prepare the data, train BPR-MF on ``nproc`` data-parallel ranks and evaluate it on test.

    With ``nproc == 1`` (or when already running under torchrun) the run happens in this process;
    otherwise the ranks are started through ``torch.distributed.run`` (gloo on CPU, NCCL on GPUs).

    Parameters
    ----------
    config
        The run (data, BPR-MF settings, evaluation, output folder).
    nproc
        Ranks on this machine.

    Returns
    -------
    DistributedResult
        Test metrics (means of the per-user table in ``output/per_user.csv``), per-epoch history,
        timings and the saved model folder (a :class:`crossrec.models.mf.BPRMF`).
    """
    if "WORLD_SIZE" in os.environ:
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # once per machine: each reads its own disk
            prepare_data(config)
        context = RankContext.from_environment(config.backend)
        if context.distributed:
            dist.barrier()
        result = run_rank(config, context)
        return (
            result
            if result is not None
            else DistributedResult(config.output, context.world_size, context.backend, {})
        )
    prepare_data(config)
    if nproc == 1:
        result = run_rank(config, RankContext())
        assert result is not None
        return result
    config.output.mkdir(parents=True, exist_ok=True)
    config_path = config.output / "config.json"
    config_path.write_text(config.model_dump_json(indent=2))
    launch_with_torchrun(["train-distributed", "--rank-config", str(config_path)], nproc)
    return DistributedResult.load(config.output)
