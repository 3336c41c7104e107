"""Create the anchor benchmark's own RecBole virtual environment (standard library only).

``benchmarks/anchors/.venv`` gets ``torch==2.13.0`` first, then the pinned packages of
``requirements-recbole.txt`` under ``constraints-recbole.txt`` (which pins torch, so pip can never
replace it). A marker file records the hash of both files; the venv is rebuilt when they change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements-recbole.txt"
CONSTRAINTS = HERE / "constraints-recbole.txt"
TORCH = "torch==2.13.0"
_MARKER = ".anchors-ready"


def venv_python(venv: Path = VENV) -> Path:
    """The interpreter of the RecBole venv."""
    return venv / "bin" / "python"


def _wanted_hash() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, CONSTRAINTS):
        digest.update(path.read_bytes())
    digest.update(TORCH.encode())
    return digest.hexdigest()[:16]


def is_ready(venv: Path = VENV) -> bool:
    """The venv exists and was built from the current requirement files."""
    marker = venv / _MARKER
    return venv_python(venv).is_file() and marker.is_file() and marker.read_text().strip() == _wanted_hash()


def _run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(
            f"setting up the RecBole venv failed (exit {result.returncode}) at: {' '.join(command)}\n"
            f"Fix the error above, then rerun; or delete {VENV} to start over."
        )


def setup_venv(venv: Path = VENV, *, force: bool = False) -> Path:
    """Build the RecBole venv unless it is already ready; returns its interpreter.

    Raises ``SystemExit`` with the failing command when a step fails, or when the installed torch
    is not 2.13.0.
    """
    if is_ready(venv) and not force:
        return venv_python(venv)
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv_python(venv))
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, TORCH])
    _run([*pip, "-c", str(CONSTRAINTS), "-r", str(REQUIREMENTS)])
    version = subprocess.run(
        [python, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not version.startswith("2.13.0"):
        raise SystemExit(f"the RecBole venv has torch {version!r}, expected 2.13.0; delete {venv} and rerun")
    (venv / _MARKER).write_text(_wanted_hash() + "\n")
    return venv_python(venv)


if __name__ == "__main__":
    print(setup_venv(force="--force" in sys.argv))
