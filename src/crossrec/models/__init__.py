"""crossrec.models: one small :class:`Recommender` interface and its implementations.

Target-only baselines: :class:`Popularity`, :class:`ItemKNN`, :class:`EASE`; gradient-trained
embedding models: :class:`BPRMF`, :class:`LightGCN` (and the two-tower hybrid when installed).
"""

from crossrec.models.base import MODEL_REGISTRY, NotFittedError, Recommender, get_model_class, register_model
from crossrec.models.embedding import EmbeddingInit, EmbeddingRecommender
from crossrec.models.item_based import EASE, ItemKNN, ItemSimilarityRecommender
from crossrec.models.lightgcn import LightGCN, normalized_adjacency
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity

__all__ = [
    "BPRMF",
    "EASE",
    "MODEL_REGISTRY",
    "EmbeddingInit",
    "EmbeddingRecommender",
    "ItemKNN",
    "ItemSimilarityRecommender",
    "LightGCN",
    "NotFittedError",
    "Popularity",
    "Recommender",
    "get_model_class",
    "normalized_adjacency",
    "register_model",
]
