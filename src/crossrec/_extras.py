"""Optional dependencies: the core install carries data, models, transfer and evaluation; serving,
databases, search, charts and text models come as extras, and code that needs one says which to install.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["EXTRAS", "MissingExtraError", "has_extra", "require_extra"]

#: Extra name -> the importable modules it provides.
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn"),
    "db": ("sqlalchemy", "psycopg"),
    "tune": ("optuna",),
    "report": ("matplotlib",),
    "text": ("sentence_transformers",),
}


class MissingExtraError(ImportError):
    """A feature needs an optional dependency that is not installed; the message says which extra."""


def _missing(extra: str) -> list[str]:
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {sorted(EXTRAS)}")
    return [module for module in EXTRAS[extra] if not _importable(module)]


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def has_extra(extra: str) -> bool:
    """Whether every module of ``extra`` can be imported."""
    return not _missing(extra)


def require_extra(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` naming ``pip install 'crossrec[extra]'`` when ``extra`` is absent.

    Parameters
    ----------
    extra
        One of :data:`EXTRAS` (``"serve"``, ``"db"``, ``"tune"``, ``"report"``, ``"text"``).
    feature
        What needs it, for the message (e.g. ``"crossrec serve"``).
    """
    missing = _missing(extra)
    if missing:
        raise MissingExtraError(
            f"{feature} needs the optional '{extra}' dependencies ({', '.join(missing)} not installed): "
            f"pip install 'crossrec[{extra}]' (or 'crossrec[all]')"
        )
