"""The ``source_profile`` strategy: score target items for users from their source-domain profile
alone, learned on linked users who also have target training data. It is the strategy for users with
*no* target history (zero-interaction cold users, :func:`crossrec.splitting.user_cold_start_split`).

The profile of a target user is the concatenation, over sources with user links, of her linked source
user's interactions (times the source's weight); the model is a
:class:`~crossrec.models.source_profile.SourceProfileRecommender`: :class:`ProfileKernelRidge`
(default: kernel ridge regression from profile to target items) or :class:`LinkedUserKNN` (the
user-kNN baseline).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.popularity import Popularity
from crossrec.models.source_profile import ProfileKernelRidge, SourceProfileRecommender
from crossrec.transfer._tables import user_aligned_history
from crossrec.transfer.base import TransferData, TransferStrategy, register_strategy
from crossrec.transfer.target_only import TargetOnly

__all__ = ["SourceProfile", "source_profiles"]


def source_profiles(data: TransferData) -> sp.csr_matrix:
    """``(n_target_users, sum of linked sources' items)``: each target user's source interactions,
    source blocks side by side and scaled by each source's weight (zero rows: no linked user)."""
    blocks = [
        user_aligned_history(source, data.n_users) * np.float32(source.weight)
        for source in data.sources
        if source.n_user_links and source.weight > 0
    ]
    if not blocks:
        return sp.csr_matrix((data.n_users, 0), dtype=np.float32)
    return sp.hstack(blocks, format="csr")


@register_strategy
class SourceProfile(TransferStrategy):
    """Fit a source-profile model on the warm linked users; it scores any linked user, warm or cold.

    Parameters
    ----------
    model
        A :class:`~crossrec.models.source_profile.SourceProfileRecommender` (default:
        :class:`~crossrec.models.source_profile.ProfileKernelRidge`).
    """

    name = "source_profile"

    def __init__(self, model: Recommender | None = None) -> None:
        self.model = model if model is not None else ProfileKernelRidge()

    def check(self, data: TransferData) -> str | None:
        reason = super().check(data)
        if reason:
            return reason
        if not isinstance(self.model, SourceProfileRecommender):
            return (
                f"it scores users from their source profile with kernel_ridge or linked_user_knn, "
                f"not {type(self.model).__name__}"
            )
        linked = [s for s in data.sources if s.n_user_links and s.weight > 0]
        if not linked:
            return "no source has users linked to the target (with a weight above 0)"
        with_profile = np.zeros(data.n_users, dtype=bool)
        for source in linked:
            active = np.diff(source.interactions.indptr)[source.user_links.source] > 0
            with_profile[source.user_links.target[active]] = True
        warm = np.diff(data.train.indptr) > 0
        if not (with_profile & warm).any():
            return (
                "no linked user has target training interactions, so nothing shows how source profiles "
                "translate into target items"
            )
        return None

    def _fit(self, data: TransferData) -> Recommender:
        model = self.model.clone()
        inputs = FitInputs(extra_columns=source_profiles(data), label=f"source profile {model.name}")
        return model.fit_with(data.train, data.valid, inputs)

    def baseline(self) -> TransferStrategy:
        """Target-only popularity: the only target-only model that ranks users without target
        history by more than chance."""
        return TargetOnly(Popularity())
