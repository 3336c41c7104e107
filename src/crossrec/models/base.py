"""The one interface every recommender implements, and the registry used to save and load them."""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

__all__ = ["MODEL_REGISTRY", "NotFittedError", "Recommender", "get_model_class", "register_model"]

#: Model name -> class, filled by :func:`register_model`.
MODEL_REGISTRY: dict[str, type[Recommender]] = {}


class NotFittedError(RuntimeError):
    """A model was asked to score before :meth:`Recommender.fit`."""


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model loadable by its ``name``."""
    if cls.name in MODEL_REGISTRY and MODEL_REGISTRY[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is registered twice")
    MODEL_REGISTRY[cls.name] = cls
    return cls


def get_model_class(name: str) -> type[Recommender]:
    """The registered class called ``name``; the error lists the known names."""
    try:
        return MODEL_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODEL_REGISTRY)}") from None


class Recommender(ABC):
    """Base class of all crossrec models, in the scikit-learn estimator style.

    Constructor arguments are the configuration and are stored unchanged as attributes;
    learned state ends in ``_``. ``fit`` returns ``self``. ``score`` takes a batch of user
    indices and returns dense scores over every item, so evaluation and serving can batch.
    A fitted model carries everything it needs to score (no training data after ``load``).

    Subclasses implement :meth:`fit`, :meth:`score`, :meth:`state_arrays` and
    :meth:`_set_state`; embedding models also override :meth:`user_vectors` and
    :meth:`item_vectors`.
    """

    #: Registry name, e.g. ``"bpr_mf"``.
    name: ClassVar[str] = "base"

    n_users_: int
    n_items_: int

    # -- the interface -------------------------------------------------------------------------
    @abstractmethod
    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        """Learn from a binary user x item training matrix; ``valid`` drives early stopping."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_items)`` float32 scores; higher is better."""

    def scorer(self) -> Callable[[np.ndarray], np.ndarray]:
        """What evaluation should rank with: :meth:`score` here; dot-product models return a
        :class:`~crossrec.ranking.topk.FactorScorer`, which has an exact faster top-k."""
        return self.score

    def user_vectors(self) -> np.ndarray | None:
        """``(n_users, dim)`` user representations, when the model has them."""
        return None

    def item_vectors(self) -> np.ndarray | None:
        """``(n_items, dim)`` item representations, when the model has them."""
        return None

    @abstractmethod
    def state_arrays(self) -> dict[str, np.ndarray]:
        """All learned state as named numpy arrays (what :meth:`save` writes)."""

    @abstractmethod
    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore learned state written by :meth:`state_arrays`."""

    # -- configuration -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, read back from the attributes of the same name."""
        signature = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind is not parameter.VAR_KEYWORD
        }

    def clone(self) -> Self:
        """An unfitted copy with the same configuration."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")

    # -- persistence ---------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``model.json`` (name, params, sizes) and ``weights.safetensors`` into ``folder``."""
        from safetensors.numpy import save_file

        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {key: np.ascontiguousarray(value) for key, value in self.state_arrays().items()}
        save_file(arrays, str(folder / "weights.safetensors"))
        meta = {
            "model": self.name,
            "params": _jsonable(self.get_params()),
            "n_users": int(self.n_users_),
            "n_items": int(self.n_items_),
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Recommender:
        """Load any registered model saved with :meth:`save`."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text())
        model_class = get_model_class(meta["model"])
        if cls is not Recommender and not issubclass(model_class, cls):
            raise TypeError(f"{folder} holds a {model_class.__name__}, not a {cls.__name__}")
        model = model_class(**meta["params"])
        model.n_users_ = int(meta["n_users"])
        model.n_items_ = int(meta["n_items"])
        model._set_state(load_file(str(folder / "weights.safetensors")))
        return model


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, tuple):
            value = list(value)
        json.dumps(value)  # raises TypeError naming nothing useful: wrap it
        out[key] = value
    return out
