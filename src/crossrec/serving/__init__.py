"""The HTTP recommendation service over a model artifact (FastAPI + uvicorn).

Typical use::

    from crossrec.serving import ServeSettings, create_app, run_server
    app = create_app("runs/demo/artifact")          # an ASGI app (tests, other servers)
    run_server(ServeSettings(artifact="runs/demo/artifact", port=8000))
"""

from crossrec._extras import require_extra

require_extra("serve", "the HTTP service (crossrec.serving)")

from crossrec.serving.app import create_app  # noqa: E402
from crossrec.serving.holder import LoadedModel, ModelHolder  # noqa: E402
from crossrec.serving.server import configure_logging, run_server  # noqa: E402
from crossrec.serving.settings import ADMIN_KEYS_ENV, API_KEYS_ENV, ServeSettings, load_api_keys  # noqa: E402

__all__ = [
    "ADMIN_KEYS_ENV",
    "API_KEYS_ENV",
    "LoadedModel",
    "ModelHolder",
    "ServeSettings",
    "configure_logging",
    "create_app",
    "load_api_keys",
    "run_server",
]
