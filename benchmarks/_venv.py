"""Separate virtual environments for benchmarks that run other libraries (standard library only).

A peer library (RecBole, implicit, ...) is never installed into crossrec's own venv: its pins could
move crossrec's dependencies. :func:`setup_venv` builds ``<folder>/.venv``: ``torch==2.13.0`` first
when asked (so pip can never pull a CUDA build), then the pinned requirements under the constraints
file. A marker holds the hash of those files; the venv is rebuilt when they change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

TORCH = "torch==2.13.0"
_MARKER = ".venv-ready"


def venv_python(venv: Path) -> Path:
    """The interpreter of ``venv``."""
    return venv / "bin" / "python"


def _wanted_hash(requirements: Path, constraints: Path | None, torch: bool) -> str:
    digest = hashlib.sha256()
    for path in (requirements, constraints):
        if path is not None:
            digest.update(path.read_bytes())
    digest.update((TORCH if torch else "no-torch").encode())
    return digest.hexdigest()[:16]


def is_ready(
    venv: Path,
    requirements: Path,
    constraints: Path | None = None,
    *,
    torch: bool = True,
    marker_name: str = _MARKER,
) -> bool:
    """``venv`` exists and was built from the current requirement files."""
    marker = venv / marker_name
    wanted = _wanted_hash(requirements, constraints, torch)
    return venv_python(venv).is_file() and marker.is_file() and marker.read_text().strip() == wanted


def _run(command: list[str], venv: Path) -> None:
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"setting up {venv} failed (exit {result.returncode}) at: {' '.join(command)}\n"
            f"Fix the error above, then rerun; or delete {venv} to start over."
        )


def setup_venv(
    venv: Path,
    requirements: Path,
    constraints: Path | None = None,
    *,
    torch: bool = True,
    force: bool = False,
    marker_name: str = _MARKER,
) -> Path:
    """Build ``venv`` unless it is already ready; returns its interpreter.

    Raises ``SystemExit`` with the failing command when a step fails, or when the installed torch is
    not 2.13.0 (``torch=True``).
    """
    if is_ready(venv, requirements, constraints, torch=torch, marker_name=marker_name) and not force:
        return venv_python(venv)
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", str(venv)], venv)
    python = str(venv_python(venv))
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if torch:
        _run([*pip, TORCH], venv)
    _run([*pip, *(["-c", str(constraints)] if constraints else []), "-r", str(requirements)], venv)
    if torch:
        version = subprocess.run(
            [python, "-c", "import torch; print(torch.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if not version.startswith("2.13.0"):
            raise SystemExit(f"{venv} has torch {version!r}, expected 2.13.0; delete {venv} and rerun")
    (venv / marker_name).write_text(_wanted_hash(requirements, constraints, torch) + "\n")
    return venv_python(venv)
