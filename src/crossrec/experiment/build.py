"""Models and strategies built from an experiment file's settings (shared by the runner and the
search, so neither imports the other)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crossrec.models.base import Recommender, get_model_class
from crossrec.models.gradient import GradientRecommender
from crossrec.training.optim import OptimConfig
from crossrec.transfer.base import TransferStrategy, make_strategy

if TYPE_CHECKING:
    from crossrec.experiment.config import ExperimentConfig, ModelConfig

__all__ = ["build_model", "build_strategy"]


def build_model(
    config: ExperimentConfig, params: dict[str, Any] | None = None, *, model: ModelConfig | None = None
) -> Recommender:
    """The configured model (``model``, default ``config.model``; search overrides in ``params``).

    The experiment's seed and thread count are passed to models that take them (gradient models:
    as :class:`~crossrec.training.OptimConfig` settings, under what the file's ``optim`` sets).
    """
    chosen = model if model is not None else config.model
    cls = get_model_class(chosen.name)
    kwargs = _merged(chosen.params, params or {})
    accepted = cls.__init__.__code__.co_varnames
    if issubclass(cls, GradientRecommender):
        run = {"seed": config.seed} | ({"threads": config.num_threads} if config.num_threads else {})
        given = kwargs.get("optim") or {}
        given = given.model_dump(exclude_unset=True) if isinstance(given, OptimConfig) else dict(given)
        kwargs["optim"] = run | given
    if "seed" in accepted and "seed" not in kwargs:
        kwargs["seed"] = config.seed
    if "num_threads" in accepted and config.num_threads and "num_threads" not in kwargs:
        kwargs["num_threads"] = config.num_threads
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ValueError(f"model {chosen.name!r}: {error}") from error


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overrides``, nested dicts (e.g. ``optim``) merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = _merged(out[key], value)
        out[key] = value
    return out


def build_strategy(
    config: ExperimentConfig,
    strategy: str | None = None,
    model_params: dict[str, Any] | None = None,
    transfer_params: dict[str, Any] | None = None,
    *,
    model: ModelConfig | None = None,
    params: dict[str, Any] | None = None,
) -> TransferStrategy:
    """The configured strategy around the configured model (search overrides applied).

    ``model`` and ``params`` replace ``config.model`` and ``config.transfer.params`` (one family of a
    run with several). ``config.transfer.params`` apply only to ``config.transfer.strategy``: another
    strategy (``--strategy``, or ``"none"`` for target-only search trials) starts from its defaults.
    """
    name = strategy or config.transfer.strategy
    recommender = build_model(config, model_params, model=model)
    # the file's [transfer] params belong to the file's strategy, not to an override (--strategy,
    # or "none" for the target-only side of a search)
    own = config.transfer.params if name == config.transfer.strategy else {}
    base = own if params is None else params
    kwargs = {**base, **(transfer_params or {})}
    try:
        return make_strategy(name, model=recommender, **kwargs)
    except TypeError as error:
        raise ValueError(f"transfer strategy {name!r}: {error}") from error
