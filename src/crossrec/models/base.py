"""The one interface every recommender implements, and the registry used to save and load them.

A recommender is fitted on a domain (``fit(train, valid)``; extra inputs such as transferred tables go
through the one hook ``fit_with(train, valid, FitInputs(...))``), scores batches of users
(``score(users)``), ranks them (``recommend(users, k, exclude)``, built on
:func:`crossrec.ranking.recommend` with the model's :meth:`~Recommender.scorer`), finds similar items
where it has item vectors or item-item rows (``similar_items(items, k)``) and saves itself
(``save(folder)`` / ``Recommender.load(folder)``). Third-party models can check themselves against
:class:`crossrec.testing.models.RecommenderConformance`.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel

from crossrec.models.inputs import FitInputs
from crossrec.ranking.recommend import recommend
from crossrec.ranking.topk import FactorScorer

__all__ = [
    "MODEL_REGISTRY",
    "CapabilityError",
    "NotFittedError",
    "Recommender",
    "get_model_class",
    "register_model",
]

#: Model name -> class, filled by :func:`register_model`.
MODEL_REGISTRY: dict[str, type[Recommender]] = {}


class NotFittedError(RuntimeError):
    """A model was asked to score before :meth:`Recommender.fit`."""


class CapabilityError(TypeError):
    """A model was asked for something it cannot do (e.g. similar items without item vectors)."""


def register_model(cls: type[Recommender]) -> type[Recommender]:
    """Class decorator: make a model loadable by its ``name``."""
    if cls.name in MODEL_REGISTRY and MODEL_REGISTRY[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} is registered twice")
    MODEL_REGISTRY[cls.name] = cls
    return cls


#: Modules of built-in models that ``crossrec.models`` does not import eagerly (heavier dependencies).
_LAZY_MODULES = ("two_tower", "sasrec", "gru4rec", "markov", "category")


def get_model_class(name: str) -> type[Recommender]:
    """The registered class called ``name`` (built-in models are imported on demand); the error lists
    the known names."""
    if name not in MODEL_REGISTRY:
        import importlib

        for module in _LAZY_MODULES:
            importlib.import_module(f"crossrec.models.{module}")
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
    :meth:`item_vectors`. A model that takes extra fit inputs lists them in :attr:`fit_inputs` and
    overrides :meth:`fit_with` (its :meth:`fit` is then ``fit_with(train, valid, FitInputs())``).
    """

    #: Registry name, e.g. ``"bpr_mf"``.
    name: ClassVar[str] = "base"
    #: The :class:`~crossrec.models.inputs.FitInputs` fields :meth:`fit_with` accepts (``label`` always).
    fit_inputs: ClassVar[frozenset[str]] = frozenset()

    n_users_: int
    n_items_: int

    # -- the interface -------------------------------------------------------------------------
    @abstractmethod
    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        """Learn from a binary user x item training matrix; ``valid`` drives early stopping."""

    def fit_with(self, train: Any, valid: Any, inputs: FitInputs) -> Self:
        """:meth:`fit` with extra inputs (the one hook of transfer strategies).

        Parameters
        ----------
        train, valid
            As in :meth:`fit`.
        inputs
            Only the fields in :attr:`fit_inputs` may be set; others are refused by name.
        """
        self.check_inputs(inputs)
        return self.fit(train, valid)

    def check_inputs(self, inputs: FitInputs) -> None:
        """Raise ``ValueError`` naming the inputs this model does not take."""
        refused = sorted(set(inputs.given()) - self.fit_inputs - {"label"})
        if refused:
            takes = sorted(self.fit_inputs) or ["none besides label"]
            raise ValueError(
                f"{type(self).__name__} does not take fit inputs {refused}; it takes: {', '.join(takes)}"
            )

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

    def recommend(
        self, users: np.ndarray | int, k: int = 10, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for a batch of users: ``(items, scores)``, each ``(len(users), k)``, best first.

        Parameters
        ----------
        users
            User indices (an integer gives 1-d arrays).
        k
            List length; lists are padded with item ``-1`` / score ``-inf`` when fewer items are
            admissible.
        exclude
            Items never to return, one sparse row per entry of ``users`` (e.g. ``train[users]`` for
            the items each user has seen).
        """
        self._check_fitted()
        single = np.ndim(users) == 0
        users = self._check_indices(np.atleast_1d(np.asarray(users, dtype=np.int64)), self.n_users_, "user")
        items, scores = recommend(self.scorer(), users, k, exclude, n_items=self.n_items_)
        return (items[0], scores[0]) if single else (items, scores)

    def similar_items(self, items: np.ndarray | int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each of ``items`` (the item itself excluded): ``(items, scores)``.

        Cosine similarity of :meth:`item_vectors` where the model has them; the model's item-item
        rows where it has ``item_similarities()`` (EASE, ItemKNN).

        Raises
        ------
        CapabilityError
            The model has neither item vectors nor item-item similarities (e.g. popularity).
        """
        self._check_fitted()
        single = np.ndim(items) == 0
        items = self._check_indices(np.atleast_1d(np.asarray(items, dtype=np.int64)), self.n_items_, "item")
        itself = sp.csr_matrix(
            (np.ones(len(items), np.float32), (np.arange(len(items)), items)),
            shape=(len(items), self.n_items_),
        )
        vectors = self.item_vectors()
        if vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            scorer: Any = FactorScorer(unit, unit)
        elif hasattr(self, "item_similarities"):
            rows = self.item_similarities()

            def scorer(batch: np.ndarray) -> np.ndarray:
                block = rows[batch]
                return np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float32)

        else:
            raise CapabilityError(
                f"{type(self).__name__} has no item vectors and no item-item similarities, so it cannot "
                "find similar items: use an embedding model (e.g. BPRMF) or an item-item model "
                "(EASE, ItemKNN)"
            )
        found, scores = recommend(scorer, items, k, itself, n_items=self.n_items_)
        return (found[0], scores[0]) if single else (found, scores)

    @staticmethod
    def _check_indices(indices: np.ndarray, size: int, what: str) -> np.ndarray:
        if indices.ndim != 1:
            raise ValueError(f"{what}s must be a 1-d array of indices, got shape {indices.shape}")
        if len(indices) and (indices.min() < 0 or indices.max() >= size):
            raise IndexError(
                f"{what} index outside [0, {size}): {indices[(indices < 0) | (indices >= size)][:5]}"
            )
        return indices

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
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, tuple):
            value = list(value)
        json.dumps(value)  # raises TypeError naming nothing useful: wrap it
        out[key] = value
    return out
