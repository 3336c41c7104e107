"""crossrec.metrics: pure functions of ranked lists and ground truth.

* :mod:`~crossrec.metrics.accuracy`: Recall, Precision, NDCG, Hit, MRR, MAP at K (RecBole's
  definitions) and rating errors;
* :mod:`~crossrec.metrics.ranking`: :func:`evaluate_ranking`, full ranking of every user with
  held-out items and their per-user metrics;
* :mod:`~crossrec.metrics.beyond`: coverage, Gini, intra-list diversity, novelty, popularity;
* :mod:`~crossrec.metrics.significance`: bootstrap intervals, paired tests and Holm's correction.
"""

from crossrec.metrics.accuracy import (
    ACCURACY_METRICS,
    RATING_METRICS,
    accuracy_metrics,
    parse_metric_names,
    rating_errors,
)
from crossrec.metrics.beyond import (
    average_popularity,
    catalog_coverage,
    gini_index,
    head_items,
    intra_list_diversity_categories,
    intra_list_diversity_embeddings,
    long_tail_share,
    novelty,
    recbole_tail_items,
    tail_percentage,
)
from crossrec.metrics.ranking import (
    DEFAULT_KS,
    DEFAULT_METRICS,
    RankingResult,
    evaluate_ranking,
    hit_matrix,
    per_user_metric,
)
from crossrec.metrics.significance import bootstrap_mean_ci, holm, paired_bootstrap_ci, wilcoxon_p

__all__ = [
    "ACCURACY_METRICS",
    "DEFAULT_KS",
    "DEFAULT_METRICS",
    "RATING_METRICS",
    "RankingResult",
    "accuracy_metrics",
    "average_popularity",
    "bootstrap_mean_ci",
    "catalog_coverage",
    "evaluate_ranking",
    "gini_index",
    "head_items",
    "hit_matrix",
    "holm",
    "intra_list_diversity_categories",
    "intra_list_diversity_embeddings",
    "long_tail_share",
    "recbole_tail_items",
    "tail_percentage",
    "novelty",
    "paired_bootstrap_ci",
    "parse_metric_names",
    "per_user_metric",
    "rating_errors",
    "wilcoxon_p",
]
