"""The lean BPR-MF step: exact gradients, row-wise updates, negative filtering, learning."""

from __future__ import annotations

import numpy as np
import torch

from crossrec.data import Interactions
from crossrec.data.arrays import write_arrays
from crossrec.training import OptimConfig
from crossrec.training.fast_bpr import (
    BPRTables,
    PositiveFilter,
    apply_bpr_update,
    bpr_terms,
    run_epoch,
)


def _tables(seed: int = 0) -> BPRTables:
    return BPRTables.initialise(5, 6, 4, seed=seed, init_std=0.5)


def test_sgd_step_equals_autograd_with_repeated_rows() -> None:
    users, positives, negatives = torch.tensor([0, 0, 3]), torch.tensor([1, 2, 1]), torch.tensor([2, 5, 1])
    for l2 in (0.0, 0.1):
        config = OptimConfig(optimizer="sgd", learning_rate=0.3, l2=l2)
        tables = _tables()
        user = tables.user.clone().requires_grad_(True)
        item = tables.item.clone().requires_grad_(True)
        x = (user[users] * (item[positives] - item[negatives])).sum(1)
        penalty = user[users].pow(2).sum() + item[positives].pow(2).sum() + item[negatives].pow(2).sum()
        (torch.nn.functional.softplus(-x).sum() + l2 / 2 * penalty).backward()
        terms = bpr_terms(tables, users, positives, negatives)
        assert abs(terms.loss - float(torch.nn.functional.softplus(-x.detach()).sum())) < 1e-5
        apply_bpr_update(tables, terms, config)
        assert torch.allclose(tables.user, user.detach() - 0.3 * user.grad, atol=1e-6)
        assert torch.allclose(tables.item, item.detach() - 0.3 * item.grad, atol=1e-6)


def test_rowwise_adagrad_matches_its_definition() -> None:
    config = OptimConfig(optimizer="rowwise_adagrad", learning_rate=0.2)
    users, positives, negatives = torch.tensor([1, 1]), torch.tensor([0, 3]), torch.tensor([4, 0])
    tables = _tables(1)
    before = BPRTables(*(t.clone() for t in (tables.user, tables.item, tables.user_state, tables.item_state)))
    user = before.user.clone().requires_grad_(True)
    item = before.item.clone().requires_grad_(True)
    x = (user[users] * (item[positives] - item[negatives])).sum(1)
    torch.nn.functional.softplus(-x).sum().backward()
    # per occurrence: accumulator += mean(g^2); then every occurrence steps by -lr g / sqrt(accumulator)
    c = -torch.sigmoid(-x).detach()
    diff = (before.item[positives] - before.item[negatives]).detach()
    user_grads = c[:, None] * diff
    state = torch.zeros(5).index_add_(0, users, user_grads.pow(2).mean(1))
    expected_user = before.user.index_add(0, users, -0.2 * user_grads / state[users].sqrt()[:, None])
    apply_bpr_update(tables, bpr_terms(tables, users, positives, negatives), config)
    assert torch.allclose(tables.user_state, state, atol=1e-7)
    assert torch.allclose(tables.user, expected_user, atol=1e-6)
    assert torch.equal(tables.item[[1, 2, 5]], before.item[[1, 2, 5]])  # untouched rows stay


def test_positive_filter_exact_and_hashed(tmp_path) -> None:
    rng = np.random.default_rng(0)
    user, item = rng.integers(0, 300, 5_000), rng.integers(0, 400, 5_000)
    arrays = write_arrays(Interactions(user, item, np.ones(len(user))), 300, 400, tmp_path / "a")
    exact = PositiveFilter(arrays)
    hashed = PositiveFilter(arrays, max_slots=1 << 16)
    assert exact.exact and not hashed.exact
    for check in (exact, hashed):
        assert bool(check.contains(torch.from_numpy(user), torch.from_numpy(item)).all())
    others_u, others_i = torch.randint(0, 300, (20_000,)), torch.randint(0, 400, (20_000,))
    truly = exact.contains(others_u, others_i)
    false_positive = (hashed.contains(others_u, others_i) & ~truly).float().mean()
    assert float(false_positive) < 0.15


def test_epochs_learn_and_repeat_exactly(tmp_path) -> None:
    rng = np.random.default_rng(0)
    group_user, group_item = rng.integers(0, 4, 200), rng.integers(0, 4, 120)
    user, item = np.nonzero((group_user[:, None] == group_item[None, :]) & (rng.random((200, 120)) < 0.3))
    arrays = write_arrays(Interactions(user, item, np.ones(len(user))), 200, 120, tmp_path / "a")
    config = OptimConfig(optimizer="rowwise_adagrad", batch_size=256, learning_rate=0.1)
    runs = []
    for _ in range(2):
        tables = BPRTables.initialise(200, 120, 8)
        losses = [run_epoch(tables, arrays, PositiveFilter(arrays), config, e).loss for e in range(1, 6)]
        runs.append((tables, losses))
    assert runs[0][1][-1] < 0.6 * runs[0][1][0]
    assert torch.equal(runs[0][0].user, runs[1][0].user) and torch.equal(runs[0][0].item, runs[1][0].item)
    scores = runs[0][0].user @ runs[0][0].item.T
    same_group = torch.from_numpy(group_user[:, None] == group_item[None, :])
    assert scores[same_group].mean() > scores[~same_group].mean() + 0.5
