"""Shared by the education studies: ordered sequences of each platform from the ingested bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crossrec.data import Domain, load_bundle
from crossrec.models.sequences import Sequences


def sequences_of(domain: Domain) -> Sequences:
    """Each learner's enrolments ordered by ``step`` (the published file order)."""
    return Sequences.from_interactions(domain.interactions, len(domain.users), len(domain.items))


def load_platforms(bundle: str | Path) -> dict[str, Domain]:
    return load_bundle(bundle).domains


def canvas_split(domain: Domain) -> tuple[Sequences, Sequences, Sequences, Sequences]:
    """``(train, test, head, valid)``: the published split (each learner's last 20% is test) and the
    validation split carved the same way from the training part (for selection; never test)."""
    train, test = sequences_of(domain).split_last(0.2)
    head, valid = train.split_last(0.2)
    return train, test, head, valid


def paired_summary(name: str, ours: np.ndarray, baseline: np.ndarray) -> str:
    """Mean difference with its paired bootstrap 95% CI over learners."""
    from crossrec.evaluation import paired_bootstrap_ci

    low, high = paired_bootstrap_ci(ours, baseline, n_resamples=2000, seed=0)
    return f"{name}: {ours.mean() - baseline.mean():+.4f} [{low:+.4f}, {high:+.4f}]"
