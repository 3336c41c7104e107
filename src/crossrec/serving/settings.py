"""Settings of the recommendation service (validated once, when the service starts)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["API_KEYS_ENV", "ServeSettings", "load_api_keys"]

#: Environment variable with comma-separated API keys.
API_KEYS_ENV = "CROSSREC_API_KEYS"


class ServeSettings(BaseModel):
    """How the service runs.

    ``api_keys`` empty means no authentication (fine on 127.0.0.1; set keys before exposing the
    service on a network).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact: Path = Field(description="Artifact folder; reloads re-read this folder.")
    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    api_keys: frozenset[str] = Field(frozenset(), description="Accepted X-API-Key values; empty = no auth.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Larger request bodies get 413.")
    access_log: bool = Field(True, description="Write one JSON line per request (logger crossrec.access).")
    reload_on_sighup: bool = Field(True, description="Reload the artifact on SIGHUP (main thread only).")


def load_api_keys(file: Path | None = None, *, env_var: str = API_KEYS_ENV) -> frozenset[str]:
    """API keys from a file (one per line; blank lines and ``#`` comments ignored) and/or
    the comma-separated environment variable ``env_var``.

    Raises
    ------
    ValueError
        The file exists but holds no key, or a key contains whitespace.
    """
    keys: set[str] = set()
    if file is not None:
        try:
            lines = Path(file).read_text().splitlines()
        except OSError as error:
            raise ValueError(f"cannot read the API key file {file}: {error.strerror}") from None
        from_file = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
        if not from_file:
            raise ValueError(f"the API key file {file} holds no key: write one key per line")
        keys |= from_file
    keys |= {key.strip() for key in os.environ.get(env_var, "").split(",") if key.strip()}
    bad = [key for key in keys if any(character.isspace() for character in key)]
    if bad:
        raise ValueError("API keys cannot contain whitespace; check the key file / " + env_var)
    return frozenset(keys)
