"""Evaluation a researcher can trust: a model's per-user metrics on a split's part (full ranking,
RecBole's definitions), beyond-accuracy metrics, slices, paired significance tests, modality
ablation, run folders and self-contained reports.

The splits (:mod:`crossrec.splitting`), the ranking kernel (:mod:`crossrec.ranking`) and the metric
functions (:mod:`crossrec.metrics`) live in the layers below; their public names are re-exported here.

Typical use::

    split = random_split(domain.interactions, domain.n_users, domain.n_items, seed=2022)
    evaluation = evaluate_model(model.scorer(), split, ks=(10, 20), user_groups={"linked": linked})
    write_run("runs/mf", {"mf": evaluation}, split=split, config=config)
"""

from crossrec.evaluation.cold_items import COLD_ITEM_SETTINGS, evaluate_cold_items, fit_warm_catalogue
from crossrec.evaluation.efficiency import efficiency_curve, keep_training_fraction, parse_fractions
from crossrec.evaluation.evaluate import (
    ModelEvaluation,
    RatingPredictor,
    compare_models,
    evaluate_model,
    evaluate_recommendations,
    model_intervals,
)
from crossrec.evaluation.report import render_report
from crossrec.evaluation.runs import RunData, compare_runs, load_run, reevaluate_run, write_run
from crossrec.evaluation.slices import DEFAULT_ACTIVITY_EDGES, activity_buckets, slice_table
from crossrec.metrics import (
    ACCURACY_METRICS,
    DEFAULT_KS,
    DEFAULT_METRICS,
    RATING_METRICS,
    RankingResult,
    accuracy_metrics,
    average_popularity,
    bootstrap_mean_ci,
    catalog_coverage,
    evaluate_ranking,
    gini_index,
    head_items,
    hit_matrix,
    holm,
    intra_list_diversity_categories,
    intra_list_diversity_embeddings,
    long_tail_share,
    novelty,
    paired_bootstrap_ci,
    parse_metric_names,
    per_user_metric,
    rating_errors,
    wilcoxon_p,
)
from crossrec.ranking import FactorScorer, Scorer, top_k
from crossrec.splitting import (
    PARTS,
    Split,
    cold_start_split,
    leave_one_out_split,
    predefined_split,
    random_split,
    temporal_split,
)

__all__ = [
    "ACCURACY_METRICS",
    "COLD_ITEM_SETTINGS",
    "FactorScorer",
    "DEFAULT_ACTIVITY_EDGES",
    "DEFAULT_KS",
    "DEFAULT_METRICS",
    "PARTS",
    "RATING_METRICS",
    "ModelEvaluation",
    "RankingResult",
    "RatingPredictor",
    "RunData",
    "Scorer",
    "Split",
    "accuracy_metrics",
    "activity_buckets",
    "average_popularity",
    "bootstrap_mean_ci",
    "catalog_coverage",
    "cold_start_split",
    "compare_models",
    "compare_runs",
    "evaluate_cold_items",
    "evaluate_model",
    "evaluate_ranking",
    "efficiency_curve",
    "evaluate_recommendations",
    "fit_warm_catalogue",
    "gini_index",
    "head_items",
    "hit_matrix",
    "holm",
    "intra_list_diversity_categories",
    "intra_list_diversity_embeddings",
    "keep_training_fraction",
    "leave_one_out_split",
    "load_run",
    "long_tail_share",
    "model_intervals",
    "novelty",
    "paired_bootstrap_ci",
    "per_user_metric",
    "parse_fractions",
    "parse_metric_names",
    "predefined_split",
    "random_split",
    "rating_errors",
    "reevaluate_run",
    "render_report",
    "slice_table",
    "temporal_split",
    "top_k",
    "wilcoxon_p",
    "write_run",
]
