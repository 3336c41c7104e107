"""RecBole's per-user ratio rounding, shared by the in-memory and out-of-core splits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ratio_parts"]


def ratio_parts(rank: np.ndarray, n: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """Part code (0 train, 1 valid, 2 test) of each row, from its position ``rank`` among its user's
    shuffled rows and the user's row count ``n``, with RecBole's "RO" rounding: floor sizes for
    validation and test, and a part with ``0 < ratio * n < 1`` gets one row taken from training (test
    first, then validation) while training keeps more than one. Shared by :func:`random_split` and the
    out-of-core :func:`crossrec.data.arrays.split_arrays`."""
    n_valid = np.floor(ratios[1] * n).astype(np.int64)
    n_test = np.floor(ratios[2] * n).astype(np.int64)
    n_train = n - n_valid - n_test
    for ratio, size in ((ratios[2], n_test), (ratios[1], n_valid)):
        bump = (n_train > 1) & (ratio * n > 0) & (ratio * n < 1)
        size += bump
        n_train -= bump
    return np.where(rank < n_train, 0, np.where(rank < n_train + n_valid, 1, 2))
