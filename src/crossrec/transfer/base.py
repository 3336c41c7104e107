"""The transfer-strategy interface: source domain(s) + links + a target split in, a fitted target
:class:`~crossrec.models.Recommender` out; plus the data object every strategy reads and the
registry that makes strategies selectable by name."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.models.base import Recommender
from crossrec.selection.validation import Holdout
from crossrec.splitting.splits import Split, random_split
from crossrec.transfer.links import Links

__all__ = [
    "STRATEGY_REGISTRY",
    "SourceData",
    "TransferData",
    "TransferNotPossibleError",
    "TransferStrategy",
    "get_strategy_class",
    "make_strategy",
    "no_overlap_reason",
    "possible_strategies",
    "register_strategy",
    "shared_schema",
]

#: Strategy name -> class, filled by :func:`register_strategy`.
STRATEGY_REGISTRY: dict[str, type[TransferStrategy]] = {}


class TransferNotPossibleError(ValueError):
    """The data cannot support the chosen strategy (raised before any training)."""


def shared_schema(
    source: Domain | None, target: Domain | None, side: Literal["item", "user"]
) -> dict[str, str]:
    """Attribute columns that both domains declare with the same kind (source order)."""
    if source is None or target is None:
        return {}
    kinds_s = source.item_feature_kinds if side == "item" else source.user_feature_kinds
    kinds_t = target.item_feature_kinds if side == "item" else target.user_feature_kinds
    table_s = source.item_features if side == "item" else source.user_features
    table_t = target.item_features if side == "item" else target.user_features
    if table_s is None or table_t is None:
        return {}
    return {column: kind for column, kind in kinds_s.items() if kinds_t.get(column) == kind}


@dataclass(frozen=True)
class SourceData:
    """One source domain as a strategy sees it.

    Attributes
    ----------
    name
        Domain name (for reports).
    interactions
        ``(n_source_users, n_source_items)`` binary matrix of all source interactions.
    item_links, user_links
        Source -> target links (``None`` or empty: none).
    weight
        Relative weight of this source among several (multi-source transfer).
    domain
        The full :class:`~crossrec.data.Domain` when available (features, vocabularies).
    model
        A model already trained on this source (e.g. from a source artifact, ``crossrec pretrain``):
        strategies that start from a source model use it instead of pretraining one, after checking
        that it fits (family, dimension, feature schema).
    pretrained
        Cache of the models pretrained on this source in this process, by configuration (``None``:
        no cache). A deployment refit reuses them: the source does not depend on the target split.
    """

    name: str
    interactions: sp.csr_matrix
    item_links: Links | None = None
    user_links: Links | None = None
    weight: float = 1.0
    domain: Domain | None = field(default=None, repr=False)
    model: Recommender | None = field(default=None, repr=False, compare=False)
    pretrained: dict[str, Recommender] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interactions", sp.csr_matrix(self.interactions, dtype=np.float32))
        if self.weight < 0:
            raise ValueError(f"source {self.name!r}: weight must be >= 0, got {self.weight}")
        n_users, n_items = self.interactions.shape
        for label, links, n_source in (
            ("item", self.item_links, n_items),
            ("user", self.user_links, n_users),
        ):
            if links is not None and len(links) and links.source.max() >= n_source:
                raise ValueError(f"source {self.name!r}: {label} link index beyond its {n_source} {label}s")

    @property
    def n_item_links(self) -> int:
        return 0 if self.item_links is None else len(self.item_links)

    @property
    def n_user_links(self) -> int:
        return 0 if self.user_links is None else len(self.user_links)

    def holdout(self, fraction: float = 0.1, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Per-user random ``(train, valid)`` of the source interactions (pretraining, early stopping)."""
        coo = self.interactions.tocoo()
        interactions = Interactions(coo.row, coo.col, np.ones(coo.nnz, np.float32))
        split = random_split(
            interactions, *self.interactions.shape, ratios=(1 - fraction, fraction, 0.0), seed=seed
        )
        return split.matrix("train"), split.matrix("valid")


@dataclass(frozen=True)
class TransferData:
    """Everything a strategy may use: the target split, the target domain and the sources.

    Attributes
    ----------
    split
        Train/valid/test of the target domain; strategies fit on ``train`` and select on ``valid``
        only (``test`` is never read here).
    sources
        One or more :class:`SourceData`.
    target
        The target :class:`~crossrec.data.Domain` when available (features, vocabularies).
    seed
        Seed for everything a strategy draws at random.
    """

    split: Split
    sources: tuple[SourceData, ...]
    target: Domain | None = field(default=None, repr=False)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        for source in self.sources:
            for label, links, n_target in (
                ("item", source.item_links, self.split.n_items),
                ("user", source.user_links, self.split.n_users),
            ):
                if links is not None and len(links) and links.target.max() >= n_target:
                    raise ValueError(
                        f"source {source.name!r}: {label} links point beyond the target's {n_target} {label}s"
                    )

    @cached_property
    def train(self) -> sp.csr_matrix:
        return self.split.matrix("train")

    @cached_property
    def valid(self) -> sp.csr_matrix:
        return self.split.matrix("valid")

    # -- the crossrec.selection.Validation protocol: strategies are selected on validation only -----
    @cached_property
    def holdout(self) -> Holdout:
        """The target's training and validation matrices (validation ties broken with :attr:`seed`)."""
        return Holdout(self.train, self.valid, seed=self.seed)

    def fit_candidate(self, candidate: TransferStrategy) -> Recommender:
        """Fit a transfer strategy on this data (lets :func:`crossrec.selection.select` choose among
        strategies)."""
        return candidate.fit(self)

    def validation_users(self) -> np.ndarray:
        """Target users with validation items."""
        return self.holdout.validation_users()

    def per_user(
        self, model: Recommender, metric: str = "ndcg@10", users: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(users, values)`` of ``metric`` on the target's validation part, training items excluded."""
        return self.holdout.per_user(model, metric, users)

    def with_pretraining_cache(self) -> TransferData:
        """The same data with a cache of source pretraining on every source (see
        :attr:`SourceData.pretrained`): strategies fitted on it, and on copies with another split,
        pretrain each source configuration once."""
        sources = tuple(
            s if s.pretrained is not None else dataclasses.replace(s, pretrained={}) for s in self.sources
        )
        return dataclasses.replace(self, sources=sources)

    @property
    def n_users(self) -> int:
        return self.split.n_users

    @property
    def n_items(self) -> int:
        return self.split.n_items

    @property
    def has_item_links(self) -> bool:
        return any(s.n_item_links for s in self.sources)

    @property
    def has_user_links(self) -> bool:
        return any(s.n_user_links for s in self.sources)

    @property
    def has_features(self) -> bool:
        """Target and every source domain carry item or user features."""
        domains = [self.target, *(s.domain for s in self.sources)]
        return bool(self.sources) and all(
            d is not None and (d.item_features is not None or d.user_features is not None) for d in domains
        )

    def overlap(self, source: SourceData) -> dict[str, int]:
        """What ``source`` shares with the target: linked users, linked (shared) items and the item
        and user attribute columns both declare with the same kind."""
        return {
            "linked_users": source.n_user_links,
            "shared_items": source.n_item_links,
            "shared_item_attributes": len(self._shared_attributes(source, "item")),
            "shared_user_attributes": len(self._shared_attributes(source, "user")),
        }

    def _shared_attributes(self, source: SourceData, side: Literal["item", "user"]) -> dict[str, str]:
        """Attribute columns the source and the target share; for a source given as a saved model
        (a source artifact, no domain), the columns its encoders read that the target has."""
        if source.domain is not None or source.model is None or self.target is None:
            return shared_schema(source.domain, self.target, side)
        encoders = (getattr(source.model, "encoders_", None) or {}).get(side)
        kinds_s: dict[str, str] = dict(getattr(encoders, "kinds", {}) or {})
        kinds_t = self.target.item_feature_kinds if side == "item" else self.target.user_feature_kinds
        return {column: kind for column, kind in kinds_s.items() if kinds_t.get(column) == kind}

    def sources_without_overlap(self) -> list[str]:
        """Names of the sources that share nothing of any kind with the target (no linked users, no
        shared items, no shared attributes): no strategy can move anything from them."""
        return [s.name for s in self.sources if not any(self.overlap(s).values())]

    def describe(self) -> str:
        """One line per source: its size, links and weight."""
        lines = [
            f"target: {self.n_users} users x {self.n_items} items, {self.train.nnz} training interactions"
        ]
        for s in self.sources:
            lines.append(
                f"source {s.name!r}: {s.interactions.shape[0]} users x {s.interactions.shape[1]} items, "
                f"{s.n_item_links} linked items, {s.n_user_links} linked users, weight {s.weight:g}"
            )
        return "\n".join(lines)

    @classmethod
    def from_domains(
        cls,
        target: Domain,
        split: Split,
        sources: Sequence[Domain],
        *,
        link_items: Literal["ids"] | Sequence[Links | None] | None,
        link_users: Literal["ids"] | Sequence[Links | None] | None,
        weights: Sequence[float] | None = None,
        seed: int = 0,
    ) -> TransferData:
        """Build from domains, saying explicitly how each source is linked to the target.

        Parameters
        ----------
        target, split, sources
            The target domain, its split and the source domains.
        link_items, link_users
            Required (there is no default, so nothing is linked by accident):

            * ``"ids"`` links entities whose raw ids are equal in both domains. Use it only when the
              ids name the same thing on both sides: movies keyed by title in movielens-cdr, SKUs
              of one catalogue, or users keyed by one account id across platforms. Numeric ids of
              two platforms usually name different people and products (on Amazon, linking items
              by id links thousands of unrelated products).
            * one :class:`~crossrec.transfer.Links` (or ``None``) per source: links made by
              ingestion (``bundle.item_links`` / ``bundle.user_links``, from keyed pseudonyms or
              title matching) or by your own table.
            * ``None``: no links (e.g. ``content`` transfer, which needs only shared attributes).
        weights
            Per-source weight (default 1 each).
        seed
            Seed of everything a strategy draws at random.
        """
        weights = list(weights) if weights is not None else [1.0] * len(sources)
        if len(weights) != len(sources):
            raise ValueError(f"{len(weights)} weights for {len(sources)} source domains")

        for label, spec in (("link_items", link_items), ("link_users", link_users)):
            if isinstance(spec, str) and spec != "ids":
                raise ValueError(
                    f"{label} must be 'ids', None or one Links (or None) per source, got {spec!r}"
                )
            if spec is not None and not isinstance(spec, str) and len(spec) != len(sources):
                raise ValueError(f"{label} gives {len(spec)} link tables for {len(sources)} source domains")

        def links_for(spec: Any, k: int, entity: str, domain: Domain) -> Links | None:
            if spec is None:
                return None
            if spec == "ids":
                vocab_s, vocab_t = (
                    (domain.items, target.items) if entity == "item" else (domain.users, target.users)
                )
                return Links.by_shared_ids(vocab_s, vocab_t)
            return spec[k]

        built = []
        for k, domain in enumerate(sources):
            built.append(
                SourceData(
                    name=domain.name,
                    interactions=domain.interactions.to_csr(domain.n_users, domain.n_items),
                    item_links=links_for(link_items, k, "item", domain),
                    user_links=links_for(link_users, k, "user", domain),
                    weight=float(weights[k]),
                    domain=domain,
                )
            )
        return cls(split=split, sources=tuple(built), target=target, seed=seed)


def no_overlap_reason(names: Sequence[str]) -> str:
    """The message for sources that share nothing with the target (names them, says what to do)."""
    listed = ", ".join(repr(n) for n in names)
    several = len(names) > 1
    return (
        f"source{'s' if several else ''} {listed} share{'' if several else 's'} nothing with the target"
        ": no linked users, no shared items, no shared item or user attributes. Link them "
        "(data.link_users / data.link_items, or Links tables), give both sides a common attribute, "
        "or leave them out of the sources"
    )


class TransferStrategy(ABC):
    """A way to transfer: configured in the constructor (scikit-learn style), then
    :meth:`fit` on :class:`TransferData` returns a fitted target recommender.

    Subclasses set ``name``, implement :meth:`_fit`, and extend :meth:`check` with what they need
    from the data. :meth:`fit` calls :meth:`check` first, so a strategy the data cannot support
    fails before any training with a message that names the strategies that can run.
    """

    name: ClassVar[str] = "base"
    #: Whether the strategy starts from a model trained on each source (or, for ``joint``, reads
    #: only the source's interactions), so that a saved source artifact can stand in for the source
    #: (``crossrec transfer --from``).
    transfers_from_artifact: ClassVar[bool] = False
    #: The model this strategy trains (an unfitted template, cloned before use).
    model: Recommender

    def check(self, data: TransferData) -> str | None:
        """Why this strategy cannot run on ``data``, or ``None`` when it can."""
        if self.name != "none" and not data.sources:
            return "it needs at least one source domain"
        disjoint = data.sources_without_overlap() if self.name != "none" else []
        if disjoint:
            return no_overlap_reason(disjoint)
        return None

    def fit(self, data: TransferData) -> Recommender:
        """Check the data, then fit and return the target model."""
        reason = self.check(data)
        if reason is not None:
            possible = possible_strategies(data, model=getattr(self, "model", None))
            raise TransferNotPossibleError(
                f"strategy {self.name!r} cannot run on this data: {reason}. "
                f"Strategies possible here: {', '.join(possible) or 'none'}.\n{data.describe()}"
            )
        return self._fit(data)

    @abstractmethod
    def _fit(self, data: TransferData) -> Recommender:
        """Fit on checked data."""

    def pretrain_source(self, source: SourceData, seed: int) -> Recommender:
        """The model this strategy trains on ``source`` before moving to the target (what
        ``crossrec pretrain`` saves as a source artifact); ``source.model`` when one is given."""
        raise TransferNotPossibleError(
            f"strategy {self.name!r} does not start from a model trained on the source; strategies that "
            "do: warm_start, finetune, mapping, content (joint reads the source's interactions)"
        )

    def baseline(self) -> TransferStrategy:
        """The target-only strategy this one is compared against (same model, no source)."""
        return STRATEGY_REGISTRY["none"](model=self.model.clone())

    def get_params(self) -> dict[str, Any]:
        signature = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in signature.parameters if name != "self"}

    def clone(self) -> Self:
        params = self.get_params()
        if isinstance(params.get("model"), Recommender):
            params["model"] = params["model"].clone()
        return type(self)(**params)

    @property
    def label(self) -> str:
        """``strategy:model`` for tables."""
        model = getattr(self, "model", None)
        return f"{self.name}:{model.name}" if model is not None else self.name

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({params})"


def register_strategy(cls: type[TransferStrategy]) -> type[TransferStrategy]:
    """Class decorator: make a strategy selectable by its ``name``."""
    if cls.name in STRATEGY_REGISTRY and STRATEGY_REGISTRY[cls.name] is not cls:
        raise ValueError(f"strategy name {cls.name!r} is registered twice")
    STRATEGY_REGISTRY[cls.name] = cls
    return cls


def _load_optional_strategies() -> None:
    """Import strategy modules that other packages may or may not provide (content transfer)."""
    import importlib

    for module in ("crossrec.transfer.content",):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def get_strategy_class(name: str) -> type[TransferStrategy]:
    """The registered strategy class called ``name``; the error lists the known names."""
    _load_optional_strategies()
    try:
        return STRATEGY_REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown transfer strategy {name!r}; known: {sorted(STRATEGY_REGISTRY)}") from None


def make_strategy(name: str, model: Recommender | None = None, **params: Any) -> TransferStrategy:
    """Build a strategy by name; ``model`` replaces its default model."""
    cls = get_strategy_class(name)
    if model is not None:
        params["model"] = model
    return cls(**params)


def possible_strategies(data: TransferData, model: Recommender | None = None) -> list[str]:
    """Names of registered strategies whose :meth:`~TransferStrategy.check` passes on ``data``
    (with ``model`` when given and accepted, else with each strategy's default model)."""
    _load_optional_strategies()
    names = []
    for name, cls in sorted(STRATEGY_REGISTRY.items()):
        candidates = []
        if model is not None:
            with contextlib.suppress(TypeError):
                candidates.append(cls(model=model.clone()))
        with contextlib.suppress(TypeError):
            candidates.append(cls())
        if any(c.check(data) is None for c in candidates):
            names.append(name)
    return names
