"""Strict-JSON helpers: the service never emits NaN or Infinity (they are not JSON)."""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Response


def finite(value: Any) -> Any:
    """Copy of ``value`` with NaN and infinities replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_response(payload: Any, status_code: int = 200) -> Response:
    """Serialise once with the standard library (response models document the shape only)."""
    return Response(
        json.dumps(payload, allow_nan=False).encode(), status_code=status_code, media_type="application/json"
    )
