"""Each source's contribution on test: the validation table of
:func:`crossrec.transfer.source_contribution` with the same paired differences measured on the test
part (the models were fitted and the weights chosen on validation only; test is read here once)."""

from __future__ import annotations

from typing import Any

import numpy as np

from crossrec.evaluation.evaluate import evaluate_model
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.selection.validation import parse_metric
from crossrec.splitting.splits import Split
from crossrec.transfer.multisource import SourceContribution

__all__ = ["contribution_on_test"]


def contribution_on_test(
    contribution: SourceContribution,
    split: Split,
    *,
    part: str = "test",
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The contribution rows with ``test_<metric>``, ``test_reference_<metric>``, ``test_difference``,
    ``test_ci_low`` and ``test_ci_high`` added (paired per-user bootstrap over the ``part`` users;
    each fitted variant is evaluated once)."""
    metric = contribution.metric
    name, k = parse_metric(metric)
    values: dict[int, np.ndarray] = {}
    users: np.ndarray | None = None
    for model in contribution.models.values():
        if id(model) in values:
            continue
        table = evaluate_model(model.scorer(), split, part=part, metrics=[name], ks=[k], seed=seed).per_user
        order = np.argsort(table["user"].to_numpy(), kind="stable")
        scored = table["user"].to_numpy()[order]
        if users is not None and not np.array_equal(users, scored):
            raise RuntimeError(f"the variants were evaluated on different {part} users")
        users = scored
        values[id(model)] = table[metric].to_numpy()[order]
    rows = []
    for row in contribution.rows:
        ours = values[id(contribution.models[row["model"]])]
        reference = values[id(contribution.models[row["reference"]])]
        low, high = paired_bootstrap_ci(ours, reference, n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                **row,
                f"{part}_{metric}": float(ours.mean()),
                f"{part}_reference_{metric}": float(reference.mean()),
                f"{part}_difference": float((ours - reference).mean()),
                f"{part}_ci_low": low,
                f"{part}_ci_high": high,
                f"n_{part}_users": len(ours),
            }
        )
    return rows
