"""Create the anchor benchmark's own RecBole virtual environment (standard library only).

``benchmarks/anchors/.venv`` gets ``torch==2.13.0`` first, then the pinned packages of
``requirements-recbole.txt`` under ``constraints-recbole.txt`` (which pins torch, so pip can never
replace it); see :mod:`_venv` (``benchmarks/_venv.py``), which builds every peer library's venv.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _venv

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements-recbole.txt"
CONSTRAINTS = HERE / "constraints-recbole.txt"
_MARKER = ".anchors-ready"


def venv_python(venv: Path = VENV) -> Path:
    """The interpreter of the RecBole venv."""
    return _venv.venv_python(venv)


def is_ready(venv: Path = VENV) -> bool:
    """The venv exists and was built from the current requirement files."""
    return _venv.is_ready(venv, REQUIREMENTS, CONSTRAINTS, marker_name=_MARKER)


def setup_venv(venv: Path = VENV, *, force: bool = False) -> Path:
    """Build the RecBole venv unless it is already ready; returns its interpreter."""
    return _venv.setup_venv(venv, REQUIREMENTS, CONSTRAINTS, force=force, marker_name=_MARKER)


if __name__ == "__main__":
    print(setup_venv(force="--force" in sys.argv))
