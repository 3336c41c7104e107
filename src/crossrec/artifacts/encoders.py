"""The optional slot for fitted feature encoders.

Any object with ``state_arrays() -> dict[str, ndarray]`` and a configuration (``get_config()``
returning a JSON-able dict, or a ``config`` attribute that is a dict, dataclass or pydantic
model) can be stored in an artifact. On load, an encoder whose class lives in ``crossrec`` and
has a ``from_state(config, arrays)`` class method is rebuilt; any other comes back as an
:class:`EncoderState` holding its configuration and arrays.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from crossrec.artifacts.errors import ArtifactError, ArtifactIntegrityError

__all__ = ["EncoderState", "StatefulEncoder"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@runtime_checkable
class StatefulEncoder(Protocol):
    """What an artifact needs from a fitted feature encoder."""

    def state_arrays(self) -> dict[str, np.ndarray]:
        """All fitted state as named numpy arrays."""


@dataclass(frozen=True)
class EncoderState:
    """A saved encoder that was not rebuilt: its class path, configuration and arrays."""

    name: str
    class_path: str
    config: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return self.arrays

    def get_config(self) -> dict[str, Any]:
        return self.config


def _config_of(encoder: object) -> dict[str, Any]:
    if isinstance(encoder, EncoderState):
        return encoder.config
    if callable(getattr(encoder, "get_config", None)):
        config = encoder.get_config()
    else:
        config = getattr(encoder, "config", {})
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict):
        raise ArtifactError(
            f"encoder config must be a dict, dataclass or pydantic model, got {type(config).__name__}"
        )
    return json.loads(json.dumps(config, default=str))


def save_encoders(folder: Path, encoders: dict[str, object]) -> list[str]:
    """Write ``<name>.json`` and ``<name>.safetensors`` per encoder; returns the names."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for name, encoder in encoders.items():
        if not _NAME.match(name):
            raise ArtifactError(f"encoder name {name!r} must be letters, digits, '_', '.' or '-' (max 128)")
        if not isinstance(encoder, StatefulEncoder):
            raise ArtifactError(
                f"encoder {name!r} ({type(encoder).__name__}) has no state_arrays(): "
                "give encoders state_arrays() and get_config() to store them in an artifact"
            )
        class_path = (
            encoder.class_path
            if isinstance(encoder, EncoderState)
            else f"{type(encoder).__module__}:{type(encoder).__qualname__}"
        )
        arrays = {key: np.ascontiguousarray(value) for key, value in encoder.state_arrays().items()}
        save_file(arrays, str(folder / f"{name}.safetensors"))
        meta = {"name": name, "class": class_path, "config": _config_of(encoder)}
        (folder / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return list(encoders)


def load_encoders(
    folder: Path, names: list[str], read: Callable[[str], bytearray] | None = None
) -> dict[str, object]:
    """Read the encoders written by :func:`save_encoders`, rebuilding crossrec classes.

    ``read(file_name)`` returns a file's (already verified) bytes; by default the files in ``folder``
    are read. Floating arrays must be finite.
    """
    from crossrec.artifacts._snapshot import parse_safetensors

    def from_disk(file_name: str) -> bytearray:
        return bytearray((folder / file_name).read_bytes())

    read = read or from_disk
    out: dict[str, object] = {}
    for name in names:
        if not _NAME.match(name):
            raise ArtifactIntegrityError(f"encoder name {name!r} in {folder} is not a plain name")
        try:
            meta = json.loads(bytes(read(f"{name}.json")).decode("utf-8"))
            arrays = parse_safetensors(read(f"{name}.safetensors"), str(folder / f"{name}.safetensors"))
        except (OSError, ValueError) as error:
            raise ArtifactIntegrityError(f"encoder {name!r} in {folder} cannot be read: {error}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
            raise ArtifactIntegrityError(f"encoder {name!r} in {folder}: its JSON must be an object")
        for key, array in arrays.items():
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise ArtifactIntegrityError(
                    f"encoder {name!r} in {folder}: array {key!r} holds NaN or infinite values; re-save it"
                )
        state = EncoderState(name, str(meta.get("class", "")), dict(meta.get("config", {})), arrays)
        try:
            out[name] = _rebuild(state)
        except Exception as error:  # an encoder class refusing state that is not its own
            raise ArtifactIntegrityError(
                f"encoder {name!r} in {folder} cannot be rebuilt ({type(error).__name__}: {error})"
            ) from None
    return out


def _rebuild(state: EncoderState) -> object:
    module_name, _, qualname = state.class_path.partition(":")
    if not module_name.startswith("crossrec.") or not qualname or "." in qualname:
        return state
    try:
        cls = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError):
        return state
    from_state = getattr(cls, "from_state", None)
    if not callable(from_state):
        return state
    return from_state(state.config, state.arrays)
