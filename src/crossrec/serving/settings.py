"""Settings of the recommendation service (validated once, when the service starts)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ADMIN_KEYS_ENV", "API_KEYS_ENV", "ServeSettings", "is_loopback", "load_api_keys"]

#: Environment variable with comma-separated read API keys.
API_KEYS_ENV = "CROSSREC_API_KEYS"
#: Environment variable with comma-separated admin API keys.
ADMIN_KEYS_ENV = "CROSSREC_ADMIN_KEYS"


class ServeSettings(BaseModel):
    """How the service runs.

    ``api_keys`` are the read keys (empty: reading needs no key, fine on 127.0.0.1); ``admin_keys``
    are separate keys for ``/v1/admin/*``, which exist only when an admin key is configured. A
    host that is not a loopback address needs read keys unless ``insecure`` is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact: Path = Field(description="Artifact folder; reloads re-read this folder.")
    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    api_keys: frozenset[str] = Field(
        frozenset(), description="Accepted X-API-Key values for reading; empty = no auth."
    )
    admin_keys: frozenset[str] = Field(
        frozenset(),
        description="X-API-Key values for /v1/admin/reload (never read keys); empty = no admin endpoints.",
    )
    insecure: bool = Field(False, description="Allow a non-loopback host without read keys.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Larger request bodies get 413.")
    request_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="A request's headers and body must arrive within this (else 408)."
    )
    keep_alive_s: float = Field(
        5.0, gt=0, le=3600, description="Idle keep-alive connections close after this."
    )
    max_connections: int = Field(
        2048, ge=1, le=1_000_000, description="Connections beyond this are answered 503 and closed."
    )
    docs: bool = Field(True, description="Serve Swagger UI at /docs from the package's own assets.")
    access_log: bool = Field(True, description="Write one JSON line per request (logger crossrec.access).")
    reload_on_sighup: bool = Field(True, description="Reload the artifact on SIGHUP (main thread only).")

    @model_validator(mode="after")
    def _keys_apart_and_exposed_hosts_keyed(self) -> ServeSettings:
        shared = self.api_keys & self.admin_keys
        if shared:
            raise ValueError("an admin key is also a read key: give /v1/admin its own keys")
        if not self.api_keys and not self.insecure and not is_loopback(self.host):
            raise ValueError(
                f"refusing to serve on {self.host} without API keys: anyone who can reach it could query "
                "it; pass --api-keys-file (or set CROSSREC_API_KEYS), bind 127.0.0.1, or pass --insecure"
            )
        return self


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
