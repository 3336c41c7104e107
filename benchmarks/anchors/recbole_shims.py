"""Compatibility shims that let ``recbole==1.2.1`` run on Python 3.11 with numpy 2.x and torch 2.13.

Import this module before anything from ``recbole``. It is used only by the anchor benchmark's own
RecBole virtual environment; crossrec never imports it. Each shim fixes one failure seen when
running RecBole unmodified:

* numpy 2 removed the aliases ``np.float_``, ``np.complex_`` and ``np.unicode_`` that RecBole's
  ``Config.compatibility_settings`` reads (``AttributeError`` when building a ``Config``), and the
  old builtin aliases ``np.float``/``np.bool``/... that ``recbole.evaluator.metrics`` uses;
* torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, but RecBole's checkpoint
  (``Trainer.evaluate(load_best_model=True)``) pickles its ``Config`` object, so loading the best
  model fails; the checkpoints here are the benchmark's own files, so ``weights_only=False`` is safe;
* scipy >= 1.13 removed ``dok_matrix._update``, which LightGCN's normalised adjacency matrix uses;
  it is given back as a plain bulk assignment.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

_NUMPY_ALIASES: dict[str, Any] = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "float": float,
    "int": int,
    "bool": bool,
    "complex": complex,
    "object": object,
    "str": str,
    "long": int,
    "unicode": str,
}


def _install_numpy_aliases() -> list[str]:
    added = []
    for name, value in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)
            added.append(name)
    return added


def _install_torch_load() -> bool:
    if getattr(torch.load, "_recbole_shim", False):
        return False
    original = torch.load

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    load._recbole_shim = True  # type: ignore[attr-defined]
    torch.load = load
    return True


def _install_dok_update() -> bool:
    if hasattr(sp.dok_matrix, "_update"):
        return False

    def _update(self: sp.dok_matrix, data: dict) -> None:
        if not data:
            return
        keys = np.array(list(data.keys()), dtype=np.int64)
        self[keys[:, 0], keys[:, 1]] = np.fromiter(data.values(), dtype=self.dtype, count=len(data))

    sp.dok_matrix._update = _update  # type: ignore[attr-defined]
    return True


#: What this import changed (written into the benchmark's results for the record).
APPLIED: dict[str, Any] = {
    "numpy_aliases": _install_numpy_aliases(),
    "torch_load_weights_only_false": _install_torch_load(),
    "scipy_dok_update": _install_dok_update(),
}
