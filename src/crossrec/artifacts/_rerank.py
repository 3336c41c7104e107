"""The re-ranking setting an artifact carries, so that served lists are the lists that were evaluated.

Files, present only when the artifact was saved with a setting::

    rerank/config.json          the RerankConfig fields (method, strength, candidates, similarity)
                                and the tie-breaking seed of the evaluation
    rerank/items.safetensors    ``item_categories`` (int64, one code per item), for MMR over
                                categories and calibration

What else a stage reads comes from the artifact itself: the history is its seen-items index (the
user's known items: training and validation), the popularity its column counts, the embeddings the
model's item vectors. The experiment's test evaluation builds its stage from the same known items
(:meth:`crossrec.rerank.RerankConfig.build_for`), so a served list of length ``k`` at the saved
strength is the evaluated list of length ``k``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import ValidationError

from crossrec.artifacts.errors import ArtifactCapabilityError, ArtifactIntegrityError
from crossrec.rerank import RerankConfig, Reranker, check_strength

__all__ = ["RERANK_FILES", "RerankSetting", "build_stage", "read_rerank", "write_rerank"]

CONFIG_FILE = "rerank/config.json"
ITEMS_FILE = "rerank/items.safetensors"
RERANK_FILES = (CONFIG_FILE, ITEMS_FILE)


@dataclass(frozen=True)
class RerankSetting:
    """A re-ranking stage as saved: its validated configuration, the item categories it needs (when
    its method reads categories) and the tie-breaking seed of the ranking it re-ranks."""

    config: RerankConfig
    item_categories: np.ndarray | None = None
    seed: int = 0

    @property
    def needs_categories(self) -> bool:
        return self.config.method == "calibration" or (
            self.config.method == "mmr" and self.config.similarity != "embedding"
        )

    def describe(self) -> dict[str, Any]:
        """JSON-able summary (served in the artifact's metadata)."""
        return {**self.config.model_dump(mode="json"), "label": self.config.label, "seed": self.seed}


def as_setting(
    rerank: RerankSetting | RerankConfig | Mapping[str, Any] | None,
    item_categories: np.ndarray | None,
    seed: int,
) -> RerankSetting | None:
    """A :class:`RerankSetting` from what :func:`~crossrec.artifacts.save_artifact` was given."""
    if rerank is None or isinstance(rerank, RerankSetting):
        return rerank
    config = rerank if isinstance(rerank, RerankConfig) else RerankConfig.model_validate(dict(rerank))
    return RerankSetting(config, item_categories, int(seed))


def build_stage(
    setting: RerankSetting,
    *,
    n_items: int,
    history: sp.csr_matrix,
    item_popularity: np.ndarray,
    item_vectors: np.ndarray | None,
) -> Reranker:
    """The stage of ``setting`` over an artifact's ``history`` (users x items), popularity and the
    model's item vectors; the error names what the method lacks."""
    config = setting.config
    if setting.needs_categories:
        categories = setting.item_categories
        if categories is None or len(categories) != n_items:
            found = "none" if categories is None else f"{len(categories)}"
            raise ValueError(
                f"re-ranking {config.label!r} needs one item category per item ({n_items}); got {found}: "
                "pass item_categories (e.g. the experiment's [evaluation] item_categories)"
            )
    if config.method == "mmr" and config.similarity == "embedding" and item_vectors is None:
        raise ValueError(
            "re-ranking 'mmr-embedding' needs the model's item vectors, and this model has none: "
            "use MMR over categories (similarity = 'category') or an embedding model"
        )
    return config.build(
        item_categories=setting.item_categories,
        item_embeddings=item_vectors,
        item_popularity=np.asarray(item_popularity, dtype=np.float64),
        history=history,
    )


def diversity_strength(setting: RerankSetting | None, diversity: float | None) -> float:
    """The strength a request asks for: ``None`` is the saved strength (0 without a setting); a
    number must be in ``[0, 1]``; above 0 needs a saved setting."""
    if diversity is None:
        return 0.0 if setting is None else setting.config.strength
    strength = check_strength(diversity)
    if strength > 0 and setting is None:
        raise ArtifactCapabilityError(
            "this artifact was saved without a re-ranking setting, so it cannot diversify its lists: "
            "train it with an experiment [rerank] table (e.g. { method = 'mmr', strength = 0.3 }) or "
            "pass rerank=RerankConfig(...) to save_artifact; diversity 0 gives the plain lists"
        )
    return strength


def write_rerank(folder: Path, setting: RerankSetting) -> None:
    """Write ``rerank/`` into an artifact folder being saved."""
    from safetensors.numpy import save_file

    (folder / "rerank").mkdir()
    (folder / CONFIG_FILE).write_text(
        json.dumps({"config": setting.config.model_dump(mode="json"), "seed": setting.seed}, indent=2)
    )
    arrays = {}
    if setting.item_categories is not None:
        arrays["item_categories"] = np.ascontiguousarray(setting.item_categories, dtype=np.int64)
    save_file(arrays, str(folder / ITEMS_FILE))


def read_rerank(
    folder: Path, contents: Mapping[str, bytearray], tensors: Any, n_items: int
) -> RerankSetting | None:
    """The setting of a verified artifact's ``rerank/`` (``None`` when it has none); ``tensors``
    parses a safetensors member (the loader's checked reader)."""
    if CONFIG_FILE not in contents:
        return None
    try:
        raw = json.loads(bytes(contents[CONFIG_FILE]).decode("utf-8"))
        config = RerankConfig.model_validate(raw["config"])
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an integer, found {seed!r}")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, ValidationError) as error:
        raise ArtifactIntegrityError(
            f"{folder / CONFIG_FILE} is not a re-ranking setting ({error}); re-save the artifact"
        ) from None
    arrays = tensors(folder, contents, ITEMS_FILE)
    categories = arrays.get("item_categories")
    if categories is not None:
        if categories.dtype.kind not in "iu" or categories.shape != (n_items,) or categories.min() < 0:
            raise ArtifactIntegrityError(
                f"{folder / ITEMS_FILE}: item_categories must be {n_items} non-negative integer codes, "
                f"found {categories.dtype} {categories.shape}; re-save the artifact"
            )
        categories = categories.astype(np.int64)
    return RerankSetting(config, categories, seed)
