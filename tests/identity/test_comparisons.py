"""Comparison levels and model scores as the SQL computes them, on pairs with a known answer."""

from __future__ import annotations

import math

import duckdb
import pytest

from identity.comparisons import level_sql
from identity.model import FellegiSunterModel

LEVELS = [
    # kind, left, right, level
    ("name", "smith", "smith", 3),
    ("name", "smith", "smyth", 1),  # Jaro–Winkler 0.89
    ("name", "li", "lu", 1),  # one typo in a short name: Jaro–Winkler below 0.8, one edit
    ("name", "li", "xu", 0),
    ("name", "ann", None, -1),
    ("date", "19840309", "19840309", 3),
    ("date", "19840309", "19840390", 2),  # two digits transposed
    ("date", "19840309", "19841309", 2),  # one digit wrong
    ("date", "19840309", "19840903", 2),  # month and day swapped
    ("date", "19840309", "19841231", 1),  # same year
    ("date", "19840309", "19500101", 0),
    ("code", "12345", "12345", 2),
    ("code", "12345", "12354", 1),  # transposition
    ("code", "12345", "1234", 1),  # one deleted character (lengths differ)
    ("code", "12345", "13254", 0),
    ("code", "12345", "21435", 0),  # two transpositions
    ("text", "12 main st", "12 main street", 1),
    ("text", "12 main st", "99 oak avenue", 0),
    ("exact", "a@b.co", "a@b.co", 1),
    ("exact", "a@b.co", "c@b.co", 0),
]


def _level(con: duckdb.DuckDBPyConnection, column: str, kind: str, rows: list[tuple]) -> list:
    """Levels of ``column`` for rows ``(left first, left last, right first, right last, …)``
    held in a table, as the pipeline evaluates them (columns, not constants)."""
    con.execute(
        "create or replace temp table l_r (l_first VARCHAR, l_last VARCHAR, l_value VARCHAR,"
        " r_first VARCHAR, r_last VARCHAR, r_value VARCHAR, n INTEGER)"
    )
    con.executemany("insert into l_r values (?, ?, ?, ?, ?, ?, ?)", rows)
    return [
        level
        for (level,) in con.execute(
            f"""select {level_sql(column, kind)} from (
                select n, l_first as first_name, l_last as last_name, l_value as value
                from l_r) as l
            join (select n, r_first as first_name, r_last as last_name, r_value as value
                  from l_r) as r using (n)
            order by n"""
        ).fetchall()
    ]


@pytest.mark.parametrize(("kind", "left", "right", "expected"), LEVELS)
def test_comparison_levels(kind, left, right, expected):
    con = duckdb.connect()
    assert _level(con, "value", kind, [(None, None, left, None, None, right, 1)]) == [expected]


def test_swapped_first_and_last_names_agree_at_level_two():
    con = duckdb.connect()
    rows = [
        ("ann", "lee", None, "lee", "ann", None, 1),  # swapped
        ("ann", "lee", None, "lee", "bo", None, 2),  # only one name sits in the other field
    ]
    assert _level(con, "first_name", "name", rows) == [2, 0]


def test_scores_per_pattern_plus_term_frequency_are_the_fellegi_sunter_log_odds():
    model = FellegiSunterModel(
        comparisons={"first_name": "name", "email": "exact"},
        m={"first_name": [0.05, 0.1, 0.15, 0.7], "email": [0.2, 0.8]},
        u={"first_name": [0.9, 0.05, 0.04, 0.01], "email": [0.999, 0.001]},
        lambda_=0.1,
    )
    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values (3, 1, 0.002), (3, 0, null), (1, -1, 0.5),"
        " (0, 0, 0.002)) as v(g_first_name, g_email, tf_first_name)"
    )
    got = con.execute(
        f"select {model.log2_odds_sql()} + {model.term_frequency_sql(('first_name',))} from t"
    ).fetchall()
    prior = math.log2(0.1 / 0.9)
    expected = [
        prior + math.log2(0.7 / 0.002) + math.log2(0.8 / 0.001),  # rare name: tf share
        prior + math.log2(0.7 / 0.01) + math.log2(0.2 / 0.999),  # no share known: u
        prior + math.log2(0.1 / 0.05),  # not an exact match: tf plays no part; email missing
        prior + math.log2(0.05 / 0.9) + math.log2(0.2 / 0.999),
    ]
    assert [value for (value,) in got] == pytest.approx(expected, abs=1e-9)
