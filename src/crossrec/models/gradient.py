"""Models trained by gradient steps: they take their optimiser settings as one ``optim=`` argument.

``optim`` is an :class:`~crossrec.training.optim.OptimConfig` or a mapping of its fields (what an
experiment file gives). The fields given override the model's :attr:`~GradientRecommender.default_optim`
(e.g. the two-tower's sampled softmax with 16 negatives); the model stores the resolved, complete
configuration as ``self.optim``. A field the model's trainer does not read must stay at its
default, so that nothing configured is silently ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import ValidationError

from crossrec.models.base import Recommender
from crossrec.training.optim import OptimConfig, merge_optim

__all__ = ["GradientRecommender", "OptimSpec"]

#: What ``optim=`` accepts.
OptimSpec = OptimConfig | Mapping[str, Any] | None

#: Earlier constructor keywords and the optim field each became.
_RENAMED = {"num_threads": "threads", "n_negatives": "negatives", "verbose": "progress"}


class GradientRecommender(Recommender):
    """Base of models with an ``optim`` (embedding models, sequence models)."""

    #: The model's own optimiser defaults (fields of :class:`OptimConfig`).
    default_optim: ClassVar[dict[str, Any]] = {}
    #: Fields of :class:`OptimConfig` this model's trainer does not read (they must stay at default).
    unused_optim: ClassVar[frozenset[str]] = frozenset()

    optim: OptimConfig

    def _init_optim(self, optim: OptimSpec, flat: dict[str, Any]) -> None:
        """Resolve and check ``optim``; ``flat`` holds deprecated optimiser keywords (``epochs=``...)."""
        cls = type(self).__name__
        overrides: dict[str, Any] = {}
        if flat:
            unknown = sorted(k for k in flat if _RENAMED.get(k, k) not in OptimConfig.model_fields)
            if unknown:
                raise TypeError(f"{cls}() got unexpected keyword arguments {unknown}")
            overrides = {_RENAMED.get(k, k): v for k, v in flat.items()}
            warnings.warn(
                f"{cls}({', '.join(f'{k}=...' for k in flat)}) is deprecated: optimiser settings go in "
                f"optim=, e.g. {cls}(optim={overrides!r})",
                DeprecationWarning,
                stacklevel=3,
            )
        try:
            self.optim = merge_optim(self.default_optim, optim, overrides)
        except ValidationError as error:
            problems = "; ".join(f"optim.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
            raise ValueError(f"{cls}: {problems}") from None
        defaults = OptimConfig()
        ignored = sorted(
            name for name in self.unused_optim if getattr(self.optim, name) != getattr(defaults, name)
        )
        if ignored:
            raise ValueError(
                f"{cls} does not use optim fields {ignored} ({self._unused_reason()}); leave them out"
            )
        self._check_optim(self.optim)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments; ``optim`` as the plain dict of every field (its JSON form, which
        rebuilds the same :class:`OptimConfig`)."""
        params = super().get_params()
        params["optim"] = self.optim.model_dump(mode="json")
        return params

    def _unused_reason(self) -> str:
        return "its trainer does not read them"

    def _check_optim(self, optim: OptimConfig) -> None:
        """Model-specific constraints (e.g. which optimizers or losses it can train with)."""
        if optim.optimizer == "rowwise_adagrad":
            raise ValueError(
                f"{type(self).__name__}: optim.optimizer='rowwise_adagrad' is the lean BPR-MF step "
                "(BPRMF only); use 'adam' or 'sgd'"
            )
