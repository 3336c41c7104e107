"""Checkpoints of a training run: weights in safetensors, optimizer state and progress beside them.

A checkpoint folder holds ``module.safetensors`` (current weights), ``best.safetensors`` (weights
of the best validation epoch), ``optimizer.pt`` (``optimizer.state_dict()``: tensors, numbers and
lists only, so it loads with ``torch.load(weights_only=True)``), ``rng.safetensors`` (torch's RNG
state) and ``trainer.json`` (epoch, history, early-stopping counter, numpy RNG state). Resuming
from it continues exactly where the run stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns (weights are loaded into the objects passed to it)."""

    epoch: int
    stale: int
    history: dict[str, Any]
    best_state: dict[str, torch.Tensor]


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().contiguous().clone() for key, value in state.items()}


def save_checkpoint(
    folder: Path,
    *,
    module: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    epoch: int,
    stale: int,
    history: dict[str, Any],
) -> None:
    """Write a checkpoint atomically enough: each file is written to a temporary name, then renamed."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)

    def replace(name: str, write: Any) -> None:
        temporary = folder / f".{name}.tmp"
        write(temporary)
        os.replace(temporary, folder / name)

    replace("module.safetensors", lambda p: save_file(_tensors(module.state_dict()), str(p)))
    replace("best.safetensors", lambda p: save_file(_tensors(best_state), str(p)))
    replace("rng.safetensors", lambda p: save_file({"torch": torch.get_rng_state()}, str(p)))
    replace("optimizer.pt", lambda p: torch.save(optimizer.state_dict(), p))
    payload = {"epoch": epoch, "stale": stale, "history": history, "numpy_rng": rng.bit_generator.state}
    replace("trainer.json", lambda p: p.write_text(json.dumps(payload)))


def load_checkpoint(
    folder: Path, *, module: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: np.random.Generator
) -> Checkpoint | None:
    """Restore ``module``, ``optimizer`` and the RNGs from ``folder`` (``None``: no checkpoint there)."""
    from safetensors.torch import load_file

    if not (folder / "trainer.json").is_file():
        return None
    payload = json.loads((folder / "trainer.json").read_text())
    module.load_state_dict(load_file(str(folder / "module.safetensors")))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    torch.set_rng_state(load_file(str(folder / "rng.safetensors"))["torch"])
    rng.bit_generator.state = payload["numpy_rng"]
    return Checkpoint(
        epoch=int(payload["epoch"]),
        stale=int(payload["stale"]),
        history=payload["history"],
        best_state=load_file(str(folder / "best.safetensors")),
    )
