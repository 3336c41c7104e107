"""Lineage of an artifact: what it is (a source model, a served target model, an update), which
artifacts it came from and on which data, recorded in ``manifest.json`` under ``"lineage"``.

A source artifact (``crossrec pretrain``)::

    {"role": "source", "strategy": "warm_start", "data": {"domains": ["ml-1m"], "fingerprint": ...}}

A target artifact (``crossrec transfer``, ``crossrec demo``)::

    {"role": "target", "strategy": "warm_start", "model": "bpr_mf+warm_start",
     "sources": [{"artifact_id": ..., "model_sha256": ..., "domain": "ml-1m", ...}],
     "target_data": {"domain": "ml-100k", "fingerprint": ..., "interactions": 81705},
     "refit": {"on": "train+valid+test", "epochs": {"bpr_mf": 31}, ...}}

An update (``crossrec update``) adds ``"parent"`` (the artifact it continued) and keeps the
parent's lineage under ``"parent_lineage"``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from crossrec.artifacts._manifest import read_manifest
from crossrec.artifacts.artifact import Artifact
from crossrec.data.vocabulary import Vocabulary

__all__ = ["LINEAGE_ROLES", "artifact_reference", "data_fingerprint"]

#: What an artifact can be.
LINEAGE_ROLES = ("source", "target", "update")


def data_fingerprint(matrix: sp.spmatrix, users: Vocabulary, items: Vocabulary) -> str:
    """sha256 (first 16 hex digits) of a user x item interaction matrix named by raw ids: the same
    interactions of the same users and items give the same fingerprint, whatever the index order
    within each user's row."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.sum_duplicates()
    csr.sort_indices()
    digest = hashlib.sha256()
    for vocabulary in (users, items):
        digest.update("\x00".join(map(str, vocabulary.ids.tolist())).encode())
        digest.update(b"|")
    digest.update(csr.indptr.astype(np.int64).tobytes())
    digest.update(csr.indices.astype(np.int64).tobytes())
    digest.update(f"{csr.shape[0]}x{csr.shape[1]}".encode())
    return digest.hexdigest()[:16]


def artifact_reference(artifact: Artifact) -> dict[str, Any]:
    """How another artifact's lineage names ``artifact``: its id (sha256 of its manifest, which
    covers every file), the sha256 of its model weights, its model, role, data and folder."""
    meta = artifact.metadata
    weights = None
    if artifact.path is not None:
        files = read_manifest(Path(artifact.path)).get("files", {})
        weights = files.get("model/weights.safetensors", {}).get("sha256")
    lineage = dict(meta.lineage)
    data = lineage.get("data") or lineage.get("target_data") or {}
    return {
        "artifact_id": meta.artifact_id,
        "model_sha256": weights,
        "model": meta.model,
        "dim": meta.dim,
        "role": lineage.get("role"),
        "domains": data.get("domains") or ([data["domain"]] if "domain" in data else []),
        "data_fingerprint": data.get("fingerprint"),
        "path": meta.path,
    }
