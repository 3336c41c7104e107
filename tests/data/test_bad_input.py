"""Bad input: each case fails (or warns) with a message that names the place and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossrec.data import CredentialError, IngestError, LinkKeyError, SourcesError, ingest, load_bundle
from tests.data.conftest import sources, write

BASIC = """
[sources.s.interactions]
path = "{path}"
user = "u"
item = "i"
{extra}
"""


def _basic(tmp_path: Path, path: str = "r.csv", extra: str = "") -> Path:
    return sources(tmp_path, BASIC.format(path=path, extra=extra))


def test_unknown_key_names_file_key_and_allowed_keys(tmp_path: Path) -> None:
    config = _basic(tmp_path, extra='usr = "u"')
    with pytest.raises(SourcesError) as error:
        ingest(config, tmp_path / "b")
    message = str(error.value)
    assert (
        "sources.toml" in message
        and "sources.s.interactions.usr" in message
        and "timestamp_format" in message
    )


def test_wrong_config_type_and_missing_key(tmp_path: Path) -> None:
    config = sources(
        tmp_path, '[sources.s.interactions]\npath = "r.csv"\nuser = "u"\n[domains.s]\nk_core = "five"\n'
    )
    with pytest.raises(SourcesError) as error:
        ingest(config, tmp_path / "b")
    assert "sources.s.interactions.item" in str(error.value) and "domains.s.k_core" in str(error.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"source 's' interactions: file 'r.csv' not found.*--data-dir"):
        ingest(_basic(tmp_path), tmp_path / "b")


def test_unreadable_encoding_then_fixed_by_declaring_it(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_bytes("u,i\nJosé,Café\n".encode("cp1252"))
    with pytest.raises(IngestError, match="encoding"):
        ingest(_basic(tmp_path), tmp_path / "b")
    for encoding in ("latin-1", "cp1252"):
        config = _basic(tmp_path, extra=f'encoding = "{encoding}"')
        domain = load_bundle(ingest(config, tmp_path / encoding).path).domains["s"]
        assert list(domain.items.ids) == ["Café"]


def test_missing_mapped_column_lists_the_columns_found(tmp_path: Path) -> None:
    write(tmp_path / "r.csv", "user,item\na,b\n")
    with pytest.raises(IngestError, match=r"mapped column\(s\) \['u', 'i'\] not found.*\['user', 'item'\]"):
        ingest(_basic(tmp_path), tmp_path / "b")


def test_duplicate_column_names(tmp_path: Path) -> None:
    write(tmp_path / "r.csv", "u,i,u\na,b,c\n")
    with pytest.raises(IngestError, match=r"duplicate column names \['u'\]"):
        ingest(_basic(tmp_path), tmp_path / "b")


def test_empty_source(tmp_path: Path) -> None:
    write(tmp_path / "r.csv", "u,i\n")
    with pytest.raises(IngestError, match="no data rows"):
        ingest(_basic(tmp_path), tmp_path / "b")
    write(tmp_path / "r.csv", "")
    with pytest.raises(IngestError, match="empty"):
        ingest(_basic(tmp_path), tmp_path / "b")


def test_wrong_types_everywhere_leave_no_rows(tmp_path: Path) -> None:
    write(tmp_path / "r.csv", "u,i,v\na,b,x\nc,d,y\n")
    with pytest.raises(IngestError, match=r"2 of 2 rows \(100.0%\) were rejected.*2 x value is not a number"):
        ingest(_basic(tmp_path, extra='value = "v"'), tmp_path / "b")


def test_zero_rows_after_filtering_names_the_step(tmp_path: Path) -> None:
    write(tmp_path / "r.csv", "u,i\na,b\na,c\nd,b\n")
    config = _basic(tmp_path, extra="[domains.s]\nk_core = 5")
    with pytest.raises(IngestError, match=r"domain 's': no interactions left after k_core = 5"):
        ingest(config, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_target_without_overlap_is_allowed_but_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "u,i\na,b\n")
    write(tmp_path / "t.csv", "u,i\nx,y\n")
    config = sources(
        tmp_path,
        """
        [sources.a.interactions]
        path = "a.csv"
        user = "u"
        item = "i"
        [sources.t.interactions]
        path = "t.csv"
        user = "u"
        item = "i"
        [domains.t]
        role = "target"
        """,
    )
    manifest = ingest(config, tmp_path / "b").manifest
    assert any("target domain 't' shares no users or items" in w for w in manifest["warnings"])


@pytest.mark.parametrize("column", ["password", "user_pwd", "apiToken", "client_secret", "passwd"])
def test_credential_named_columns_are_refused(tmp_path: Path, column: str) -> None:
    write(tmp_path / "r.csv", f"u,i,{column}\na,b,hunter2\n")
    config = _basic(
        tmp_path, extra=f'[sources.s.users]\npath = "r.csv"\nid = "u"\nattributes = {{ {column} = "text" }}'
    )
    with pytest.raises(CredentialError, match=f"{column}.*looks like a credential"):
        ingest(config, tmp_path / "b")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("notes", "$2b$12$" + "a" * 53),
        ("notes", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"),
        ("pw_hash", "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"),
    ],
)
def test_password_hash_values_are_refused(tmp_path: Path, column: str, value: str) -> None:
    write(tmp_path / "r.csv", f'u,i,{column}\na,b,"{value}"\n')
    config = _basic(
        tmp_path, extra=f'[sources.s.users]\npath = "r.csv"\nid = "u"\nattributes = {{ {column} = "text" }}'
    )
    with pytest.raises(CredentialError, match="look like password hashes"):
        ingest(config, tmp_path / "b")


def test_unset_hmac_key_when_linking_is_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSREC_LINK_KEY", raising=False)
    write(tmp_path / "r.csv", "u,i,mail\na,b,a@x.org\n")
    config = _basic(tmp_path, extra='link_keys = { email = "mail" }')
    with pytest.raises(LinkKeyError, match="CROSSREC_LINK_KEY is not set"):
        ingest(config, tmp_path / "b")
    monkeypatch.setenv("CROSSREC_LINK_KEY", "short")
    with pytest.raises(LinkKeyError, match="shorter than 16 bytes"):
        ingest(config, tmp_path / "b")


def test_key_file_is_used_and_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSREC_LINK_KEY", raising=False)
    (tmp_path / "link.key").write_text("a-very-secret-key-from-a-file\n")
    write(tmp_path / "r.csv", "u,i,mail\na,b,a@x.org\n")
    config = sources(
        tmp_path,
        '[link]\nkey_file = "link.key"\n'
        + BASIC.format(path="r.csv", extra='link_keys = { email = "mail" }'),
    )
    bundle = ingest(config, tmp_path / "b").path
    for path in bundle.iterdir():
        assert b"a-very-secret-key" not in path.read_bytes()


def test_email_user_ids_must_be_pseudonymised(tmp_path: Path, link_key: str) -> None:
    write(tmp_path / "r.csv", "u,i\nAnn@x.org,b\nann@x.org ,c\n")
    with pytest.raises(IngestError, match="email addresses.*pseudonymize_user_ids = true"):
        ingest(_basic(tmp_path), tmp_path / "b")
    config = sources(
        tmp_path,
        "[sources.s]\npseudonymize_user_ids = true\n"
        + BASIC.format(path="r.csv", extra="").replace(
            "[sources.s.interactions]", "[sources.s.interactions]"
        ),
    )
    bundle = load_bundle(ingest(config, tmp_path / "b").path)
    users = bundle.domains["s"].users
    assert len(users) == 1 and len(users.ids[0]) == 32  # one person, a 32-hex pseudonym
    assert b"x.org" not in (bundle.path / "users.parquet").read_bytes()


def test_user_id_declared_as_link_key_needs_pseudonymisation(tmp_path: Path) -> None:
    config = _basic(tmp_path, extra='link_keys = { email = "u" }')
    with pytest.raises(SourcesError, match="pseudonymize_user_ids = true"):
        ingest(config, tmp_path / "b")
