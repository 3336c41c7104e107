"""The ``none`` strategy: the target-only baseline every report includes."""

from __future__ import annotations

from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.item_based import EASE
from crossrec.transfer.base import TransferData, TransferStrategy, register_strategy

__all__ = ["TargetOnly"]


@register_strategy
class TargetOnly(TransferStrategy):
    """Fit the model on the target's training part only (validation drives early stopping).

    Parameters
    ----------
    model
        Any recommender (default: EASE).
    """

    name = "none"

    def __init__(self, model: Recommender | None = None) -> None:
        self.model = model if model is not None else EASE()

    def _fit(self, data: TransferData) -> Recommender:
        model = self.model.clone()
        return model.fit_with(data.train, data.valid, FitInputs(label=f"target-only {model.name}"))

    def baseline(self) -> TransferStrategy:
        return self
