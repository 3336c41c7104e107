"""Convert the three course platforms' published files into tables ``crossrec ingest`` reads.

Why a conversion step: crossrec's ingestion reads CSV/TSV/Parquet/JSON lines/SQL/RecBole atomic files,
and keeps the time of each event only through a timestamp column. The published files have no
timestamps but are written in time order, and MOOCCubeX holds ``user item item ...`` lines inside a
zip. This script writes, into a work folder outside the repository (nothing is copied into it)::

    WORK/canvas/enrolments.parquet      learner, course, step   (train file, then test file)
    WORK/canvas/courses.parquet         course, discipline, course_length
    WORK/mooccube/enrolments.parquet    learner, course, step
    WORK/mooccube/courses.parquet       course, name, mode, about
    WORK/mooccubex/enrolments.parquet   learner, course, step   (raw.zip train.txt, line order)

``step`` is the row's position in its file (Canvas: the test file's rows come after all training
rows), used as the event time, so each learner's enrolments keep their published order. The Canvas
Network test file holds each learner's last ``round(20%)`` enrolments, so the published split is
recovered exactly by ``Sequences.split_last(0.2)`` (checked in ``tests/education``).

Usage::

    python examples/education/prepare.py ../shared/data /tmp/education-work
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

CANVAS = "edu-canvas-cnpc"
MOOCCUBE = "edu-xuetangx-mooccube"
MOOCCUBEX = "edu-xuetangx-mooccubex"


def _require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(
            f"{path} not found: pass the folder that holds {CANVAS}/, {MOOCCUBE}/ and {MOOCCUBEX}/"
        )
    return path


def _enrolments(learner: np.ndarray, course: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "learner": learner.astype(np.int64),
            "course": course.astype(np.int64),
            "step": np.arange(len(learner), dtype=np.int64),
        }
    )


def prepare_canvas(data_dir: Path, out: Path) -> int:
    folder = data_dir / CANVAS
    parts = [
        pd.read_json(_require(folder / name), lines=True)
        for name in ("train_valid_data_cnpc_v2.json", "test_data_cnpc_v2.json")
    ]
    rows = pd.concat(parts, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    _enrolments(rows["user"].to_numpy(), rows["item"].to_numpy()).to_parquet(out / "enrolments.parquet")
    courses = pd.read_json(_require(folder / "cnpc_course_info_v3.json"), lines=True)
    courses = courses.rename(columns={"course_idx2": "course"})[["course", "discipline", "course_length"]]
    courses.to_parquet(out / "courses.parquet")
    return len(rows)


def prepare_mooccube(data_dir: Path, out: Path) -> int:
    folder = data_dir / MOOCCUBE
    rows = pd.read_json(_require(folder / "test_data_mooccube_v4.json"), lines=True)
    out.mkdir(parents=True, exist_ok=True)
    _enrolments(rows["user"].to_numpy(), rows["item"].to_numpy()).to_parquet(out / "enrolments.parquet")
    courses = pd.read_json(_require(folder / "course_info_v5_mooccube.json"), lines=True)
    courses = courses.rename(columns={"course_idx2": "course"})[["course", "name", "mode", "about"]]
    courses["mode"] = courses["mode"].fillna("unknown")
    courses.to_parquet(out / "courses.parquet")
    return len(rows)


def prepare_mooccubex(data_dir: Path, out: Path) -> int:
    with zipfile.ZipFile(_require(data_dir / MOOCCUBEX / "raw.zip")) as archive:
        text = archive.read("train.txt").decode("utf-8")
    learners, courses = [], []
    for line in text.splitlines():  # one line per learner: "user item item ..."
        fields = np.array(line.split(), dtype=np.int64)
        if len(fields) > 1:
            learners.append(np.full(len(fields) - 1, fields[0]))
            courses.append(fields[1:])
    out.mkdir(parents=True, exist_ok=True)
    _enrolments(np.concatenate(learners), np.concatenate(courses)).to_parquet(out / "enrolments.parquet")
    return int(sum(len(c) for c in courses))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="folder holding the three platforms' published files")
    parser.add_argument("work_dir", type=Path, help="output folder (outside the repository)")
    args = parser.parse_args(argv)
    counts = {
        "canvas": prepare_canvas(args.data_dir, args.work_dir / "canvas"),
        "mooccube": prepare_mooccube(args.data_dir, args.work_dir / "mooccube"),
        "mooccubex": prepare_mooccubex(args.data_dir, args.work_dir / "mooccubex"),
    }
    for name, count in counts.items():
        print(f"{name}: {count:,} enrolments -> {args.work_dir / name}")


if __name__ == "__main__":
    main()
