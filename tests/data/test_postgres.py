"""A source read from a table in a real PostgreSQL server (a throwaway cluster on loopback)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossrec.data import ingest, load_bundle
from tests.data.conftest import sources, write

PG_USER = "crossrec-pg"


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or (
        [shutil.which("initdb")] if shutil.which("initdb") else []
    )
    return Path(found[-1]).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER], check=True
        )
    return ["runuser", "-u", PG_USER, "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install the Debian 'postgresql' package"
        )
    root = Path(tempfile.mkdtemp(prefix="crossrec-pg-"))
    root.chmod(0o777)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def test_source_read_from_postgres_table(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS enrolments")
        db.execute("CREATE TABLE enrolments (learner TEXT, course TEXT, event TEXT, at TIMESTAMP, note TEXT)")
        db.execute(
            "INSERT INTO enrolments VALUES ('l1', 'CS-101', 'enrol', '2024-01-01 10:00', 'a, \"quoted\" "
            "note'),"
            "('l1', 'CS-101', 'complete', '2024-03-01 10:00', NULL), ('l2', 'MA-201', 'enrol', '2024-01-02 "
            "09:00', ''),"
            "('l2', NULL, 'enrol', '2024-01-03 09:00', 'x'), ('l3', 'CS-101', 'drop', '2024-01-04 09:00', "
            "'y')"
        )
    monkeypatch.setenv("LMS_DATABASE_URL", postgres_url)
    write(tmp_path / "courses.csv", "code,name\nCS101,Intro\n")
    config = sources(
        tmp_path,
        """
        [sources.lms.interactions]
        url_env = "LMS_DATABASE_URL"
        table = "enrolments"
        user = "learner"
        item = "course"
        event = "event"
        event_weights = { enrol = 1, complete = 3 }
        timestamp = "at"
        [domains.lms]
        duplicates = "sum"
        """,
    )
    result = ingest(config, tmp_path / "bundle")
    domain = load_bundle(result.path).domains["lms"]
    assert (
        result.manifest["sources"]["lms"]["tables"]["interactions"]["location"]
        == "$LMS_DATABASE_URL (table enrolments)"
    )
    values = dict(
        zip(
            zip(
                domain.users.lookup(domain.interactions.user),
                domain.items.lookup(domain.interactions.item),
                strict=True,
            ),
            domain.interactions.value.tolist(),
            strict=True,
        )
    )
    assert values == {("l1", "CS-101"): 4.0, ("l2", "MA-201"): 1.0}
    assert domain.interactions.timestamp.tolist() == [1709287200, 1704186000]
    assert result.manifest["rejects"]["by_reason"] == {
        "missing item id": 1,
        "event type is not listed in event_weights": 1,
    }
