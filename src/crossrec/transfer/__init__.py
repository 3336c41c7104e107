"""crossrec.transfer: strategies that move what was learned in source domains to a target domain.

Every strategy takes :class:`TransferData` (target split, source domain(s), links) and returns a
fitted target :class:`~crossrec.models.Recommender`: ``none`` (target-only), ``warm_start``,
``finetune``, ``joint``, ``mapping``, ``popularity_blend`` (sparse targets: a joint neighbourhood
model plus target popularity), ``source_profile`` (users with no target history, scored from their
source profile) and ``content`` when the features package provides it.
:func:`guarded_transfer` compares a transfer with the target-only baseline on validation and keeps
the better one; :func:`auto_transfer` tries what the data allows and keeps the best;
:func:`guarded_sources` chooses per-source weights on validation, measures each source's
contribution and drops a source that hurts before guarding the kept mix.
"""

from crossrec.transfer.base import (
    STRATEGY_REGISTRY,
    SourceData,
    TransferData,
    TransferNotPossibleError,
    TransferStrategy,
    get_strategy_class,
    make_strategy,
    possible_strategies,
    register_strategy,
)
from crossrec.transfer.finetune import FineTune
from crossrec.transfer.guard import (
    AutoResult,
    GuardResult,
    auto_transfer,
    default_candidates,
    guarded_transfer,
    per_user_metric,
)
from crossrec.transfer.joint import Joint, joint_item_matrices, joint_matrix
from crossrec.transfer.links import Links
from crossrec.transfer.mapping import Mapping, fit_meta_bridge, fit_mlp_bridge
from crossrec.transfer.multisource import (
    MultiSourceResult,
    SourceContribution,
    SourceWeighted,
    SourceWeighting,
    choose_source_weights,
    guarded_sources,
    source_contribution,
    with_weights,
)
from crossrec.transfer.popularity_blend import PopularityBlendTransfer
from crossrec.transfer.source_profile import SourceProfile, source_profiles
from crossrec.transfer.target_only import TargetOnly
from crossrec.transfer.warm_start import WarmStart, fold_in_users, transferred_init, warm_start_table

__all__ = [
    "STRATEGY_REGISTRY",
    "AutoResult",
    "FineTune",
    "GuardResult",
    "Joint",
    "Links",
    "Mapping",
    "MultiSourceResult",
    "PopularityBlendTransfer",
    "SourceContribution",
    "SourceData",
    "SourceProfile",
    "SourceWeighted",
    "SourceWeighting",
    "TargetOnly",
    "TransferData",
    "TransferNotPossibleError",
    "TransferStrategy",
    "WarmStart",
    "auto_transfer",
    "choose_source_weights",
    "default_candidates",
    "fit_meta_bridge",
    "joint_item_matrices",
    "joint_matrix",
    "fit_mlp_bridge",
    "fold_in_users",
    "get_strategy_class",
    "guarded_sources",
    "guarded_transfer",
    "make_strategy",
    "per_user_metric",
    "possible_strategies",
    "register_strategy",
    "source_contribution",
    "source_profiles",
    "transferred_init",
    "warm_start_table",
    "with_weights",
]
