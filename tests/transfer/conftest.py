"""Two-domain fixtures: a synthetic pair whose right answer is known, and small real slices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.splitting.splits import Split
from crossrec.transfer import Links, SourceData, TransferData


def _interactions(matrix: np.ndarray) -> Interactions:
    users, items = np.nonzero(matrix)
    return Interactions(users, items, np.ones(len(users), np.float32))


def synthetic_pair(
    n_users: int = 80, n_items: int = 20, n_cold: int = 20, seed: int = 0
) -> tuple[TransferData, np.ndarray]:
    """Users in two taste groups (``u % 2``), items in two groups (``i % 2``) in both domains.

    In the source every user has most items of her group. In the target, warm users have several
    items of their group, while the last ``n_cold`` users have a single item of the *other*
    group: only the source reveals their taste. Validation and test hold one item of the user's
    own group. Users are linked by index. Returns the data and the cold users.
    """
    rng = np.random.default_rng(seed)
    group = np.arange(n_users) % 2
    item_group = np.arange(n_items) % 2
    own = group[:, None] == item_group[None, :]
    source = own & (rng.random((n_users, n_items)) < 0.8)
    source[np.arange(n_users), (np.arange(n_users) * 2 + group) % n_items] = True
    train = np.zeros((n_users, n_items), bool)
    valid = np.zeros_like(train)
    test = np.zeros_like(train)
    cold = np.arange(n_users - n_cold, n_users)
    for_user = np.argsort(rng.random((n_users, n_items)) + ~own, axis=1)  # own-group items first, shuffled
    valid[np.arange(n_users), for_user[:, 0]] = True
    test[np.arange(n_users), for_user[:, 1]] = True
    warm = np.arange(n_users - n_cold)
    for k in range(2, 7):
        train[warm, for_user[warm, k]] = True
    other = np.argsort(rng.random((n_users, n_items)) + own, axis=1)[:, 0]  # an item of the other group
    train[cold, other[cold]] = True
    split = Split(
        _interactions(train),
        _interactions(valid),
        _interactions(test),
        n_users,
        n_items,
        protocol="synthetic",
    )
    links = Links(np.arange(n_users), np.arange(n_users))
    data = TransferData(
        split, (SourceData("source", sp.csr_matrix(source.astype(np.float32)), user_links=links),), seed=seed
    )
    return data, cold


@pytest.fixture(scope="session")
def synthetic():
    return synthetic_pair()


def _movielens(n_target_users: int | None = None, n_source_users: int | None = None) -> TransferData:
    """ML-1M -> ML-100K (items linked by title, users not linked), optionally with sampled users,
    split 80/10/10 with seed 2022; skips when the data is unavailable."""
    from crossrec.data.builtin import DatasetUnavailableError, load_movielens_cdr
    from crossrec.splitting.splits import random_split

    try:
        source, target = load_movielens_cdr()
    except DatasetUnavailableError as error:  # pragma: no cover
        pytest.skip(str(error))
    rng = np.random.default_rng(0)

    def sample(domain, size):
        if size is None:
            return domain
        return domain.subset(
            np.isin(domain.interactions.user, rng.choice(domain.n_users, size, replace=False))
        )

    target = sample(target, n_target_users)  # target first: the same draws as before
    source = sample(source, n_source_users)
    split = random_split(target.interactions, target.n_users, target.n_items, seed=2022)
    return TransferData.from_domains(target, split, [source], link_items="ids", link_users=None, seed=2022)


@pytest.fixture(scope="session")
def movielens_slice():
    """ML-1M -> ML-100K with 150 target and 600 source users sampled."""
    return _movielens(150, 600)


@pytest.fixture(scope="session")
def movielens_full():
    """The demo's data: all of ML-1M -> ML-100K."""
    return _movielens()


@pytest.fixture(scope="session")
def amazon_slice(shared_data):
    """phone -> electronic from amazon-disencdr, 300 users linked by id (every user is in both)."""
    import pandas as pd

    from crossrec.splitting.splits import random_split

    folder = shared_data / "amazon-disencdr"
    if not folder.is_dir():
        pytest.skip("amazon-disencdr not in the shared data")

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(
            folder / name / "train.txt", sep="\t", header=None, names=["user", "item", "value"]
        )

    phone, electronic = read("phone_electronic"), read("electronic_phone")
    keep = np.random.default_rng(0).choice(
        np.intersect1d(phone.user.unique(), electronic.user.unique()), 300, replace=False
    )
    phone, electronic = phone[phone.user.isin(keep)], electronic[electronic.user.isin(keep)]
    users = np.sort(keep)

    def matrix(frame: pd.DataFrame) -> tuple[Interactions, int]:
        items, item_index = np.unique(frame.item.to_numpy(), return_inverse=True)
        return Interactions(
            np.searchsorted(users, frame.user.to_numpy()), item_index, np.ones(len(frame))
        ), len(items)

    source_inter, n_source_items = matrix(phone)
    target_inter, n_target_items = matrix(electronic)
    split = random_split(target_inter, len(users), n_target_items, seed=2022)
    source = SourceData(
        "phone",
        source_inter.to_csr(len(users), n_source_items),
        user_links=Links(np.arange(len(users)), np.arange(len(users))),
    )
    return TransferData(split, (source,), seed=2022)
