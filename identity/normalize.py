"""Normalization of identifiers, so that the same real-world value always compares equal.

Emails and phones have Python functions (the reference behaviour) and SQL forms for bulk work;
names, dates, addresses and postcodes are normalized in DuckDB SQL by the macros installed with
``install_macros``.
"""

from __future__ import annotations

import re

import duckdb
import phonenumbers
import pyarrow as pa

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMAIL_SQL = r"[^@\s]+@[^@\s]+\.[^@\s]+"
DEFAULT_PHONE_REGION = "US"

#: DuckDB macros: ``x`` is a raw value; each returns the normalized value or NULL.
MACROS = {
    # lowercase ASCII letters and single spaces: "  Zoë  O'Brien " -> "zoe obrien"
    "cdp_name": r"""nullif(trim(regexp_replace(regexp_replace(lower(strip_accents(x::varchar)),
        '[^a-z ]', '', 'g'), '\s+', ' ', 'g')), '')""",
    # letters, digits and single spaces: "12, Main St." -> "12 main st"
    "cdp_text": r"""nullif(trim(regexp_replace(regexp_replace(lower(strip_accents(x::varchar)),
        '[^a-z0-9 ]', ' ', 'g'), '\s+', ' ', 'g')), '')""",
    # uppercase letters and digits: "sw1a 1aa" -> "SW1A1AA"
    "cdp_code": r"""nullif(regexp_replace(upper(x::varchar), '[^A-Z0-9]', '', 'g'), '')""",
    # YYYYMMDD from a DATE or from text written as YYYY-MM-DD / YYYYMMDD
    "cdp_date": r"""case when regexp_full_match(regexp_replace(x::varchar, '-', '', 'g'),
        '(19|20)[0-9]{6}') then regexp_replace(x::varchar, '-', '', 'g') end""",
    "cdp_email": rf"""case when regexp_full_match(lower(trim(x::varchar)), '{_EMAIL_SQL}')
        then lower(trim(x::varchar)) end""",
    # A sound-alike key: first letter, then Soundex digit classes of the rest, vowels dropped.
    "cdp_phonetic": r"""case when length(x) > 0 then left(x, 1) || left(regexp_replace(
        translate(substr(x, 2), 'bfpvcgjkqsxzdtlmnr', '111122222222334556'), '[^0-9]', '', 'g'),
        3) end""",
}

#: North American numbers written in any of the usual ways are E.164 without a library call;
#: everything else goes through ``phonenumbers`` (see ``normalize_phones``).
_PHONE_DIGITS = "regexp_replace(x::varchar, '[^0-9]', '', 'g')"
_NANP_FAST_PATH = rf"""
case
    when coalesce(upper(country), 'US') not in ('US', 'CA') then null
    when regexp_full_match({_PHONE_DIGITS}, '(001|1)?[2-9][0-9]{{2}}[2-9][0-9]{{6}}')
        and not regexp_full_match(trim(x::varchar), '\+[^1].*')
    then '+1' || right({_PHONE_DIGITS}, 10)
end"""


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the normalization macros (temporary, for this connection)."""
    con.execute("set enable_progress_bar = false")
    for name, body in MACROS.items():
        con.execute(f"create or replace temp macro {name}(x) as ({body})")
    con.execute(f"create or replace temp macro cdp_phone_nanp(x, country) as ({_NANP_FAST_PATH})")


def normalize_email(value: str | None) -> str | None:
    """Trim and lowercase an email; ``None`` if it is missing or malformed."""
    if value is None:
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: str | None, region: str | None = None) -> str | None:
    """A phone number in E.164 (``+14155550123``); ``None`` if missing or not a valid number."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.startswith("00"):  # the ITU international call prefix, as dialled from Europe
        value = "+" + value[2:]
    try:
        number = phonenumbers.parse(value, (region or DEFAULT_PHONE_REGION).upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phones(con: duckdb.DuckDBPyConnection, values_sql: str) -> str:
    """Name of a temp table ``(raw_phone, country, phone)`` for the distinct ``(raw_phone,
    country)`` rows of ``values_sql``: NANP numbers in SQL, every other one by ``phonenumbers``."""
    con.execute(
        f"""create or replace temp table _phones_sql as
        select raw_phone, coalesce(country, '') as country,
               cdp_phone_nanp(raw_phone, country) as phone
        from (select distinct raw_phone, country from ({values_sql}) where raw_phone is not null)"""
    )
    slow = con.execute("select raw_phone, country from _phones_sql where phone is null").fetchall()
    fixed = pa.table(
        {
            "raw_phone": pa.array([raw for raw, _ in slow], pa.string()),
            "country": pa.array([country for _, country in slow], pa.string()),
            "phone": pa.array(
                [normalize_phone(raw, country) for raw, country in slow], pa.string()
            ),
        }
    )
    con.register("_phones_library", fixed)
    con.execute(
        """create or replace temp table _phones as
        select * from _phones_sql where phone is not null
        union all select * from _phones_library"""
    )
    con.unregister("_phones_library")
    return "_phones"
