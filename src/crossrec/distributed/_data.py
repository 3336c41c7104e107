"""The run's data, written once before the ranks start: split arrays (and two-tower item attributes)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crossrec.data.arrays import InteractionArrays, materialize_domain, split_arrays, write_arrays
from crossrec.distributed._config import DistributedTrainConfig
from crossrec.features.table import FeatureSchemaError, FeatureTable

__all__ = ["PARTS", "open_item_features", "open_parts", "prepare_data"]

PARTS = ("train", "valid", "test")
_FEATURES = "item_features.parquet"
_KINDS = "item_features.json"
_ID_COLUMN = "__item_id"


def prepare_data(config: DistributedTrainConfig) -> dict[str, InteractionArrays]:
    """Write the train/valid/test arrays once, before ranks start (they memory-map them).

    The built-in dataset uses :func:`crossrec.evaluation.random_split` (RecBole's split of the target);
    a bundle domain is streamed to arrays and split per user in bounded chunks
    (:func:`crossrec.data.arrays.split_arrays`). A two-tower run with ``item_modalities`` also gets
    those item attribute columns, one row per item in index order (``item_features.parquet``). A data
    folder prepared from the same data and settings (``prepared.json``) is reused.
    """
    folder = config.data_folder
    key = {
        "builtin": config.builtin, "data_dir": str(config.data_dir), "bundle": _bundle_key(config),
        "domain": config.domain, "ratios": list(config.split_ratios), "seed": config.split_seed,
        "item_features": config.item_columns,
    }  # fmt: skip
    marker = folder / "prepared.json"
    if marker.is_file() and json.loads(marker.read_text()) == key:
        return open_parts(config)
    marker.unlink(missing_ok=True)
    parts = _prepare(config, folder)
    marker.write_text(json.dumps(key))
    return parts


def _bundle_key(config: DistributedTrainConfig) -> str | None:
    if config.bundle is None:
        return None
    manifest = json.loads((config.bundle / "manifest.json").read_text())
    return f"{config.bundle.resolve()}:{manifest['files']['interactions.parquet']['sha256']}"


def _prepare(config: DistributedTrainConfig, folder: Path) -> dict[str, InteractionArrays]:
    columns = config.item_columns
    (folder / _FEATURES).unlink(missing_ok=True)
    if config.builtin is not None:
        from crossrec.data.builtin import load_movielens_cdr
        from crossrec.evaluation import random_split

        _, target = load_movielens_cdr(config.data_dir)
        split = random_split(
            target.interactions, len(target.users), len(target.items), config.split_ratios, config.split_seed
        )
        parts = {
            part: write_arrays(
                getattr(split, part),
                split.n_users,
                split.n_items,
                folder / part,
                user_ids=target.users.ids,
                item_ids=target.items.ids,
                overwrite=True,
            )  # fmt: skip
            for part in PARTS
        }
        if columns:
            table = FeatureTable.from_domain(target, "item", columns)
            if table is None:  # pragma: no cover - from_domain raises when columns are asked for
                raise FeatureSchemaError(f"{config.builtin} has no item features")
            _write_item_features(folder, table)
        return parts
    assert config.bundle is not None
    domain = config.domain or _default_domain(config.bundle)
    arrays = materialize_domain(config.bundle, domain)
    parts = split_arrays(arrays, folder, config.split_ratios, config.split_seed, overwrite=True)
    if columns:
        _write_item_features(folder, _bundle_item_features(config.bundle, domain, columns, arrays.n_items))
    return parts


def _default_domain(bundle: Path) -> str:
    manifest = json.loads((bundle / "manifest.json").read_text())
    domains = manifest["domains"]
    targets = [name for name, info in domains.items() if info["role"] == "target"]
    return (targets or list(domains))[0]


def _bundle_item_features(bundle: Path, domain: str, columns: list[str], n_items: int) -> FeatureTable:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    kinds = json.loads((bundle / "manifest.json").read_text())["domains"][domain]["item_attributes"]
    missing = [column for column in columns if column not in kinds]
    if missing:
        raise FeatureSchemaError(
            f"{bundle}: domain {domain!r} has no item attribute columns {missing}; "
            f"its item attributes are {sorted(kinds)} (set params.item_modalities to some of them)"
        )
    table = pq.read_table(bundle / "items.parquet", columns=["domain", "item", "index", *columns])
    table = table.filter(pc.equal(table.column("domain"), domain)).sort_by("index")
    if table.num_rows != n_items:
        raise FeatureSchemaError(
            f"{bundle}: domain {domain!r} has {table.num_rows} rows in items.parquet but {n_items} items "
            "in its interactions; re-run `crossrec ingest`"
        )
    frame = table.select(columns).to_pandas()
    return FeatureTable(frame, {c: kinds[c] for c in columns}, table.column("item").to_numpy(), "item")


def _write_item_features(folder: Path, table: FeatureTable) -> None:
    frame = table.frame[table.columns].copy()
    frame[_ID_COLUMN] = [str(value) for value in table.ids]
    frame.to_parquet(folder / _FEATURES, index=False)
    (folder / _KINDS).write_text(json.dumps(table.kinds))


def open_parts(config: DistributedTrainConfig) -> dict[str, InteractionArrays]:
    """The prepared train/valid/test arrays (memory-mapped)."""
    return {part: InteractionArrays.open(config.data_folder / part) for part in PARTS}


def open_item_features(config: DistributedTrainConfig) -> FeatureTable | None:
    """The prepared item attribute table of a two-tower run with ``item_modalities`` (else ``None``)."""
    if not config.item_columns:
        return None
    frame = pd.read_parquet(config.data_folder / _FEATURES)
    kinds = json.loads((config.data_folder / _KINDS).read_text())
    ids = frame.pop(_ID_COLUMN).to_numpy()
    return FeatureTable(frame, kinds, ids, "item")
