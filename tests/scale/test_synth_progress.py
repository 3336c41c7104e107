"""``crossrec synth`` reports progress and accounts for every interaction it did not write."""

from __future__ import annotations

from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.data.synthetic import SynthConfig, generate_synthetic


def test_progress_and_the_shortfall_add_up(tmp_path) -> None:
    config = SynthConfig(interactions=40_000, items=200, seed=1, chunk_rows=5_000)
    seen: dict[str, int] = {}
    result = generate_synthetic(
        tmp_path / "s",
        config,
        progress=lambda domain, rows: seen.__setitem__(domain, seen.get(domain, 0) + rows),
    )
    domains = result.manifest["domains"]
    assert set(seen) == set(domains) and len(seen) == 2
    for name, info in domains.items():
        assert seen[name] == info["interactions"] + info["dropped_duplicates"]  # rows drawn per chunk
    missing = sum(info["capped_events"] + info["dropped_duplicates"] for info in domains.values())
    assert missing > 0  # 200 items: users hit the cap of half the items
    assert result.manifest["interactions"] + missing == config.interactions


def test_cli_says_why_fewer_interactions_were_written(tmp_path) -> None:
    out = CliRunner().invoke(
        app, ["synth", str(tmp_path / "s"), "-n", "40K", "--items", "200"], env={"COLUMNS": "100"}
    )
    assert out.exit_code == 0, out.output
    assert "of the 40,000 interactions asked" in out.output and "at most half" in out.output
