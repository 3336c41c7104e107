"""Credential columns anywhere in a table, reject-rate thresholds, and reject reasons that name the cause."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.data.errors import CredentialError, IngestError
from crossrec.data.ingestion import ingest
from tests.data.conftest import sources, write

EXPORT = "user,item,rating,email,phone,password\n" + "".join(
    f"u{n},b{n % 7},{1 + n % 5},u{n}@example.org,+1555000{n:04d},hunter{n}\n" for n in range(40)
)


def _book_platform(tmp_path, extra: str = "", rows: str = EXPORT):
    write(tmp_path / "books.csv", rows)
    return sources(
        tmp_path,
        f"""
[sources.books.interactions]
path = "books.csv"
user = "user"
item = "item"
value = "rating"
{extra}
""",
    )


def test_an_unmapped_password_column_stops_the_ingest(tmp_path) -> None:
    with pytest.raises(CredentialError, match="'password'.*ignore_columns"):
        ingest(_book_platform(tmp_path), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_ignore_columns_drops_it_and_the_report_says_so(tmp_path) -> None:
    config = _book_platform(tmp_path, 'ignore_columns = ["password"]')
    result = ingest(config, tmp_path / "bundle")
    assert result.manifest["ignored_columns"] == {"books.interactions": ["password"]}
    assert result.manifest["sources"]["books"]["tables"]["interactions"]["ignored_columns"] == ["password"]
    bundle_bytes = b"".join(p.read_bytes() for p in (tmp_path / "bundle").iterdir())
    assert b"hunter1" not in bundle_bytes
    printed = CliRunner().invoke(app, ["ingest", str(config), "-o", str(tmp_path / "b2")])
    assert printed.exit_code == 0 and "ignore_columns" in printed.output and "password" in printed.output


@pytest.mark.parametrize(
    "column", ["passwd", "pwd", "api_token", "client_secret", "password_hash", "userToken"]
)
def test_every_credential_like_name_is_caught(tmp_path, column: str) -> None:
    write(tmp_path / "r.csv", f"user,item,{column}\na,b,x\n")
    config = sources(tmp_path, '[sources.s.interactions]\npath = "r.csv"\nuser = "user"\nitem = "item"\n')
    with pytest.raises(CredentialError, match=column):
        ingest(config, tmp_path / "bundle")


def test_ignore_columns_must_name_real_unmapped_columns(tmp_path) -> None:
    with pytest.raises(IngestError, match="does not have"):
        ingest(_book_platform(tmp_path, 'ignore_columns = ["password", "pasword"]'), tmp_path / "b")
    with pytest.raises(IngestError, match="both mapped and in ignore_columns"):
        ingest(_book_platform(tmp_path, 'ignore_columns = ["password", "rating"]'), tmp_path / "b")


def _ratings(bad: int, total: int = 20) -> str:
    values = ["5/5", "good", "4,0", "NaN", "inf", ""]
    lines = [f"u{n},i{n % 3},{values[n % len(values)] if n < bad else 1 + n % 5}\n" for n in range(total)]
    return "user,item,rating\n" + "".join(lines)


def test_reject_rate_above_warn_is_a_warning_printed_even_with_quiet(tmp_path) -> None:
    config = _book_platform(tmp_path, rows=_ratings(bad=2))  # 10%
    result = CliRunner().invoke(app, ["ingest", str(config), "-o", str(tmp_path / "bundle"), "-q"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "10.0%" in result.output and "warn_rate = 0.05" in result.output
    manifest = ingest(config, tmp_path / "b2").manifest
    assert manifest["sources"]["books"]["tables"]["interactions"]["reject_rate"] == pytest.approx(0.1)
    assert any("10.0%" in warning for warning in manifest["warnings"])


def test_reject_rate_above_fail_stops_the_ingest(tmp_path) -> None:
    config = _book_platform(tmp_path, rows=_ratings(bad=8))  # 40%
    assert ingest(config, tmp_path / "ok").manifest["warnings"]  # below 50%: a warning
    strict = _book_platform(tmp_path, "\n[rejects]\nwarn_rate = 0.1\nfail_rate = 0.3\n", rows=_ratings(bad=8))
    result = CliRunner().invoke(app, ["ingest", str(strict), "-o", str(tmp_path / "bundle")])
    assert result.exit_code == 2 and "40.0%" in result.output and "fail_rate = 0.3" in result.output
    assert not (tmp_path / "bundle").exists()


def test_reject_reasons_name_the_real_cause(tmp_path) -> None:
    config = _book_platform(
        tmp_path,
        "rating_scale = [1, 5]\n\n[rejects]\nfail_rate = 1.0\n",
        rows="user,item,rating\na,x,5/5\nb,x,good\nc,x,4,0\nd,x,NaN\ne,x,inf\nf,x,\ng,x,9\nh,x,3\n",
    )
    result = ingest(config, tmp_path / "bundle")
    rejects = pq.read_table(result.path / "rejects.parquet").to_pandas().set_index("row")["reason"]
    assert rejects[2].startswith("value is not a number") and rejects[3].startswith("value is not a number")
    assert rejects[4] == "line has more fields than the header"  # 4,0 unquoted
    assert rejects[5] == "value is NaN or infinite" and rejects[6] == "value is NaN or infinite"
    assert rejects[7] == "value is empty"
    assert rejects[8] == "value outside rating_scale [1, 5]"
