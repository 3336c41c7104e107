"""Private helpers shared by strategies: pretraining on a source, mapping source tables into the
target's index space, and combining tables from several sources."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.transfer.base import SourceData, TransferNotPossibleError
from crossrec.transfer.links import Links

__all__ = [
    "check_source_model",
    "combine_tables",
    "item_map",
    "pretrain",
    "user_aligned_history",
]


def _dim(model: Recommender) -> int | None:
    vectors = model.item_vectors() if hasattr(model, "n_items_") else None
    if vectors is not None:
        return int(np.shape(vectors)[1])
    dim = getattr(model, "dim", None)
    return dim if isinstance(dim, int) else None


def check_source_model(given: Recommender, template: Recommender, source: SourceData) -> None:
    """Refuse a model trained on ``source`` elsewhere (a source artifact) that does not fit what the
    strategy would have pretrained: another model family, another dimension, or other sizes."""
    where = f"source {source.name!r} (from its artifact)"
    if given.name != template.name:
        raise TransferNotPossibleError(
            f"{where} holds a {given.name!r} model, but this strategy starts from a {template.name!r} "
            f"model: set [model] name = {given.name!r}, or pretrain the source with {template.name!r}"
        )
    given_dim, wanted_dim = _dim(given), _dim(template)
    if given_dim is not None and wanted_dim is not None and given_dim != wanted_dim:
        raise TransferNotPossibleError(
            f"{where} holds {given_dim}-dimensional vectors, but [model] asks for dim = {wanted_dim}: "
            f"set dim = {given_dim} in [model] params, or pretrain the source with dim = {wanted_dim}"
        )
    shape = (int(getattr(given, "n_users_", -1)), int(getattr(given, "n_items_", -1)))
    if shape != source.interactions.shape:
        raise TransferNotPossibleError(
            f"{where}: its model covers {shape[0]} users x {shape[1]} items but the source data "
            f"{source.interactions.shape[0]} x {source.interactions.shape[1]}; the artifact is inconsistent"
        )


def _cache_key(model: Recommender, seed: int, holdout: float) -> str:
    return json.dumps([model.name, model.get_params(), seed, holdout], sort_keys=True, default=str)


def pretrain(
    model: Recommender,
    source: SourceData,
    seed: int,
    label: str,
    *,
    holdout: float = 0.1,
    inputs: FitInputs | None = None,
) -> Recommender:
    """A clone of ``model`` fitted on a source, early-stopping on a per-user ``holdout`` share.

    ``source.model`` (a model trained on this source before, e.g. loaded from a source artifact) is
    returned instead once :func:`check_source_model` accepts it; with a cache on the source
    (:attr:`SourceData.pretrained`), each configuration is fitted once.
    """
    if source.model is not None:
        check_source_model(source.model, model, source)
        return source.model
    key = _cache_key(model, seed, holdout)
    if source.pretrained is not None and key in source.pretrained:
        return source.pretrained[key]
    train, valid = source.holdout(holdout, seed)
    fitted = model.clone().fit_with(train, valid, dataclasses.replace(inputs or FitInputs(), label=label))
    if source.pretrained is not None:
        source.pretrained[key] = fitted
    return fitted


def item_map(links: Links, n_source: int, n_target: int) -> sp.csr_matrix:
    """``(n_source, n_target)`` 0/1 matrix: right-multiplying a source user x item matrix by it
    moves linked items into the target's item space (unlinked items vanish)."""
    return sp.csr_matrix(
        (np.ones(len(links), np.float32), (links.source, links.target)), shape=(n_source, n_target)
    )


def user_aligned_history(source: SourceData, n_target_users: int) -> sp.csr_matrix:
    """``(n_target_users, n_source_items)``: each linked target user's source interactions
    (zero rows for users without a link)."""
    links = source.user_links
    selector = sp.csr_matrix(
        (np.ones(len(links), np.float32), (links.target, links.source)),
        shape=(n_target_users, source.interactions.shape[0]),
    )
    return sp.csr_matrix(selector @ source.interactions)


def _procrustes(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Orthogonal ``R`` minimising ``||moving R - fixed||``."""
    u, _, vt = np.linalg.svd(moving.T.astype(np.float64) @ fixed.astype(np.float64))
    return (u @ vt).astype(np.float32)


def combine_tables(tables: list[np.ndarray], masks: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Merge per-source target tables into one.

    Each source's table is rotated onto the first one's space (orthogonal Procrustes on rows
    both sources transferred) when enough rows are shared, then rows are averaged with the
    source weights over the sources that transferred them; rows no source transferred come from
    the first table (its draw from the source distribution).
    """
    if len(tables) == 1:
        return tables[0]
    reference = tables[0]
    total = np.zeros_like(reference)
    weight_sum = np.zeros(len(reference), np.float32)
    for table, mask, weight in zip(tables, masks, weights, strict=True):
        shared = mask & masks[0]
        if table is not reference and shared.sum() >= table.shape[1]:
            table = table @ _procrustes(table[shared], reference[shared])
        total[mask] += weight * table[mask]
        weight_sum[mask] += weight
    out = reference.copy()
    transferred = weight_sum > 0
    out[transferred] = total[transferred] / weight_sum[transferred, None]
    return out
