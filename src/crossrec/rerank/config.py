"""``RerankConfig``: the validated settings of a re-ranking stage, and how to build it from data."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossrec.rerank._base import Reranker
from crossrec.rerank.calibration import Calibration
from crossrec.rerank.mmr import MMR
from crossrec.rerank.popularity import PopularityPenalty

__all__ = ["METHODS", "RerankConfig"]

#: Method name -> re-ranker class.
METHODS: dict[str, type[Reranker]] = {
    MMR.method: MMR,
    Calibration.method: Calibration,
    PopularityPenalty.method: PopularityPenalty,
}

Method = Literal["mmr", "calibration", "popularity"]


class RerankConfig(BaseModel):
    """One re-ranking stage between scoring and the top-k lists (validated once, at the edge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = Field(
        description="'mmr' (intra-list diversity), 'calibration' (history category mix) or "
        "'popularity' (penalise popular items, for coverage)."
    )
    strength: float = Field(ge=0.0, le=1.0, description="0 = no re-ranking; 1 = the objective alone.")
    candidates: int = Field(100, ge=1, description="Pool size: the model's best items per user.")
    similarity: Literal["category", "embedding"] | None = Field(
        None, description="MMR only: item categories (default) or item embeddings."
    )
    relevance: Literal["score", "rank"] = Field(
        "score",
        description="How the model's pool becomes relevance in [0, 1]: its min-max scaled scores, or the "
        "DCG discount 1/log2(2 + position) of its ranking (what a place is worth to NDCG).",
    )

    @model_validator(mode="after")
    def _similarity_is_for_mmr(self) -> RerankConfig:
        if self.similarity is not None and self.method != "mmr":
            raise ValueError(f"similarity applies to method 'mmr' only, not {self.method!r}: remove it")
        return self

    @classmethod
    def parse(cls, text: str, *, candidates: int = 100) -> RerankConfig:
        """From ``"method:strength"`` (e.g. ``"mmr:0.3"``, ``"mmr-embedding:0.2"``, ``"popularity:0.5"``;
        ``"popularity@rank:0.3"`` takes relevance from the ranking's positions)."""
        name, sep, value = text.partition(":")
        relevance = "score"
        if name.endswith("@rank"):
            name, relevance = name.removesuffix("@rank"), "rank"
        if not sep:
            raise ValueError(f"re-ranking must look like 'mmr:0.3' (method:strength), got {text!r}")
        similarity = None
        if name.startswith("mmr-"):
            name, similarity = "mmr", name.removeprefix("mmr-")
        try:
            strength = float(value)
        except ValueError:
            raise ValueError(f"strength in {text!r} must be a number in [0, 1]") from None
        return cls(
            method=name, strength=strength, candidates=candidates, similarity=similarity, relevance=relevance
        )

    def build(
        self,
        *,
        item_categories: np.ndarray | None = None,
        item_embeddings: np.ndarray | None = None,
        item_popularity: np.ndarray | None = None,
        history: sp.spmatrix | None = None,
    ) -> Reranker:
        """The re-ranker, given the data its method needs (a clear error names what is missing).

        Parameters
        ----------
        item_categories
            One integer code per item: MMR over categories and calibration.
        item_embeddings
            ``(n_items, dim)``: MMR with ``similarity="embedding"``.
        item_popularity
            Training count per item: the popularity penalty.
        history
            Users x items training matrix: calibration.
        """
        where = f"rerank method {self.method!r}"
        if self.method == "mmr":
            if (self.similarity or "category") == "category":
                _need(item_categories, "item_categories (one integer code per item, e.g. genre)", where)
                return MMR(self.strength, item_categories=item_categories, **self._pool)
            _need(item_embeddings, "item_embeddings ((n_items, dim) vectors, e.g. the model's)", where)
            return MMR(self.strength, item_embeddings=item_embeddings, **self._pool)
        if self.method == "calibration":
            _need(item_categories, "item_categories (one integer code per item, e.g. genre)", where)
            _need(history, "history (users x items: each user's training items)", where)
            return Calibration(self.strength, item_categories=item_categories, history=history, **self._pool)
        _need(item_popularity, "item_popularity (training interactions per item)", where)
        return PopularityPenalty(self.strength, item_popularity=item_popularity, **self._pool)

    @property
    def _pool(self) -> dict[str, object]:
        return {"candidates": self.candidates, "relevance": self.relevance}

    def build_for(
        self,
        train: sp.spmatrix,
        *,
        item_categories: np.ndarray | None = None,
        item_embeddings: np.ndarray | None = None,
    ) -> Reranker:
        """The re-ranker for a model trained on ``train`` (users x items): the popularity penalty
        reads its column sums and calibration its rows; categories and embeddings come from the
        target domain (e.g. a genre column factorised) or the model (its item vectors).

        This is the one call an experiment file's ``[rerank]`` table needs:
        ``RerankConfig.model_validate(table).build_for(split.matrix("train"), item_categories=...)``.
        """
        train = sp.csr_matrix(train)
        return self.build(
            item_categories=item_categories,
            item_embeddings=item_embeddings,
            item_popularity=np.asarray(abs(train).sum(axis=0)).ravel(),
            history=train,
        )

    @property
    def label(self) -> str:
        """``"mmr"``, ``"mmr-embedding"``, ``"calibration"`` or ``"popularity"`` (``@rank`` appended
        with rank relevance: what :meth:`parse` reads back)."""
        name = "mmr-embedding" if self.similarity == "embedding" else self.method
        return f"{name}@rank" if self.relevance == "rank" else name


def _need(value: object, what: str, where: str) -> None:
    if value is None:
        raise ValueError(f"{where} needs {what}; none was given")
