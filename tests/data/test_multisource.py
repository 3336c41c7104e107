"""Three sources in three formats (CSV, Parquet, SQLite) linked by email, phone and item title."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crossrec.data import ingest, load_bundle
from tests.data.conftest import sources, write

RAW_IDENTIFIERS = [
    "alice@example.com",
    "ALICE@example.com",
    "Bob@Example.com",
    "bob@example.com",
    "carol@example.com",
    "zed@example.com",
    "dave(at)example",
    "+1 415 555 0101",
    "415-555-0101",
    "+14155550101",
    "4155550101",
    "(415) 555-0102",
    "+14155550102",
    "+44 20 7946 0000",
    "+442079460000",
]

SOURCES = """
[rejects]
warn_rate = 0.5  # the fixture rejects rows on purpose

[link]
phone_region = "US"
item_fuzzy_threshold = 90

[sources.shop.interactions]
path = "shop/orders.csv"
user = "customer"
item = "sku"
value = "qty"
timestamp = "ts"

[sources.shop.users]
path = "shop/customers.csv"
id = "customer"
link_keys = { email = "email", phone = "phone" }
attributes = { country = "category" }

[sources.shop.items]
path = "shop/products.csv"
id = "sku"
link_title = "title"

[sources.video.interactions]
path = "video/views.parquet"
user = "account"
item = "movie"
timestamp = "watched"

[sources.video.users]
path = "video/accounts.parquet"
id = "account"
link_keys = { phone = "mobile" }

[sources.video.items]
path = "video/movies.parquet"
id = "movie"
link_title = "name"

[sources.forum.interactions]
url = "sqlite:///forum.db"
table = "posts"
user = "member_id"
item = "thread_id"
timestamp = "created"

[sources.forum.users]
url = "sqlite:///forum.db"
query = "SELECT member_id, email FROM members"
id = "member_id"
link_keys = { email = "email" }

[sources.forum.items]
url = "sqlite:///forum.db"
table = "threads"
id = "thread_id"
link_title = "title"

[domains.shop]
role = "source"
[domains.video]
role = "source"
[domains.forum]
role = "target"
"""


def _write_sources(root: Path) -> Path:
    write(
        root / "shop/orders.csv",
        """
        customer,sku,qty,ts
        c1,p1,2,1700000000
        c1,p2,1,1700000001
        c2,p3,1,1700000002
        c3,p1,x,1700000003
        c3,p4,3,1700000004
        c4,p2,1,1700000005
        """,
    )
    write(
        root / "shop/customers.csv",
        """
        customer,email,phone,country
        c1,alice@example.com,+1 415 555 0101,US
        c2,Bob@Example.com ,(415) 555-0102,US
        c3,carol@example.com,12,CA
        c4,dave(at)example,,FR
        """,
    )
    write(
        root / "shop/products.csv",
        """
        sku,title
        p1,The Matrix
        p2,Amélie
        p3,Harry Potter and the Philosopher's Stone
        p4,Shop Only Item
        """,
    )
    (root / "video").mkdir()
    pq.write_table(
        pa.table(
            {
                "account": ["v1", "v1", "v2", "v9"],
                "movie": ["m_a", "m_b", "m_c", "m_d"],
                "watched": pa.array([1, 2, 3, 4], pa.int64()),
            }
        ),
        root / "video/views.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "account": ["v1", "v2", "v9"],
                "mobile": ["415-555-0101", "+1 (415) 555 0102", "+44 20 7946 0000"],
            }
        ),
        root / "video/accounts.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "movie": ["m_a", "m_b", "m_c", "m_d"],
                "name": ["the matrix", "Amelie", "Harry Potter and the Philosophers Stone", "Video Only"],
            }
        ),
        root / "video/movies.parquet",
    )
    db = sqlite3.connect(root / "forum.db")
    db.executescript(
        """
        CREATE TABLE members (member_id TEXT, email TEXT, password_hash TEXT);
        INSERT INTO members VALUES ('m1', 'ALICE@example.com', '$2b$12$abc'),
            ('m3', 'carol@example.com ', 'x'), ('m7', 'zed@example.com', 'y');
        CREATE TABLE posts (member_id TEXT, thread_id INTEGER, created TEXT);
        INSERT INTO posts VALUES ('m1', 1, '2023-05-01 10:00:00'), ('m3', 1, '2023-05-02 10:00:00'),
                                 ('m7', 2, '2023-05-03 10:00:00'), ('m7', 2, '2023-05-04 10:00:00');
        CREATE TABLE threads (thread_id INTEGER, title TEXT);
        INSERT INTO threads VALUES (1, 'THE MATRIX'), (2, 'Forum only');
        """
    )
    db.commit()
    db.close()
    return sources(root, SOURCES)


@pytest.fixture
def bundle_path(tmp_path: Path, link_key: str) -> Path:
    return ingest(_write_sources(tmp_path), tmp_path / "bundle").path


def test_counts_and_rejects(bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    assert {name: len(d.interactions) for name, d in bundle.domains.items()} == {
        "shop": 5,
        "video": 4,
        "forum": 3,
    }
    assert bundle.source_domains == ["shop", "video"] and bundle.target_domains == ["forum"]
    rejects = pq.read_table(bundle_path / "rejects.parquet").to_pandas()
    assert sorted(zip(rejects["table"], rejects["file"], rejects["row"], rejects["column"], strict=True)) == [
        ("interactions", "shop/orders.csv", 5, "qty"),
        ("users", "shop/customers.csv", 4, "phone"),
        ("users", "shop/customers.csv", 5, "email"),
    ]
    assert all("link key ignored" in r for r in rejects.loc[rejects["table"] == "users", "reason"])
    stats = bundle.manifest["sources"]["forum"]["tables"]
    assert stats["interactions"]["format"] == "sql" and stats["interactions"]["rows_read"] == 4


def test_users_linked_through_email_and_phone(bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    shop, video, forum = (bundle.domains[n].users for n in ("shop", "video", "forum"))

    def named(source: str, target: str) -> list[tuple[str, str]]:
        left, right = bundle.user_links(source, target)
        users = bundle.domains[source].users, bundle.domains[target].users
        return list(zip(users[0].lookup(left), users[1].lookup(right), strict=True))

    assert named("shop", "video") == [("c1", "v1"), ("c2", "v2")]  # phone
    assert named("shop", "forum") == [("c1", "m1"), ("c3", "m3")]  # email
    assert named("video", "forum") == [("v1", "m1")]  # phone -> c1 -> email: keys chain
    assert len(shop) == 4 and len(video) == 3 and len(forum) == 3
    rates = {(p["a"], p["b"]): p for p in bundle.manifest["links"]["users"]}
    assert rates[("shop", "video")]["shared"] == 2
    assert rates[("shop", "forum")]["b_rate"] == pytest.approx(2 / 3, abs=1e-6)


def test_items_linked_by_title_exactly_and_fuzzily(bundle_path: Path) -> None:
    bundle = load_bundle(bundle_path)
    left, right = bundle.item_links("shop", "video")
    pairs = set(
        zip(
            bundle.domains["shop"].items.lookup(left),
            bundle.domains["video"].items.lookup(right),
            strict=True,
        )
    )
    assert pairs == {("p1", "m_a"), ("p2", "m_b"), ("p3", "m_c")}
    methods = bundle.links.set_index(["domain", "id"])["method"]
    assert methods[("shop", "p3")] == "fuzzy" and methods[("video", "m_a")] == "title"
    left, right = bundle.item_links("forum", "shop")
    assert list(bundle.domains["forum"].items.lookup(left)) == ["1"]
    rates = bundle.manifest["links"]["item_match_rate"]
    assert rates["shop"] == pytest.approx(3 / 4) and rates["forum"] == pytest.approx(1 / 2)
    assert not bundle.manifest["warnings"]


def test_no_raw_identifier_anywhere_in_the_bundle(bundle_path: Path) -> None:
    for path in bundle_path.iterdir():
        data = path.read_bytes()
        texts = [data.decode("utf-8", "replace")]
        if path.suffix == ".parquet":
            buffer = io.StringIO()
            pq.read_table(path).to_pandas().to_csv(buffer)
            texts.append(buffer.getvalue())
        for text in texts:
            for raw in RAW_IDENTIFIERS:
                assert raw.lower() not in text.lower(), f"{raw!r} leaked into {path.name}"
    assert "test-link-key" not in (bundle_path / "manifest.json").read_text()
