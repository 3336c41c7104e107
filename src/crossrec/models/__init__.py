"""crossrec.models: one small :class:`Recommender` interface and its implementations.

Target-only baselines: :class:`Popularity`, :class:`ItemKNN`, :class:`EASE`, :class:`UserKNN`,
the content baselines :class:`ContentKNN` and :class:`TagPopularity` (they score items with no
interaction), and :class:`PopularityBlend` (item-item scores plus log-popularity, for sparse
targets); for users known only by their source-domain profile: :class:`LinkedUserKNN` and
:class:`ProfileKernelRidge`;
gradient-trained embedding models: :class:`BPRMF`, :class:`LightGCN` (and the two-tower hybrid in
:mod:`crossrec.models.two_tower`), configured by one ``optim=``
(:class:`~crossrec.training.optim.OptimConfig`); sequence models in :mod:`crossrec.models.sasrec`,
:mod:`~crossrec.models.gru4rec`, :mod:`~crossrec.models.markov` and :mod:`~crossrec.models.category`
(category transitions with a prior, e.g. one learned on another platform). Extra fit inputs go through
``fit_with(train, valid, FitInputs(...))``.
"""

from crossrec.models.base import (
    MODEL_REGISTRY,
    CapabilityError,
    NotFittedError,
    Recommender,
    get_model_class,
    register_model,
)
from crossrec.models.content import ContentKNN, TagPopularity, content_matrix
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.gradient import GradientRecommender
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.item_based import EASE, ItemKNN, ItemSimilarityRecommender
from crossrec.models.lightgcn import LightGCN, normalized_adjacency
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from crossrec.models.popularity_blend import PopularityBlend
from crossrec.models.source_profile import LinkedUserKNN, ProfileKernelRidge, SourceProfileRecommender
from crossrec.models.user_based import UserKNN, user_neighbours

__all__ = [
    "BPRMF",
    "EASE",
    "MODEL_REGISTRY",
    "CapabilityError",
    "ContentKNN",
    "EmbeddingInit",
    "EmbeddingRecommender",
    "FitInputs",
    "GradientRecommender",
    "ItemKNN",
    "ItemSimilarityRecommender",
    "LightGCN",
    "LinkedUserKNN",
    "NotFittedError",
    "Popularity",
    "PopularityBlend",
    "ProfileKernelRidge",
    "Recommender",
    "SourceProfileRecommender",
    "TagPopularity",
    "UserKNN",
    "content_matrix",
    "get_model_class",
    "normalized_adjacency",
    "register_model",
    "user_neighbours",
]
