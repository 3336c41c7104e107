"""Synthetic multi-domain data at any scale (``crossrec synth``), for benchmarks and tests.

Every user account and item has a latent vector; preferences are shared across domains so that
transfer really helps:

* **Users.** A share of accounts is *linked*: the same person (same raw id ``u<n>``) in every domain,
  with one latent preference vector plus a small domain-specific shift. Activity follows a power law
  (Zipf over a random ranking of users, at least ``min_user_interactions`` each).
* **Items.** A share of items is *shared* across domains (same raw id ``i<n>``, declared as
  ``link_key``). Every item belongs to one of ``categories`` latent categories; its vector is the
  category's centroid plus noise. Popularity follows a power law.
* **Interactions.** For each event a category is drawn from ``softmax(strength * p_user . centroid)``,
  then ``candidates`` items of that category by popularity, of which one is chosen with probability
  ``softmax(strength * p_user . q_item)``; a ``noise`` share of events are popularity-only.
  Repeated (user, item) pairs are redrawn; timestamps fall in a per-user active window.
* **Side information** is derived from the latent vectors: item ``title`` (text with words for the
  category and the strongest latent dimensions), ``category``, ``tags`` and ``price`` (number); user
  ``age`` (number) and ``segment`` (category).

Generation is vectorised numpy over blocks of users (at most ``chunk_rows`` events in memory) and
written as Parquet shards, with a ``sources.toml`` that ``crossrec ingest`` reads as is::

    OUTPUT/
      sources.toml  synth.json
      <domain>/interactions/part-00000.parquet ...   (user_id, item_id, timestamp)
      <domain>/users.parquet  <domain>/items.parquet
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from crossrec.data.outputs import (
    SYNTH_FORMAT,
    OutputFolderError,
    check_replaceable,
    clean_stale_work_folders,
    make_work_folder,
    work_path,
)

__all__ = ["SynthConfig", "SynthDomain", "SynthResult", "generate_synthetic", "parse_count"]

_EPOCH_2020 = 1_577_836_800
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGbB]?)\s*$")
_MULTIPLIER = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000, "b": 1_000_000_000}


def parse_count(text: str | int) -> int:
    """Parse ``"100K"``, ``"2.5M"``, ``"25m"`` or ``"1000"`` into an integer count."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if match is None:
        raise ValueError(f"cannot read {text!r} as a count; write e.g. 100K, 5M, 2.5M or 1000000")
    return int(round(float(match.group(1)) * _MULTIPLIER[match.group(2).lower()]))


class SynthDomain(BaseModel):
    """One generated domain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Domain (and source) name.")
    role: Literal["source", "target"] = Field("source", description="Role declared in sources.toml.")
    share: float = Field(
        gt=0, description="Share of interactions, users and items (normalised over domains)."
    )


def _default_domains() -> list[SynthDomain]:
    return [
        SynthDomain(name="source", role="source", share=0.8),
        SynthDomain(name="target", role="target", share=0.2),
    ]


class SynthConfig(BaseModel):
    """Settings of :func:`generate_synthetic` (all validated here; unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interactions: int = Field(1_000_000, ge=1_000, description="Interactions to generate, over all domains.")
    domains: list[SynthDomain] = Field(default_factory=_default_domains, min_length=1)
    users: int | None = Field(
        None, ge=20, description="User accounts over all domains (default interactions/40)."
    )
    items: int | None = Field(
        None, ge=20, description="Items over all domains (default 25*sqrt(interactions))."
    )
    linked_user_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the smallest domain's users who have an account in every domain.",
    )
    shared_item_share: float = Field(
        0.3, ge=0, le=1, description="Share of the smallest domain's items that exist in every domain."
    )
    factors: int = Field(16, ge=2, description="Latent dimensions.")
    categories: int = Field(32, ge=2, description="Latent item categories.")
    strength: float = Field(4.0, ge=0, description="How strongly preferences (vs. popularity) drive choices.")
    candidates: int = Field(8, ge=1, description="Items per event competing on preference within a category.")
    noise: float = Field(0.1, ge=0, le=1, description="Share of popularity-only events.")
    domain_shift: float = Field(
        0.3, ge=0, description="Size of a linked user's domain-specific preference shift."
    )
    user_activity_exponent: float = Field(0.8, ge=0, description="Zipf exponent of user activity.")
    item_popularity_exponent: float = Field(0.9, ge=0, description="Zipf exponent of item popularity.")
    min_user_interactions: int = Field(
        5, ge=1, description="Events per user at least (before deduplication)."
    )
    days: int = Field(365, ge=1, description="Time span of the timestamps, from 2020-01-01.")
    k_core: int = Field(0, ge=0, description="k_core written to sources.toml for every domain.")
    shard_rows: int = Field(2_000_000, ge=1_000, description="Interactions per Parquet shard.")
    chunk_rows: int = Field(500_000, ge=1_000, description="Events generated at once (bounds memory).")
    seed: int = 0

    @model_validator(mode="after")
    def _unique_domains(self) -> SynthConfig:
        names = [domain.name for domain in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f"domain names must be unique, got {names}")
        return self

    @property
    def n_users(self) -> int:
        return self.users if self.users is not None else max(20 * len(self.domains), self.interactions // 40)

    @property
    def n_items(self) -> int:
        return (
            self.items
            if self.items is not None
            else max(20 * len(self.domains), int(25 * self.interactions**0.5))
        )


@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate_synthetic` wrote: the folder, its ``sources.toml`` and ``synth.json`` content."""

    path: Path
    sources: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class _Plan:
    """Sizes and global-id layout of one domain: local index ``j < linked`` is global ``j``."""

    name: str
    role: str
    interactions: int
    users: int
    items: int
    linked_users: int
    shared_items: int
    user_offset: int
    item_offset: int

    def global_users(self, local: np.ndarray) -> np.ndarray:
        return np.where(local < self.linked_users, local, local - self.linked_users + self.user_offset)

    def global_items(self, local: np.ndarray) -> np.ndarray:
        return np.where(local < self.shared_items, local, local - self.shared_items + self.item_offset)


def _plans(config: SynthConfig) -> list[_Plan]:
    shares = np.array([d.share for d in config.domains], dtype=np.float64)
    shares /= shares.sum()
    users = np.maximum(20, np.round(config.n_users * shares)).astype(np.int64)
    items = np.maximum(20, np.round(config.n_items * shares)).astype(np.int64)
    counts = np.round(config.interactions * shares).astype(np.int64)
    linked = int(config.linked_user_share * users.min()) if len(users) > 1 else 0
    shared = int(config.shared_item_share * items.min()) if len(items) > 1 else 0
    plans, user_offset, item_offset = [], linked, shared
    for index, domain in enumerate(config.domains):
        plans.append(
            _Plan(
                domain.name,
                domain.role,
                int(counts[index]),
                int(users[index]),
                int(items[index]),
                linked,
                shared,
                user_offset,
                item_offset,
            )  # fmt: skip
        )
        user_offset += int(users[index]) - linked
        item_offset += int(items[index]) - shared
    return plans


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Power-law weights over a random ranking, normalised to sum to 1."""
    weights = (np.arange(1, n + 1, dtype=np.float64)) ** -exponent
    weights = weights[rng.permutation(n)]
    return weights / weights.sum()


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


class _World:
    """Global latent state: category centroids, item vectors and popularity, person vectors."""

    def __init__(self, config: SynthConfig, plans: list[_Plan]) -> None:
        rng = np.random.default_rng([config.seed, 0])
        k, g = config.factors, config.categories
        n_persons = plans[-1].user_offset + plans[-1].users - plans[-1].linked_users
        n_items = plans[-1].item_offset + plans[-1].items - plans[-1].shared_items
        self.centroids = _unit_rows(rng.standard_normal((g, k))).astype(np.float32)
        self.item_category = rng.integers(0, g, n_items).astype(np.int32)
        noise = rng.standard_normal((n_items, k)).astype(np.float32) * np.float32(0.8 / np.sqrt(k))
        self.item_vectors = (self.centroids[self.item_category] + noise).astype(np.float32)
        self.item_popularity = _zipf_weights(n_items, config.item_popularity_exponent, rng)
        persons = rng.standard_normal((n_persons, k)).astype(np.float32)
        self.person_vectors = _unit_rows(persons).astype(np.float32)
        self.age_direction = _unit_rows(rng.standard_normal((1, k)))[0].astype(np.float32)
        self.price_direction = _unit_rows(rng.standard_normal((1, k)))[0].astype(np.float32)


class _DomainSampler:
    """Draws items for events of one domain's users (vectorised over events)."""

    def __init__(self, config: SynthConfig, plan: _Plan, world: _World, rng: np.random.Generator) -> None:
        self.config, self.plan = config, plan
        local_items = np.arange(plan.items)
        global_items = plan.global_items(local_items)
        self.item_vectors = world.item_vectors[global_items]
        category = world.item_category[global_items]
        popularity = world.item_popularity[global_items]
        self.popularity_cdf = np.cumsum(popularity / popularity.sum())
        self.by_category = np.argsort(category, kind="stable")
        mass = np.cumsum(popularity[self.by_category])
        mass /= mass[-1]
        self.category_cdf = mass
        bounds = np.searchsorted(category[self.by_category], np.arange(config.categories + 1))
        self.first, self.last = bounds[:-1], bounds[1:] - 1
        self.mass_low = np.where(self.first > 0, mass[np.maximum(self.first - 1, 0)], 0.0)
        self.mass_high = np.where(self.last >= self.first, mass[np.maximum(self.last, 0)], 0.0)
        self.empty = self.last < self.first
        persons = plan.global_users(np.arange(plan.users))
        shift = rng.standard_normal((plan.users, config.factors)).astype(np.float32)
        shift *= np.float32(config.domain_shift / np.sqrt(config.factors))
        self.user_vectors = (world.person_vectors[persons] + shift).astype(np.float32)
        self.world = world

    def category_cdf_of(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), categories)`` cumulative category choice probabilities."""
        logits = self.config.strength * (self.user_vectors[users] @ self.world.centroids.T)
        logits[:, self.empty] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        cdf = np.cumsum(probabilities, axis=1)
        return (cdf / cdf[:, -1:]).astype(np.float32)

    def draw(self, users: np.ndarray, cdf_rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One item (local index) per event of ``users``; ``cdf_rows`` are their category CDFs."""
        n = len(users)
        u = rng.random(n, dtype=np.float32)[:, None]
        category = np.minimum((cdf_rows < u).sum(axis=1), self.config.categories - 1)
        low, high = self.mass_low[category], self.mass_high[category]
        draws = low[:, None] + rng.random((n, self.config.candidates)) * (high - low)[:, None]
        position = np.searchsorted(self.category_cdf, draws, side="left")
        position = np.clip(position, self.first[category][:, None], self.last[category][:, None])
        candidates = self.by_category[position]
        vectors = self.user_vectors[users]
        scores = np.empty(candidates.shape, dtype=np.float32)
        for column in range(candidates.shape[1]):  # a handful of candidates, each a vectorised pass
            scores[:, column] = np.einsum("ij,ij->i", vectors, self.item_vectors[candidates[:, column]])
        scores *= np.float32(self.config.strength)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        np.cumsum(scores, axis=1, out=scores)  # one softmax draw per event (cheaper than Gumbel-max)
        pick = (scores < rng.random(n, dtype=np.float32)[:, None] * scores[:, -1:]).sum(axis=1)
        items = candidates[np.arange(n), np.minimum(pick, candidates.shape[1] - 1)]
        noisy = rng.random(n) < self.config.noise
        if noisy.any():
            items[noisy] = np.searchsorted(self.popularity_cdf, rng.random(int(noisy.sum())), side="right")
        return np.minimum(items, self.plan.items - 1)


def _user_counts(config: SynthConfig, plan: _Plan, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Events per user, and how many were cut because a user may hold at most half the items."""
    floor = min(config.min_user_interactions, max(1, plan.interactions // plan.users))
    rest = max(0, plan.interactions - floor * plan.users)
    weights = _zipf_weights(plan.users, config.user_activity_exponent, rng)
    counts = floor + rng.multinomial(rest, weights)
    capped = np.minimum(counts, max(1, plan.items // 2)).astype(np.int64)
    return capped, int(counts.sum() - capped.sum())


class _ShardWriter:
    """Writes (user_id, item_id, timestamp) rows into Parquet shards of ``shard_rows`` rows."""

    schema = pa.schema([("user_id", pa.string()), ("item_id", pa.string()), ("timestamp", pa.int64())])

    def __init__(self, folder: Path, shard_rows: int) -> None:
        self.folder, self.shard_rows = folder, shard_rows
        folder.mkdir(parents=True, exist_ok=True)
        self.writer: pq.ParquetWriter | None = None
        self.in_shard = 0
        self.shards = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self.writer is None:
                path = self.folder / f"part-{self.shards:05d}.parquet"
                self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
                self.shards += 1
            take = min(table.num_rows, self.shard_rows - self.in_shard)
            self.writer.write_table(table.slice(0, take), row_group_size=1 << 20)
            self.in_shard += take
            self.rows += take
            table = table.slice(take)
            if self.in_shard >= self.shard_rows:
                self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer, self.in_shard = None, 0


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort and a comparison; faster than ``np.unique``'s hashing here)."""
    keys = np.sort(keys)
    if len(keys) == 0:
        return keys
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _ids(prefix: str, indices: np.ndarray) -> pa.Array:
    """String ids ``<prefix><index>`` built in Arrow (no Python string per row)."""
    import pyarrow.compute as pc

    digits = pc.cast(pa.array(indices, pa.int64()), pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _generate_interactions(
    config: SynthConfig,
    plan: _Plan,
    sampler: _DomainSampler,
    folder: Path,
    rng: np.random.Generator,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    counts, capped = _user_counts(config, plan, rng)
    user_ids = _ids("u", plan.global_users(np.arange(plan.users)))
    item_ids = _ids("i", plan.global_items(np.arange(plan.items)))
    span = config.days * 86_400
    start = (rng.random(plan.users) * 0.7 * span).astype(np.int64)
    active = (rng.random(plan.users) * 0.3 * span + 86_400).astype(np.int64)
    writer = _ShardWriter(folder / "interactions", config.shard_rows)
    ends = np.cumsum(counts)
    boundaries = np.unique(np.searchsorted(ends, np.arange(config.chunk_rows, ends[-1], config.chunk_rows)))
    user_blocks = np.split(np.arange(plan.users), boundaries + 1)
    duplicates = 0
    for block in user_blocks:
        if len(block) == 0:
            continue
        cdf = sampler.category_cdf_of(block)
        local = np.repeat(np.arange(len(block)), counts[block])
        items = sampler.draw(block[local], cdf[local], rng)
        keys = _distinct(local * plan.items + items)
        for _ in range(6):  # redraw repeated (user, item) pairs for the missing events
            missing = counts[block] - np.bincount(keys // plan.items, minlength=len(block))
            if not missing.any():
                break
            again = np.repeat(np.arange(len(block)), missing)
            extra = sampler.draw(block[again], cdf[again], rng)
            keys = _distinct(np.concatenate([keys, again * plan.items + extra]))
        duplicates += int(counts[block].sum()) - len(keys)
        users = block[keys // plan.items]
        items = keys % plan.items
        timestamps = _EPOCH_2020 + start[users] + (rng.random(len(users)) * active[users]).astype(np.int64)
        writer.write(
            pa.table(
                {
                    "user_id": user_ids.take(pa.array(users)),
                    "item_id": item_ids.take(pa.array(items)),
                    "timestamp": pa.array(timestamps, pa.int64()),
                },
                schema=_ShardWriter.schema,
            )
        )
        if progress is not None:
            progress(plan.name, int(counts[block].sum()))
    writer.close()
    return {
        "interactions": writer.rows,
        "shards": writer.shards,
        "dropped_duplicates": duplicates,
        "capped_events": capped,
    }


def _write_items(plan: _Plan, sampler: _DomainSampler, world: _World, path: Path) -> None:
    global_items = plan.global_items(np.arange(plan.items))
    vectors = sampler.item_vectors
    category = world.item_category[global_items]
    strongest = np.argsort(-np.abs(vectors), axis=1)[:, :2]
    sign = np.take_along_axis(vectors, strongest, axis=1) > 0
    words = np.char.add(np.char.add("w", strongest.astype(str)), np.where(sign, "p", "n"))
    genre = np.char.add("genre", category.astype(str))
    title = np.char.add(np.char.add(np.char.add(genre, " "), np.char.add(words[:, 0], " ")), words[:, 1])
    tags = np.char.add(np.char.add(words[:, 0], " "), words[:, 1])
    price = np.round(np.exp(1.5 + vectors @ world.price_direction), 2)
    table = pa.table(
        {
            "item_id": _ids("i", global_items),
            "title": pa.array(title.astype(object), pa.string()),
            "category": pa.array(np.char.add("c", category.astype(str)).astype(object), pa.string()),
            "tags": pa.array(tags.astype(object), pa.string()),
            "price": pa.array(price, pa.float64()),
        }
    )
    pq.write_table(table, path, compression="zstd")


def _write_users(plan: _Plan, sampler: _DomainSampler, world: _World, path: Path) -> None:
    vectors = sampler.user_vectors
    age = np.round(18 + 50 / (1 + np.exp(-3 * (vectors @ world.age_direction))))
    segment = (vectors @ world.centroids.T).argmax(axis=1)
    table = pa.table(
        {
            "user_id": _ids("u", plan.global_users(np.arange(plan.users))),
            "age": pa.array(age, pa.float64()),
            "segment": pa.array(np.char.add("s", segment.astype(str)).astype(object), pa.string()),
        }
    )
    pq.write_table(table, path, compression="zstd")


def _sources_toml(config: SynthConfig, plans: list[_Plan]) -> str:
    lines = [
        f"# Synthetic data from `crossrec synth` ({config.interactions:,} interactions, seed {config.seed}).",
        "# Ingest with:  crossrec ingest sources.toml -o BUNDLE",
        "# Items shared across domains have the same item_id (declared as link_key); linked users have",
        "# the same user_id in every domain (link them by equal ids, e.g. link_users = 'ids').",
        "version = 1",
        "",
    ]
    for plan in plans:
        lines += [
            f"[sources.{plan.name}.interactions]",
            f'path = "{plan.name}/interactions/*.parquet"',
            'user = "user_id"',
            'item = "item_id"',
            'timestamp = "timestamp"',
            'timestamp_format = "epoch_s"',
            "",
            f"[sources.{plan.name}.users]",
            f'path = "{plan.name}/users.parquet"',
            'id = "user_id"',
            'attributes = { age = "number", segment = "category" }',
            "",
            f"[sources.{plan.name}.items]",
            f'path = "{plan.name}/items.parquet"',
            'id = "item_id"',
            'link_key = "item_id"',
            'attributes = { title = "text", category = "category", tags = "tags", price = "number" }',
            "",
            f"[domains.{plan.name}]",
            f'role = "{plan.role}"',
            f"k_core = {config.k_core}",
            "",
        ]
    return "\n".join(lines)


def _generate_into(
    output: Path, config: SynthConfig, progress: Callable[[str, int], None] | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    plans = _plans(config)
    world = _World(config, plans)
    domains: dict[str, Any] = {}
    for index, plan in enumerate(plans):
        rng = np.random.default_rng([config.seed, 1, index])
        sampler = _DomainSampler(config, plan, world, rng)
        folder = output / plan.name
        folder.mkdir()
        written = _generate_interactions(config, plan, sampler, folder, rng, progress)
        _write_items(plan, sampler, world, folder / "items.parquet")
        _write_users(plan, sampler, world, folder / "users.parquet")
        domains[plan.name] = {
            "role": plan.role,
            "users": plan.users,
            "items": plan.items,
            "linked_users": plan.linked_users,
            "shared_items": plan.shared_items,
            **written,
        }
    (output / "sources.toml").write_text(_sources_toml(config, plans))
    files = sorted(path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file())
    manifest = {
        "format": SYNTH_FORMAT,
        "config": config.model_dump(),
        "domains": domains,
        "interactions": sum(d["interactions"] for d in domains.values()),
        "seconds": round(time.perf_counter() - started, 3),
        "files": files,
    }
    (output / "synth.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def generate_synthetic(
    output: str | Path,
    config: SynthConfig | None = None,
    *,
    overwrite: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> SynthResult:
    """Generate a synthetic multi-domain dataset as Parquet shards plus a ``sources.toml``.

    Parameters
    ----------
    output
        Folder to create.
    config
        Sizes, shares and generative settings (default: :class:`SynthConfig` with 1M interactions).
    overwrite
        Replace an existing folder (only one that ``generate_synthetic`` wrote, holding only its files).
    progress
        Called as ``progress(domain, rows)`` after each chunk of interactions is written (rows of
        that chunk), e.g. to advance a progress bar towards ``config.interactions``.

    Returns
    -------
    SynthResult
        The folder, the sources file to pass to ``crossrec ingest`` and the manifest (``synth.json``):
        per domain the users, items, interactions written, linked users and shared items.

    Raises
    ------
    FileExistsError
        When ``output`` exists and ``overwrite`` is false.
    """
    config = config or SynthConfig()
    output = Path(output)
    if (output.exists() or output.is_symlink()) and not overwrite:
        raise FileExistsError(f"{output} already exists; choose another folder or pass overwrite (--force)")
    try:
        replacing = check_replaceable(output, kind="synth", force=True)
    except OutputFolderError as error:
        raise FileExistsError(str(error)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_work_folders(output.parent, output.name)
    partial = make_work_folder(output.parent, output.name, "partial")
    try:
        manifest = _generate_into(partial, config, progress)
        if replacing and output.exists():
            retired = work_path(output.parent, output.name, "old")
            output.rename(retired)
            partial.rename(output)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            partial.rename(output)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    sources = output / "sources.toml"
    return SynthResult(path=output, sources=sources, manifest=manifest)
