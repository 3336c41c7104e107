"""crossrec.ranking: exact top-k lists, the one ranking kernel under evaluation, models, artifacts and
serving.

* :func:`recommend` / :func:`rank_users` rank batches of users for any scorer, excluding given items;
* :func:`top_k` ranks score arrays;
* :class:`FactorScorer` scores dot-product models and picks its exact path by measured cost;
* ties are broken by a seeded per-user scramble (:func:`tie_salts`), never by item numbering.
"""

from crossrec.ranking.recommend import DEFAULT_TIE_SEED, Scorer, rank_users, recommend, to_scratch, top_k
from crossrec.ranking.topk import (
    FactorPath,
    FactorScorer,
    NaNScoresError,
    bf16_input_error,
    dense_top_k,
    set_kernel_threads,
    tie_salts,
)

__all__ = [
    "DEFAULT_TIE_SEED",
    "FactorPath",
    "FactorScorer",
    "NaNScoresError",
    "Scorer",
    "bf16_input_error",
    "dense_top_k",
    "rank_users",
    "recommend",
    "set_kernel_threads",
    "tie_salts",
    "to_scratch",
    "top_k",
]
