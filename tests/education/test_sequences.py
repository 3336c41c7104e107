"""The ordered-history type: construction, order, splits and transitions."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.data.interactions import Interactions
from crossrec.models.sequences import Sequences


def test_from_interactions_orders_by_time_then_row() -> None:
    interactions = Interactions(
        user=np.array([1, 0, 1, 0, 1]),
        item=np.array([5, 2, 3, 1, 4]),
        value=np.ones(5),
        timestamp=np.array([30, 20, 10, 20, 10]),
    )
    sequences = Sequences.from_interactions(interactions, n_users=3, n_items=6)
    assert sequences.history(0).tolist() == [2, 1]  # tie at t=20: row order
    assert sequences.history(1).tolist() == [3, 4, 5]
    assert sequences.history(2).tolist() == []


def test_without_timestamps_row_order_is_time_order() -> None:
    interactions = Interactions(np.array([0, 1, 0]), np.array([3, 1, 2]), np.ones(3))
    sequences = Sequences.from_interactions(interactions, 2, 4)
    assert sequences.history(0).tolist() == [3, 2]


def test_recent_pads_on_the_left() -> None:
    sequences = Sequences.from_lists([[1, 2, 3], [4], []], n_items=5)
    assert sequences.recent(2).tolist() == [[2, 3], [-1, 4], [-1, -1]]


def test_split_last_fraction_rounds_and_keeps_a_head() -> None:
    sequences = Sequences.from_lists([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6, 7], [3]], n_items=8)
    head, tail = sequences.split_last(0.2)
    assert tail.history(0).tolist() == [4]  # round(1.0) = 1
    assert tail.history(1).tolist() == [6, 7]  # round(1.6) = 2
    assert tail.history(2).tolist() == [] and head.history(2).tolist() == [3]
    assert head.concat(tail).items.tolist() == sequences.items.tolist()


def test_split_last_n_and_transitions() -> None:
    sequences = Sequences.from_lists([[0, 1, 2], [2, 0]], n_items=3)
    head, tail = sequences.split_last(n=1)
    assert tail.items.tolist() == [2, 0]
    earlier, later = sequences.transitions(gap=2)
    assert list(zip(earlier.tolist(), later.tolist(), strict=True)) == [(0, 2)]


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="item index outside"):
        Sequences.from_lists([[0, 9]], n_items=3)
    with pytest.raises(ValueError, match="exactly one"):
        Sequences.from_lists([[0]], n_items=1).split_last()
