"""crossrec.rerank: re-ranking after scoring, for diversity, calibration and coverage.

A re-ranker takes each user's pool of the model's best ``candidates`` items and returns top-k lists;
one parameter, ``strength`` in ``[0, 1]``, trades relevance for its objective (``0``: the plain top-k
lists, exactly). All work on whole batches of users.

* :class:`MMR`: maximal marginal relevance over item categories or embeddings (intra-list diversity);
* :class:`Calibration`: the list's category mix follows the user's history (Steck 2018, KL);
* :class:`PopularityPenalty`: less-exposed items for coverage;
* :class:`RerankConfig`: validated ``(method, strength, candidates)``; ``build(...)`` makes the stage;
* every re-ranker ranks like :mod:`crossrec.ranking`: :meth:`Reranker.rank_users`,
  :meth:`Reranker.recommend`, :meth:`Reranker.rerank_scores`; evaluation takes one with
  ``crossrec.evaluation.evaluate_model(..., rerank=...)`` or
  ``crossrec.metrics.evaluate_ranking(..., ranker=reranker.rank_users)``;
* :func:`plot_frontier`: the accuracy-diversity frontier as a matplotlib figure.
"""

from crossrec.rerank._base import (
    RELEVANCE,
    GreedyReranker,
    Reranker,
    check_strength,
    pool_relevance,
    rank_relevance,
)
from crossrec.rerank.calibration import Calibration
from crossrec.rerank.config import METHODS, RerankConfig
from crossrec.rerank.frontier import plot_frontier
from crossrec.rerank.mmr import MMR
from crossrec.rerank.popularity import PopularityPenalty

__all__ = [
    "METHODS",
    "RELEVANCE",
    "MMR",
    "Calibration",
    "GreedyReranker",
    "PopularityPenalty",
    "RerankConfig",
    "Reranker",
    "check_strength",
    "plot_frontier",
    "pool_relevance",
    "rank_relevance",
]
