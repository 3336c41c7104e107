"""The service under hostile clients: slow clients are timed out and capped, reloads are not fooled by
files replaced while they run, keys and booleans are strict, answers hold no server paths, and the
docs work offline."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from crossrec.artifacts import ArtifactIntegrityError, load_artifact, save_artifact
from crossrec.cli.main import app as cli
from crossrec.models.mf import BPRMF
from crossrec.serving import ModelHolder, ServeSettings, create_app
from crossrec.serving.server import uvicorn_config
from tests.artifacts.helpers import Trained
from tests.serving.conftest import make_client

ADMIN = frozenset({"admin-key-123"})


def _save(trained: Trained, folder: Path) -> Path:
    return save_artifact(folder, trained.model, users=trained.users, items=trained.items, train=trained.train)


# -- a real server on loopback ---------------------------------------------------------------------


class _Server:
    def __init__(self, settings: ServeSettings) -> None:
        config = uvicorn_config(settings, create_app(settings.artifact, settings), log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("server did not start")
            time.sleep(0.05)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def served(trained_models: dict[str, Trained], tmp_path: Path) -> Path:
    return _save(trained_models["bpr_mf"], tmp_path / "artifact")


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # half a request, never finished
        sockets.append(client)
    return sockets


def test_healthz_answers_while_many_slow_clients_hold_connections(served: Path) -> None:
    settings = ServeSettings(
        artifact=served, port=0, request_timeout_s=30, reload_on_sighup=False, access_log=False
    )
    with _Server(settings) as server:
        slow = _slow_clients(server.port, 300)
        try:
            times = []
            with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
                for _ in range(5):
                    started = time.perf_counter()
                    assert client.get("/healthz").status_code == 200
                    times.append(time.perf_counter() - started)
            assert max(times) < 1.0, times  # generous: the machine is shared
        finally:
            for client in slow:
                client.close()


def test_a_request_that_does_not_arrive_in_time_gets_408_and_is_closed(served: Path) -> None:
    settings = ServeSettings(
        artifact=served, port=0, request_timeout_s=0.5, reload_on_sighup=False, access_log=False
    )
    with _Server(settings) as server:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        partial = _slow_clients(server.port, 1)[0]
        started = time.perf_counter()
        for client in (idle, partial):
            answer = client.recv(1024)
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert client.recv(1024) == b""  # closed by the server
            client.close()
        assert time.perf_counter() - started < 5
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            assert client.get("/healthz").status_code == 200  # whole requests are unaffected


def test_connections_beyond_the_cap_get_503_and_are_closed(served: Path) -> None:
    settings = ServeSettings(
        artifact=served, port=0, max_connections=5, reload_on_sighup=False, access_log=False
    )
    with _Server(settings) as server:
        held = _slow_clients(server.port, 5)
        try:
            extra = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            assert extra.recv(1024).startswith(b"HTTP/1.1 503")
            extra.close()
        finally:
            for client in held:
                client.close()
        deadline = time.monotonic() + 5
        while True:  # the held connections are gone: new clients are served again
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
                    assert client.get("/healthz").status_code == 200
                break
            except (AssertionError, httpx.TransportError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


# -- reloads under file replacement (TOCTOU) -------------------------------------------------------


def test_a_file_replaced_during_reloads_is_never_loaded_unverified(
    trained_models: dict[str, Trained], tmp_path: Path
) -> None:
    """While reloads run in a loop, the weights file is replaced in place with other (valid-looking)
    weights again and again. Every reload either loads exactly the saved model or is refused."""
    folder = _save(trained_models["bpr_mf"], tmp_path / "served")
    base = trained_models["bpr_mf"]
    retrained = BPRMF(dim=4, optim={"epochs": 1, "seed": 7, "progress": False, "threads": 1}).fit(base.train)
    other = _save(Trained(retrained, base.users, base.items, base.train), tmp_path / "other")
    genuine = (folder / "model" / "weights.safetensors").read_bytes()
    forged = (other / "model" / "weights.safetensors").read_bytes()
    assert len(genuine) == len(forged) and genuine != forged
    expected = load_artifact(folder).model.item_vectors().copy()
    holder = ModelHolder(folder)
    stop = threading.Event()

    def swap() -> None:
        target = folder / "model" / "weights.safetensors"
        for turn in range(20_000):  # bounded
            if stop.is_set():
                return
            with open(target, "r+b") as handle:  # in place: same inode, new bytes
                handle.write(forged if turn % 2 == 0 else genuine)

    swapper = threading.Thread(target=swap)
    swapper.start()
    loads = refused = 0
    deadline = time.monotonic() + 5
    try:
        while time.monotonic() < deadline:
            try:
                loaded = holder.reload()
            except ArtifactIntegrityError:
                refused += 1
                continue
            loads += 1
            assert (loaded.artifact.model.item_vectors() == expected).all()
    finally:
        stop.set()
        swapper.join(timeout=30)
    assert loads + refused > 10 and refused > 0


# -- keys, hosts, booleans, k, paths, docs -------------------------------------------------------------


def test_non_loopback_host_without_keys_is_refused_unless_insecure(served: Path) -> None:
    with pytest.raises(ValueError, match="without API keys"):
        ServeSettings(artifact=served, host="0.0.0.0")
    ServeSettings(artifact=served, host="0.0.0.0", insecure=True)
    ServeSettings(artifact=served, host="0.0.0.0", api_keys=frozenset({"read-1"}))
    ServeSettings(artifact=served, host="::1")
    result = CliRunner().invoke(cli, ["serve", str(served), "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2 and "--insecure" in result.output


def test_without_an_admin_key_there_is_no_reload_endpoint(served: Path) -> None:
    with make_client(served) as client:
        assert client.post("/v1/admin/reload").status_code == 404
    with make_client(served, admin_keys=ADMIN) as client:
        assert client.post("/v1/admin/reload").status_code == 401
        assert client.post("/v1/admin/reload", headers={"X-API-Key": "admin-key-123"}).status_code == 200


@pytest.mark.parametrize("value", ["1", "0", "yes", "no", "on", "True", "FALSE", ""])
def test_query_booleans_are_true_or_false_only(served: Path, value: str) -> None:
    with make_client(served) as client:
        response = client.get("/v1/users/u1/recommendations", params={"exclude_seen": value})
        assert response.status_code == 422
        for ok in ("true", "false"):
            assert client.get("/v1/users/u1/recommendations", params={"exclude_seen": ok}).status_code == 200


@pytest.mark.parametrize(
    "body", [{"exclude_seen": 0}, {"exclude_seen": "true"}, {"k": "5"}, {"k": 5.0}, {"k": True}]
)
def test_body_booleans_and_integers_are_strict(served: Path, body: dict) -> None:
    with make_client(served) as client:
        assert client.post("/v1/recommendations", json={"item_ids": ["i1"], **body}).status_code == 422


def test_k_is_read_from_the_query_or_the_body_on_every_endpoint(served: Path) -> None:
    with make_client(served) as client:
        post = "/v1/recommendations"
        assert len(client.post(post, params={"k": 5}, json={"item_ids": ["i1"]}).json()["items"]) == 5
        assert len(client.post(post, json={"item_ids": ["i1"], "k": 3}).json()["items"]) == 3
        assert len(client.post(post, params={"k": 4}, json={"item_ids": ["i1"], "k": 4}).json()["items"]) == 4
        clash = client.post(post, params={"k": 4}, json={"item_ids": ["i1"], "k": 6})
        assert clash.status_code == 422 and "give one" in clash.text
        assert client.post(post, params={"k": 0}, json={}).status_code == 422
        assert len(client.get("/v1/users/u1/recommendations", params={"k": 5}).json()["items"]) == 5
        assert len(client.get("/v1/items/i1/similar", params={"k": 5}).json()["items"]) == 5
        seen = client.post(post, params={"exclude_seen": "false"}, json={"item_ids": ["i1"], "k": 25})
        assert "i1" in [item["item_id"] for item in seen.json()["items"]]


def test_no_absolute_server_paths_in_any_answer(trained_models: dict[str, Trained], tmp_path: Path) -> None:
    trained = trained_models["bpr_mf"]
    folder = save_artifact(
        tmp_path / "a",
        trained.model,
        users=trained.users,
        items=trained.items,
        train=trained.train,
        config={"data_dir": str(tmp_path / "secret-data"), "nested": {"out": str(tmp_path / "runs")}},
    )
    with make_client(folder, admin_keys=ADMIN) as client:
        model = client.get("/v1/model")
        assert model.status_code == 200 and str(tmp_path) not in model.text and "path" not in model.json()
        assert model.json()["config"]["data_dir"] == "<path>/secret-data"
        shutil.rmtree(folder / "vocab")
        refused = client.post("/v1/admin/reload", headers={"X-API-Key": "admin-key-123"})
        assert refused.status_code == 409 and str(tmp_path) not in refused.text
        assert "<artifact>" in refused.text


def test_swagger_ui_is_served_from_the_package(served: Path) -> None:
    with make_client(served) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "cdn" not in page.text.lower()
        assert "/docs/assets/swagger-ui-bundle.js" in page.text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200
        assert client.get("/docs/assets/../../etc/passwd").status_code == 404
        schema = client.get("/openapi.json").json()
        assert "400" in schema["paths"]["/v1/recommendations"]["post"]["responses"]
    with make_client(served, docs=False) as client:
        assert client.get("/docs").status_code == 404


@pytest.fixture(autouse=True)
def _no_leaked_event_loop() -> Iterator[None]:
    yield
    asyncio.set_event_loop(None)
