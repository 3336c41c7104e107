"""Request and response bodies of the HTTP API (they also make its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StringConstraints

__all__ = [
    "MAX_K",
    "MAX_REQUEST_ITEMS",
    "ColdStartRequest",
    "ErrorResponse",
    "HealthResponse",
    "ItemScore",
    "RecommendationResponse",
    "ReloadResponse",
    "SimilarItemsResponse",
]

#: Longest list a client may ask for, and most item ids in a cold-start body.
MAX_K = 1000
MAX_REQUEST_ITEMS = 1000

Id = Annotated[str, StringConstraints(min_length=1, max_length=512)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
AttributeValue = Annotated[str, StringConstraints(max_length=1024)] | int | float | bool | None
Path = Literal["model", "fold_in", "features", "item_item", "cosine", "popularity"]


class ItemScore(BaseModel):
    item_id: str
    score: float


class RecommendationResponse(BaseModel):
    """A ranked list for one user."""

    user_id: str | None = Field(description="The known user, or null for a cold-start request.")
    k: int
    path: Path = Field(description="How the list was produced (see POST /v1/recommendations).")
    items: list[ItemScore]
    ignored_items: list[str] = Field(description="Input item ids the model does not know (cold start).")
    diversity: float = Field(description="The re-ranking strength the list was made at (0: plain).")
    artifact_id: str


class SimilarItemsResponse(BaseModel):
    """The items most similar to one item."""

    item_id: str
    k: int
    path: Path
    items: list[ItemScore]
    diversity: float = Field(description="The re-ranking strength the list was made at (0: plain).")
    artifact_id: str


class ColdStartRequest(BaseModel):
    """A user the model was not trained on: the items they interacted with and/or attributes."""

    model_config = ConfigDict(extra="forbid")

    item_ids: list[Id] = Field(
        default_factory=list,
        max_length=MAX_REQUEST_ITEMS,
        description="Items the user interacted with (unknown ids ignored).",
    )
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, max_length=100, description="User attributes (models with a feature path)."
    )
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="List length (a JSON integer).")
    exclude_seen: StrictBool = Field(
        True, description="Leave the given items out of the list (a JSON true or false)."
    )
    diversity: StrictFloat | None = Field(
        None,
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Re-ranking strength in [0, 1] (or `diversity` in the query); default: the "
        "artifact's saved strength.",
    )


class HealthResponse(BaseModel):
    status: Literal["ok"]
    artifact_id: str


class ReloadResponse(BaseModel):
    previous_artifact_id: str
    artifact_id: str
    loaded_at: str


class ErrorResponse(BaseModel):
    detail: Any
