"""Slow-client test of ``crossrec serve`` on 127.0.0.1: does ``/healthz`` stay fast while ``--clients``
connections each hold half a request open?

1. The server: ``python -m crossrec serve`` in its own process on a free loopback port, on a small
   popularity artifact (the model does not matter: connection handling does).
2. The attack: ``--clients`` sockets each send ``GET /healthz HTTP/1.1`` and half a header, then
   nothing (a "slowloris" client), opened in this process.
3. The probe: while they are connected, ``--probes`` fresh ``GET /healthz`` requests, one after
   another, each on a new connection; their latency is recorded. Then the script waits for the
   server's request timeout and checks that the slow connections were answered 408 and closed.

Every loop is bounded in count and in time; only loopback is contacted. Run:
``nice -n 5 .venv/bin/python benchmarks/slow_clients.py [--clients 1000]``; writes
``benchmarks/results/slow_clients.json``.
"""

from __future__ import annotations

import argparse
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results


def _artifact(folder: Path) -> Path:
    import scipy.sparse as sp

    from crossrec.artifacts import save_artifact
    from crossrec.data.vocabulary import Vocabulary
    from crossrec.models.popularity import Popularity

    rng = np.random.default_rng(0)
    train = sp.random(200, 100, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    train.data[:] = 1
    model = Popularity().fit(train)
    users = Vocabulary([f"u{i}" for i in range(200)])
    items = Vocabulary([f"i{i}" for i in range(100)])
    return save_artifact(folder, model, users=users, items=items, train=train)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port: int, timeout: float = 5.0) -> tuple[float, bytes]:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return time.perf_counter() - started, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--request-timeout", type=float, default=20.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.clients + 256)), hard))

    with tempfile.TemporaryDirectory() as scratch:
        artifact = _artifact(Path(scratch) / "artifact")
        port = _free_port()
        command = [
            sys.executable, "-m", "crossrec", "serve", str(artifact), "--port", str(port),
            "--log-level", "warning", "--no-access-log", "--request-timeout", str(args.request_timeout),
        ]  # fmt: skip
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        slow: list[socket.socket] = []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _get(port, timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.2)
            baseline = [_get(port)[0] for _ in range(args.probes)]
            opened = time.perf_counter()
            for _ in range(args.clients):
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                client.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
                slow.append(client)
            open_seconds = time.perf_counter() - opened
            probes, failures = [], 0
            for _ in range(args.probes):
                seconds, answer = _get(port)
                probes.append(seconds)
                failures += not answer.startswith(b"HTTP/1.1 200")
            waited = time.perf_counter() - opened
            remaining = max(0.0, args.request_timeout - waited) + 3
            time.sleep(remaining)
            answered_408 = closed = 0
            for client in slow:
                client.settimeout(5)
                try:
                    data = client.recv(1024)
                    answered_408 += data.startswith(b"HTTP/1.1 408")
                    closed += data == b"" or client.recv(1024) == b""
                except OSError:
                    pass
        finally:
            for client in slow:
                client.close()
            server.terminate()
            server.wait(timeout=30)

    def stats(values: list[float]) -> dict[str, float]:
        array = np.asarray(values) * 1000
        return {
            "p50_ms": round(float(np.percentile(array, 50)), 2),
            "p99_ms": round(float(np.percentile(array, 99)), 2),
            "max_ms": round(float(array.max()), 2),
        }

    results = {
        "clients": args.clients,
        "probes": args.probes,
        "request_timeout_s": args.request_timeout,
        "seconds_to_open_slow_clients": round(open_seconds, 2),
        "healthz_idle": stats(baseline),
        "healthz_with_slow_clients": stats(probes),
        "failed_probes": failures,
        "slow_clients_answered_408": answered_408,
        "slow_clients_closed_by_server": closed,
    }
    rows = [
        {"healthz": "idle", **results["healthz_idle"]},
        {"healthz": f"{args.clients} slow clients", **results["healthz_with_slow_clients"]},
    ]
    print_table("GET /healthz latency", rows)
    print(
        f"failed probes {failures}; slow clients answered 408: {answered_408}/{args.clients}, "
        f"closed by the server: {closed}/{args.clients}"
    )
    write_results("slow_clients", rows, **results)


if __name__ == "__main__":
    main()
