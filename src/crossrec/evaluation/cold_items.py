"""Item cold start evaluated honestly: models train on the warm catalogue only, cold items are scored
from their attributes, and cold items are ranked among all items and among cold items only.

A model fitted by :func:`fit_warm_catalogue` never sees a cold item, not even as a sampled negative:
its training matrices hold the warm items' columns only. A two-tower model then scores cold items
through its item tower from their attributes alone (no ID); an ID-only model cannot score them and
ranks them last. :func:`evaluate_cold_items` returns per-user metrics of the three settings
(:data:`COLD_ITEM_SETTINGS`): warm items among warm items, cold items among all items, cold items
among cold items (see :class:`crossrec.splitting.cold_items.ItemColdSplit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from crossrec.features.table import FeatureTable
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.two_tower import TwoTower
from crossrec.ranking.topk import FactorScorer
from crossrec.splitting.cold_items import ItemColdSplit

__all__ = ["COLD_ITEM_SETTINGS", "evaluate_cold_items", "fit_warm_catalogue"]

#: ``(setting, ranked_among)`` pairs: warm items among warm items, cold items among all / cold items.
COLD_ITEM_SETTINGS: tuple[tuple[str, str], ...] = (("warm", "warm"), ("cold", "all"), ("cold", "cold"))

Scorer = Callable[[np.ndarray], np.ndarray]


def fit_warm_catalogue(
    model: Recommender,
    cold: ItemColdSplit,
    *,
    item_features: FeatureTable | None = None,
    user_features: FeatureTable | None = None,
) -> Scorer:
    """Fit ``model`` on the warm items' columns only; return a scorer over every item.

    Parameters
    ----------
    model
        Any recommender; a :class:`~crossrec.models.two_tower.TwoTower` gets the feature tables and
        scores cold items from their attributes; other models (and a two-tower without item
        attributes) score warm items only: cold items get ``-inf``, ranked last.
    cold
        The item cold-start split.
    item_features, user_features
        Attribute tables of the whole catalogue / of the users (the two-tower model).
    """
    split = cold.split
    warm = np.flatnonzero(~cold.is_cold)
    train = split.matrix("train")[:, warm].tocsr()
    valid = split.matrix("valid")[:, warm].tocsr()
    n_items = split.n_items
    if isinstance(model, TwoTower):
        if item_features is None:
            raise ValueError("a TwoTower on the warm catalogue needs item_features to score cold items")
        model.fit_with(
            train, valid, FitInputs(item_features=item_features.take(warm), user_features=user_features)
        )
        if model.encoders_["item"] is not None:
            users, warm_vectors = model.vectors()
            items = np.zeros((n_items, warm_vectors.shape[1]), dtype=np.float32)
            items[warm] = warm_vectors
            items[cold.cold_items] = model.encode_items(item_features.take(cold.cold_items))
            return FactorScorer(users, items)
    else:
        model.fit(train, valid)

    def score(users: np.ndarray) -> np.ndarray:
        out = np.full((len(users), n_items), -np.inf, dtype=np.float32)
        out[:, warm] = model.score(users)
        return out

    return score


def evaluate_cold_items(
    scorer: Scorer,
    cold: ItemColdSplit,
    *,
    settings: Sequence[tuple[str, str]] = COLD_ITEM_SETTINGS,
    metrics: Sequence[str] = ("ndcg", "recall"),
    ks: Sequence[int] = (10,),
) -> dict[tuple[str, str], pd.DataFrame]:
    """Per-user metrics of ``scorer`` on each ``(setting, ranked_among)`` of ``settings``.

    ``("warm", "warm")`` ranks the warm test items among warm items; ``("cold", "all")`` ranks the
    cold items among every item the user has not trained on (their own warm test items left out);
    ``("cold", "cold")`` among cold items only. Users are those with a relevant item in the setting.
    """
    out = {}
    for setting, among in settings:
        exclude = cold.exclude("warm") if setting == "warm" else cold.exclude("cold", among)  # type: ignore[arg-type]
        out[(setting, among)] = evaluate_ranking(
            scorer, cold.truth(setting), exclude, metrics=list(metrics), ks=list(ks)
        ).per_user
    return out
