"""Exact top-k selection for full ranking: numba kernels, parallel over users.

Both paths below return exactly the ``k`` best items of each row; tied items are ordered by a seeded
per-user scramble of their indices (:func:`tie_salts`) or, without salts, by the lower item index;
rows with fewer than ``k`` admissible items are padded with item ``-1`` and value ``-inf``; excluded
items and items scored ``-inf`` are never returned.

Block maxima prune the row. The ``n`` items are split into ``B = n // C`` strided blocks, block ``b``
holding items ``b, b + B, b + 2B, ...`` (a vertical maximum over ``C`` contiguous slices: vectorised
loads, no horizontal reductions; the ``n - B C`` tail items are always examined). ``lo``, the ``k``-th
largest block maximum, is found by bisection on integer keys that order like the scores (exact and
branch-free). Each of ``k`` blocks holds an item scoring at least ``lo``, so an item below ``lo`` (below
a threshold derived from it) cannot be in the top ``k``: only items in blocks whose maximum reaches the
threshold are examined, about ``k`` candidates, which are sorted.

``dense_top_k``
    For any scorer: float32 scores, excluded items set to ``-inf``, threshold ``lo``.

``FactorScorer.top_k``
    For dot-product models (``score(u, i) = user_factors[u] . item_factors[i]``). Scores are first
    computed with a bfloat16 matrix product (half the memory traffic and twice the arithmetic rate of
    float32 on CPUs with bfloat16 dot-product instructions). Candidates are the items whose bfloat16
    score reaches a threshold below ``lo`` by the rounding bound; they are re-scored in float32 from the
    factors and sorted. The result is the float32 ranking, not an approximation of it.

Rounding bound. bfloat16 keeps 8 significant bits. The product multiplies the rounded inputs exactly,
accumulates in float32 and rounds the result to the nearest bfloat16 (ties to even, as torch and
oneDNN do). With ``A_u >= sum_i |u_i v_i|`` (``min(|u|_2 max_v |v|_2, sum_i |u_i| max_v |v_i|)``) the
approximate score ``s'`` of the exact score ``s`` satisfies ``|s' - s| <= e_u + 2^-8 |s'|`` with
``e_u = (2^-7 + 2^-16 + 1.01 d 2^-24) A_u + 1e-30`` (input rounding, float32 accumulation of ``d``
terms, flushed denormals); the output rounding is the ``2^-8 |s'|`` term. Hence items with ``s' >= lo``
have ``s >= lo - 2^-8 |lo| - e_u``, which bounds the ``k``-th best exact score from below, and every
item with ``s' < t`` for ``t = t0 - 2^-7 |t0|``, ``t0 = lo - 2^-8 |lo| - 2 e_u`` scores below it: only
items with ``s' >= t`` can be in the top ``k``. (The bound is checked by a property test.)

Kernels run under a lock: numba's default thread pool must not be entered from two Python threads
at once.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numba as nb
import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "FactorPath",
    "FactorScorer",
    "NaNScoresError",
    "bf16_input_error",
    "bf16_matmul_is_native",
    "dense_top_k",
    "set_kernel_threads",
    "tie_salts",
]

_LOCK = threading.Lock()
_DENSE_BLOCK = 32  # items per strided block of float32 scores
_KEY_BLOCK = 64  # items per strided block of bfloat16 scores
_BF16_ABSOLUTE_ERROR = 1e-30
_BF16_MAX = 3.0e38  # approximate scores beyond this could overflow bfloat16: use the float32 path
_EXCLUDED_BF16 = -1  # bits 0xFFFF: a NaN pattern, below every number once mapped to an ordered key
_NO_FASTMATH_NANS = {"reassoc", "nsz", "contract", "arcp", "afn"}


class NaNScoresError(ValueError):
    """The scorer returned NaN."""


_kernel_threads: int | None = None  # None: numba's thread count (NUMBA_NUM_THREADS, default all cores)


def set_kernel_threads(threads: int | None) -> None:
    """Threads of the top-k kernels: ``1`` runs them serially without starting numba's thread pool
    (data-parallel ranks use their ``num_threads``, one by default); ``None`` restores numba's count."""
    global _kernel_threads
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    _kernel_threads = threads


def _threads() -> int:
    if _kernel_threads == 1:
        return 1
    count = nb.get_num_threads()  # starts numba's thread pool
    return count if _kernel_threads is None else min(count, _kernel_threads)


def _block_size(n_items: int, k: int, largest: int) -> int:
    """Items per block: at most ``largest``, and at least ``2 k`` blocks so that pruning has a choice."""
    return max(1, min(largest, n_items // max(1, 2 * k)))


# --- small kernels ------------------------------------------------------------------------------


@nb.njit(fastmath=_NO_FASTMATH_NANS, cache=True)
def _row_sum(row):  # pragma: no cover - compiled
    total = np.float32(0.0)
    for j in range(row.shape[0]):
        total += row[j]
    return total


@nb.njit(cache=True)
def _has_nan(row):  # pragma: no cover - compiled
    found = False
    for j in range(row.shape[0]):
        found |= row[j] != row[j]
    return found


@nb.njit(cache=True)
def _strided_max(row, n_blocks, size, out):  # pragma: no cover - compiled
    """``out[b] = max(row[b], row[b + n_blocks], ...)``: ``size`` slices, element-wise (vectorised)."""
    out[:] = row[:n_blocks]
    for c in range(1, size):
        np.maximum(out, row[c * n_blocks : (c + 1) * n_blocks], out)


@nb.njit(cache=True)
def _count_at_least(keys, threshold):  # pragma: no cover - compiled
    count = 0
    for i in range(keys.shape[0]):
        count += keys[i] >= threshold
    return count


@nb.njit(cache=True)
def _kth_largest(keys, k, low, high):  # pragma: no cover - compiled
    """Largest ``t`` in ``[low, high]`` with at least ``k`` of ``keys >= t`` (exact bisection)."""
    while low < high:
        middle = (low + high + 1) >> 1
        if _count_at_least(keys, middle) >= k:
            low = middle
        else:
            high = middle - 1
    return low


@nb.njit(fastmath=_NO_FASTMATH_NANS, cache=True)
def _dot(a, b):  # pragma: no cover - compiled
    total = np.float32(0.0)
    for j in range(a.shape[0]):
        total += a[j] * b[j]
    return total


@nb.njit(cache=True)
def _mix(x):  # pragma: no cover - compiled
    """A bijection of ``[0, 2**32)`` that scatters neighbouring integers (its inverse: :func:`_unmix`)."""
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    x = ((x ^ (x >> 16)) * 0x45D9F3B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@nb.njit(cache=True)
def _unmix(x):  # pragma: no cover - compiled
    x = ((x ^ (x >> 16)) * 0x119DE1F3) & 0xFFFFFFFF
    x = ((x ^ (x >> 16)) * 0x119DE1F3) & 0xFFFFFFFF
    return x ^ (x >> 16)


@nb.njit(cache=True)
def _write_best(cand_values, cand_items, count, k, packed, out_values, out_items, salt):  # pragma: no cover
    """Write the ``k`` best of ``count`` candidates, best first.

    Each candidate becomes one int64 whose ascending order is (value descending, tie key ascending):
    the high half is the complement of the value's order-preserving integer key, the low half the
    item (``salt < 0``: ties to the lower item) or a seeded bijective scramble of it (``salt >= 0``:
    ties in an order that depends on the salt, i.e. on the user and seed, not on item numbering).
    """
    bits = cand_values.view(np.int32)
    for a in range(count):
        key = bits[a] ^ ((bits[a] >> 31) & 0x7FFFFFFF)
        low = cand_items[a] if salt < 0 else _mix(cand_items[a] ^ salt)
        packed[a] = (np.int64(~key) << 32) | low
    if count > 8 * k:  # many candidates (e.g. a row of ties): select the k best, then sort only those
        packed[:k] = np.partition(packed[:count], k - 1)[:k]
        packed[:k].sort()
    else:
        packed[:count].sort()
    decoded = np.empty(1, np.int32)
    as_float = decoded.view(np.float32)
    for t in range(min(k, count)):
        key = ~(packed[t] >> 32)
        decoded[0] = key ^ ((key >> 31) & 0x7FFFFFFF)
        out_values[t] = as_float[0]
        low = packed[t] & 0xFFFFFFFF
        out_items[t] = low if salt < 0 else _unmix(low) ^ salt
    for t in range(min(k, count), k):
        out_values[t], out_items[t] = -np.inf, -1


def tie_salts(users: np.ndarray, seed: int | None) -> np.ndarray:
    """Per-user tie-breaking salts: ``-1`` for every user when ``seed`` is ``None`` (ties to the lower
    item index), else a 32-bit hash of ``(seed, user)``, so tied items come in a random order that
    is the same for the same user and seed in evaluation, ``recommend`` and serving alike."""
    users = np.asarray(users, dtype=np.uint64)
    if seed is None:
        return np.full(len(users), -1, dtype=np.int64)
    with np.errstate(over="ignore"):  # splitmix64 finaliser, wrapping arithmetic on purpose
        x = users * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed % 2**64) * np.uint64(0xD1B54A32D192ED03)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x & np.uint64(0x7FFFFFFF)).astype(np.int64)  # 31 bits: item ^ salt stays below 2**32


# --- dense float32 scores -----------------------------------------------------------------------


def _dense_rows(
    scores, k, size, ex_ptr, ex_items, salts, out_values, out_items, nan_rows, threads
):  # pragma: no cover - compiled (see _DENSE_KERNELS)
    n_rows, n_items = scores.shape
    n_blocks = n_items // size
    n_chunks = max(1, min(threads, n_rows))
    per_chunk = (n_rows + n_chunks - 1) // n_chunks
    for chunk in nb.prange(n_chunks):
        block_max = np.empty(n_blocks, np.float32)
        keys = block_max.view(np.int32)
        bits = np.empty(1, np.int32)
        as_float = bits.view(np.float32)
        cand_values = np.empty(n_items, np.float32)
        cand_items = np.empty(n_items, np.int64)
        packed = np.empty(n_items, np.int64)
        for r in range(chunk * per_chunk, min(n_rows, (chunk + 1) * per_chunk)):
            row = scores[r]
            for p in range(ex_ptr[r], ex_ptr[r + 1]):
                row[ex_items[p]] = -np.inf
            total = _row_sum(row)
            if total != total and _has_nan(row):
                nan_rows[r] = True
                continue
            low = -np.inf
            key = -2147483648
            if n_blocks >= k:
                _strided_max(row, n_blocks, size, block_max)
                for b in range(n_blocks):  # float bits -> integer keys in the same order
                    keys[b] = keys[b] ^ ((keys[b] >> 31) & 0x7FFFFFFF)
                key = _kth_largest(keys, k, -2147483648, 2147483647)
                bits[0] = key ^ ((key >> 31) & 0x7FFFFFFF)
                low = as_float[0]
            count = 0
            if n_blocks >= k:
                for b in range(n_blocks):
                    if keys[b] >= key:
                        for c in range(size):
                            j = c * n_blocks + b
                            value = row[j]
                            if value >= low and value > -np.inf:
                                cand_values[count], cand_items[count] = value, j
                                count += 1
                start = n_blocks * size
            else:
                start = 0
            for j in range(start, n_items):  # the tail (or, with few blocks, every item)
                value = row[j]
                if value >= low and value > -np.inf:
                    cand_values[count], cand_items[count] = value, j
                    count += 1
            _write_best(cand_values, cand_items, count, k, packed, out_values[r], out_items[r], salts[r])


_DENSE_KERNELS = (nb.njit(cache=True)(_dense_rows), nb.njit(parallel=True, cache=True)(_dense_rows))


def dense_top_k(
    scores: np.ndarray | torch.Tensor,
    k: int,
    exclude: sp.csr_matrix | None = None,
    *,
    salts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` best items per row of ``scores``, best first, skipping the items in ``exclude``.

    ``scores`` must be a writable C-contiguous float32 array (or CPU tensor): it is used as scratch
    (excluded entries are overwritten with ``-inf``). ``salts`` (one per row, from :func:`tie_salts`)
    orders tied items at random per row; without it ties go to the lower item index. Returns
    ``(values, items)``, each ``(rows, k)``; rows with fewer than ``k`` admissible items are padded
    with ``-inf`` / ``-1``.

    Raises
    ------
    NaNScoresError
        When a row holds NaN.
    """
    array = scores.numpy() if isinstance(scores, torch.Tensor) else scores
    if array.dtype != np.float32 or not array.flags.c_contiguous or not array.flags.writeable:
        raise TypeError("dense_top_k needs a writable C-contiguous float32 array")
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    n_rows, n_items = array.shape
    ex_ptr, ex_items = _csr_parts(exclude, n_rows)
    salts = _check_salts(salts, n_rows)
    values = np.empty((n_rows, k), np.float32)
    items = np.empty((n_rows, k), np.int64)
    nan_rows = np.zeros(n_rows, dtype=bool)
    if n_rows and n_items:
        size = _block_size(n_items, k, _DENSE_BLOCK)
        with _LOCK:
            threads = _threads()
            _DENSE_KERNELS[threads > 1](
                array, k, size, ex_ptr, ex_items, salts, values, items, nan_rows, threads
            )
    elif n_rows:
        values[:], items[:] = -np.inf, -1
    if nan_rows.any():
        raise NaNScoresError(f"scorer returned NaN scores (first row: {int(np.flatnonzero(nan_rows)[0])})")
    return values, items


def _check_salts(salts: np.ndarray | None, n_rows: int) -> np.ndarray:
    if salts is None:
        return np.full(n_rows, -1, dtype=np.int64)
    salts = np.ascontiguousarray(salts, dtype=np.int64)
    if salts.shape != (n_rows,):
        raise ValueError(f"{len(salts)} tie salts for {n_rows} rows")
    return salts


def _csr_parts(matrix: sp.csr_matrix | None, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    if matrix is None:
        return np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int64)
    if matrix.shape[0] != n_rows:
        raise ValueError(f"exclusion matrix has {matrix.shape[0]} rows, scores have {n_rows}")
    indptr = matrix.indptr.astype(np.int64, copy=False)
    return indptr - indptr[0], matrix.indices[indptr[0] : indptr[-1]].astype(np.int64, copy=False)


# --- dot-product models: bfloat16 candidates, exact float32 re-ranking ------------------------


@nb.njit(cache=True)
def _bf16_value(key, bits, as_float):  # pragma: no cover - compiled
    """The float value of an order-preserving bfloat16 key (``bits``/``as_float``: 1-element views)."""
    raw = key ^ ((key >> 15) & 0x7FFF)
    bits[0] = raw << 16
    return np.float64(as_float[0])


@nb.njit(cache=True)
def _bf16_key_below(value, bits, as_float):  # pragma: no cover - compiled
    """An order-preserving bfloat16 key whose value is ``<= value``."""
    as_float[0] = np.float32(value)
    raw = bits[0] >> 16  # truncation; two key steps down cover it and the float32 rounding
    return max(-32767, (raw ^ ((raw >> 15) & 0x7FFF)) - 2)


@nb.njit(cache=True)
def _candidate_bounds(key, error, bits, as_float):  # pragma: no cover - compiled
    """From the k-th largest block maximum's key: the bfloat16 key below which no item can be in the
    top k, and the float32 score below which no re-scored item can (see the module docstring)."""
    low = _bf16_value(key, bits, as_float)
    exact_low = low - 2.0**-8 * abs(low) - 2.0 * error
    threshold = _bf16_key_below(exact_low - 2.0**-7 * abs(exact_low), bits, as_float)
    return threshold, exact_low


@nb.njit(cache=True)
def _to_keys(row):  # pragma: no cover - compiled
    for j in range(row.shape[0]):
        raw = row[j]
        row[j] = raw ^ ((raw >> 15) & 0x7FFF)


def _factor_rows(
    approx, user_factors, item_factors, input_error, k, size, ex_ptr, ex_items, salts, out_values,
    out_items, rescored, threads,
):  # fmt: skip  # pragma: no cover - compiled (see _FACTOR_KERNELS)
    n_rows, n_items = approx.shape
    n_blocks = n_items // size
    n_chunks = max(1, min(threads, n_rows))
    per_chunk = (n_rows + n_chunks - 1) // n_chunks
    for chunk in nb.prange(n_chunks):
        block_max = np.empty(max(1, n_blocks), np.int16)
        bits = np.empty(1, np.int32)
        as_float = bits.view(np.float32)
        ids = np.empty(n_items, np.int64)
        cand_values = np.empty(n_items, np.float32)
        cand_items = np.empty(n_items, np.int64)
        packed = np.empty(n_items, np.int64)
        for r in range(chunk * per_chunk, min(n_rows, (chunk + 1) * per_chunk)):
            row = approx[r]
            for p in range(ex_ptr[r], ex_ptr[r + 1]):
                row[ex_items[p]] = _EXCLUDED_BF16
            error = input_error[r]
            threshold = -32767  # every admissible item
            exact_low = -np.inf
            if n_blocks >= k:
                # Fast path on raw bits: a non-negative bfloat16's bits are its order-preserving key,
                # so blocks whose maximum is non-negative are ranked correctly on raw bits.
                _strided_max(row, n_blocks, size, block_max)
                key = _kth_largest(block_max, k, -32768, 32767)
                if key >= 0:
                    threshold, exact_low = _candidate_bounds(key, error, bits, as_float)
                if key < 0 or threshold <= 0:  # scores <= 0 matter (-0.0 is raw -32768): ordered keys
                    _to_keys(row)
                    _strided_max(row, n_blocks, size, block_max)
                    key = _kth_largest(block_max, k, -32768, 32767)
                    threshold, exact_low = -32767, -np.inf
                    if key > -32768:  # else fewer than k blocks hold an admissible item: keep them all
                        threshold, exact_low = _candidate_bounds(key, error, bits, as_float)
            else:
                _to_keys(row)
            n_ids = 0
            tail = 0
            if n_blocks >= k:
                for b in range(n_blocks):
                    if block_max[b] >= threshold:
                        for c in range(size):
                            j = c * n_blocks + b
                            if row[j] >= threshold:
                                ids[n_ids] = j
                                n_ids += 1
                tail = n_blocks * size
            for j in range(tail, n_items):
                if row[j] >= threshold:
                    ids[n_ids] = j
                    n_ids += 1
            user = user_factors[r]
            for a in range(n_ids):  # independent dot products: their loads overlap
                cand_values[a] = _dot(user, item_factors[ids[a]])
            count = 0
            for a in range(n_ids):
                if cand_values[a] >= exact_low:
                    cand_values[count], cand_items[count] = cand_values[a], ids[a]
                    count += 1
            rescored[r] = n_ids
            _write_best(cand_values, cand_items, count, k, packed, out_values[r], out_items[r], salts[r])


_FACTOR_KERNELS = (nb.njit(cache=True)(_factor_rows), nb.njit(parallel=True, cache=True)(_factor_rows))


def bf16_input_error(user_factors: np.ndarray, item_factors: np.ndarray) -> np.ndarray:
    """Per-user ``e_u``: the bfloat16 score error before output rounding (see the module docstring)."""
    users = np.abs(user_factors.astype(np.float64))
    items = np.abs(item_factors.astype(np.float64))
    by_norm = np.linalg.norm(users, axis=1) * np.linalg.norm(items, axis=1).max(initial=0.0)
    by_component = users @ items.max(axis=0, initial=0.0)
    dim = user_factors.shape[1]
    relative = 2.0**-7 + 2.0**-16 + 1.01 * dim * 2.0**-24
    return relative * np.minimum(by_norm, by_component) + _BF16_ABSOLUTE_ERROR


#: Re-scored share of the catalogue above which the bfloat16 bound is not pruning (near-tied scores,
#: e.g. early in training): that probe counts as a slow one for the bfloat16 path.
_MAX_RESCORED_SHARE = 0.02
#: Every this many calls, ``path="auto"`` probes both paths again (the cost of each path can change:
#: another process starts, or training moves the scores apart).
_EXPLORE_EVERY = 16
#: Users of a probe: both paths rank the same few users of the batch, the batch takes the cheaper.
#: Probing on a handful of rows bounds what a slow path can cost (a whole batch on the bfloat16 path
#: with near-tied scores took 25x the float32 path's time).
_PROBE_USERS = 64


def bf16_matmul_is_native() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX tiles).

    Without it torch converts bfloat16 to float32 inside the product, so the bfloat16 path only adds
    work: ``FactorScorer(path="auto")`` then ranks on the float32 path without probing. Set
    ``CROSSREC_BF16=0`` or ``=1`` to override the detection.
    """
    override = os.environ.get("CROSSREC_BF16")
    if override in ("0", "1"):
        return override == "1"
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


FactorPath = Literal["auto", "bfloat16", "float32"]


@dataclass(frozen=True, eq=False)
class FactorScorer:
    """Scores of a dot-product model, ``user_factors[u] @ item_factors.T``, with an exact fast top-k.

    Calling it returns dense float32 scores like any scorer; ranking code recognises it and ranks
    with :meth:`top_k`, which picks the cheaper exact path:

    * ``"float32"``: a float32 matrix product, then the exact top-k kernel on the scores;
    * ``"bfloat16"``: a bfloat16 product for candidates, exact float32 re-ranking (module docstring).

    With ``path="auto"`` (the default) the scorer ranks on the float32 path unless the CPU multiplies
    bfloat16 natively (:func:`bf16_matmul_is_native`). Where it does, the first call and every 16th
    call probe both paths on the same 64 users of the batch (seconds per user; a bfloat16 probe whose
    bound did not prune counts double) and the batch takes the cheaper path, so a slow path costs at
    most a probe. Which is faster depends on the CPU, the load of the machine and the scores themselves
    (near-tied scores, e.g. early in training, defeat the bfloat16 bound). Both paths return the same
    exact float32 ranking, so the choice never changes a result, only the time.

    Attributes
    ----------
    bf16_safe
        False when ``max |u| * max |v|`` could leave bfloat16's range; :meth:`top_k` then ranks the
        float32 scores directly.
    """

    user_factors: np.ndarray
    item_factors: np.ndarray
    path: FactorPath = "auto"
    bf16_safe: bool = field(init=False)
    _input_error: np.ndarray = field(init=False, repr=False)
    _bf16: dict[str, torch.Tensor] = field(init=False, repr=False)
    _state: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        users = np.ascontiguousarray(self.user_factors, dtype=np.float32)
        items = np.ascontiguousarray(self.item_factors, dtype=np.float32)
        if users.ndim != 2 or items.ndim != 2 or users.shape[1] != items.shape[1]:
            raise ValueError(
                f"factors must be (n_users, dim) and (n_items, dim); got {users.shape} and {items.shape}"
            )
        if self.path not in ("auto", "bfloat16", "float32"):
            raise ValueError(f"path must be 'auto', 'bfloat16' or 'float32', got {self.path!r}")
        if not (np.isfinite(users).all() and np.isfinite(items).all()):
            raise NaNScoresError("factor scorer has NaN or infinite factors")
        user_norm = np.linalg.norm(users.astype(np.float64), axis=1).max(initial=0.0)
        item_norm = np.linalg.norm(items.astype(np.float64), axis=1).max(initial=0.0)
        settings = {
            "user_factors": users,
            "item_factors": items,
            "bf16_safe": bool(user_norm * item_norm < _BF16_MAX),
            "_input_error": bf16_input_error(users, items),
            "_bf16": {},
            "_state": {"seconds_per_user": {}, "calls": 0},
        }
        for name, value in settings.items():
            object.__setattr__(self, name, value)

    @property
    def n_items(self) -> int:
        return self.item_factors.shape[0]

    @property
    def dim(self) -> int:
        return self.item_factors.shape[1]

    def __call__(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[np.asarray(users, dtype=np.int64)] @ self.item_factors.T

    def chosen_path(self) -> Literal["bfloat16", "float32"]:
        """The path the next :meth:`top_k` call takes (after its probe, when one is due)."""
        if not self.bf16_safe or self.n_items == 0 or self.path == "float32":
            return "float32"
        if self.path == "bfloat16":
            return "bfloat16"
        timed = self._state["seconds_per_user"]
        if not bf16_matmul_is_native() or set(timed) != {"bfloat16", "float32"}:
            return "float32"
        return min(timed, key=timed.get)

    def _probe_due(self) -> bool:
        if self.path != "auto" or not self.bf16_safe or self.n_items == 0 or not bf16_matmul_is_native():
            return False
        return not self._state["seconds_per_user"] or self._state["calls"] % _EXPLORE_EVERY == 0

    def _probe(
        self, users: np.ndarray, k: int, exclude: sp.csr_matrix | None, salts: np.ndarray | None
    ) -> None:
        """Time both paths on the batch's first :data:`_PROBE_USERS` users (seconds per user)."""
        n = min(len(users), _PROBE_USERS)
        rows = exclude[:n] if exclude is not None else None
        probe_salts = None if salts is None else np.asarray(salts)[:n]
        timed = self._state["seconds_per_user"]
        for path, run in (("bfloat16", self._top_k_bfloat16), ("float32", self._top_k_float32)):
            started = time.perf_counter()
            _, _, rescored = run(users[:n], k, rows, None, probe_salts)
            seconds = (time.perf_counter() - started) / n
            if path == "bfloat16" and rescored.mean() > _MAX_RESCORED_SHARE * self.n_items:
                seconds *= 2  # the bound did not prune: count the probe as slow, not only as timed
            timed[path] = seconds if path not in timed else 0.5 * (timed[path] + seconds)

    def measured_costs(self) -> dict[str, float]:
        """Seconds per ranked user of each path, as probed so far (``path="auto"`` on a CPU with native
        bfloat16 products; empty elsewhere, where auto always takes the float32 path)."""
        return dict(self._state["seconds_per_user"])

    def workspace(self, n_users: int) -> torch.Tensor:
        """A reusable score buffer for :meth:`top_k` of up to ``n_users`` users (saves page faults);
        either path uses it."""
        return torch.empty((n_users, self.n_items), dtype=torch.float32)

    def _buffer(self, workspace: torch.Tensor | None, n_users: int, dtype: torch.dtype) -> torch.Tensor:
        """A contiguous ``(n_users, n_items)`` tensor of ``dtype`` in ``workspace``'s memory (or new)."""
        cells = n_users * self.n_items
        if workspace is not None and workspace.dtype == torch.float32 and workspace.numel() >= cells:
            flat = workspace.view(-1) if dtype == torch.float32 else workspace.view(-1).view(dtype)
            return flat[:cells].view(n_users, self.n_items)
        return torch.empty((n_users, self.n_items), dtype=dtype)

    def top_k(
        self,
        users: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        workspace: torch.Tensor | None = None,
        *,
        salts: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact float32 top ``k`` of ``users`` (rows aligned with ``exclude``'s rows and ``salts``).

        Returns ``(values, items, n_rescored)``: how many items were scored in float32 per user (the
        whole catalogue on the float32 path). ``workspace`` (from :meth:`workspace`) is overwritten.
        """
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        users = np.asarray(users, dtype=np.int64)
        if len(users) and self._probe_due():
            self._probe(users, k, exclude, salts)
        if self.path == "auto" and len(users):
            self._state["calls"] += 1
        if self.chosen_path() == "float32":
            return self._top_k_float32(users, k, exclude, workspace, salts)
        return self._top_k_bfloat16(users, k, exclude, workspace, salts)

    def _top_k_float32(
        self,
        users: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None,
        workspace: torch.Tensor | None,
        salts: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores = self._buffer(workspace, len(users), torch.float32)
        torch.mm(torch.from_numpy(self.user_factors[users]), self._items_t(torch.float32), out=scores)
        values, items = dense_top_k(scores, k, exclude, salts=salts)
        return values, items, np.full(len(users), self.n_items, dtype=np.int64)

    def _top_k_bfloat16(
        self,
        users: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None,
        workspace: torch.Tensor | None,
        salts: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_users = len(users)
        approx = self._buffer(workspace, n_users, torch.bfloat16)
        torch.mm(self._users_bf16()[torch.from_numpy(users)], self._items_t(torch.bfloat16), out=approx)
        ex_ptr, ex_items = _csr_parts(exclude, n_users)
        salts = _check_salts(salts, n_users)
        values = np.empty((n_users, k), np.float32)
        items = np.empty((n_users, k), np.int64)
        n_rescored = np.zeros(n_users, np.int64)
        if n_users:
            size = _block_size(self.n_items, k, _KEY_BLOCK)
            threads = _threads()
            with _LOCK:
                _FACTOR_KERNELS[threads > 1](
                    approx.view(torch.int16).numpy(),
                    self.user_factors[users],
                    self.item_factors,
                    self._input_error[users],
                    k,
                    size,
                    ex_ptr,
                    ex_items,
                    salts,
                    values,
                    items,
                    n_rescored,
                    threads,
                )
        return values, items, n_rescored

    def _items_t(self, dtype: torch.dtype) -> torch.Tensor:
        key = f"items_t_{dtype}"
        if key not in self._bf16:
            items = self.item_factors if self.item_factors.flags.writeable else self.item_factors.copy()
            self._bf16[key] = torch.from_numpy(items).to(dtype).T.contiguous()
        return self._bf16[key]

    def _users_bf16(self) -> torch.Tensor:
        if "users" not in self._bf16:
            users = self.user_factors if self.user_factors.flags.writeable else self.user_factors.copy()
            self._bf16["users"] = torch.from_numpy(users).bfloat16()
        return self._bf16["users"]
