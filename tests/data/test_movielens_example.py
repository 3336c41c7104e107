"""The shipped movielens-cdr sources file, on small synthetic files in the RecBole atomic format."""

from __future__ import annotations

from pathlib import Path

from crossrec.data import ingest, load_bundle, load_sources
from tests.conftest import REPO_ROOT
from tests.data.conftest import write

EXAMPLE = REPO_ROOT / "examples/movielens-cdr/sources.toml"
TITLES = [f"Movie {i} (199{i % 10})" for i in range(14)]


def _atomic(root: Path, name: str, prefix: str, n_users: int, user_header: str, item_header: str) -> None:
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(n_users):
        for i, title in enumerate(TITLES[:12] if prefix == "1m" else TITLES[2:]):
            inter.append(f"{prefix}_{u}\t{title}\t{5 if (u + i) % 4 else 1}\t{880000000 + u * 100 + i}")
    write(root / name / f"{name}.inter", "\n".join(inter) + "\n")
    users = [user_header] + [f"{prefix}_{u}\t{20 + u}\tF\t{u % 3}\t0000{u}" for u in range(n_users)]
    write(root / name / f"{name}.user", "\n".join(users) + "\n")
    items = [item_header] + [f"{t}\t{t[:-7]}\t199{i % 10}\tDrama Comedy" for i, t in enumerate(TITLES)]
    write(root / name / f"{name}.item", "\n".join(items) + "\n")


def test_example_sources_file_validates() -> None:
    config, digest = load_sources(EXAMPLE)
    assert list(config.sources) == ["ml-1m", "ml-100k"] and len(digest) == 64
    assert config.domain_config("ml-100k").role == "target" and config.domain_config("ml-1m").k_core == 5


def test_example_ingests_atomic_files(tmp_path: Path) -> None:
    _atomic(
        tmp_path,
        "ml-1m",
        "1m",
        12,
        "user_id:token\tage:float\tgender:token\toccupation:float\tzip_code:token",
        "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token",
    )
    _atomic(
        tmp_path,
        "ml-100k",
        "100k",
        10,
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token",
        "item_id:token\tmovie_title:token\trelease_year:token\tclass:token_seq",
    )
    bundle = load_bundle(ingest(EXAMPLE, tmp_path / "bundle", data_dir=tmp_path).path)
    source, target = bundle.domains["ml-1m"], bundle.domains["ml-100k"]
    assert source.interactions.value.min() == 1.0  # ratings >= 3 became positives
    assert source.interactions.n_per_user(source.n_users).min() >= 5  # 5-core
    left, right = bundle.item_links("ml-1m", "ml-100k")
    assert (source.items.lookup(left) == target.items.lookup(right)).all() and len(left) > 0
    assert list(target.item_features.columns) == ["movie_title", "release_year", "genre"]
    assert list(target.item_features["genre"].iloc[0]) == ["Drama", "Comedy"]
    assert target.user_feature_kinds == {"age": "number", "gender": "category", "occupation": "category"}
