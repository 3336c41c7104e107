"""Train/validation/test splits of a domain's interactions, seeded and saved with each run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from crossrec.data.interactions import Interactions

__all__ = ["Split", "random_split"]


@dataclass(frozen=True)
class Split:
    """A split of one domain's interactions; indices refer to that domain's vocabularies.

    Attributes
    ----------
    train, valid, test
        Disjoint interaction sets.
    n_users, n_items
        Sizes of the domain's vocabularies (every matrix built from the split has this shape).
    protocol
        Name of the protocol that made the split (e.g. ``"random_ratio"``), for reports.
    seed
        Seed that made it.
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    n_users: int
    n_items: int
    protocol: str = "random_ratio"
    seed: int = 0

    def matrix(self, part: str) -> sp.csr_matrix:
        """Binary user x item matrix of ``"train"``, ``"valid"`` or ``"test"``."""
        return getattr(self, part).to_csr(self.n_users, self.n_items)

    def fingerprint(self) -> str:
        """Stable hash of the split's contents; runs on the same split share it."""
        import hashlib

        digest = hashlib.sha256()
        for part in (self.train, self.valid, self.test):
            order = np.lexsort((part.item, part.user))
            digest.update(part.user[order].tobytes())
            digest.update(part.item[order].tobytes())
            digest.update(b"|")
        digest.update(f"{self.n_users}x{self.n_items}".encode())
        return digest.hexdigest()[:16]

    def save(self, folder: str | Path) -> None:
        """Write ``train/valid/test.parquet`` and ``split.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("train", "valid", "test"):
            part: Interactions = getattr(self, name)
            columns = {"user": part.user, "item": part.item, "value": part.value}
            if part.timestamp is not None:
                columns["timestamp"] = part.timestamp
            pq.write_table(pa.table(columns), folder / f"{name}.parquet")
        meta = {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "protocol": self.protocol,
            "seed": self.seed,
            "fingerprint": self.fingerprint(),
        }
        (folder / "split.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> Split:
        folder = Path(folder)
        meta = json.loads((folder / "split.json").read_text())
        parts = {}
        for name in ("train", "valid", "test"):
            table = pq.read_table(folder / f"{name}.parquet").to_pydict()
            parts[name] = Interactions(
                np.asarray(table["user"]),
                np.asarray(table["item"]),
                np.asarray(table["value"]),
                np.asarray(table["timestamp"]) if "timestamp" in table else None,
            )
        return cls(
            n_users=meta["n_users"],
            n_items=meta["n_items"],
            protocol=meta["protocol"],
            seed=meta["seed"],
            **parts,
        )


def random_split(
    interactions: Interactions,
    n_users: int,
    n_items: int,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 2022,
) -> Split:
    """Per-user random ratio split (RecBole's ``RS: [0.8, 0.1, 0.1]`` with order ``RO``).

    Each user's interactions are shuffled and cut by the ratios, with RecBole's rounding:
    validation and test get ``int(ratio * n)``, a part whose share is below one interaction
    still gets one while training keeps more than one, and training gets the rest, so every
    user keeps at least one training interaction.
    """
    if len(ratios) != 3 or min(ratios) < 0 or not np.isclose(sum(ratios), 1.0):
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    if len(interactions) == 0:
        raise ValueError("cannot split an empty interaction set")
    rng = np.random.default_rng(seed)
    noise = rng.random(len(interactions))
    order = np.lexsort((noise, interactions.user))  # grouped by user, shuffled within
    users_sorted = interactions.user[order]
    counts = np.bincount(users_sorted, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[users_sorted]  # position within the user's group
    n = counts[users_sorted]
    n_valid = np.floor(ratios[1] * n).astype(np.int64)
    n_test = np.floor(ratios[2] * n).astype(np.int64)
    n_train = n - n_valid - n_test
    # RecBole gives a part with 0 < ratio * n < 1 one interaction taken from training, test
    # first, then validation, while training keeps more than one.
    for ratio, size in ((ratios[2], n_test), (ratios[1], n_valid)):
        bump = (n_train > 1) & (ratio * n > 0) & (ratio * n < 1)
        size += bump
        n_train -= bump
    part = np.where(rank < n_train, 0, np.where(rank < n_train + n_valid, 1, 2))
    train, valid, test = (interactions.take(order[part == k]) for k in range(3))
    return Split(train, valid, test, n_users, n_items, protocol="random_ratio", seed=seed)
