"""Ingestion speed and memory: synthetic CSV and Parquet sources of 1M and 20M interactions.

Each ingest runs in a child process that reports its wall time (ingest call only) and its peak RSS.
Targets on a 2-core machine: >= 1M rows/s for Parquet, >= 300k rows/s for CSV, < 4 GiB peak RSS at 20M.

    python benchmarks/ingest.py                      # 1M and 20M rows
    python benchmarks/ingest.py --sizes 100000       # quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table, write_results

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from crossrec.data import ingest
    start = time.perf_counter()
    result = ingest(sys.argv[1], sys.argv[2])
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = result.manifest["funnel"][0]["rows"]
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "rows_read": rows}))
    """
)

SOURCES = """
[sources.bench.interactions]
path = "{path}"
user = "user"
item = "item"
value = "rating"
timestamp = "ts"
rating_scale = [1, 5]
"""


def generate(folder: Path, rows: int) -> dict[str, Path]:
    """Write ``rows`` random interactions as CSV and Parquet (DuckDB, a few seconds per 10M rows)."""
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})
    users, items = max(rows // 50, 10), max(rows // 200, 10)
    query = (
        f"SELECT 'u' || (hash(range) % {users}) AS user, 'i' || (hash(range * 7 + 1) % {items}) AS item, "
        f"1 + hash(range * 13 + 5) % 5 AS rating, 1500000000 + range AS ts FROM range({rows})"
    )
    paths = {"csv": folder / f"bench_{rows}.csv", "parquet": folder / f"bench_{rows}.parquet"}
    con.execute(f"COPY ({query}) TO '{paths['csv']}' (HEADER, DELIMITER ',')")
    con.execute(f"COPY ({query}) TO '{paths['parquet']}' (FORMAT parquet, COMPRESSION zstd)")
    con.close()
    return paths


def run_one(folder: Path, fmt: str, data: Path) -> dict[str, object]:
    config = folder / f"sources_{fmt}_{data.stem}.toml"
    config.write_text(SOURCES.format(path=data.name))
    output = folder / f"bundle_{fmt}_{data.stem}"
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(config), str(output)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"ingest of {data.name} failed:\n{completed.stderr[-3000:]}")
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    rows = int(measured["rows_read"])
    return {
        "format": fmt,
        "rows": rows,
        "seconds": round(measured["seconds"], 3),
        "rows_per_second": round(rows / measured["seconds"]),
        "peak_rss_mib": round(measured["peak_rss_mib"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 20_000_000])
    parser.add_argument("--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    args = parser.parse_args()
    rows_out: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="crossrec-bench-ingest-") as tmp:
        folder = Path(tmp)
        for size in args.sizes:
            paths = generate(folder, size)
            for fmt in args.formats:
                rows_out.append(run_one(folder, fmt, paths[fmt]))
                print(rows_out[-1], flush=True)
            for path in paths.values():
                path.unlink()
    print_table("crossrec ingest (2 DuckDB threads)", rows_out)
    write_results(
        "ingest",
        rows_out,
        targets={
            "parquet_rows_per_second": 1_000_000,
            "csv_rows_per_second": 300_000,
            "peak_rss_mib_20m": 4096,
        },
    )


if __name__ == "__main__":
    main()
