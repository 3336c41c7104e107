"""crossrec: cross-domain recommendation by model transfer.

Stages live in sub-packages named after the pipeline: :mod:`crossrec.data` (sources, schema,
bundles), :mod:`crossrec.features`, :mod:`crossrec.models`, :mod:`crossrec.training`,
:mod:`crossrec.transfer`, :mod:`crossrec.evaluation` and :mod:`crossrec.serving`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crossrec")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
