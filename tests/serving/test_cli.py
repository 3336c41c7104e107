"""``crossrec recommend`` and ``crossrec serve`` as a user types them."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from crossrec.artifacts import load_artifact
from crossrec.cli.main import app
from tests.serving.conftest import save

runner = CliRunner()


def test_recommend_user_as_json(bpr_artifact: Path) -> None:
    result = runner.invoke(
        app, ["recommend", str(bpr_artifact), "--user", "u3", "--k", "5", "--exclude-seen", "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    expected = load_artifact(bpr_artifact).recommend("u3", k=5)
    assert body["user_id"] == "u3" and body["path"] == "model"
    assert [item["item_id"] for item in body["items"]] == expected.item_ids


def test_recommend_user_as_a_table_and_similar_items(bpr_artifact: Path) -> None:
    table = runner.invoke(app, ["recommend", str(bpr_artifact), "--user", "u3"])
    expected = load_artifact(bpr_artifact).recommend("u3", k=10).item_ids
    assert table.exit_code == 0 and "rank" in table.stdout
    assert all(f" {item} " in table.stdout for item in expected)
    similar = runner.invoke(app, ["recommend", str(bpr_artifact), "--item", "i4", "--k", "3", "--json"])
    assert similar.exit_code == 0
    assert json.loads(similar.stdout)["path"] == "cosine"
    assert len(json.loads(similar.stdout)["items"]) == 3


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".parquet"])
def test_recommend_users_file_writes_parquet(bpr_artifact: Path, tmp_path: Path, suffix: str) -> None:
    users = tmp_path / f"users{suffix}"
    ids = ["u1", "u2", "stranger"]
    if suffix == ".txt":
        users.write_text("\n".join(ids) + "\n")
    elif suffix == ".csv":
        pd.DataFrame({"user_id": ids}).to_csv(users, index=False)
    else:
        pd.DataFrame({"user": ids}).to_parquet(users)
    output = tmp_path / "out" / "recs.parquet"
    args = ["recommend", str(bpr_artifact), "--users-file", str(users), "--output", str(output), "--k", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(output)
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score", "path"]
    assert frame.groupby("user_id").size().to_dict() == {"u1": 4, "u2": 4, "stranger": 4}
    assert set(frame.loc[frame["user_id"] == "stranger", "path"]) == {"popularity"}


def test_recommend_errors_say_what_to_fix(
    bpr_artifact: Path, popularity_artifact: Path, tmp_path: Path
) -> None:
    unknown = runner.invoke(app, ["recommend", str(bpr_artifact), "--user", "nobody"])
    assert unknown.exit_code == 1 and "unknown user 'nobody'" in unknown.output
    both = runner.invoke(app, ["recommend", str(bpr_artifact), "--user", "u1", "--item", "i1"])
    assert both.exit_code == 2 and "exactly one of" in both.output
    no_output = runner.invoke(app, ["recommend", str(bpr_artifact), "--users-file", "x.txt"])
    assert no_output.exit_code == 2 and "--output" in no_output.output
    incapable = runner.invoke(app, ["recommend", str(popularity_artifact), "--item", "i1"])
    assert incapable.exit_code == 1 and "cannot find similar items" in incapable.output
    missing = runner.invoke(app, ["recommend", str(tmp_path / "absent"), "--user", "u1"])
    assert missing.exit_code == 1 and "not a folder" in missing.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(client: httpx.Client, process: subprocess.Popen, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stderr.read().decode()}")
        try:
            return client.get("/healthz").json()["artifact_id"]
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("server did not become healthy in time")


def test_serve_reloads_on_sighup_without_dropping_requests(
    bpr_artifact: Path, toy: object, tmp_path: Path
) -> None:
    folder = tmp_path / "served"
    shutil.copytree(bpr_artifact, folder)
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "crossrec",
        "serve",
        str(folder),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    statuses: list[int] = []
    stop = threading.Event()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            before = _wait_healthy(client, process)

            def hammer() -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as own:
                    for _ in range(2000):  # bounded
                        if stop.is_set():
                            return
                        statuses.append(own.get("/v1/users/u3/recommendations").status_code)

            thread = threading.Thread(target=hammer)
            thread.start()
            save(toy, folder, overwrite=True)
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while client.get("/healthz").json()["artifact_id"] == before and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.3)
            stop.set()
            thread.join(timeout=30)
            assert client.get("/v1/model").json()["model"] == "popularity"
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=30)
    assert statuses and set(statuses) == {200}
