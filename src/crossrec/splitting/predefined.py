"""Splits given as files: train/valid/test tables of raw user and item ids (e.g. exported by RecBole).

:func:`load_predefined_split` reads the three files (Parquet or CSV), maps their raw ids to
vocabularies (the target :class:`~crossrec.data.Domain`'s own, so that cross-domain links built on
those vocabularies keep working, or new ones built from the files) and returns a checked
:class:`~crossrec.evaluation.Split`. Unknown ids and a (user, item) pair in two parts are errors
that name the file and the offending ids.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary
from crossrec.splitting.splits import PARTS, Split, predefined_split

__all__ = ["load_predefined_split", "read_id_table"]

_PARQUET_SUFFIXES = {".parquet", ".pq"}
_CSV_SEPARATORS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


def read_id_table(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read ``columns`` of a Parquet or CSV/TSV file as strings (raw ids are never parsed as numbers).

    Parameters
    ----------
    path
        ``.parquet``/``.pq``, ``.csv`` (comma) or ``.tsv``/``.txt`` (tab) file.
    columns
        Columns to read; each must exist.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        On an unsupported suffix, a missing column, or empty ids.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        available = pq.read_schema(path).names
    elif suffix in _CSV_SEPARATORS:
        available = pd.read_csv(path, sep=_CSV_SEPARATORS[suffix], nrows=0).columns.tolist()
    else:
        raise ValueError(
            f"split file {path}: unsupported suffix {suffix!r}; use .parquet, .pq, .csv, .tsv or .txt"
        )
    missing = [column for column in columns if column not in available]
    if missing:
        raise ValueError(
            f"split file {path}: missing column(s) {missing}; found {available}. "
            "Pass user_col=/item_col= naming the id columns."
        )
    if suffix in _PARQUET_SUFFIXES:
        frame = pq.read_table(path, columns=list(columns)).to_pandas()
    else:
        frame = pd.read_csv(
            path, sep=_CSV_SEPARATORS[suffix], usecols=list(columns), dtype=str, keep_default_na=False
        )
    frame = frame.astype(str)
    for column in columns:
        blank = frame[column].isin(["", "nan", "None", "<NA>"])
        if blank.any():
            raise ValueError(
                f"split file {path}: column {column!r} has {int(blank.sum())} empty id(s) "
                f"(first at row {int(np.flatnonzero(blank.to_numpy())[0])})"
            )
    return frame


def _indices(raw: np.ndarray, vocabulary: Vocabulary, path: Path, column: str, kind: str) -> np.ndarray:
    positions = vocabulary.index(raw, missing="minus_one")
    unknown = positions < 0
    if unknown.any():
        examples = pd.unique(raw[unknown])[:5].tolist()
        raise ValueError(
            f"split file {path}: {int(unknown.sum())} row(s) have {kind} ids in column {column!r} that are "
            f"not in the given {kind} vocabulary (first: {examples}); pass the vocabulary of the domain the "
            f"split was made from, or {kind}s=None to build one from the files"
        )
    return positions


def _overlaps(
    parts: dict[str, Interactions], n_items: int, users: Vocabulary, items: Vocabulary, *, raise_: bool
) -> dict[str, int]:
    """Number of distinct (user, item) pairs shared by each pair of parts; raises on any when ``raise_``."""
    keys = {name: np.unique(part.user * n_items + part.item) for name, part in parts.items()}
    counts = {}
    for first, second in (("train", "valid"), ("train", "test"), ("valid", "test")):
        shared = np.intersect1d(keys[first], keys[second], assume_unique=True)
        counts[f"{first}&{second}"] = len(shared)
        if len(shared) and raise_:
            pairs = [
                (str(users.lookup(key // n_items)), str(items.lookup(key % n_items))) for key in shared[:3]
            ]
            raise ValueError(
                f"predefined split: {len(shared)} (user, item) pair(s) are in both {first!r} and {second!r} "
                f"(first: {pairs}); the parts must be disjoint so that test items are never trained on "
                "(pass overlap='keep' for files that repeat interactions, as RecBole's splits of data "
                "with duplicate interactions do)"
            )
    return counts


def load_predefined_split(
    train_path: str | Path,
    valid_path: str | Path,
    test_path: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
    overlap: Literal["raise", "keep"] = "raise",
) -> tuple[Split, Vocabulary, Vocabulary]:
    """Load a train/valid/test split from three files of raw ids.

    Parameters
    ----------
    train_path, valid_path, test_path
        Parquet (``.parquet``/``.pq``) or CSV (``.csv``; ``.tsv``/``.txt`` tab-separated) files,
        one row per interaction, with at least the two id columns. Other columns are ignored;
        every interaction is a positive (value 1.0).
    user_col, item_col
        Names of the raw user and item id columns.
    users, items
        Vocabularies to map the raw ids to, typically the target ``Domain``'s, so that links to a
        source domain stay valid; every id in the files must be in them. When ``None``, a sorted
        vocabulary of the ids in the three files is built.
    overlap
        A (user, item) pair in two parts is an error by default. With ``"keep"`` the parts are
        kept as given (a dataset with repeated interactions split at random puts some repeats in
        different parts, e.g. RecBole's splits); ``params["overlaps"]`` records the counts.
        Evaluate such a split like RecBole does: do not exclude a held-out item that is also a
        training item.

    Returns
    -------
    split, users, items
        The split (protocol ``"predefined"``, the file paths in ``params``) and the vocabularies
        its indices refer to (the given ones, or the built ones).

    Raises
    ------
    ValueError
        On a missing column, an id not in a given vocabulary, a (user, item) pair in two parts
        (unless ``overlap="keep"``), or a user with validation/test interactions but none in training.
    """
    paths = dict(zip(PARTS, (Path(train_path), Path(valid_path), Path(test_path)), strict=True))
    tables = {name: read_id_table(path, (user_col, item_col)) for name, path in paths.items()}
    if users is None:
        users = Vocabulary.from_values(np.concatenate([t[user_col].to_numpy() for t in tables.values()]))
    if items is None:
        items = Vocabulary.from_values(np.concatenate([t[item_col].to_numpy() for t in tables.values()]))
    parts: dict[str, Interactions] = {}
    for name, table in tables.items():
        user = _indices(table[user_col].to_numpy(dtype=object), users, paths[name], user_col, "user")
        item = _indices(table[item_col].to_numpy(dtype=object), items, paths[name], item_col, "item")
        parts[name] = Interactions(user, item, np.ones(len(table), dtype=np.float32))
    if overlap not in ("raise", "keep"):
        raise ValueError(f"overlap must be 'raise' or 'keep', got {overlap!r}")
    counts = _overlaps(parts, len(items), users, items, raise_=overlap == "raise")
    split = predefined_split(parts["train"], parts["valid"], parts["test"], len(users), len(items))
    params = {name: str(path) for name, path in paths.items()}
    split = dataclasses.replace(split, params={**params, "overlaps": counts})
    return split, users, items
