"""Checkpoints of a training run: weights in safetensors, optimizer state and progress beside them.

A checkpoint folder holds what the trainer writes (:func:`save_module_state`: ``module.safetensors``
with the current weights, ``optimizer.pt`` with ``optimizer.state_dict()`` -- tensors, numbers and lists
only, so it loads with ``torch.load(weights_only=True)`` -- and, for single-process runs,
``rng.safetensors`` with torch's RNG state and ``rng.json`` with the numpy generator's), and what the
epoch loop writes (:func:`save_loop_state`: ``best.safetensors``, the weights of the best validation
epoch, and ``trainer.json``: epoch, history, early-stopping counter). Resuming from it continues
exactly where the run stopped. Every file is written to a temporary name, then renamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "Checkpoint",
    "load_loop_state",
    "load_module_state",
    "replace_file",
    "save_loop_state",
    "save_module_state",
    "tensors",
]


@dataclass
class Checkpoint:
    """What :func:`load_loop_state` returns."""

    epoch: int
    stale: int
    history: dict[str, Any]
    best_state: dict[str, torch.Tensor] | None


def tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies (tied parameters cannot share storage in a safetensors file)."""
    return {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}


def replace_file(folder: Path, name: str, write: Callable[[Path], Any]) -> None:
    """``write(temporary)``, then rename the temporary file to ``folder / name``."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    write(temporary)
    os.replace(temporary, folder / name)


def save_module_state(
    folder: Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator | None = None,
) -> None:
    """Current weights, optimizer state and (with ``rng``) the RNG states of a single process."""
    from safetensors.torch import save_file

    replace_file(folder, "module.safetensors", lambda p: save_file(tensors(module.state_dict()), str(p)))
    replace_file(folder, "optimizer.pt", lambda p: torch.save(optimizer.state_dict(), p))
    if rng is not None:
        replace_file(folder, "rng.safetensors", lambda p: save_file({"torch": torch.get_rng_state()}, str(p)))
        replace_file(folder, "rng.json", lambda p: p.write_text(json.dumps(rng.bit_generator.state)))


def load_module_state(
    folder: Path,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator | None = None,
    device: torch.device | str = "cpu",
) -> None:
    """Restore what :func:`save_module_state` wrote into ``module``, ``optimizer`` (and the RNGs)."""
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(folder / "module.safetensors"), device=str(device)))
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", map_location=device, weights_only=True))
    if rng is not None:
        torch.set_rng_state(load_file(str(folder / "rng.safetensors"))["torch"])
        rng.bit_generator.state = json.loads((folder / "rng.json").read_text())


def save_loop_state(
    folder: Path,
    *,
    best_state: dict[str, torch.Tensor] | None,
    epoch: int,
    stale: int,
    history: dict[str, Any],
) -> None:
    """The epoch loop's part of a checkpoint: best weights so far, epoch, counter, history."""
    from safetensors.torch import save_file

    if best_state is not None:
        replace_file(folder, "best.safetensors", lambda p: save_file(tensors(best_state), str(p)))
    payload = {"epoch": epoch, "stale": stale, "history": history, "has_best": best_state is not None}
    replace_file(folder, "trainer.json", lambda p: p.write_text(json.dumps(payload)))


def load_loop_state(folder: Path) -> Checkpoint | None:
    """The loop state in ``folder`` (``None``: no checkpoint there)."""
    from safetensors.torch import load_file

    if not (folder / "trainer.json").is_file():
        return None
    payload = json.loads((folder / "trainer.json").read_text())
    best = load_file(str(folder / "best.safetensors")) if payload.get("has_best", True) else None
    return Checkpoint(
        epoch=int(payload["epoch"]), stale=int(payload["stale"]), history=payload["history"], best_state=best
    )
