"""Normalisation as vectorised SQL expressions (DuckDB), plus phone numbers through ``phonenumbers``.

Each function takes a SQL expression (usually a quoted column) and returns a SQL expression; nothing
here loops over rows in Python except :func:`normalize_phones`, which runs once per distinct number.
"""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers

from crossrec.data._duck import quote_literal as ql

__all__ = [
    "identity_key_sql",
    "item_key_sql",
    "loose_number_sql",
    "normalize_phones",
    "number_sql",
    "tags_sql",
    "text_sql",
    "timestamp_sql",
    "title_sql",
    "vector_sql",
]

_TEMPORAL = ("TIMESTAMP", "DATE")


def _is_text(duck_type: str) -> bool:
    return duck_type.upper() in ("VARCHAR", "JSON")


def text_sql(expression: str) -> str:
    """Trimmed, Unicode NFC text; empty strings become NULL."""
    return f"NULLIF(nfc_normalize(trim(CAST({expression} AS VARCHAR))), '')"


def loose_number_sql(expression: str, duck_type: str) -> str:
    """A DOUBLE, NaN and infinities included, or NULL when the value does not parse as a number."""
    if _is_text(duck_type):
        return f"TRY_CAST(trim({expression}) AS DOUBLE)"
    return f"TRY_CAST({expression} AS DOUBLE)"


def number_sql(expression: str, duck_type: str) -> str:
    """A finite DOUBLE, or NULL when the value is not a number, NaN or infinite."""
    number = loose_number_sql(expression, duck_type)
    return f"CASE WHEN isfinite({number}) THEN {number} END"


def timestamp_sql(expression: str, duck_type: str, timestamp_format: str) -> str:
    """Seconds since the epoch (BIGINT), or NULL when the value cannot be read in ``timestamp_format``.

    ``timestamp_format`` is ``auto`` (numbers >= 1e11 are milliseconds, other numbers seconds, text is
    parsed as ISO 8601), ``epoch_s``, ``epoch_ms`` or a strptime format such as ``%d/%m/%Y %H:%M``.
    """
    if duck_type.upper().startswith(_TEMPORAL):
        return f"CAST(floor(epoch({expression})) AS BIGINT)"
    number = number_sql(expression, duck_type)
    if timestamp_format == "epoch_s":
        return f"CAST(floor({number}) AS BIGINT)"
    if timestamp_format == "epoch_ms":
        return f"CAST(floor({number} / 1000) AS BIGINT)"
    text = f"trim(CAST({expression} AS VARCHAR))"
    if timestamp_format != "auto":
        return f"CAST(floor(epoch(try_strptime({text}, {ql(timestamp_format)}))) AS BIGINT)"
    return (
        f"CASE WHEN {number} IS NOT NULL THEN CAST(floor(CASE WHEN abs({number}) >= 1e11 "
        f"THEN {number} / 1000 ELSE {number} END) AS BIGINT) "
        f"ELSE CAST(floor(epoch(COALESCE(TRY_CAST({text} AS TIMESTAMP), TRY_CAST({text} AS TIMESTAMPTZ)))) "
        "AS BIGINT) END"
    )


def tags_sql(expression: str, duck_type: str, separator: str | None) -> str:
    """A VARCHAR[] of distinct-order-preserving, NFC, non-empty labels."""
    if duck_type.upper().endswith("[]"):
        items = f"list_transform({expression}, lambda x: {text_sql('x')})"
    elif separator is None:
        parts = f"regexp_split_to_array(trim(CAST({expression} AS VARCHAR)), '\\s+')"
        items = f"list_transform({parts}, lambda x: {text_sql('x')})"
    else:
        parts = f"string_split(CAST({expression} AS VARCHAR), {ql(separator)})"
        items = f"list_transform({parts}, lambda x: {text_sql('x')})"
    return f"CASE WHEN {expression} IS NULL THEN NULL ELSE list_filter({items}, lambda x: x IS NOT NULL) END"


def vector_sql(expression: str, duck_type: str, separator: str | None) -> str:
    """A FLOAT[]; a text value is split on ``separator`` (default: whitespace, commas or semicolons)."""
    if duck_type.upper().endswith("[]"):
        return f"list_transform({expression}, lambda x: TRY_CAST(x AS FLOAT))"
    pattern = "[\\s,;]+" if separator is None else None
    text = f"trim(CAST({expression} AS VARCHAR), ' []')"
    parts = (
        f"regexp_split_to_array({text}, {ql(pattern)})"
        if pattern
        else f"string_split({text}, {ql(separator or ',')})"
    )
    values = f"list_transform({parts}, lambda x: TRY_CAST(trim(x) AS FLOAT))"
    return f"CASE WHEN {expression} IS NULL THEN NULL ELSE {values} END"


def identity_key_sql(kind: str, expression: str) -> str:
    """A normalised identity key (email, username or another account id); NULL when invalid.

    Phone numbers are not handled here (see :func:`normalize_phones`).
    """
    value = f"lower({text_sql(expression)})"
    if kind == "email":
        return f"CASE WHEN regexp_matches({value}, '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$') THEN {value} END"
    if kind == "username":
        return f"ltrim({value}, '@')"
    return value


def item_key_sql(expression: str) -> str:
    """A shared item key (ISBN, course code) compared without case, accents, spaces or punctuation."""
    return (
        f"NULLIF(regexp_replace(lower(strip_accents({text_sql(expression)})), '[^\\pL\\pN]+', '', 'g'), '')"
    )


def title_sql(expression: str) -> str:
    """A title without case, accents or punctuation, single-spaced."""
    folded = f"lower(strip_accents({text_sql(expression)}))"
    return f"NULLIF(trim(regexp_replace({folded}, '[^\\pL\\pN]+', ' ', 'g')), '')"


def normalize_phones(values: Iterable[str], region: str) -> list[str | None]:
    """E.164 forms (``+14155550123``) of phone numbers, or None where a value is not a possible number.

    Parameters
    ----------
    values
        Distinct raw phone numbers.
    region
        ISO 3166 region assumed for numbers written without ``+country``.
    """
    out: list[str | None] = []
    for value in values:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            out.append(None)
            continue
        if phonenumbers.is_possible_number(number):
            out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
        else:
            out.append(None)
    return out
