"""Privacy guards: refuse credentials, keep raw identifiers out, and pseudonymise with keyed HMAC-SHA256.

The HMAC key is read from an environment variable or a key file, kept in memory only and passed to
DuckDB as a query parameter; it is never written to the bundle, the manifest or the logs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from crossrec.data._duck import quote_identifier as qi
from crossrec.data.errors import CredentialError, IngestError, LinkKeyError
from crossrec.data.sources import LinkConfig

__all__ = [
    "HmacKey",
    "check_column_names",
    "check_credential_values",
    "check_no_emails",
    "load_link_key",
]

_CREDENTIAL_WORDS = {
    "password",
    "passwd",
    "passwort",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
}
_HASH_WORDS = {"hash", "hashed", "digest", "pw", "salt", "crypt"}
#: Password-hash formats: bcrypt, argon2, scrypt, PBKDF2 (passlib/Django), sha-crypt / md5-crypt, LDAP.
_PASSWORD_HASH = (
    r"^(\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(id|i|d)\$|\$scrypt\$|\$pbkdf2(-sha\d+)?\$"
    r"|pbkdf2_sha\d+\$|\$[156]\$[^$]+\$|\$y\$|\{(S?SHA|SSHA256|SSHA512|CRYPT|MD5)\})"
)
_HEX_DIGEST = r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{128})$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_REFUSAL = "crossrec never ingests credentials; remove the column from the mapping (and from the export)"


def _words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = {w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w}
    joined = re.sub(r"[^a-z0-9]", "", name.lower())
    if any(word in joined for word in ("password", "passwd", "apikey", "secret")):
        words.add("password")
    return words


def check_column_names(columns: list[str], where: str, *, unmapped: bool = False) -> None:
    """Refuse columns whose names look like credentials (password, pwd, secret, token, ...).

    ``unmapped``: the columns are the table's other columns (never read), which the sources file can
    drop explicitly with ``ignore_columns``.
    """
    for column in columns:
        if _words(column) & _CREDENTIAL_WORDS:
            if unmapped:
                raise CredentialError(
                    f"{where}: the table has a column {column!r} that looks like a credential; crossrec "
                    f"refuses exports that carry credentials: remove the column from the export, or drop it "
                    f"explicitly with ignore_columns = [{column!r}] in this table of the sources file"
                )
            raise CredentialError(f"{where}: column {column!r} looks like a credential; {_REFUSAL}")


def check_credential_values(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], where: str, *, sample: int = 20_000
) -> None:
    """Refuse mapped text columns whose values look like password hashes (checked on a sample)."""
    for column in columns:
        hashy = bool(_words(column) & _HASH_WORDS)
        pattern = f"({_PASSWORD_HASH})|({_HEX_DIGEST})" if hashy else _PASSWORD_HASH
        if _sample_matches(con, table, column, pattern, sample, trim=False):
            raise CredentialError(
                f"{where}: column {column!r} holds values that look like password hashes; {_REFUSAL}"
            )


def check_no_emails(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    where: str,
    fix: str,
    *,
    sample: int = 20_000,
) -> None:
    """Refuse columns bound for the bundle whose values look like email addresses (raw identifiers)."""
    for column in columns:
        if _sample_matches(con, table, column, _EMAIL, sample, trim=True):
            raise IngestError(
                f"{where}: column {column!r} holds email addresses, which must never reach the bundle; {fix}"
            )


class HmacKey:
    """A secret key for HMAC-SHA256 pseudonyms, usable inside DuckDB queries.

    ``sql(expression)`` is a SQL expression computing the lowercase hex HMAC of a VARCHAR expression;
    ``params`` must be passed with the query. The key never appears in the SQL text.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise LinkKeyError("the HMAC link key is shorter than 16 bytes; use a longer random key")
        import hashlib

        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(64, b"\0")
        self._inner = bytes(b ^ 0x36 for b in padded)
        self._outer = bytes(b ^ 0x5C for b in padded)

    def __repr__(self) -> str:
        return "HmacKey(***)"

    @property
    def params(self) -> dict[str, bytes]:
        return {"hmac_inner": self._inner, "hmac_outer": self._outer}

    @staticmethod
    def sql(expression: str) -> str:
        return f"sha256($hmac_outer::BLOB || unhex(sha256($hmac_inner::BLOB || encode({expression}))))"


def load_link_key(config: LinkConfig, base_dir: Path) -> HmacKey:
    """The HMAC key from ``config.key_file`` or the environment variable ``config.key_env``.

    Raises
    ------
    LinkKeyError
        When the key is not set, unreadable or too short.
    """
    if config.key_file is not None:
        path = Path(config.key_file)
        path = path if path.is_absolute() else base_dir / path
        try:
            key = path.read_bytes().strip()
        except OSError as error:
            raise LinkKeyError(
                f"[link] key_file {config.key_file!r}: cannot read the HMAC key ({error.strerror}); "
                "create it with e.g. `openssl rand -hex 32 > FILE`"
            ) from None
    else:
        value = os.environ.get(config.key_env, "")
        if not value:
            raise LinkKeyError(
                f"identity linking is configured but the environment variable {config.key_env} is not set; "
                f"set it to a secret of at least 16 characters (e.g. `export {config.key_env}=$(openssl rand "
                "-hex 32)`) or set [link] key_file"
            )
        key = value.encode("utf-8")
    return HmacKey(key)


def _sample_matches(
    con: duckdb.DuckDBPyConnection, table: str, column: str, pattern: str, sample: int, *, trim: bool
) -> int:
    """How many of the first ``sample`` values of ``column`` (as text) match the regex ``pattern``."""
    value = "trim(v)" if trim else "v"
    return con.execute(
        f"SELECT count(*) FROM (SELECT CAST({qi(column)} AS VARCHAR) AS v FROM {qi(table)} "
        f"LIMIT {sample}) WHERE regexp_matches({value}, $pattern)",
        {"pattern": pattern},
    ).fetchall()[0][0]  # type: ignore[index]
