"""Slices: per-user metric means over groups of users (activity buckets, linked vs not) and over
head vs tail items.

A slice table has one row per ``(slice, group)`` with the number of users in the group and the
mean of every metric column; it is computed from per-user tables only, so any metric (accuracy or
beyond-accuracy) is sliced the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_ACTIVITY_EDGES", "activity_buckets", "slice_table"]

#: Lower edges of the activity buckets: 1, 2-3, 4-5, 6-10, 11-20, 21-50, 51+ training interactions.
DEFAULT_ACTIVITY_EDGES: tuple[int, ...] = (1, 2, 4, 6, 11, 21, 51)


def activity_buckets(n_train: np.ndarray, edges: Sequence[int] = DEFAULT_ACTIVITY_EDGES) -> np.ndarray:
    """Label each user by its number of training interactions, e.g. ``"2-3"`` or ``"51+"``.

    Parameters
    ----------
    n_train
        Training interactions per user.
    edges
        Increasing lower edges; a user below the first edge is labelled ``"0"`` if it has none,
        else ``"<first"``.
    """
    edges = np.asarray(edges, dtype=np.int64)
    if len(edges) == 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"activity bucket edges must be strictly increasing, got {edges.tolist()}")
    labels = [
        str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ] + [f"{edges[-1]}+"]
    below = "0" if edges[0] == 1 else f"<{edges[0]}"
    index = np.searchsorted(edges, np.asarray(n_train), side="right") - 1
    table = np.array([below, *labels], dtype=object)
    return table[index + 1]


def bucket_order(labels: Sequence[str]) -> list[str]:
    """Activity labels sorted by their lower edge."""

    def lower(label: str) -> float:
        text = label.lstrip("<").rstrip("+").split("-")[0]
        return float(text) - (0.5 if label.startswith("<") else 0)

    return sorted(set(labels), key=lower)


_BUCKET_LABEL = re.compile(r"^(<\d+|\d+|\d+-\d+|\d+\+)$")


def _group_order(labels: list[str]) -> list[str]:
    """Activity-bucket labels by their lower edge, anything else alphabetically."""
    if labels and all(_BUCKET_LABEL.match(label) for label in labels):
        return bucket_order(labels)
    return sorted(labels)


def slice_table(per_user: pd.DataFrame, groups: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Mean of every metric column of ``per_user`` within each group of each slice.

    Parameters
    ----------
    per_user
        Per-user table (column ``user`` plus metric columns).
    groups
        Slice name -> label of each row of ``per_user`` (same length).

    Returns
    -------
    DataFrame
        Columns ``slice``, ``group``, ``n_users`` and one column per metric.
    """
    metric_columns = [c for c in per_user.columns if c != "user"]
    frames = []
    for name, labels in groups.items():
        labels = np.asarray(labels)
        if len(labels) != len(per_user):
            raise ValueError(f"slice {name!r} has {len(labels)} labels for {len(per_user)} users")
        table = per_user[metric_columns].groupby(labels, sort=True).mean()
        table = table.reindex(_group_order(table.index.astype(str).tolist()))
        table.insert(0, "n_users", pd.Series(labels).value_counts().reindex(table.index).to_numpy())
        table.insert(0, "group", table.index.astype(str))
        table.insert(0, "slice", name)
        frames.append(table.reset_index(drop=True))
    if not frames:
        return pd.DataFrame(columns=["slice", "group", "n_users", *metric_columns])
    return pd.concat(frames, ignore_index=True)
