"""The HTTP recommendation service over a model artifact (FastAPI + uvicorn).

Typical use::

    from crossrec.serving import ServeSettings, create_app, run_server
    app = create_app("runs/demo/artifact")          # an ASGI app (tests, other servers)
    run_server(ServeSettings(artifact="runs/demo/artifact", port=8000))
"""

from crossrec.serving.app import create_app
from crossrec.serving.holder import LoadedModel, ModelHolder
from crossrec.serving.server import configure_logging, run_server
from crossrec.serving.settings import API_KEYS_ENV, ServeSettings, load_api_keys

__all__ = [
    "API_KEYS_ENV",
    "LoadedModel",
    "ModelHolder",
    "ServeSettings",
    "configure_logging",
    "create_app",
    "load_api_keys",
    "run_server",
]
