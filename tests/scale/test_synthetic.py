"""The synthetic generator: sizes, links, power laws, shared preferences, ingestible output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.data import load_bundle
from crossrec.data.synthetic import SynthConfig, generate_synthetic, parse_count

from .conftest import SMALL


def _interactions(path, domain: str) -> pd.DataFrame:
    return pq.read_table(path / domain / "interactions").to_pandas()


def test_parse_count() -> None:
    assert parse_count("100K") == 100_000
    assert parse_count("2.5M") == 2_500_000
    assert parse_count("25m") == 25_000_000
    assert parse_count(1234) == 1234
    with pytest.raises(ValueError, match="100K"):
        parse_count("lots")


def test_layout_counts_and_shards(synthetic) -> None:
    manifest = synthetic.manifest
    assert synthetic.sources.name == "sources.toml"
    for name, info in manifest["domains"].items():
        shards = sorted((synthetic.path / name / "interactions").glob("part-*.parquet"))
        assert len(shards) == info["shards"] and len(shards) >= 1
        rows = sum(pq.read_metadata(shard).num_rows for shard in shards)
        assert rows == info["interactions"]
        assert all(pq.read_metadata(shard).num_rows <= SMALL.shard_rows for shard in shards)
    # duplicates are redrawn and heavy users capped at half the catalogue: close to the requested size
    assert 0.85 * SMALL.interactions <= manifest["interactions"] <= SMALL.interactions


def test_pairs_are_distinct_and_ids_linked(synthetic) -> None:
    source, target = _interactions(synthetic.path, "source"), _interactions(synthetic.path, "target")
    for frame in (source, target):
        assert not frame.duplicated(["user_id", "item_id"]).any()
        assert frame["timestamp"].between(1_577_836_800, 1_577_836_800 + 366 * 86_400).all()
    info = synthetic.manifest["domains"]["target"]
    shared_users = set(source["user_id"]) & set(target["user_id"])
    assert 0 < len(shared_users) <= info["linked_users"]
    items = {d: pq.read_table(synthetic.path / d / "items.parquet").to_pandas() for d in ("source", "target")}
    shared_items = set(items["source"]["item_id"]) & set(items["target"]["item_id"])
    assert len(shared_items) == info["shared_items"]
    both = items["source"].merge(items["target"], on="item_id", suffixes=("_s", "_t"))
    assert (both["category_s"] == both["category_t"]).all()  # a shared item is the same item


def test_power_law_activity_and_popularity(synthetic) -> None:
    source = _interactions(synthetic.path, "source")
    per_user = source["user_id"].value_counts()
    per_item = source["item_id"].value_counts()
    assert per_user.max() > 5 * per_user.median()
    assert per_item.max() > 10 * per_item.median()
    assert per_user.min() >= 1


def test_linked_users_keep_their_tastes_across_domains(synthetic) -> None:
    """A linked user's category mix in the source resembles the same user's mix in the target."""
    histograms = {}
    for domain in ("source", "target"):
        frame = _interactions(synthetic.path, domain)
        items = pq.read_table(synthetic.path / domain / "items.parquet").to_pandas()
        frame = frame.merge(items[["item_id", "category"]], on="item_id")
        table = pd.crosstab(frame["user_id"], frame["category"]).astype(float)
        histograms[domain] = table.div(table.sum(axis=1), axis=0)
    linked = histograms["source"].index.intersection(histograms["target"].index)
    columns = histograms["source"].columns.union(histograms["target"].columns)
    source = histograms["source"].reindex(index=linked, columns=columns, fill_value=0).to_numpy()
    target = histograms["target"].reindex(index=linked, columns=columns, fill_value=0).to_numpy()

    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    same = cosine(source, target).mean()
    shuffled = cosine(source, target[np.random.default_rng(0).permutation(len(target))]).mean()
    assert same > shuffled + 0.15


def test_same_seed_same_data_and_bounded_chunks(tmp_path) -> None:
    config = SynthConfig(interactions=5_000, users=200, items=150, seed=1, chunk_rows=1_000)
    first = generate_synthetic(tmp_path / "a", config)
    second = generate_synthetic(tmp_path / "b", config)
    for domain in ("source", "target"):
        assert _interactions(first.path, domain).equals(_interactions(second.path, domain))
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_synthetic(tmp_path / "a", config)


def test_sources_file_ingests(synthetic, synthetic_bundle) -> None:
    bundle = load_bundle(synthetic_bundle)
    assert bundle.source_domains == ["source"] and bundle.target_domains == ["target"]
    for name, info in synthetic.manifest["domains"].items():
        domain = bundle.domains[name]
        assert len(domain.interactions) == info["interactions"]
        assert set(domain.item_feature_kinds) == {"title", "category", "tags", "price"}
        assert set(domain.user_feature_kinds) == {"age", "segment"}
    source_items, _ = bundle.item_links("source", "target")
    # shared items that were interacted with in both domains (the bundle's vocabularies hold only those)
    used = set(_interactions(synthetic.path, "source")["item_id"]) & set(
        _interactions(synthetic.path, "target")["item_id"]
    )
    assert len(source_items) == len(used) > 0


def test_cli_synth(tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["synth", str(tmp_path / "out"), "-n", "5K", "--users", "200", "--items", "100", "--seed", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "sources.toml").is_file()
    again = CliRunner().invoke(app, ["synth", str(tmp_path / "out"), "-n", "5K"])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--domains", "a:source"])
    assert bad.exit_code == 2 and "NAME:ROLE:SHARE" in bad.output
