"""Normalization: Python reference functions and the SQL forms used in bulk agree."""

from __future__ import annotations

import duckdb
import pytest

from identity import normalize_email, normalize_phone
from identity.normalize import install_macros


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  John.Smith@Example.COM ", "john.smith@example.com"), ("not-an-email", None),
     ("", None), (None, None)],
)  # fmt: skip
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


PHONES = [
    ("+1 415-555-2671", "US", "+14155552671"),
    ("(415) 555-2671", None, "+14155552671"),
    ("4155552671", "US", "+14155552671"),
    ("415.555.2671", "CA", "+14155552671"),
    ("001 415 555 2671", "US", "+14155552671"),
    ("+44 20 7946 0958", "GB", "+442079460958"),
    ("030 901820", "DE", "+4930901820"),
    ("0000000000", "US", None),
    ("12345", "US", None),
]


@pytest.mark.parametrize(("raw", "country", "expected"), PHONES)
def test_phones_become_e164_in_python_and_sql(raw, country, expected):
    assert normalize_phone(raw, country) == expected
    con = duckdb.connect()
    install_macros(con)
    (fast,) = con.execute("select cdp_phone_nanp(?, ?)", [raw, country]).fetchone()
    assert fast in (None, expected)  # the SQL fast path never disagrees with phonenumbers


def test_names_dates_codes_in_sql():
    con = duckdb.connect()
    install_macros(con)
    row = con.execute(
        "select cdp_name('  Zoë  O''Brien-Smith '), cdp_text('12, Main St.'),"
        " cdp_code('sw1a 1aa'), cdp_date('1984-03-09'), cdp_date(DATE '1984-03-09'),"
        " cdp_date('not a date'), cdp_email(' A@B.Co '), cdp_phonetic('robert')"
    ).fetchone()
    assert row == ("zoe obriensmith", "12 main st", "SW1A1AA", "19840309", "19840309", None,
                   "a@b.co", "r163")  # fmt: skip
