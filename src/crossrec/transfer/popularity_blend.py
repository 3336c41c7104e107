"""``popularity_blend``: joint item-item structure from the source(s), blended with the target's own
popularity, for a sparse target.

On a new platform whose users have a handful of interactions, target-only item-item models lose to
a bestseller list, and so do the plain transfers (joint EASE, EASE trained on the source): each
ranks by a few co-occurrence columns and forgets what is popular *here*. This strategy learns the
item-item weights as :class:`~crossrec.transfer.Joint` does (source users become down-weighted rows
of the Gram matrix through the item links; a linked user's source items become extra history
columns) and scores with :class:`~crossrec.models.PopularityBlend`: the per-user normalised joint
score plus ``popularity_weight`` times the target's log-popularity. With linked users and a
:class:`~crossrec.models.UserKNN` model, users whose *source* histories are alike become neighbours
and vote with their target items (a new platform's user with one item still gets a personal list).
``domain_weight`` and ``popularity_weight`` are chosen on validation like any hyperparameter; its
:meth:`baseline` is the same blend trained on the target alone, so a gain measures what the source adds.
"""

from __future__ import annotations

import numpy as np

from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.item_based import EASE, ItemSimilarityRecommender
from crossrec.models.popularity_blend import PopularityBlend
from crossrec.models.user_based import UserKNN
from crossrec.transfer.base import STRATEGY_REGISTRY, TransferData, TransferStrategy, register_strategy
from crossrec.transfer.joint import joint_item_matrices

__all__ = ["PopularityBlendTransfer"]


def _blend_of(model: Recommender, popularity_weight: float) -> PopularityBlend | UserKNN:
    """``model`` with the popularity prior: an item-item model is wrapped in a :class:`PopularityBlend`,
    a blend or a :class:`UserKNN` gets ``popularity_weight``."""
    if isinstance(model, UserKNN):
        return UserKNN(**{**model.get_params(), "popularity_weight": popularity_weight})
    if isinstance(model, PopularityBlend):
        return PopularityBlend(model.base, model.base_params, popularity_weight)
    if isinstance(model, ItemSimilarityRecommender):
        return PopularityBlend(model.name, model.get_params(), popularity_weight)
    raise TypeError(
        f"popularity_blend needs EASE, ItemKNN or UserKNN as its model, got {type(model).__name__}"
    )


@register_strategy
class PopularityBlendTransfer(TransferStrategy):
    """Joint neighbourhood model (source data down-weighted) plus the target's log-popularity.

    Parameters
    ----------
    model
        The neighbourhood model: EASE (default ``EASE(reg=3000)``; catalogues up to ``max_columns``
        items) or ItemKNN, whose item-item weights learn from the source users through item links;
        or :class:`~crossrec.models.UserKNN`, whose neighbours are found on each user's target and
        linked source histories together (what pays with linked users and large catalogues).
    domain_weight
        Weight of source data relative to target data (times each source's own weight); ``0``
        reduces this to the target-only blend.
    popularity_weight
        Weight of the target's ``log(1 + count)`` against the per-user normalised joint score.
    """

    name = "popularity_blend"

    def __init__(
        self, model: Recommender | None = None, domain_weight: float = 0.1, popularity_weight: float = 1.0
    ) -> None:
        self.model = model if model is not None else EASE(reg=3000.0)
        if not isinstance(self.model, ItemSimilarityRecommender | UserKNN):
            raise TypeError(
                "popularity_blend needs EASE, ItemKNN or UserKNN as its model, "
                f"got {type(self.model).__name__}"
            )
        self.domain_weight = domain_weight
        self.popularity_weight = popularity_weight

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data)
        if reason:
            return reason
        if not data.has_item_links and not data.has_user_links:
            return "no source shares items or users with the target, so no item-item structure can cross"
        for label, value in (
            ("domain_weight", self.domain_weight),
            ("popularity_weight", self.popularity_weight),
        ):
            if not np.isfinite(value) or value < 0:
                return f"{label} must be a finite number >= 0, got {value!r}"
        base = self.model
        if isinstance(base, EASE):
            n_columns = data.n_items + sum(s.interactions.shape[1] for s in data.sources if s.n_user_links)
            if n_columns > base.max_columns:
                return (
                    f"EASE needs a dense Gram of {n_columns} columns here (max_columns={base.max_columns}); "
                    "use ItemKNN as the model"
                )
        return None

    def _fit(self, data: TransferData) -> Recommender:
        extra_rows, extra_columns = joint_item_matrices(data, self.domain_weight)
        model = _blend_of(self.model, self.popularity_weight)
        inputs = FitInputs(
            extra_rows=extra_rows, extra_columns=extra_columns, label="popularity_blend joint item-item"
        )
        return model.fit_with(data.train, data.valid, inputs)

    def baseline(self) -> TransferStrategy:
        """The same blend fitted on the target alone (``none`` with a :class:`PopularityBlend`)."""
        return STRATEGY_REGISTRY["none"](model=_blend_of(self.model, self.popularity_weight))
