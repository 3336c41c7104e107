"""Conformance checks for transfer strategies, the negative-transfer guard, ``auto`` and the search.

Everything runs on a *poisoned* split: its test part raises :class:`TestPartReadError` on any read
until :func:`open_test_part` marks the start of the final evaluation. A strategy, guard or search
that peeks at test data (to fit, to stop early or to choose) fails loudly instead of reporting an
optimistic number. :func:`transfer_fixture` builds a small two-domain pair on which every built-in
strategy can run (linked users, linked items, a shared item attribute).

Use the checks directly, or inherit :class:`TransferStrategyConformance` in a pytest class and
return the strategy from ``make_strategy``::

    class TestMyStrategy(TransferStrategyConformance):
        def make_strategy(self):
            return MyStrategy(model=BPRMF(dim=8, optim={"epochs": 3, "progress": False}))
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.models.base import Recommender
from crossrec.selection import select
from crossrec.splitting.splits import Split, random_split
from crossrec.transfer.base import TransferData, TransferNotPossibleError, TransferStrategy
from crossrec.transfer.guard import AutoResult, GuardResult, auto_transfer, guarded_transfer
from crossrec.transfer.links import Links

__all__ = [
    "TestPartReadError",
    "TransferStrategyConformance",
    "check_auto",
    "check_guard",
    "check_search",
    "check_transfer_strategy",
    "is_poisoned",
    "open_test_part",
    "poison_split",
    "poisoned",
    "transfer_fixture",
]


class TestPartReadError(AssertionError):
    """The test part of a poisoned split was read before the final evaluation."""

    __test__ = False  # not a pytest test class


class _Seal:
    def __init__(self) -> None:
        self.opened = False

    def check(self, what: str) -> None:
        if not self.opened:
            raise TestPartReadError(
                f"the test part was read ({what}) before the final evaluation: training, early stopping "
                "and selection may use the training and validation parts only"
            )


class _SealedPart:
    """Stands in for a split's test :class:`~crossrec.data.Interactions`: every read goes through the
    seal (attributes, ``len``, iteration), so nothing of it leaks until the seal is opened."""

    __slots__ = ("_part", "_seal")

    def __init__(self, part: Interactions, seal: _Seal) -> None:
        object.__setattr__(self, "_part", part)
        object.__setattr__(self, "_seal", seal)

    def __getattr__(self, name: str) -> Any:
        self._seal.check(f"test.{name}")
        return getattr(self._part, name)

    def __len__(self) -> int:
        self._seal.check("len(test)")
        return len(self._part)

    def __iter__(self) -> Any:
        self._seal.check("iter(test)")
        return iter(self._part)

    def __repr__(self) -> str:
        return "<sealed test part>"


def poison_split(split: Split) -> Split:
    """A copy of ``split`` whose test part raises :class:`TestPartReadError` when read."""
    if is_poisoned(split):
        return split
    poisoned_split = copy.copy(split)
    object.__setattr__(poisoned_split, "test", _SealedPart(split.test, _Seal()))
    return poisoned_split


def is_poisoned(split: Split) -> bool:
    """Whether ``split``'s test part is sealed (whether or not it was opened since)."""
    return isinstance(split.__dict__.get("test"), _SealedPart)


def open_test_part(split: Split) -> None:
    """Mark the start of the final evaluation: the poisoned split's test part may be read from now
    on (a no-op on an ordinary split)."""
    part = split.__dict__.get("test")
    if isinstance(part, _SealedPart):
        object.__getattribute__(part, "_seal").opened = True


def poisoned(data: TransferData) -> TransferData:
    """``data`` with its target split poisoned."""
    return replace(data, split=poison_split(data.split))


def _domain(name: str, mask: np.ndarray, genre: np.ndarray) -> Domain:
    users, items = np.nonzero(mask)
    return Domain(
        name=name,
        users=Vocabulary([f"{name}-u{i}" for i in range(mask.shape[0])]),
        items=Vocabulary([f"{name}-i{j}" for j in range(mask.shape[1])]),
        interactions=Interactions(users, items, np.ones(len(users), np.float32), np.arange(len(users))),
        item_features=pd.DataFrame({"genre": [f"g{g}" for g in genre]}),
        item_feature_kinds={"genre": "category"},
    )


def transfer_fixture(
    n_users: int = 48, n_items: int = 24, n_source_users: int = 72, n_source_items: int = 32, seed: int = 0
) -> TransferData:
    """A small two-domain pair on which every built-in strategy can run, with a poisoned split.

    Users and items fall in two taste groups in both domains (users mostly interact with items of
    their group; items carry the group as their ``genre``). The first half of the target users are
    linked to source users, the first half of the target items to source items. The target is
    split per user at random (80/10/10); its test part is sealed.
    """
    rng = np.random.default_rng(seed)

    def preferences(n_rows: int, n_columns: int) -> tuple[np.ndarray, np.ndarray]:
        user_group, item_group = np.arange(n_rows) % 2, np.arange(n_columns) % 2
        own = user_group[:, None] == item_group[None, :]
        mask = rng.random((n_rows, n_columns)) < np.where(own, 0.55, 0.04)
        for row in range(n_rows):  # at least 5 items of the own group, so every part gets one
            mask[row, rng.choice(np.flatnonzero(own[row]), 5, replace=False)] = True
        return mask, item_group

    source_mask, source_genre = preferences(n_source_users, n_source_items)
    target_mask, target_genre = preferences(n_users, n_items)
    source, target = (
        _domain("source", source_mask, source_genre),
        _domain("target", target_mask, target_genre),
    )
    split = random_split(target.interactions, n_users, n_items, seed=seed)
    half_users, half_items = np.arange(n_users // 2), np.arange(n_items // 2)
    data = TransferData.from_domains(
        target,
        split,
        [source],
        link_items=[Links(half_items, half_items)],  # item j is the same in both (groups match)
        link_users=[Links(half_users, half_users)],
        seed=seed,
    )
    return poisoned(data)


def check_transfer_strategy(strategy: TransferStrategy, data: TransferData | None = None) -> Recommender:
    """Fit ``strategy`` through selection on a poisoned split and check what every strategy promises.

    * it can run on the fixture (``check`` is ``None``) and never reads the test part;
    * its model scores every target item for a batch of users, with finite scores, and its
      validation score is a metric value in ``[0, 1]``;
    * the strategy (the template) is unchanged by fitting, and ``clone`` keeps its configuration;
    * its baseline is target-only, and without any source it refuses before training (for every
      strategy but ``none``) with :class:`~crossrec.transfer.TransferNotPossibleError`.

    Returns the fitted model.
    """
    data = data if data is not None else transfer_fixture()
    before = repr(strategy)
    reason = strategy.check(data)
    assert reason is None, f"{strategy.label} cannot run on the conformance data: {reason}"
    chosen = select([strategy], data)
    model = chosen.model
    assert repr(strategy) == before, f"fitting changed the strategy: {before} -> {strategy!r}"
    assert repr(strategy.clone()) == before, "clone() changed the configuration"
    users = np.arange(min(5, data.n_users))
    scores = np.asarray(model.score(users))
    assert scores.shape == (len(users), data.n_items), f"scores of shape {scores.shape}"
    assert np.isfinite(scores).all(), "non-finite scores"
    assert 0.0 <= chosen.score <= 1.0, f"validation score {chosen.score} is not a metric value"
    assert strategy.baseline().name == "none", "the baseline of a strategy must be target-only"
    if strategy.name != "none":
        alone = replace(data, sources=())
        assert strategy.check(alone) is not None, "a transfer without any source must be refused"
        try:
            strategy.fit(alone)
        except TransferNotPossibleError:
            pass
        else:
            raise AssertionError(f"{strategy.label} fitted without any source domain")
    return model


def check_guard(strategy: TransferStrategy, data: TransferData | None = None) -> GuardResult:
    """Run the negative-transfer guard on a poisoned split and check its decision is consistent:
    the kept model is the better one on validation, and the interval brackets the difference."""
    data = data if data is not None else transfer_fixture()
    result = guarded_transfer(strategy, data)
    assert result.kept == ("transfer" if result.difference > 0 else "baseline"), result.describe()
    assert result.model is (result.transfer_model if result.kept == "transfer" else result.baseline_model)
    assert result.ci_low <= result.difference <= result.ci_high, result.describe()
    assert np.isclose(result.difference, result.transfer_score - result.baseline_score)
    return result


def check_auto(
    data: TransferData | None = None,
    candidates: list[TransferStrategy] | None = None,
    baseline: TransferStrategy | None = None,
) -> AutoResult:
    """Run ``auto`` on a poisoned split: what it guards is the best it tried on validation."""
    data = data if data is not None else transfer_fixture()
    result = auto_transfer(data, candidates=candidates, baseline=baseline)
    assert result.tried, "auto tried nothing"
    metric = result.guard.metric
    best = max(result.tried, key=lambda row: row[f"valid_{metric}"])
    assert result.guard.strategy == best["strategy"]
    assert np.isclose(result.guard.transfer_score, best[f"valid_{metric}"])
    return result


def check_search(
    model: str,
    space: dict[str, dict[str, Any]],
    *,
    strategy: str = "none",
    transfer_params: dict[str, Any] | None = None,
    model_params: dict[str, Any] | None = None,
    n_trials: int = 3,
    data: TransferData | None = None,
) -> Any:
    """Run the Optuna search (:func:`crossrec.experiment.tune`) on a poisoned split and check that
    every trial is recorded with its time and that the best is the highest validation score."""
    from crossrec.experiment import (
        DataConfig,
        ExperimentConfig,
        ModelConfig,
        SearchConfig,
        TransferConfig,
        tune,
    )

    data = data if data is not None else transfer_fixture()
    config = ExperimentConfig(
        data=DataConfig(builtin="movielens-cdr", link_items="none", link_users="none"),  # not loaded
        model=ModelConfig(name=model, params=model_params or {}),
        transfer=TransferConfig(strategy=strategy, params=transfer_params or {}),
        search=SearchConfig(n_trials=n_trials, space=space),
    )
    result = tune(config, data, strategy=strategy)
    assert len(result.trials) == n_trials
    assert all(trial["seconds"] >= 0 and set(trial["params"]) == set(space) for trial in result.trials)
    assert result.best_score == max(trial["value"] for trial in result.trials)
    return result


class TransferStrategyConformance:
    """Pytest mixin: a subclass returns its strategy from :meth:`make_strategy`; every test runs on a
    fresh poisoned :func:`transfer_fixture` (override :meth:`make_data` for other data)."""

    def make_strategy(self) -> TransferStrategy:
        raise NotImplementedError("return the strategy under test")

    def make_data(self) -> TransferData:
        return transfer_fixture()

    def test_fits_on_train_and_valid_only(self) -> None:
        check_transfer_strategy(self.make_strategy(), self.make_data())

    def test_guard_decides_on_validation_only(self) -> None:
        strategy = self.make_strategy()
        if strategy.name != "none":
            check_guard(strategy, self.make_data())

    def test_auto_can_choose_it(self) -> None:
        strategy = self.make_strategy()
        if strategy.name != "none":
            check_auto(self.make_data(), candidates=[strategy], baseline=strategy.baseline())
