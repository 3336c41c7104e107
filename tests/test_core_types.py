"""Vocabulary, Interactions and Domain: the contracts every stage builds on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.transfer.links import Links


def test_vocabulary_round_trip_and_unknown_ids():
    vocab = Vocabulary.from_values(["b", "a", "c", "a", 3])
    assert vocab.ids.tolist() == ["3", "a", "b", "c"]
    assert vocab.index(["c", "a"]).tolist() == [3, 1]
    assert vocab.lookup(np.array([0, 2])).tolist() == ["3", "b"]
    assert vocab.index(["zz", "a"], missing="minus_one").tolist() == [-1, 1]
    with pytest.raises(KeyError, match="zz"):
        vocab.index(["zz"])
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["x", "x"])


def test_interactions_to_csr_counts_duplicates_once_when_binary():
    inter = Interactions([0, 0, 1], [1, 1, 2], [1.0, 2.0, 5.0])
    binary = inter.to_csr(2, 3)
    assert binary.toarray().tolist() == [[0, 1, 0], [0, 0, 1]]
    weighted = inter.to_csr(2, 3, binary=False)
    assert weighted.toarray().tolist() == [[0, 3, 0], [0, 0, 5]]
    with pytest.raises(ValueError, match="length"):
        Interactions([0, 1], [0], [1.0, 1.0])


def test_domain_subset_reindexes_and_keeps_side_tables_aligned():
    domain = Domain(
        name="d",
        users=Vocabulary(["u0", "u1", "u2"]),
        items=Vocabulary(["i0", "i1", "i2"]),
        interactions=Interactions([0, 1, 2, 2], [0, 2, 2, 1], np.ones(4)),
        item_features=pd.DataFrame({"title": ["zero", "one", "two"]}),
    )
    sub = domain.subset(np.array([False, True, True, False]))
    assert sub.users.ids.tolist() == ["u1", "u2"]
    assert sub.items.ids.tolist() == ["i2"]
    assert sub.item_features["title"].tolist() == ["two"]
    assert sub.interactions.user.tolist() == [0, 1]
    with pytest.raises(ValueError, match="vocabulary"):
        Domain("bad", Vocabulary(["u"]), Vocabulary(["i"]), Interactions([1], [0], [1.0]))


def test_links_by_shared_ids():
    source = Vocabulary(["a", "b", "c"])
    target = Vocabulary(["c", "x", "a"])
    links = Links.by_shared_ids(source, target)
    assert links.target.tolist() == [0, 2]
    assert links.source.tolist() == [2, 0]
    assert links.coverage(len(target)) == pytest.approx(2 / 3)
