"""The sources file: a validated TOML description of every platform's data and how to unify it.

A sources file has three parts::

    [link]                       # identity and item linking (optional)
    key_env = "CROSSREC_LINK_KEY"

    [sources.shop.interactions]  # where one platform's tables are and how their columns map
    path = "shop/orders.csv"
    user = "customer_id"
    item = "sku"

    [domains.shop]               # how a domain is cleaned (optional)
    k_core = 5

Everything is validated once here (unknown keys are errors); the rest of :mod:`crossrec.data`
receives typed values only.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crossrec.data.errors import SourcesError

__all__ = [
    "AttributeSpec",
    "DomainConfig",
    "FileFormat",
    "InteractionTable",
    "ItemTable",
    "LinkConfig",
    "RejectLimits",
    "SourceConfig",
    "SourcesFile",
    "UserTable",
    "load_sources",
]

FileFormat = Literal["csv", "tsv", "parquet", "jsonl", "atomic"]
Kind = Literal["category", "tags", "number", "text", "vector"]

_EXTENSION_FORMATS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".inter": "atomic",
    ".user": "atomic",
    ".item": "atomic",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SQL_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Model):
    """Where a table is: files (``path``, a glob is allowed) or a database (``url`` + ``table``/``query``)."""

    path: str | None = None
    """File path or glob, relative to ``--data-dir`` (default: the sources file's folder)."""
    url: str | None = None
    """Database URL: ``sqlite:///file.db`` (relative to the data folder), ``sqlite:////abs/file.db``
    (absolute), ``postgresql://user@host:5432/db`` or any SQLAlchemy URL."""
    url_env: str | None = None
    """Name of an environment variable holding the database URL (keeps passwords out of the sources file)."""
    table: str | None = None
    """Table to read (``schema.table`` allowed)."""
    query: str | None = None
    """SQL query to read instead of a whole table."""
    format: FileFormat | None = None
    """File format; inferred from the extension when omitted."""
    delimiter: str | None = None
    """Field delimiter for CSV/TSV (default ``,`` for CSV, tab for TSV and atomic files)."""
    encoding: str = "utf-8"
    """Text encoding of CSV/TSV/atomic files, e.g. ``utf-8``, ``latin-1``, ``cp1252``, ``utf-16``."""

    @model_validator(mode="after")
    def _one_location(self) -> Location:
        given = [name for name in ("path", "url", "url_env") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'path' (files), 'url' or 'url_env' (a database); found "
                + (", ".join(given) if given else "none")
            )
        if self.path is None:
            if (self.table is None) == (self.query is None):
                raise ValueError("a database source needs exactly one of 'table' or 'query'")
            if self.table is not None and not _SQL_TABLE.match(self.table):
                raise ValueError(f"'table' must be a plain [schema.]name, got {self.table!r}; use 'query'")
        else:
            if self.table is not None or self.query is not None:
                raise ValueError("'table'/'query' only apply to database sources ('url' or 'url_env')")
            if self.format is None and Path(self.path).suffix.lower() not in _EXTENSION_FORMATS:
                raise ValueError(
                    f"cannot infer the format of {self.path!r} from its extension; "
                    "set format = 'csv' | 'tsv' | 'parquet' | 'jsonl' | 'atomic'"
                )
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"'delimiter' must be one character, got {self.delimiter!r}")
        return self

    @property
    def is_sql(self) -> bool:
        return self.path is None

    @property
    def file_format(self) -> FileFormat:
        assert self.path is not None
        return self.format or _EXTENSION_FORMATS[Path(self.path).suffix.lower()]

    def describe(self) -> str:
        """A printable description with no password in it."""
        if self.path is not None:
            return self.path
        where = (
            f"${self.url_env}"
            if self.url_env
            else re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", self.url or "")
        )
        return f"{where} ({'table ' + self.table if self.table else 'query'})"


class AttributeSpec(_Model):
    """One side-information column of a user or item table."""

    kind: Kind
    """``category`` (one label), ``tags`` (several labels), ``number``, ``text`` or ``vector``."""
    column: str | None = None
    """Column in the table; defaults to the attribute's name."""
    separator: str | None = None
    """Separator of ``tags`` and ``vector`` values stored as text (default: whitespace)."""


AttributeValue = Kind | AttributeSpec
LinkKeys = dict[str, str]


class _Table(Location):
    ignore_columns: list[str] = Field(default_factory=list)
    """Columns of the table never to read (e.g. a ``password`` column in an export): a column whose name
    looks like a credential stops the ingest unless it is listed here; the bundle report lists them."""
    link_keys: LinkKeys = Field(default_factory=dict)
    """Identity link keys: ``{kind = column}``. Kinds ``email``, ``phone`` and ``username`` get their own
    normalisation; any other kind (e.g. ``account``) is trimmed and case-folded."""

    @field_validator("link_keys")
    @classmethod
    def _link_kinds(cls, value: LinkKeys) -> LinkKeys:
        for kind in value:
            if not _NAME.match(kind):
                raise ValueError(f"link key kind {kind!r} must be a plain name like 'email'")
        return value


class InteractionTable(_Table):
    """User-item events of one source."""

    user: str
    """Column holding the user id."""
    item: str
    """Column holding the item id."""
    value: str | None = None
    """Column holding the rating or strength (default: every event counts 1)."""
    timestamp: str | None = None
    """Column holding the event time."""
    timestamp_format: str = "auto"
    """``auto``, ``epoch_s``, ``epoch_ms`` or a strptime format such as ``%Y-%m-%d %H:%M:%S``."""
    event: str | None = None
    """Column holding the event type; requires ``event_weights``."""
    event_weights: dict[str, float] = Field(default_factory=dict)
    """Weight of each event type, e.g. ``{enrol = 1, complete = 3}``; other event types are rejected."""
    rating_scale: tuple[float, float] | None = None
    """``[low, high]`` of explicit ratings; values are rescaled to [0, 1] and ones outside are rejected."""
    positive_threshold: float | None = None
    """Keep only events whose value (on the source's own scale) is at least this, as implicit 1.0."""

    @model_validator(mode="after")
    def _consistent(self) -> InteractionTable:
        if (self.event is None) != (not self.event_weights):
            raise ValueError("'event' and 'event_weights' go together: map the event column and give weights")
        if self.rating_scale is not None and not self.rating_scale[0] < self.rating_scale[1]:
            raise ValueError(f"'rating_scale' must be [low, high] with low < high, got {self.rating_scale}")
        if (self.rating_scale is not None or self.positive_threshold is not None) and self.value is None:
            raise ValueError("'rating_scale'/'positive_threshold' need a 'value' column")
        return self


class _EntityTable(_Table):
    id: str
    """Column holding the user or item id (the same ids as in the interactions)."""
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    """Side information: ``{name = kind}`` or ``{name = {kind = ..., column = ..., separator = ...}}``."""

    def attribute_specs(self) -> dict[str, AttributeSpec]:
        return {
            name: spec if isinstance(spec, AttributeSpec) else AttributeSpec(kind=spec)
            for name, spec in self.attributes.items()
        }

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
        reserved = {"domain", "user", "item", "index"}
        for name in value:
            if name in reserved or not _NAME.match(name):
                raise ValueError(f"attribute name {name!r} is reserved or not a plain name; rename it")
        return value


class UserTable(_EntityTable):
    """Users of one source with attributes and identity link keys."""


class ItemTable(_EntityTable):
    """Items of one source with attributes and cross-domain item keys."""

    link_key: str | None = None
    """Column of a key shared across domains (ISBN, course code); compared without case and punctuation."""
    link_title: str | None = None
    """Column of a title to link items by normalised title (fuzzily with ``[link] item_fuzzy_threshold``)."""

    @model_validator(mode="after")
    def _one_item_link(self) -> ItemTable:
        if self.link_key is not None and self.link_title is not None:
            raise ValueError("give either 'link_key' or 'link_title', not both")
        if self.link_keys:
            raise ValueError("identity 'link_keys' belong to users or interactions; items use 'link_key'")
        return self


class SourceConfig(_Model):
    """One platform's tables."""

    domain: str | None = None
    """Domain the source feeds (default: the source's name). Several sources may feed one domain."""
    pseudonymize_user_ids: bool = False
    """Replace user ids by keyed HMAC pseudonyms (required when the user id is an email or phone)."""
    interactions: InteractionTable
    """``[sources.NAME.interactions]``: the user-item events (required)."""
    users: UserTable | None = None
    """``[sources.NAME.users]``: user attributes and identity link keys (optional)."""
    items: ItemTable | None = None
    """``[sources.NAME.items]``: item attributes, link key or title (optional)."""


class DomainConfig(_Model):
    """How one domain's interactions are cleaned."""

    role: Literal["source", "target"] = "source"
    """Whether the domain is a transfer source or target (targets get an overlap report)."""
    duplicates: Literal["latest", "first", "max", "sum"] | None = None
    """Rule for repeated (user, item) pairs: keep the latest or first event, the max value, or the sum.
    Default: ``latest`` when every source has timestamps, else ``max``."""
    min_value: float | None = None
    """Drop interactions whose (deduplicated, normalised) value is below this."""
    k_core: int = Field(default=0, ge=0)
    """Keep only users and items with at least this many interactions (iterated to a fixed point)."""


class LinkConfig(_Model):
    """Identity and item linking across sources."""

    key_env: str = "CROSSREC_LINK_KEY"
    """Environment variable holding the HMAC key (at least 16 bytes)."""
    key_file: str | None = None
    """File holding the HMAC key; used instead of ``key_env`` when given (relative to the sources file)."""
    phone_region: str = "US"
    """Region assumed for phone numbers without a ``+country`` prefix (ISO 3166 code)."""
    item_fuzzy_threshold: float | None = Field(default=None, ge=0, le=100)
    """Link items whose normalised titles match this well (rapidfuzz ``token_sort_ratio``, 0-100)."""


class RejectLimits(_Model):
    """How many rejected rows a source's table may have (shares of the rows read)."""

    warn_rate: float = Field(default=0.05, ge=0, le=1)
    """Above this share of rejected rows the ingest warns (printed even with ``-q``, kept in the report)."""
    fail_rate: float = Field(default=0.5, ge=0, le=1)
    """Above this share the ingest fails: the mapping, types or ``rating_scale`` are probably wrong."""

    @model_validator(mode="after")
    def _ordered(self) -> RejectLimits:
        if self.warn_rate > self.fail_rate:
            raise ValueError(f"warn_rate {self.warn_rate} must not be above fail_rate {self.fail_rate}")
        return self


class SourcesFile(_Model):
    """A whole sources file."""

    version: Literal[1] = 1
    """Version of the sources-file format."""
    link: LinkConfig = Field(default_factory=LinkConfig)
    """``[link]``: how users (keyed pseudonyms) and items (keys, fuzzy titles) are linked."""
    rejects: RejectLimits = Field(default_factory=RejectLimits)
    """``[rejects]``: how many rejected rows a table may have before a warning or a failure."""
    sources: dict[Annotated[str, Field(pattern=_NAME.pattern)], SourceConfig]
    """``[sources.NAME]``: one platform's tables (``interactions``, optional ``users``, ``items``)."""
    domains: dict[str, DomainConfig] = Field(default_factory=dict)
    """``[domains.NAME]``: how each domain is cleaned (role, duplicates, k-core)."""

    @model_validator(mode="after")
    def _domains_are_used(self) -> SourcesFile:
        if not self.sources:
            raise ValueError("no sources declared; add a [sources.NAME.interactions] table")
        used = {self.domain_of(name) for name in self.sources}
        unused = sorted(set(self.domains) - used)
        if unused:
            raise ValueError(f"[domains.{unused[0]}] is not fed by any source; sources feed {sorted(used)}")
        for name in used:
            if not _NAME.match(name):
                raise ValueError(f"domain name {name!r} must be a plain name")
        self._check_privacy()
        self._check_attribute_kinds()
        return self

    def _check_privacy(self) -> None:
        for name, source in self.sources.items():
            for label, table in (("interactions", source.interactions), ("users", source.users)):
                if table is None:
                    continue
                id_column = table.user if isinstance(table, InteractionTable) else table.id
                if id_column in table.link_keys.values() and not source.pseudonymize_user_ids:
                    raise ValueError(
                        f"sources.{name}.{label}: the user id column {id_column!r} is also a link key (a raw "
                        f"identifier); set sources.{name}.pseudonymize_user_ids = true"
                    )
                if isinstance(table, UserTable):
                    leaked = {spec.column or attr for attr, spec in table.attribute_specs().items()}
                    leaked &= set(table.link_keys.values())
                    if leaked:
                        raise ValueError(
                            f"sources.{name}.users.attributes: {sorted(leaked)} are link keys (raw "
                            "identifiers) "
                            "and cannot also be attributes; remove them from 'attributes'"
                        )

    def _check_attribute_kinds(self) -> None:
        for label in ("users", "items"):
            seen: dict[str, tuple[str, str]] = {}
            for name, source in self.sources.items():
                table = getattr(source, label)
                if table is None:
                    continue
                for attr, spec in table.attribute_specs().items():
                    other = seen.setdefault(attr, (name, spec.kind))
                    if other[1] != spec.kind:
                        raise ValueError(
                            f"{label} attribute {attr!r} is {other[1]!r} in source {other[0]!r} but "
                            f"{spec.kind!r} "
                            f"in source {name!r}; give both the same kind or rename one "
                            f"(e.g. {attr}_{name} = "
                            f"{{kind = {spec.kind!r}, column = {spec.column or attr!r}}})"
                        )
        for domain in self.domain_names:
            methods = {
                "key" if s.items.link_key else "title"
                for n, s in self.sources.items()
                if self.domain_of(n) == domain
                and s.items is not None
                and (s.items.link_key or s.items.link_title)
            }
            if len(methods) > 1:
                raise ValueError(
                    f"domain {domain!r}: its item tables mix 'link_key' and 'link_title'; use one"
                )

    def domain_of(self, source: str) -> str:
        return self.sources[source].domain or source

    def domain_config(self, domain: str) -> DomainConfig:
        return self.domains.get(domain, DomainConfig())

    @property
    def domain_names(self) -> list[str]:
        """Domains in order of first appearance."""
        return list(dict.fromkeys(self.domain_of(name) for name in self.sources))

    @property
    def links_identities(self) -> bool:
        tables = [t for s in self.sources.values() for t in (s.interactions, s.users) if t is not None]
        return any(t.link_keys for t in tables) or any(s.pseudonymize_user_ids for s in self.sources.values())


def load_sources(path: str | Path) -> tuple[SourcesFile, str]:
    """Read and validate a sources file.

    Parameters
    ----------
    path
        The TOML file.

    Returns
    -------
    (SourcesFile, str)
        The validated configuration and the sha256 of the file's bytes.

    Raises
    ------
    SourcesError
        Naming the file, the key and what to change.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SourcesError(f"{path}: cannot read the sources file ({error.strerror})") from error
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SourcesError(f"{path}: not valid UTF-8 TOML: {error}") from error
    try:
        config = SourcesFile.model_validate(data)
    except ValidationError as error:
        raise SourcesError(_explain(path, error)) from None
    return config, hashlib.sha256(raw).hexdigest()


def _explain(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid sources file ({error.error_count()} problem(s))"]
    for problem in error.errors():
        loc = [str(part) for part in problem["loc"] if not _is_union_tag(part)]
        key = ".".join(loc) or "(top level)"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            allowed = _allowed_keys(SourcesFile, loc[:-1])
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif problem["type"] == "missing":
            message = "required key is missing; add it"
        lines.append(f"  key '{key}': {message}")
    return "\n".join(lines)


def _is_union_tag(part: object) -> bool:
    # pydantic inserts the union member's name (e.g. 'AttributeSpec' or "literal['category',...]") in locs
    text = str(part)
    return text in {"AttributeSpec"} or text.startswith(("literal[", "function-", "tuple["))


def _allowed_keys(model: Any, loc: list[str]) -> list[str]:
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else members[0]
    return annotation
