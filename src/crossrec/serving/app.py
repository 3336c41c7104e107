"""The FastAPI application: recommendations for known and new users, similar items, metadata,
health and hot reload, over one :class:`~crossrec.serving.holder.ModelHolder`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib.resources
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.security import APIKeyHeader

from crossrec import __version__
from crossrec.artifacts import Artifact, ArtifactError, ColdStartInputError, Recommendations
from crossrec.serving._json import json_response as _json
from crossrec.serving.holder import LoadedModel, ModelHolder, redact_message
from crossrec.serving.middleware import AccessLogMiddleware, BodySizeLimitMiddleware
from crossrec.serving.schemas import (
    MAX_K,
    ColdStartRequest,
    ErrorResponse,
    HealthResponse,
    RecommendationResponse,
    ReloadResponse,
    SimilarItemsResponse,
)
from crossrec.serving.settings import ServeSettings

__all__ = ["create_app"]

logger = logging.getLogger("crossrec.serving")

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A read key of the service.", scheme_name="ReadKey"
)
_admin_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="An admin key (/v1/admin only).", scheme_name="AdminKey"
)

K = Annotated[int, Query(ge=1, le=MAX_K, description="List length.")]
UserId = Annotated[str, PathParam(min_length=1, max_length=512, description="A user of the model.")]
ItemId = Annotated[str, PathParam(min_length=1, max_length=512, description="An item of the model.")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "The request cannot be parsed (e.g. an invalid Content-Length header).",
    },
    401: {"model": ErrorResponse, "description": "Missing or wrong X-API-Key (when keys are configured)."},
    413: {"model": ErrorResponse, "description": "Request body too large."},
}
_STRICT_BOOLEANS = {"true": True, "false": False}


def _strict_query_booleans(request: Request) -> None:
    """Booleans in the query string are ``true`` or ``false`` (not ``1``, ``yes`` or ``on``)."""
    for name in ("exclude_seen",):
        for value in request.query_params.getlist(name):
            if value not in _STRICT_BOOLEANS:
                raise RequestValidationError(
                    [{"type": "bool_parsing", "loc": ("query", name), "msg": "must be true or false"}]
                )


ExcludeSeen = Annotated[bool, Query(description="Leave out the user's training items (`true` or `false`).")]
Diversity = Annotated[
    float | None,
    Query(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Re-ranking strength in [0, 1] with the artifact's saved re-ranking setting "
        "(0: the plain list; default: the saved strength, 0 without a setting). Above 0 on an "
        "artifact without a setting is a 409.",
    ),
]
_NO_RERANK: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "diversity > 0 and the artifact has no re-ranking setting."}
}


def _strength(artifact: Artifact, diversity: float | None) -> float:
    """The strength a list was made at (what the response reports)."""
    if diversity is not None:
        return float(diversity)
    return 0.0 if artifact.rerank is None else float(artifact.rerank.config.strength)


def _items(recommendations: Recommendations) -> list[dict[str, Any]]:
    return [
        {"item_id": item, "score": score}
        for item, score in zip(recommendations.item_ids, recommendations.scores, strict=True)
    ]


def _key_checker(keys: frozenset[str], header: APIKeyHeader = _api_key_header) -> Any:
    encoded = tuple(key.encode() for key in keys)

    async def require_api_key(api_key: str | None = Depends(header)) -> None:
        if api_key is None:
            raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "X-API-Key"})
        supplied = api_key.encode("utf-8", "surrogateescape")
        matched = False
        for key in encoded:  # compare with every key: the time does not depend on which one matched
            matched |= hmac.compare_digest(supplied, key)
        if not matched:
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "X-API-Key"})

    return require_api_key


def _one_value(name: str, query: Any, body: Any, given: set[str], default: Any) -> Any:
    """A parameter given in the query string and/or the body: both must agree."""
    if query is not None and name in given and query != body:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", name),
                    "msg": f"{name} is {query!r} in the query but {body!r} in the body: give one",
                }
            ]
        )
    if query is not None:
        return query
    return body if name in given else default


def _install_sighup(app: FastAPI, holder: ModelHolder) -> bool:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return False
    loop = asyncio.get_running_loop()

    def on_sighup() -> None:
        task = loop.create_task(_reload(holder))
        app.state.reload_tasks.add(task)
        task.add_done_callback(app.state.reload_tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - platform without it
        return False
    return True


async def _reload(holder: ModelHolder) -> LoadedModel | None:
    try:
        return await asyncio.to_thread(holder.reload)
    except ArtifactError as error:
        logger.error("reload refused, still serving the previous artifact: %s", error)
        return None


def _install_docs(app: FastAPI) -> bool:
    """Swagger UI at ``/docs`` from the assets of the ``fastapi-offline`` package (no CDN); ``False``
    when the assets are not installed (then there is no ``/docs``)."""
    try:
        assets = importlib.resources.files("fastapi_offline") / "static"
        files = {
            name: (assets / name).read_bytes()
            for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
        }
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        logger.warning("Swagger UI assets (package fastapi-offline) are not installed: /docs is off")
        return False
    media = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
            oauth2_redirect_url=None,
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, "no such asset")
        headers = {"cache-control": "public, max-age=86400"}
        return Response(files[name], media_type=media[Path(name).suffix], headers=headers)

    return True


def create_app(
    artifact: Artifact | ModelHolder | str | os.PathLike[str], settings: ServeSettings | None = None
) -> FastAPI:
    """Build the service for an artifact (a loaded :class:`~crossrec.artifacts.Artifact`, a
    :class:`ModelHolder`, or an artifact folder).

    Parameters
    ----------
    artifact
        What to serve; reloads re-read its folder.
    settings
        Limits, API keys, logging; defaults to :class:`ServeSettings` for that folder.
    """
    holder = artifact if isinstance(artifact, ModelHolder) else ModelHolder(artifact)
    settings = settings or ServeSettings(artifact=holder.path)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        installed = settings.reload_on_sighup and _install_sighup(app, holder)
        try:
            yield
        finally:
            if installed:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    app = FastAPI(
        title="crossrec recommendation service",
        version=__version__,
        description=(
            "Top-K recommendations from a crossrec model artifact: known users, new users (cold start "
            "from their items), similar items. Reload a new artifact with SIGHUP, or POST /v1/admin/reload "
            "with an admin key (the endpoint exists only when admin keys are configured)."
        ),
        lifespan=lifespan,
        responses=_ERRORS,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.holder = holder
    app.state.settings = settings
    app.state.reload_tasks = set()
    # without keys there is nothing to check: skip the dependency (and its per-request cost)
    protected = [Depends(_key_checker(settings.api_keys))] if settings.api_keys else []
    strict = [Depends(_strict_query_booleans)]
    if settings.docs:
        _install_docs(app)

    @app.exception_handler(ArtifactError)
    async def artifact_error(request: Request, error: ArtifactError) -> Response:
        return _json({"detail": redact_message(str(error), holder.path)}, 409)

    @app.exception_handler(ColdStartInputError)
    async def cold_start_input_error(request: Request, error: ColdStartInputError) -> Response:
        return _json({"detail": str(error)}, 422)  # names attributes and kinds, never a value

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        # not FastAPI's default: it echoes the input (user attributes, undecodable bytes, NaN)
        detail = [
            {
                "type": str(e.get("type")),
                "loc": [str(part) for part in e.get("loc", ())],
                "msg": str(e.get("msg")),
            }
            for e in error.errors()
        ]
        return _json({"detail": detail}, 422)

    @app.get("/healthz", response_model=HealthResponse, tags=["service"])
    async def healthz() -> Response:
        """Liveness and the id of the artifact being served (no authentication)."""
        return _json({"status": "ok", "artifact_id": holder.current.artifact.metadata.artifact_id})

    @app.get("/v1/model", dependencies=protected, tags=["service"])
    async def model_metadata() -> Response:
        """Metadata of the served artifact: model, sizes, capabilities, config, evaluation, lineage."""
        return Response(holder.current.metadata_json, media_type="application/json")

    @app.get(
        "/v1/users/{user_id:path}/recommendations",  # ids may contain "/" (e.g. titles)
        response_model=RecommendationResponse,
        dependencies=protected + strict,
        responses={404: {"model": ErrorResponse, "description": "Unknown user."}, **_NO_RERANK},
        tags=["recommendations"],
    )
    async def recommend_user(
        user_id: UserId, k: K = 10, exclude_seen: ExcludeSeen = True, diversity: Diversity = None
    ) -> Response:
        """Top-K items for a user the model was trained on."""
        served = holder.current.artifact
        if not served.has_user(user_id):
            raise HTTPException(
                404,
                f"unknown user {user_id!r}: the model has no such user; "
                "for a new user, POST their items to /v1/recommendations",
            )
        result = served.recommend(user_id, k=k, exclude_seen=exclude_seen, diversity=diversity)
        return _json(
            {
                "user_id": user_id,
                "k": k,
                "path": result.path,
                "items": _items(result),
                "ignored_items": [],
                "diversity": _strength(served, diversity),
                "artifact_id": served.metadata.artifact_id,
            }
        )

    @app.post(
        "/v1/recommendations",
        response_model=RecommendationResponse,
        dependencies=protected + strict,
        responses={
            422: {"model": ErrorResponse, "description": "Bad body, or attributes the model cannot encode."},
            **_NO_RERANK,
        },
        tags=["recommendations"],
    )
    async def recommend_new_user(
        body: ColdStartRequest,
        k: Annotated[
            int | None, Query(ge=1, le=MAX_K, description="List length (or `k` in the body).")
        ] = None,
        exclude_seen: Annotated[
            bool | None, Query(description="`true` or `false` (or `exclude_seen` in the body).")
        ] = None,
        diversity: Diversity = None,
    ) -> Response:
        """Top-K for a user the model was not trained on, from the items they interacted with
        and/or their attributes. ``k`` and ``exclude_seen`` are read from the query string or the body
        ``diversity`` too (the same value in both is fine; two different values are a 422).

        ``path`` says how: ``features`` (the model's cold-start scorer, e.g. a
        two-tower model embedding the user from the attributes its user tower encodes),
        ``fold_in`` (embedding models: the user folded in from their items' vectors),
        ``item_item`` (summed item-item rows) or ``popularity`` (nothing else applied)."""
        k = _one_value("k", k, body.k, body.model_fields_set, 10)
        exclude_seen = _one_value(
            "exclude_seen", exclude_seen, body.exclude_seen, body.model_fields_set, True
        )
        diversity = _one_value("diversity", diversity, body.diversity, body.model_fields_set, None)
        served = holder.current.artifact
        result = served.recommend_cold(
            body.item_ids, body.attributes, k=k, exclude_seen=exclude_seen, diversity=diversity
        )
        return _json(
            {
                "user_id": None,
                "k": k,
                "path": result.path,
                "items": _items(result),
                "ignored_items": result.ignored_items,
                "diversity": _strength(served, diversity),
                "artifact_id": served.metadata.artifact_id,
            }
        )

    @app.get(
        "/v1/items/{item_id:path}/similar",
        response_model=SimilarItemsResponse,
        dependencies=protected,
        responses={
            404: {"model": ErrorResponse, "description": "Unknown item."},
            409: {
                "model": ErrorResponse,
                "description": "The model cannot compute similar items, or diversity > 0 and the artifact "
                "has no re-ranking setting.",
            },
        },
        tags=["recommendations"],
    )
    async def similar_items(item_id: ItemId, k: K = 10, diversity: Diversity = None) -> Response:
        """The K items most similar to an item (cosine over item vectors, or item-item rows)."""
        served = holder.current.artifact
        if not served.has_item(item_id):
            raise HTTPException(404, f"unknown item {item_id!r}: the model has no such item")
        result = served.similar_items(item_id, k=k, diversity=diversity)
        return _json(
            {
                "item_id": item_id,
                "k": k,
                "path": result.path,
                "items": _items(result),
                "diversity": _strength(served, diversity),
                "artifact_id": served.metadata.artifact_id,
            }
        )

    if settings.admin_keys:  # no admin key, no admin endpoint (SIGHUP still reloads)
        admin = [Depends(_key_checker(settings.admin_keys, _admin_key_header))]

        @app.post(
            "/v1/admin/reload",
            response_model=ReloadResponse,
            dependencies=admin,
            responses={
                409: {"model": ErrorResponse, "description": "The folder holds no valid artifact now."}
            },
            tags=["service"],
        )
        async def reload() -> Response:
            """Re-read the artifact folder and swap it in; requests in flight finish on the old model.
            A damaged or incompatible artifact is refused (409) and the old one keeps serving. Needs an
            admin key (read keys are not accepted)."""
            previous = holder.current.artifact.metadata.artifact_id
            try:
                loaded = await asyncio.to_thread(holder.reload)
            except ArtifactError as error:
                detail = redact_message(str(error), holder.path)
                raise HTTPException(
                    409, f"reload refused, still serving artifact {previous[:12]}: {detail}"
                ) from None
            return _json(
                {
                    "previous_artifact_id": previous,
                    "artifact_id": loaded.artifact.metadata.artifact_id,
                    "loaded_at": loaded.loaded_at,
                }
            )

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLogMiddleware, enabled=settings.access_log)
    return app
