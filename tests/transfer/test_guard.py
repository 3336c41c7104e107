"""The negative-transfer guard and ``auto``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from crossrec.models import ItemKNN
from crossrec.transfer import Joint, TargetOnly, auto_transfer, guarded_transfer
from crossrec.transfer.links import Links


def test_guard_keeps_a_helpful_transfer(synthetic):
    data, _ = synthetic
    result = guarded_transfer(Joint(ItemKNN(k=20, shrink=0.0), domain_weight=1.0), data)
    assert result.kept == "transfer"
    assert result.ci_low <= result.difference <= result.ci_high
    assert result.model is result.transfer_model
    assert "keeping the transfer" in result.describe()


def test_guard_rejects_negative_transfer(synthetic):
    data, _ = synthetic
    rng = np.random.default_rng(1)
    noise = sp.csr_matrix((rng.random((data.n_users, 40)) < 0.5).astype(np.float32))
    # a source of random interactions whose users are linked to random people: pure noise
    wrong = Links(np.arange(data.n_users), rng.permutation(data.n_users))
    bad = replace(
        data, sources=(replace(data.sources[0], name="noise", interactions=noise, user_links=wrong),)
    )
    result = guarded_transfer(Joint(ItemKNN(k=20, shrink=0.0), domain_weight=20.0), bad)
    assert result.kept == "baseline"
    assert result.model is result.baseline_model
    assert result.difference < 0


def test_guard_can_require_significance(synthetic):
    """A transfer better on a handful of users only: a positive mean difference whose interval
    reaches zero. The default rule keeps it, ``require_significant`` must not."""
    data, _ = synthetic
    transfer = Joint(ItemKNN(k=20, shrink=0.0), domain_weight=1.0)
    fitted = transfer.fit(data)
    users, values = data.per_user(fitted, "ndcg@10")
    better_on = users[np.flatnonzero(values > 0)[:2]]  # the baseline fails exactly these two users

    def baseline(batch: np.ndarray) -> np.ndarray:
        scores = fitted.score(batch)
        scores[np.isin(batch, better_on)] = -data.valid[batch[np.isin(batch, better_on)]].toarray()
        return scores

    default = guarded_transfer(transfer, data, baseline=baseline)
    strict = guarded_transfer(transfer, data, baseline=baseline, require_significant=True)
    assert default.difference > 0 and default.ci_low <= 0  # the case where the two rules disagree
    assert default.kept == "transfer"
    assert strict.kept == "baseline" and strict.model is strict.baseline_model


def test_auto_tries_what_the_data_allows(synthetic):
    data, _ = synthetic
    candidates = [
        Joint(ItemKNN(k=20, shrink=0.0), domain_weight=1.0),
        Joint(ItemKNN(k=20, shrink=0.0), domain_weight=0.1),
        Joint(TargetOnly().model, domain_weight=1.0),  # EASE: fine on 20 + 20 columns
    ]
    result = auto_transfer(data, candidates=candidates, baseline=TargetOnly(ItemKNN(k=20, shrink=0.0)))
    assert len(result.tried) == 3 and not result.skipped
    best = max(result.tried, key=lambda row: row["valid_ndcg@10"])
    assert result.guard.transfer_score == best["valid_ndcg@10"]
    assert result.guard.kept == "transfer"
