"""Ingestion of one source: normalisation, rejects with line numbers, duplicates, filters and the funnel."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crossrec.data import ingest, load_bundle
from tests.data.conftest import sources, write


def _steps(manifest: dict, domain: str) -> dict[str, int]:
    return {s["step"]: s["rows"] for s in manifest["funnel"] if s["domain"] == domain}


def test_ratings_are_rescaled_and_bad_rows_rejected_with_line_numbers(tmp_path: Path) -> None:
    write(
        tmp_path / "shop.csv",
        """
        user,item,rating,ts
        u1,i1,5,1600000000
        u1,i2,1,1600000000000
        u2,i1,abc,1600000001
        u2,i2,3,2020-09-13 12:26:40
        ,i3,4,1600000003
        u3,i3,9,1600000004
        u3,i1,2,not-a-time
        u3,i2,4,1600000005,extra
        """,
    )
    config = sources(
        tmp_path,
        """
        [sources.shop.interactions]
        path = "shop.csv"
        user = "user"
        item = "item"
        value = "rating"
        timestamp = "ts"
        rating_scale = [1, 5]

        [rejects]
        warn_rate = 0.7
        fail_rate = 0.7
        """,
    )
    result = ingest(config, tmp_path / "bundle")
    domain = load_bundle(result.path).domains["shop"]
    assert len(domain.interactions) == 3
    inter = domain.interactions
    pairs = {
        (domain.users.lookup([u])[0], domain.items.lookup([i])[0]): (v, t)
        for u, i, v, t in zip(inter.user, inter.item, inter.value, inter.timestamp, strict=True)
    }
    assert pairs[("u1", "i1")] == (1.0, 1600000000)
    assert pairs[("u1", "i2")] == (0.0, 1600000000)  # milliseconds detected
    assert pairs[("u2", "i2")] == (0.5, 1600000000)  # ISO text
    rejects = pq.read_table(result.path / "rejects.parquet").to_pandas()
    by_line = dict(zip(rejects["row"], zip(rejects["column"], rejects["reason"], strict=True), strict=True))
    assert by_line[4] == ("rating", "value is not a number (e.g. '5/5', 'good', '4,0')")
    assert by_line[6] == ("user", "missing user id")
    assert by_line[7][1] == "value outside rating_scale [1, 5]"
    assert by_line[8][0] == "ts"
    assert by_line[9][1] == "line has more fields than the header"
    assert set(rejects["source"]) == {"shop"} and set(rejects["file"]) == {"shop.csv"}
    steps = _steps(result.manifest, "shop")
    assert steps["read"] == 8 and steps["valid"] == 3
    assert result.manifest["rejects"]["rows"] == 5


def test_event_weights_thresholds_duplicates_and_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    write(
        tmp_path / "events.csv",
        f"""
        learner,course,event,when
        a,{decomposed},enrol,2021-01-01
        a,café,complete,2021-02-01
        a,c2,enrol,2021-01-01
        b,c2,complete,2021-01-05
        b,c2,enrol,2021-03-05
        b,c3,browse,2021-03-05
        """,
    )
    config = sources(
        tmp_path,
        """
        [sources.learn.interactions]
        path = "events.csv"
        user = "learner"
        item = "course"
        event = "event"
        event_weights = { enrol = 1, complete = 3 }
        timestamp = "when"
        timestamp_format = "%Y-%m-%d"

        [domains.learn]
        duplicates = "sum"
        """,
    )
    result = ingest(config, tmp_path / "bundle")
    domain = load_bundle(result.path).domains["learn"]
    assert list(domain.items.ids) == ["c2", "café"]  # NFD and NFC spellings are one item
    values = {
        (domain.users.lookup([u])[0], domain.items.lookup([i])[0]): v
        for u, i, v in zip(
            domain.interactions.user, domain.interactions.item, domain.interactions.value, strict=True
        )
    }
    assert values == {("a", "café"): 4.0, ("a", "c2"): 1.0, ("b", "c2"): 4.0}
    rejects = pq.read_table(result.path / "rejects.parquet").to_pandas()
    assert rejects["reason"].tolist() == ["event type is not listed in event_weights"]


@pytest.mark.parametrize(("rule", "expected"), [("latest", 2.0), ("first", 5.0), ("max", 5.0), ("sum", 10.0)])
def test_duplicate_rules(tmp_path: Path, rule: str, expected: float) -> None:
    write(tmp_path / "r.csv", "u,i,v,t\nx,y,5,10\nx,y,3,20\nx,y,2,30\n")
    config = sources(
        tmp_path,
        f"""
        [sources.s.interactions]
        path = "r.csv"
        user = "u"
        item = "i"
        value = "v"
        timestamp = "t"
        [domains.s]
        duplicates = "{rule}"
        """,
    )
    domain = load_bundle(ingest(config, tmp_path / "b").path).domains["s"]
    assert domain.interactions.value.tolist() == [expected]


def test_positive_threshold_min_value_and_k_core_funnel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user": [f"u{i}" for i in rng.integers(0, 30, 600)],
            "item": [f"i{i}" for i in rng.integers(0, 40, 600)],
            "rating": rng.integers(1, 6, 600),
        }
    )
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "r.parquet")
    config = sources(
        tmp_path,
        """
        [sources.s.interactions]
        path = "r.parquet"
        user = "user"
        item = "item"
        value = "rating"
        positive_threshold = 3
        [domains.s]
        k_core = 3
        """,
    )
    result = ingest(config, tmp_path / "b")
    domain = load_bundle(result.path).domains["s"]
    positives = frame[frame["rating"] >= 3].drop_duplicates(["user", "item"])
    steps = _steps(result.manifest, "s")
    assert steps["read"] == 600
    assert steps["value >= 3 (positive)"] == int((frame["rating"] >= 3).sum())
    assert steps["deduplicated (max)"] == len(positives)
    assert steps["3-core"] == len(domain.interactions)
    assert domain.interactions.n_per_user(domain.n_users).min() >= 3
    assert domain.interactions.n_per_item(domain.n_items).min() >= 3
    assert set(domain.interactions.value.tolist()) == {1.0}
    assert domain.interactions.timestamp is None


def test_attributes_are_typed_and_follow_the_vocabulary(tmp_path: Path) -> None:
    write(tmp_path / "i.csv", "u,i\na,x\na,y\nb,y\n")
    write(
        tmp_path / "items.jsonl",
        """
        {"id": "y", "genres": "drama|comedy", "year": "1999", "emb": [0.5, 1.5], "title": "Why"}
        {"id": "x", "genres": "drama", "year": 2001, "emb": [1, 2], "title": "Ex"}
        {"id": "z", "genres": "", "year": null, "emb": [0, 0], "title": "Zed"}
        """,
    )
    config = sources(
        tmp_path,
        """
        [sources.s.interactions]
        path = "i.csv"
        user = "u"
        item = "i"
        [sources.s.items]
        path = "items.jsonl"
        id = "id"
        attributes.genres = { kind = "tags", separator = "|" }
        attributes.year = "number"
        attributes.emb = "vector"
        attributes.title = "text"
        """,
    )
    domain = load_bundle(ingest(config, tmp_path / "b").path).domains["s"]
    features = domain.item_features
    assert list(domain.items.ids) == ["x", "y"]
    assert features["year"].tolist() == [2001.0, 1999.0]
    assert [list(t) for t in features["genres"]] == [["drama"], ["drama", "comedy"]]
    assert [list(v) for v in features["emb"]] == [[1.0, 2.0], [0.5, 1.5]]
    assert domain.item_feature_kinds == {"genres": "tags", "year": "number", "emb": "vector", "title": "text"}
