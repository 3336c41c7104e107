"""Bundles: deterministic bytes, atomic writes, checksum and version checks, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import crossrec.data.bundle as bundle_module
from crossrec import __version__
from crossrec.cli.main import app
from crossrec.data import BundleError, ingest, load_bundle
from tests.data.conftest import sources, write

CONFIG = """
[sources.a.interactions]
path = "a.csv"
user = "u"
item = "i"
value = "r"
[sources.b.interactions]
path = "b/*.csv"
user = "u"
item = "i"
[domains.b]
role = "target"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    write(tmp_path / "a.csv", "u,i,r\nx,1,5\ny,2,4\nx,2,3\nz,3,bad\n")
    write(tmp_path / "b/part-1.csv", "u,i\np,1\nq,2\n")
    write(tmp_path / "b/part-2.csv", "u,i\np,3\nq,1\nq,\n")
    return sources(tmp_path, CONFIG)


def test_same_input_gives_the_same_bytes(config: Path, tmp_path: Path) -> None:
    first = ingest(config, tmp_path / "one").manifest
    second = ingest(config, tmp_path / "two").manifest
    assert first["files"] == second["files"]
    assert (tmp_path / "one/manifest.json").read_bytes() == (tmp_path / "two/manifest.json").read_bytes()
    assert (
        first["crossrec_version"] == __version__ and first["schema_version"] == bundle_module.SCHEMA_VERSION
    )
    assert len(first["sources_sha256"]) == 64


def test_glob_rejects_name_the_file_and_line(config: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = ingest(config, tmp_path / "out").path
    rejects = pq.read_table(path / "rejects.parquet").to_pylist()
    assert [(r["source"], r["file"], r["row"], r["column"]) for r in rejects] == [
        ("a", "a.csv", 5, "r"),
        ("b", "b/part-2.csv", 4, "i"),
    ]


def test_tampered_file_and_incompatible_version_are_refused(config: Path, tmp_path: Path) -> None:
    path = ingest(config, tmp_path / "out").path
    load_bundle(path)
    data = (path / "items.parquet").read_bytes()
    (path / "items.parquet").write_bytes(data[:-9] + bytes([data[-9] ^ 1]) + data[-8:])
    with pytest.raises(BundleError, match="items.parquet does not match its sha256"):
        load_bundle(path)
    (path / "items.parquet").write_bytes(data)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema version 99 is not supported"):
        load_bundle(path)
    with pytest.raises(BundleError, match="not a crossrec bundle"):
        load_bundle(tmp_path)


def test_interrupted_write_leaves_no_bundle(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = bundle_module._sha256
    calls = []

    def failing(path: Path) -> str:
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(bundle_module, "_sha256", failing)
    with pytest.raises(KeyboardInterrupt):
        ingest(config, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no partial or scratch folder


def test_existing_bundle_needs_overwrite(config: Path, tmp_path: Path) -> None:
    ingest(config, tmp_path / "out")
    with pytest.raises(BundleError, match="already exists"):
        ingest(config, tmp_path / "out")
    ingest(config, tmp_path / "out", overwrite=True)
    load_bundle(tmp_path / "out")


def test_domains_are_typed(config: Path, tmp_path: Path) -> None:
    bundle = load_bundle(ingest(config, tmp_path / "out").path)
    a = bundle.domains["a"]
    assert list(a.users.ids) == ["x", "y"] and list(a.items.ids) == ["1", "2"]
    assert sorted(a.interactions.value.tolist()) == [3.0, 4.0, 5.0]
    assert bundle.target_domains == ["b"]
    assert bundle.item_links("a", "b")[0].size == 0


def test_cli_ingest_prints_the_funnel_and_fails_cleanly(config: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["ingest", str(config), "-o", str(tmp_path / "cli"), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "Ingestion funnel" in result.output and "deduplicated" in result.output
    assert "shares no users or items" in result.output
    load_bundle(tmp_path / "cli")
    result = runner.invoke(app, ["ingest", str(config), "-o", str(tmp_path / "cli")])
    assert result.exit_code == 2 and "already exists" in result.output
    result = runner.invoke(
        app, ["ingest", str(config), "-o", str(tmp_path / "x"), "--data-dir", str(tmp_path / "no")]
    )
    assert result.exit_code == 2 and "--data-dir" in result.output
