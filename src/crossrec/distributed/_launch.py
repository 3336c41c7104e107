"""Starting a data-parallel run: in this process, or as ``nproc`` ranks through ``torch.distributed.run``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from crossrec.distributed._config import DistributedResult, DistributedTrainConfig
from crossrec.distributed._context import RankContext
from crossrec.distributed._data import prepare_data
from crossrec.distributed._run import run_rank

__all__ = ["free_port", "launch_with_torchrun", "train_distributed"]


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
    """Prepare the data, train ``config.model`` on ``nproc`` data-parallel ranks and evaluate it on test.

    With ``nproc == 1`` (or when already running under torchrun) the run happens in this process;
    otherwise the ranks are started through ``torch.distributed.run`` (gloo on CPU, NCCL on GPUs).

    Parameters
    ----------
    config
        The run (data, model and its settings, evaluation, output folder).
    nproc
        Ranks on this machine.

    Returns
    -------
    DistributedResult
        Test metrics (means of the per-user table in ``output/per_user.csv``), per-epoch history,
        timings and the saved model folder (a :class:`~crossrec.models.mf.BPRMF`,
        :class:`~crossrec.models.lightgcn.LightGCN` or :class:`~crossrec.models.two_tower.TwoTower`).
    """
    if "WORLD_SIZE" in os.environ:
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # once per machine: each reads its own disk
            prepare_data(config)
        context = RankContext.from_environment(config.backend)
        if context.distributed:
            import torch.distributed as dist

            dist.barrier()
        result = run_rank(config, context)
        return (
            result
            if result is not None
            else DistributedResult(config.output, context.world_size, context.backend, {}, model=config.model)
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
