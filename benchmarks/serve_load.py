"""Load test of ``crossrec serve`` on 127.0.0.1 with the movielens-cdr transfer model.

1. The model: ``--artifact DIR`` (e.g. the one ``crossrec demo`` saved), otherwise BPR-MF
   pretrained on the source (ML-1M), warm-started on the target (ML-100K) and fine-tuned exactly
   as in :mod:`crossrec.experiment.demo`, saved to ``runs/serve_load/artifact`` (reused next time
   unless ``--retrain``).
2. The server: ``python -m crossrec serve`` in its own process (one uvicorn worker, JSON access
   log to a file), on a free loopback port.
3. The load: a separate generator process with raw HTTP/1.1 keep-alive connections on asyncio.
   Phase 1 is open-loop at ``--rate`` requests/s for ``--duration`` s: request ``i`` is due at
   ``t0 + i / rate`` whatever happened before, and its latency is measured from that due time
   (so a stalled server cannot hide queueing: no coordinated omission). Phase 2 is closed-loop
   with ``--concurrency`` connections for ``--saturation-duration`` s: the throughput at
   saturation. Mix: known users' top-10 (GET), new users from 1-20 items (POST, some with
   attributes), similar items (GET). Every loop is bounded in count and in time.

Run: ``nice -n 10 .venv/bin/python benchmarks/serve_load.py [--artifact DIR] [--duration 60]``;
writes ``benchmarks/results/serve_load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ARTIFACT = REPO / "runs" / "serve_load" / "artifact"
REQUEST_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 64


# -- the model ---------------------------------------------------------------------------------


def train_transfer_artifact(folder: Path, *, epochs: int, seed: int = 2022) -> Path:
    """BPR-MF pretrained on ML-1M, warm start + fold-in on ML-100K, fine-tuned (the demo's recipe)."""
    from crossrec.artifacts import save_artifact
    from crossrec.data.builtin import load_movielens_cdr
    from crossrec.metrics.ranking import evaluate_ranking
    from crossrec.models.fold_in import fold_in_users
    from crossrec.models.inputs import EmbeddingInit, FitInputs
    from crossrec.models.mf import BPRMF
    from crossrec.splitting.splits import random_split
    from crossrec.transfer.links import Links
    from crossrec.transfer.warm_start import warm_start_table

    source, target = load_movielens_cdr()
    split = random_split(target.interactions, target.n_users, target.n_items, seed=seed)
    train, valid, test = split.matrix("train"), split.matrix("valid"), split.matrix("test")
    source_split = random_split(
        source.interactions, source.n_users, source.n_items, ratios=(0.9, 0.1, 0.0), seed=seed
    )
    links = Links.by_shared_ids(source.items, target.items)
    optim = dict(epochs=epochs, seed=seed, progress=False)
    pretrained = BPRMF(dim=64, optim={**optim, "batch_size": 8192, "learning_rate": 5e-3, "patience": 3}).fit(
        source_split.matrix("train"), source_split.matrix("valid")
    )
    item_init = warm_start_table(pretrained.item_vectors(), links, target.n_items, seed=seed)
    init = EmbeddingInit(item=item_init, user=fold_in_users(item_init, train))
    model = BPRMF(dim=64, optim=optim).fit_with(train, valid, FitInputs(init=init))
    summary = evaluate_ranking(model.score, test, train + valid, ks=[10]).mean()
    config = {
        "recipe": "bpr_mf+warm_start (crossrec.experiment.demo)",
        "dataset": "movielens-cdr",
        "dim": 64,
        **optim,
    }
    return save_artifact(
        folder,
        model,
        users=target.users,
        items=target.items,
        train=train,
        config=config,
        evaluation={"test": summary, "split_fingerprint": split.fingerprint()},
        overwrite=True,
    )


# -- the requests ------------------------------------------------------------------------------


def build_requests(
    artifact: Path, n: int, seed: int, mix: tuple[float, float, float]
) -> list[tuple[str, str]]:
    """``n`` raw HTTP/1.1 requests (kind, text) drawn with the given known/cold/similar mix."""
    from crossrec.artifacts import load_artifact

    loaded = load_artifact(artifact)
    users, items = loaded.users.ids, loaded.items.ids
    rng = random.Random(seed)
    kinds = rng.choices(["known", "cold", "similar"], weights=mix, k=n)
    out = []
    for kind in kinds:
        if kind == "known":
            user = quote(str(rng.choice(users)), safe="")
            line = f"GET /v1/users/{user}/recommendations?k=10&exclude_seen=true HTTP/1.1"
            out.append((kind, f"{line}\r\nHost: 127.0.0.1\r\n\r\n"))
        elif kind == "similar":
            item = quote(str(rng.choice(items)), safe="")
            out.append((kind, f"GET /v1/items/{item}/similar?k=10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
        else:
            body: dict[str, object] = {"item_ids": rng.sample(list(items), rng.randint(1, 20)), "k": 10}
            if rng.random() < 0.3:
                body["attributes"] = {"age": rng.choice(["18", "25", "35"]), "gender": rng.choice("MF")}
            payload = json.dumps(body)
            head = (
                "POST /v1/recommendations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload.encode())}\r\n\r\n"
            )
            out.append((kind, head + payload))
    return out


# -- the load generator (runs in its own process) ------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; responses are read by Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, raw: bytes) -> int:
        self.writer.write(raw)
        self.last_used = time.monotonic()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Idle keep-alive connections, opened on demand up to ``limit``.

    A connection idle for longer than ``max_idle_s`` is closed instead of reused, as HTTP clients
    do: the server (uvicorn: 5 s keep-alive) may already have closed it.
    """

    max_idle_s = 2.0

    def __init__(self, port: int, limit: int) -> None:
        self.port, self.limit, self.opened = port, limit, 0
        self.idle: list[Connection] = []
        self.freed = asyncio.Condition()

    async def acquire(self) -> Connection:
        async with self.freed:
            while not self.idle and self.opened >= self.limit:
                await self.freed.wait()
            now = time.monotonic()
            while self.idle and now - self.idle[0].last_used > self.max_idle_s:
                self.idle.pop(0).close()
                self.opened -= 1
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        try:
            return await Connection.open(self.port)
        except OSError:
            await self.discard()
            raise

    async def release(self, connection: Connection) -> None:
        async with self.freed:
            self.idle.append(connection)
            self.freed.notify()

    async def discard(self, connection: Connection | None = None) -> None:
        if connection is not None:
            connection.close()
        async with self.freed:
            self.opened -= 1
            self.freed.notify()


TIMED_OUT, CONNECTION_ERROR = 1, 0  # pseudo status codes


async def _timed(pool: Pool, raw: bytes) -> tuple[int, float]:
    """(HTTP status, or TIMED_OUT / CONNECTION_ERROR; seconds from now to the end of the response)."""
    started = time.perf_counter()
    connection = None
    try:
        connection = await asyncio.wait_for(pool.acquire(), REQUEST_TIMEOUT_S)
        status = await asyncio.wait_for(connection.send(raw), REQUEST_TIMEOUT_S)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
        if connection is not None:
            await pool.discard(connection)
        code = TIMED_OUT if isinstance(error, TimeoutError) else CONNECTION_ERROR
        return code, time.perf_counter() - started
    await pool.release(connection)
    return status, time.perf_counter() - started


async def open_loop(port: int, requests: list[tuple[str, bytes]], rate: float, duration: float) -> dict:
    """Request ``i`` is due at ``t0 + i / rate``; latency counts from the due time."""
    pool = Pool(port, MAX_CONNECTIONS)
    n = int(rate * duration)
    latency = np.full(n, np.nan)
    service = np.full(n, np.nan)
    status = np.full(n, -1, dtype=np.int64)  # -1: never sent
    kinds = np.array([requests[i % len(requests)][0] for i in range(n)])
    t0 = time.perf_counter() + 0.05

    async def one(i: int, due: float) -> None:
        sent = time.perf_counter()
        status[i], seconds = await _timed(pool, requests[i % len(requests)][1])
        latency[i] = (sent + seconds - due) * 1000
        service[i] = seconds * 1000

    tasks = []
    for i in range(n):  # bounded by n, and by the deadline below
        due = t0 + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        if time.perf_counter() > t0 + duration + 10:
            break
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S * 2) if tasks else None
    elapsed = time.perf_counter() - t0
    for connection in pool.idle:
        connection.close()
    return {
        "latency": latency,
        "service": service,
        "status": status,
        "kinds": kinds,
        "elapsed": elapsed,
        "sent": len(tasks),
    }


async def closed_loop(
    port: int, requests: list[tuple[str, bytes]], concurrency: int, duration: float
) -> dict:
    """``concurrency`` connections, each sending its next request as soon as the last one returns."""
    deadline = time.perf_counter() + duration
    max_per_worker = int(duration * 20_000 / concurrency) + 1  # far above any reachable rate
    results: list[tuple[int, float]] = []

    async def worker(offset: int) -> None:
        pool = Pool(port, 1)
        for step in range(max_per_worker):
            if time.perf_counter() >= deadline:
                break
            results.append(await _timed(pool, requests[(offset + step * concurrency) % len(requests)][1]))
        for connection in pool.idle:
            connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(offset) for offset in range(concurrency)))
    elapsed = time.perf_counter() - started
    status = np.array([r[0] for r in results], dtype=np.int64)
    seconds = np.array([r[1] for r in results]) * 1000
    return {"ok": status == 200, "status": status, "service": seconds, "elapsed": elapsed}


def _error_counts(status: np.ndarray, kinds: np.ndarray | None = None) -> dict[str, int]:
    """``{"<status> <kind>": count}`` of the failed requests (status 0: connection error, 1: timeout)."""
    failed = (status != 200) & (status >= 0)
    labels = status[failed].astype(str)
    if kinds is not None:
        labels = np.char.add(np.char.add(labels, " "), kinds[failed].astype(str))
    names, counts = np.unique(labels, return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts, strict=True)}


def _percentiles(values: np.ndarray) -> dict[str, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return {
            "p50_ms": float("nan"),
            "p90_ms": float("nan"),
            "p99_ms": float("nan"),
            "max_ms": float("nan"),
        }
    p50, p90, p99, p999 = np.percentile(values, [50, 90, 99, 99.9])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "p99.9_ms": float(p999),
        "max_ms": float(values.max()),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``), so costs can be read under contention."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def generate(config_path: Path) -> None:
    """Generator process: run the phases described in the JSON config, print results as JSON."""
    config = json.loads(config_path.read_text())
    requests = [(kind, raw.encode("latin-1")) for kind, raw in config["requests"]]
    port = config["port"]
    out: dict[str, object] = {}

    async def run() -> None:
        await closed_loop(port, requests, 4, config["warmup"])  # warm caches, connections, allocator
        server_cpu = _cpu_seconds(config["server_pid"])
        phase = await open_loop(port, requests, config["rate"], config["duration"])
        server_cpu = _cpu_seconds(config["server_pid"]) - server_cpu
        completed = int(np.isfinite(phase["latency"]).sum())
        succeeded = int((phase["status"] == 200).sum())
        out["target"] = {
            "sent": phase["sent"],
            "completed": completed,
            "errors": phase["sent"] - succeeded,
            "error_counts": _error_counts(phase["status"], phase["kinds"]),
            "elapsed_s": phase["elapsed"],
            "achieved_rps": succeeded / phase["elapsed"],
            "server_cpu_ms_per_request": 1000 * server_cpu / max(completed, 1),
            "server_cpu_share_of_one_core": server_cpu / phase["elapsed"],
            "from_due_time": _percentiles(phase["latency"]),
            "service_time": _percentiles(phase["service"]),
            "by_kind": {
                kind: {
                    "requests": int((phase["kinds"] == kind).sum()),
                    **_percentiles(phase["latency"][phase["kinds"] == kind]),
                }
                for kind in ("known", "cold", "similar")
            },
        }
        if config["saturation_duration"] > 0:
            server_cpu = _cpu_seconds(config["server_pid"])
            saturation = await closed_loop(
                port, requests, config["concurrency"], config["saturation_duration"]
            )
            server_cpu = _cpu_seconds(config["server_pid"]) - server_cpu
            out["saturation"] = {
                "requests": len(saturation["ok"]),
                "errors": int((~saturation["ok"]).sum()),
                "error_counts": _error_counts(saturation["status"]),
                "elapsed_s": saturation["elapsed"],
                "rps": int(saturation["ok"].sum()) / saturation["elapsed"],
                "server_cpu_ms_per_request": 1000 * server_cpu / max(len(saturation["ok"]), 1),
                "server_cpu_share_of_one_core": server_cpu / saturation["elapsed"],
                **_percentiles(saturation["service"]),
            }

    asyncio.run(run())
    print(json.dumps(out))


# -- the driver --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded in time
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}; see its log")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.25)
    raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", type=Path, help="Serve this artifact (default: train or reuse one).")
    parser.add_argument("--retrain", action="store_true", help="Train a new artifact even if one exists.")
    parser.add_argument("--epochs", type=int, default=200, help="Max epochs per training phase.")
    parser.add_argument("--rate", type=float, default=300.0, help="Target requests/s of the open-loop phase.")
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of the open-loop phase.")
    parser.add_argument("--saturation-duration", type=float, default=15.0, help="Seconds of the closed loop.")
    parser.add_argument("--concurrency", type=int, default=16, help="Connections in the closed loop.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds of warm-up before measuring.")
    parser.add_argument("--mix", type=float, nargs=3, default=(0.6, 0.25, 0.15), help="known cold similar")
    parser.add_argument("--p99-target-ms", type=float, default=25.0)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.generate)
        return

    artifact = args.artifact
    if artifact is None:
        artifact = DEFAULT_ARTIFACT
        if args.retrain or not (artifact / "manifest.json").is_file():
            print(f"training the movielens-cdr transfer model into {artifact} ...", flush=True)
            started = time.perf_counter()
            train_transfer_artifact(artifact, epochs=args.epochs)
            print(f"trained and saved in {time.perf_counter() - started:.0f} s", flush=True)
    from crossrec.artifacts import load_artifact

    metadata = load_artifact(artifact).metadata
    port = _free_port()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp:
        config_path = Path(tmp) / "generator.json"
        requests = build_requests(artifact, 6000, seed=0, mix=tuple(args.mix))
        config = {
            "port": port,
            "server_pid": None,
            "requests": requests,
            "rate": args.rate,
            "duration": args.duration,
            "warmup": args.warmup,
            "saturation_duration": args.saturation_duration,
            "concurrency": args.concurrency,
        }
        config_path.write_text(json.dumps(config))
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "crossrec", "serve", str(artifact), "--port", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_healthy(port, server)
                config["server_pid"] = server.pid
                config_path.write_text(json.dumps(config))
                budget = args.warmup + args.duration + args.saturation_duration + 60
                generator = subprocess.run(
                    [sys.executable, __file__, "--generate", str(config_path)],
                    capture_output=True,
                    text=True,
                    timeout=budget,
                    check=True,
                )
            finally:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
        access_lines = sum(
            1 for line in log_path.read_text(errors="replace").splitlines() if '"route"' in line
        )
        server_errors = sum(
            1
            for line in log_path.read_text(errors="replace").splitlines()
            if '"status": 5' in line or "Traceback" in line
        )
    result = json.loads(generator.stdout)
    target, saturation = result["target"], result.get("saturation", {})
    due = target["from_due_time"]
    summary = {
        "target_rps": args.rate,
        "achieved_rps": round(target["achieved_rps"], 1),
        "p50_ms": round(due["p50_ms"], 2),
        "p99_ms": round(due["p99_ms"], 2),
        "errors": target["errors"],
        "duration_s": args.duration,
        "saturation_rps": round(saturation.get("rps", float("nan")), 1),
        "met_target": bool(
            target["errors"] == 0
            and target["achieved_rps"] >= 0.98 * args.rate
            and due["p99_ms"] < args.p99_target_ms
        ),
        "latency_definition": "open loop; from each request's due time (t0 + i/rate) to its response's end",
        "service_time_p99_ms": round(target["service_time"]["p99_ms"], 2),
        "server_cpu_ms_per_request": round(target["server_cpu_ms_per_request"], 3),
        "saturation_estimate_from_cpu_rps": round(1000 / target["server_cpu_ms_per_request"], 0),
        "saturation": saturation,
        "target_phase": target,
        "mix": dict(zip(("known_user", "cold_start", "similar_items"), args.mix, strict=True)),
        "server": {"workers": 1, "access_log_lines": access_lines, "server_error_lines": server_errors},
        "artifact": {
            "path": str(artifact),
            "model": metadata.model,
            "id": metadata.artifact_id[:12],
            "users": metadata.n_users,
            "items": metadata.n_items,
            "test": dict(metadata.evaluation).get("test"),
        },
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "note": (
            "server, generator and other jobs share the machine's cores (see loadavg); server CPU ms "
            "per request is the contention-free cost, 1000 / it the rate one free core would sustain"
        ),
    }
    rows = [
        {
            "phase": f"open loop {args.rate:.0f}/s",
            "requests": target["sent"],
            "rps": target["achieved_rps"],
            "p50_ms": due["p50_ms"],
            "p90_ms": due["p90_ms"],
            "p99_ms": due["p99_ms"],
            "max_ms": due["max_ms"],
            "errors": target["errors"],
        },
        *(
            {
                "phase": f"  {kind}",
                "requests": stats["requests"],
                "rps": stats["requests"] / target["elapsed_s"],
                "p50_ms": stats["p50_ms"],
                "p90_ms": stats["p90_ms"],
                "p99_ms": stats["p99_ms"],
                "max_ms": stats["max_ms"],
                "errors": "",
            }
            for kind, stats in target["by_kind"].items()
        ),
    ]
    if saturation:
        rows.append(
            {
                "phase": f"saturation ({args.concurrency} conns)",
                "requests": saturation["requests"],
                "rps": saturation["rps"],
                "p50_ms": saturation["p50_ms"],
                "p90_ms": saturation["p90_ms"],
                "p99_ms": saturation["p99_ms"],
                "max_ms": saturation["max_ms"],
                "errors": saturation["errors"],
            }
        )
    print_table(f"crossrec serve on 127.0.0.1 ({metadata.model}, {metadata.n_items} items)", rows)
    path = write_results("serve_load", rows, **summary)
    verdict = "met" if summary["met_target"] else "NOT met"
    print(
        f"target {args.rate:.0f} req/s, p99 < {args.p99_target_ms:.0f} ms, 0 errors: {verdict} "
        f"(achieved {summary['achieved_rps']} req/s, p99 {summary['p99_ms']} ms, "
        f"{summary['errors']} errors); "
        f"saturation {summary['saturation_rps']} req/s; wrote {path}"
    )


if __name__ == "__main__":
    main()
