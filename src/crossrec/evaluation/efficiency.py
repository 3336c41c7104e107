"""The data-efficiency protocol: how well a model does when the target has little training data.

A point of the curve keeps a fraction of each target user's *training* interactions (seeded, at
least ``min_per_user`` each) and, optionally, the full kept fraction for only a sample of the
users (the others keep ``min_per_user``); validation and test are never touched, so every point
of the curve is scored on the same users and the same held-out items. Kept sets are nested: with
one seed, what a user keeps at 5% is part of what they keep at 10%.

Typical use::

    fractions = parse_fractions("0.05,0.1,0.25,1")
    for fraction, sparse in efficiency_curve(split, fractions, seed=2022):
        ...  # fit and select on sparse.train / sparse.valid, report on sparse.test

Items a user interacted with but that the protocol hid are neither excluded from the ranking nor
relevant: the ranking excludes ``sparse.train`` (plus validation when testing), as for any split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from crossrec.splitting.splits import Split

__all__ = ["efficiency_curve", "keep_training_fraction", "parse_fractions"]


def _check_fraction(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number in (0, 1], got {value!r}") from None
    if not 0.0 < number <= 1.0 or not np.isfinite(number):
        raise ValueError(f"{what} must be in (0, 1] (a share of the training data), got {value!r}")
    return number


def parse_fractions(fractions: str | Iterable[float]) -> tuple[float, ...]:
    """Validated, sorted, de-duplicated fractions of a curve.

    Parameters
    ----------
    fractions
        A comma-separated string (``"0.05,0.1,1"``, as the CLI takes it) or numbers.

    Raises
    ------
    ValueError
        When the list is empty, or a value is not a number in ``(0, 1]``.
    """
    items = [part.strip() for part in fractions.split(",")] if isinstance(fractions, str) else list(fractions)
    items = [item for item in items if not (isinstance(item, str) and item == "")]
    if not items:
        raise ValueError("give at least one fraction in (0, 1], e.g. '0.05,0.1,0.25,1'")
    return tuple(sorted({_check_fraction(item, f"curve fraction {item!r}") for item in items}))


def keep_training_fraction(
    split: Split,
    fraction: float,
    *,
    seed: int = 0,
    user_fraction: float = 1.0,
    min_per_user: int = 1,
) -> Split:
    """The split with only part of each user's training interactions; validation and test unchanged.

    Parameters
    ----------
    split
        Any :class:`~crossrec.splitting.Split` of the target domain.
    fraction
        Share in ``(0, 1]`` of each user's ``n_u`` training interactions kept:
        ``max(min_per_user, round(fraction * n_u))`` of them (never more than ``n_u``), chosen at
        random with ``seed``. The same seed gives nested kept sets for growing fractions.
    seed
        Seed of the random order of each user's training interactions (and of the user sample).
    user_fraction
        Share in ``(0, 1]`` of the users with training data that keep ``fraction`` of it; the
        others keep ``min_per_user`` interactions (they stay scorable, so validation and test
        are unchanged). ``1`` (the default): every user keeps ``fraction``.
    min_per_user
        Interactions every user with training data keeps (at least 1).

    Returns
    -------
    Split
        Same ``valid``, ``test``, sizes and seed; ``train`` is a subset of the original one, in the
        original order; ``protocol`` gains ``"+keep"`` and ``params`` records the arguments.

    Raises
    ------
    ValueError
        When ``fraction`` or ``user_fraction`` is outside ``(0, 1]`` or ``min_per_user < 1``.
    """
    fraction = _check_fraction(fraction, "fraction")
    user_fraction = _check_fraction(user_fraction, "user_fraction")
    if int(min_per_user) != min_per_user or min_per_user < 1:
        raise ValueError(f"min_per_user must be an integer >= 1, got {min_per_user!r}")
    train = split.train
    users = train.user
    rng = np.random.default_rng(seed)
    key = rng.random(len(train))
    order = np.lexsort((key, users))
    counts = np.bincount(users, minlength=split.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(train), dtype=np.int64)
    rank[order] = np.arange(len(train)) - starts[users[order]]

    keep_share = np.full(split.n_users, fraction)
    if user_fraction < 1.0:
        active = np.flatnonzero(counts > 0)
        n_full = max(1, int(np.floor(user_fraction * len(active) + 0.5)))
        chosen = np.random.default_rng([seed, 1]).permutation(active)[:n_full]
        keep_share[:] = 0.0
        keep_share[chosen] = fraction
    keep = np.minimum(counts, np.maximum(min_per_user, np.floor(keep_share * counts + 0.5))).astype(np.int64)
    mask = rank < keep[users]
    params = dict(split.params)
    params.update(keep_fraction=fraction, keep_user_fraction=user_fraction, keep_seed=seed)
    if min_per_user != 1:
        params["keep_min_per_user"] = int(min_per_user)
    return Split(
        train=train.take(mask),
        valid=split.valid,
        test=split.test,
        n_users=split.n_users,
        n_items=split.n_items,
        protocol=f"{split.protocol}+keep",
        seed=split.seed,
        params=params,
    )


def efficiency_curve(
    split: Split,
    fractions: str | Sequence[float],
    *,
    seed: int = 0,
    user_fraction: float = 1.0,
    min_per_user: int = 1,
) -> list[tuple[float, Split]]:
    """``(fraction, split)`` for each point of a data-efficiency curve, smallest fraction first.

    Every argument is checked before any split is built (see :func:`keep_training_fraction`).

    Raises
    ------
    ValueError
        When a fraction is outside ``(0, 1]``, or ``split`` has no validation interactions (every
        point's choices are made on validation, so a curve needs it).
    """
    points = parse_fractions(fractions)
    _check_fraction(user_fraction, "user_fraction")
    if len(split.valid) == 0:
        raise ValueError(
            f"a data-efficiency curve needs a validation part to choose models on, but this "
            f"{split.protocol!r} split has none: use a split with validation (e.g. random_split with "
            "ratios=(0.8, 0.1, 0.1))"
        )
    return [
        (
            fraction,
            keep_training_fraction(
                split, fraction, seed=seed, user_fraction=user_fraction, min_per_user=min_per_user
            ),
        )
        for fraction in points
    ]
