"""Store sparse matrices as plain named arrays (for ``state_arrays`` and safetensors)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["arrays_to_csr", "csr_to_arrays"]


def csr_to_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """``{prefix.indptr, prefix.indices, prefix.data, prefix.shape}`` of a CSR matrix."""
    matrix = sp.csr_matrix(matrix)
    return {
        f"{prefix}.indptr": matrix.indptr.astype(np.int64),
        f"{prefix}.indices": matrix.indices.astype(np.int64),
        f"{prefix}.data": matrix.data.astype(np.float32),
        f"{prefix}.shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def arrays_to_csr(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    """Inverse of :func:`csr_to_arrays`."""
    shape = tuple(int(v) for v in arrays[f"{prefix}.shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]), shape=shape
    )
