"""Data-parallel training of BPR-MF, LightGCN and the two-tower model with ``torch.distributed``.

Runs on one machine or many (torchrun), gloo on CPUs and NCCL on GPUs (``backend="auto"`` picks NCCL
when CUDA is available, with one GPU per local rank).

What the models share
---------------------
Every rank holds a full replica of the model. Each epoch has one seeded permutation of the training
interactions, cut into global batches; rank ``r`` computes the ``r``-th contiguous part of every global
batch (like ``DistributedSampler``, but aligned on steps so that every rank takes the same number of
steps), and negatives are drawn per global step from a generator seeded by ``(seed, epoch, step)``
(:mod:`crossrec.training.batches`). After combining the gradients every replica makes the update of
the whole global batch (the mean loss over its interactions), so one process and ``N`` ranks make the
same updates up to the order of floating-point additions, and the same seed and world size give
identical results on CPUs. The shared run loop (:func:`run_rank`) restores rank-0 checkpoints
(``resume``), records each epoch, writes checkpoints on rank 0, evaluates the test users sharded by
user and gathers the per-user rows on rank 0, which writes ``result.json``, ``per_user.csv`` and
``model/`` (loadable by :meth:`crossrec.models.base.Recommender.load`).

How each model combines gradients (each module's docstring says why)
--------------------------------------------------------------------
* ``bpr_mf`` with ``optim.optimizer="rowwise_adagrad"`` (:mod:`.bpr`): closed-form sparse BPR terms,
  **all-gathered** (16 bytes per interaction) and applied on every replica with row-wise AdaGrad; with
  Adam or SGD (the default is Adam, as on one process): the **dense all-reduce** of :mod:`.autograd`.
* ``lightgcn`` (:mod:`.lightgcn`): full-graph propagation makes the table gradient dense, so a
  **dense all-reduce** through ``DistributedDataParallel`` (:mod:`.autograd`), then the optimizer step.
* ``two_tower`` (:mod:`.two_tower`): shared tower parameters and dense Adam moments, so the same
  **dense all-reduce** through ``DistributedDataParallel``; ID user tower, item IDs plus optional item
  attributes.

Entry points: :func:`train_distributed` (library; spawns ``nproc`` ranks through
``torch.distributed.run``), :func:`launch_with_torchrun` (relaunch any crossrec command line) and
:func:`run_rank` (what each rank runs; it reads ``RANK``/``WORLD_SIZE`` set by torchrun).
"""

from crossrec.distributed._config import (
    DATA_PARALLEL_MODELS,
    DistributedResult,
    DistributedTrainConfig,
)
from crossrec.distributed._context import RankContext
from crossrec.distributed._data import open_parts, prepare_data
from crossrec.distributed._evaluation import evaluate_tables, evaluation_users
from crossrec.distributed._launch import free_port, launch_with_torchrun, train_distributed
from crossrec.distributed._run import build_trainer, run_rank
from crossrec.distributed._trainer import DataParallelTrainer
from crossrec.distributed.autograd import AutogradTrainer
from crossrec.distributed.bpr import BPRTrainer
from crossrec.distributed.two_tower import check_data_parallel

#: Kept for callers of the earlier private name (benchmarks/scale.py).
_evaluation_users = evaluation_users

__all__ = [
    "DATA_PARALLEL_MODELS",
    "AutogradTrainer",
    "BPRTrainer",
    "DataParallelTrainer",
    "DistributedResult",
    "DistributedTrainConfig",
    "RankContext",
    "build_trainer",
    "check_data_parallel",
    "evaluate_tables",
    "evaluation_users",
    "free_port",
    "launch_with_torchrun",
    "open_parts",
    "prepare_data",
    "run_rank",
    "train_distributed",
]
