"""The crossrec half of the anchor benchmark: every candidate on exactly RecBole's split.

A candidate is one line of :data:`CANDIDATES`: a model label, a transfer strategy name and a
function that builds the strategy from a seed and optional parameters. A candidate with a
``grid`` is fitted once per parameter set and the set with the best validation NDCG@10 is kept
(selection on validation only); ``train_seconds`` is the kept fit's time and ``tune_seconds`` the
time of the whole grid. Test metrics use RecBole's definitions and candidate set: every target
item is ranked, each user's training and validation items are excluded unless they are also test
items (RecBole's ``history = used - positive``), and Recall/NDCG/MRR/Hit/Precision@10 are averaged
over users with test items.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from _common import with_optim  # benchmarks/ is on sys.path (run.py puts it there)

from crossrec.data.builtin import load_movielens_cdr
from crossrec.data.domain import Domain
from crossrec.evaluation import Split, evaluate_ranking
from crossrec.models import BPRMF, EASE, LightGCN, Popularity, Recommender
from crossrec.selection import Candidate as GridPoint
from crossrec.selection import Holdout, NoTrialSucceededError, select
from crossrec.splitting.predefined import load_predefined_split
from crossrec.transfer import TransferData, TransferNotPossibleError, TransferStrategy, make_strategy

METRICS = ("recall", "ndcg", "mrr", "hit", "precision")

Builder = Callable[[int, dict[str, Any], dict[str, Any]], TransferStrategy]
ModelFactory = Callable[..., Recommender]


@dataclass(frozen=True)
class Candidate:
    """One row of the crossrec side.

    ``build(seed, model_params, strategy_params)`` returns the strategy to fit; ``grid`` lists
    ``{"model": {...}, "strategy": {...}}`` parameter sets tried in turn (best validation kept).
    """

    model: str
    strategy: str
    build: Builder
    grid: tuple[dict[str, dict[str, Any]], ...] = field(default=({},))


def _strategy(name: str, model: ModelFactory | None = None) -> Builder:
    """Builder of strategy ``name`` around ``model(seed=..., **model_params)`` (its default model if None)."""

    def build(seed: int, model_params: dict[str, Any], strategy_params: dict[str, Any]) -> TransferStrategy:
        recommender = model(seed=seed, **model_params) if model is not None else None
        return make_strategy(name, recommender, **strategy_params)

    return build


def _mf(seed: int, **params: Any) -> BPRMF:
    return with_optim(BPRMF, seed=seed, progress=False, **params)


def _lightgcn(seed: int, **params: Any) -> LightGCN:
    return with_optim(LightGCN, seed=seed, progress=False, **params)


def _popularity(seed: int) -> Popularity:
    return Popularity()


def _ease(seed: int, **params: Any) -> EASE:
    return EASE(**params)


def grid(model: dict[str, list[Any]] | None = None, strategy: dict[str, list[Any]] | None = None) -> tuple:
    """Every combination of the listed values, as ``{"model": {...}, "strategy": {...}}`` sets."""
    model, strategy = model or {}, strategy or {}
    keys = [("model", k) for k in model] + [("strategy", k) for k in strategy]
    values = [*model.values(), *strategy.values()]
    sets = []
    for combination in itertools.product(*values):
        entry: dict[str, dict[str, Any]] = {"model": {}, "strategy": {}}
        for (part, key), value in zip(keys, combination, strict=True):
            entry[part][key] = value
        sets.append(entry)
    return tuple(sets)


#: EASE's L2 weight, chosen on validation (a closed form: each fit takes about a second).
EASE_REG = [100.0, 250.0, 500.0]

#: What the runner fits. Adding a strategy or model is one entry here.
CANDIDATES: tuple[Candidate, ...] = (
    Candidate("popularity", "none", _strategy("none", _popularity)),
    Candidate("bpr_mf", "none", _strategy("none", _mf)),
    Candidate("lightgcn", "none", _strategy("none", _lightgcn)),
    Candidate("ease", "none", _strategy("none", _ease), grid(model={"reg": EASE_REG})),
    Candidate("bpr_mf", "warm_start", _strategy("warm_start", _mf)),
    Candidate("bpr_mf", "finetune", _strategy("finetune", _mf)),
    Candidate("bpr_mf", "joint", _strategy("joint", _mf)),
    Candidate("bpr_mf", "mapping", _strategy("mapping", _mf)),
    Candidate(
        "ease",
        "joint",
        _strategy("joint", _ease),
        grid(model={"reg": EASE_REG}, strategy={"domain_weight": [0.05, 0.15, 0.3, 0.6]}),
    ),
    Candidate("default", "content", _strategy("content")),
)


@dataclass(frozen=True)
class Setting:
    """The data every candidate sees: the target split, the transfer data and the evaluation matrices."""

    split: Split
    data: TransferData
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix

    def exclude(self, part: str) -> sp.csr_matrix:
        """Items never ranked for ``part``: earlier parts' items that are not ``part``'s positives."""
        seen = self.train if part == "valid" else self.train + self.valid
        positives = self.valid if part == "valid" else self.test
        seen = sp.csr_matrix(seen, dtype=np.float32)
        seen.data[:] = 1.0
        keep = seen - seen.multiply(positives)
        keep.eliminate_zeros()
        return keep


def load_setting(split_dir: Path, seed: int = 2022) -> tuple[Setting, Domain, Domain]:
    """RecBole's exported split mapped onto crossrec's ``movielens-cdr`` target vocabularies."""
    source, target = load_movielens_cdr()
    split, _, _ = load_predefined_split(
        split_dir / "train.parquet",
        split_dir / "valid.parquet",
        split_dir / "test.parquet",
        users=target.users,
        items=target.items,
        overlap="keep",  # the target repeats some (user, title) pairs; RecBole splits them apart
    )
    data = TransferData.from_domains(target, split, [source], link_items="ids", link_users=None, seed=seed)
    setting = Setting(split, data, split.matrix("train"), split.matrix("valid"), split.matrix("test"))
    return setting, source, target


def _metrics(model: Recommender, setting: Setting, part: str) -> dict[str, float]:
    truth = setting.valid if part == "valid" else setting.test
    result = evaluate_ranking(model.score, truth, setting.exclude(part), metrics=METRICS, ks=[10])
    return result.mean()


def score_exported_vectors(setting: Setting, path: Path, target: Domain) -> dict[str, float]:
    """Test metrics, by crossrec's evaluation, of user/item vectors RecBole exported (``vectors/*.npz``).

    Matching RecBole's own numbers for the same model shows that both sides rank the same
    candidates on the same split with the same metric definitions.
    """
    vectors = np.load(path)
    users = np.zeros((target.n_users, vectors["users"].shape[1]), dtype=np.float32)
    items = np.zeros((target.n_items, vectors["items"].shape[1]), dtype=np.float32)
    users[target.users.index(vectors["user_ids"])] = vectors["users"]
    items[target.items.index(vectors["item_ids"])] = vectors["items"]
    result = evaluate_ranking(
        lambda batch: users[batch] @ items.T, setting.test, setting.exclude("test"), metrics=METRICS, ks=[10]
    )
    return result.mean()


def run_candidate(candidate: Candidate, setting: Setting, seed: int) -> dict[str, Any]:
    """Fit every parameter set of ``candidate``, keep the best on validation NDCG@10, test it."""
    row: dict[str, Any] = {"system": "crossrec", "model": candidate.model, "strategy": candidate.strategy}
    validation = Holdout(
        setting.train, setting.valid, exclude=setting.exclude("valid"), fit=lambda s: s.fit(setting.data)
    )
    try:
        grid = [
            GridPoint(candidate.build(seed, p.get("model", {}), p.get("strategy", {})), params=p)
            for p in candidate.grid
        ]
        chosen = select(grid, validation, skip=(TransferNotPossibleError, ValueError))
    except NoTrialSucceededError as error:
        row["skipped"] = error.trials[0].reason
        return row
    except (TransferNotPossibleError, ValueError) as error:  # a strategy refused at construction
        row["skipped"] = str(error).splitlines()[0]
        return row
    test = _metrics(chosen.model, setting, "test")
    row.update({f"{metric}@10": test[f"{metric}@10"] for metric in METRICS})
    row["valid_ndcg@10"] = chosen.score
    row["train_seconds"] = round(chosen.best.seconds, 2)
    row["train_cpu_seconds"] = round(chosen.best.cpu_seconds, 2)
    if len(candidate.grid) > 1:
        row["tune_seconds"] = round(chosen.seconds, 2)
        row["params"] = chosen.best.params
    return row


def run_crossrec(
    split_dir: Path,
    *,
    seed: int = 2022,
    candidates: tuple[Candidate, ...] = CANDIDATES,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All candidates on the split in ``split_dir``; returns the rows and a description of the data."""
    setting, source, target = load_setting(split_dir, seed)
    rows = []
    for candidate in candidates:
        row = run_candidate(candidate, setting, seed)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    checks = {}
    for path in sorted((split_dir.parent / "vectors").glob("*.npz")):
        checks[path.stem] = {
            key: round(value, 4) for key, value in score_exported_vectors(setting, path, target).items()
        }
    info = {
        "recbole_vectors_scored_by_crossrec": checks,
        "target": {
            "users": target.n_users,
            "items": target.n_items,
            "interactions": len(target.interactions),
        },
        "source": {
            "users": source.n_users,
            "items": source.n_items,
            "interactions": len(source.interactions),
        },
        "linked_items": int(setting.data.sources[0].n_item_links),
        "split": setting.split.describe(),
    }
    return rows, info
