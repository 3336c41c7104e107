"""No command deletes a file it did not write: ``--force`` replaces only a crossrec-made folder of the
same kind holding only its own files, never one that is or contains an input; stale work folders are
removed only when their process is gone; write errors and interrupts end in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossrec.artifacts import save_artifact
from crossrec.cli.main import app
from crossrec.data.outputs import OutputFolderError, check_replaceable, clean_stale_work_folders, work_path
from crossrec.data.synthetic import SynthConfig, generate_synthetic
from crossrec.evaluation.runs import check_run_folder
from tests.artifacts.helpers import Trained
from tests.data.conftest import sources, write

SOURCES = """
[sources.shop.interactions]
path = "ratings.csv"
user = "u"
item = "i"
"""


def _data(folder: Path) -> Path:
    write(folder / "ratings.csv", "u,i\na,x\na,y\nb,x\nc,z\n")
    return sources(folder, SOURCES)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _ingest(*args: str) -> object:
    return CliRunner().invoke(app, ["ingest", *args])


def test_force_never_replaces_the_folder_holding_the_input(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    before = _files(tmp_path / "data")
    result = _ingest(str(config), "-o", str(tmp_path / "data"), "--force")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and "an input" in result.output
    assert _files(tmp_path / "data") == before


def test_force_never_replaces_a_folder_that_contains_the_input(tmp_path: Path) -> None:
    config = _data(tmp_path / "outer" / "data")
    before = _files(tmp_path / "outer")
    result = _ingest(str(config), "-o", str(tmp_path / "outer"), "--force")
    assert result.exit_code == 2 and "contains an input" in result.output
    assert _files(tmp_path / "outer") == before


def test_force_never_replaces_a_folder_of_unrelated_files(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    result = _ingest(str(config), "-o", str(tmp_path / "mine"), "--force")
    assert result.exit_code == 2 and "not a crossrec bundle" in result.output
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


def test_force_keeps_a_bundle_with_a_file_crossrec_did_not_write(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    bundle = tmp_path / "bundle"
    assert _ingest(str(config), "-o", str(bundle), "-q").exit_code == 0
    (bundle / "notes.txt").write_text("mine")
    result = _ingest(str(config), "-o", str(bundle), "--force")
    assert result.exit_code == 2 and "notes.txt" in result.output and "never deletes" in result.output
    assert (bundle / "notes.txt").read_text() == "mine"


def test_force_replaces_a_crossrec_bundle_and_leaves_no_work_folders(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    bundle = tmp_path / "out" / "bundle"
    assert _ingest(str(config), "-o", str(bundle), "-q").exit_code == 0
    again = _ingest(str(config), "-o", str(bundle), "--force", "-q")
    assert again.exit_code == 0, again.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["bundle"]
    without_force = _ingest(str(config), "-o", str(bundle))
    assert without_force.exit_code == 2 and "--force" in without_force.output


def test_an_artifact_folder_is_not_replaced_by_a_bundle(
    tmp_path: Path, trained_models: dict[str, Trained]
) -> None:
    trained = trained_models["popularity"]
    artifact = save_artifact(
        tmp_path / "artifact", trained.model, users=trained.users, items=trained.items, train=trained.train
    )
    before = _files(artifact)
    result = _ingest(str(_data(tmp_path / "data")), "-o", str(artifact), "--force")
    assert result.exit_code == 2 and "not a crossrec bundle" in result.output
    assert _files(artifact) == before


def test_save_artifact_overwrite_refuses_foreign_folders(
    tmp_path: Path, trained_models: dict[str, Trained]
) -> None:
    trained = trained_models["popularity"]
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "data.csv").write_text("precious")
    with pytest.raises(FileExistsError, match="not a crossrec artifact"):
        save_artifact(
            folder,
            trained.model,
            users=trained.users,
            items=trained.items,
            train=trained.train,
            overwrite=True,
        )
    assert (folder / "data.csv").read_text() == "precious"
    artifact = save_artifact(
        tmp_path / "a", trained.model, users=trained.users, items=trained.items, train=trained.train
    )
    (artifact / "model" / "extra.bin").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="extra.bin"):
        save_artifact(
            artifact,
            trained.model,
            users=trained.users,
            items=trained.items,
            train=trained.train,
            overwrite=True,
        )
    assert (artifact / "model" / "extra.bin").exists()


def test_synth_force_replaces_only_its_own_output(tmp_path: Path) -> None:
    config = SynthConfig(interactions=2_000, shard_rows=1_000)
    out = generate_synthetic(tmp_path / "synth", config).path
    generate_synthetic(out, config, overwrite=True)  # its own folder: replaced
    (out / "source" / "mine.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="mine.txt"):
        generate_synthetic(out, config, overwrite=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.txt").write_text("a")
    result = CliRunner().invoke(app, ["synth", str(foreign), "-n", "2000", "--force"])
    assert result.exit_code == 2 and "not a crossrec synthetic data folder" in result.output
    assert (foreign / "a.txt").read_text() == "a"


def test_run_folders_refuse_inputs_and_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "runs" / "a").mkdir(parents=True)
    with pytest.raises(OutputFolderError, match="contains an input"):
        check_run_folder(tmp_path / "runs", inputs=[tmp_path / "runs" / "a"])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("x")
    with pytest.raises(OutputFolderError, match="not a crossrec run folder"):
        check_run_folder(tmp_path / "notes")
    check_run_folder(tmp_path / "new")  # absent: fine
    (tmp_path / "empty").mkdir()
    check_run_folder(tmp_path / "empty")


def test_check_replaceable_refuses_links(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OutputFolderError, match="link"):
        check_replaceable(tmp_path / "link", kind="bundle", force=True)


# -- stale work folders ------------------------------------------------------------------------


def test_stale_work_folders_of_dead_processes_are_removed_live_and_unknown_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = work_path(tmp_path, "bundle", "partial")
    stale = stale.with_name(stale.name.replace(f"-{os.getpid()}-", f"-{dead_pid}-"))
    stale.mkdir()
    (stale / "interactions.parquet").write_bytes(b"x" * 1000)
    live = work_path(tmp_path, "bundle", "scratch")
    live.mkdir()
    old_style = tmp_path / ".bundle.partial-1a2b3c4d"  # from an older crossrec: not attributable
    old_style.mkdir()
    unrelated = tmp_path / ".bundle.partial-but-not-ours.txt"
    unrelated.write_text("keep")
    other_name = tmp_path / ".other.partial-0a0a0a0a-1-aaaa"
    other_name.mkdir()

    report = clean_stale_work_folders(tmp_path, "bundle")

    assert report.removed == [stale] and not stale.exists()
    assert live.exists() and old_style.exists() and unrelated.exists() and other_name.exists()
    assert report.left == [old_style] and "rm -r" in report.messages()[0]


def test_ingest_removes_stale_work_folders_and_reports_unknown_ones(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    old_style = tmp_path / ".bundle.scratch-abcdef12"
    old_style.mkdir()
    result = _ingest(str(config), "-o", str(tmp_path / "bundle"), "-q")
    assert result.exit_code == 0 and "earlier crossrec run" in result.output
    assert old_style.exists()


# -- write errors and interrupts ---------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = _ingest(str(config), "-o", str(locked / "bundle"))
    assert (
        result.exit_code == 2 and result.output.startswith("error:") and len(result.output.splitlines()) <= 3
    )


def test_output_under_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = _data(tmp_path / "data")
    (tmp_path / "afile").write_text("x")
    result = _ingest(str(config), "-o", str(tmp_path / "afile" / "bundle"))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and "Traceback" not in result.output
    assert (tmp_path / "afile").read_text() == "x"


def test_ctrl_c_prints_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _data(tmp_path / "data")
    import crossrec.data.ingestion as ingestion

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingestion, "_clean_domain", interrupted)
    result = _ingest(str(config), "-o", str(tmp_path / "out" / "bundle"))
    assert result.exit_code == 130 and result.output.strip().startswith("error: interrupted")
    assert len(result.output.strip().splitlines()) == 1
    assert list((tmp_path / "out").iterdir()) == []  # no bundle, no partial or scratch folder
