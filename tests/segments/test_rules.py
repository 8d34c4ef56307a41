"""Rule compilation: every operator, nesting, NULL handling, consent and SQL safety."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import duckdb
import pytest

from cdp.segments import (
    Condition,
    Op,
    RuleError,
    bind_sources,
    compile_segment_query,
    parse_rule,
)

ALL = {"c1", "c2", "c3", "c4", "c5"}
Members = Callable[..., set[str]]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"field": "country", "op": "=", "value": "US"}, {"c1"}),
        ({"field": "country", "op": "!=", "value": "US"}, {"c2", "c3", "c5"}),
        ({"field": "lifetime_value", "op": ">", "value": 600}, {"c1"}),
        ({"field": "lifetime_value", "op": ">=", "value": 600}, {"c1", "c4"}),
        ({"field": "lifetime_value", "op": "<", "value": 200}, {"c5"}),
        ({"field": "lifetime_value", "op": "<=", "value": 200}, {"c2", "c5"}),
        ({"field": "top_intent_score", "op": ">=", "value": 0.5}, {"c1", "c4"}),
        ({"field": "country", "op": "in", "value": ["US", "CA"]}, {"c1", "c2"}),
        ({"field": "country", "op": "not_in", "value": ["US", "CA"]}, {"c3", "c5"}),
        ({"field": "country", "op": "contains", "value": "U"}, {"c1"}),
        ({"field": "country", "op": "contains", "value": "drop table"}, {"c5"}),
        ({"field": "order_count", "op": "in", "value": [0, 1]}, {"c3", "c4"}),
        ({"field": "country", "op": "is_null"}, {"c4"}),
        ({"field": "lifetime_value", "op": "is_not_null"}, {"c1", "c2", "c4", "c5"}),
        ({"field": "emails", "op": "is_null"}, {"c3"}),
        ({"field": "is_known", "op": "=", "value": False}, {"c3"}),
        ({"field": "is_known", "op": "!=", "value": True}, {"c3"}),
        ({"field": "postcode", "op": ">", "value": "5"}, {"c2", "c4"}),
        # as_of is 2025-06-30 12:00, so 30 days back is 2025-05-31 12:00 (inclusive)
        ({"field": "first_seen_at", "op": "within_days", "value": 30}, {"c2", "c3", "c5"}),
        ({"field": "first_seen_at", "op": "older_than_days", "value": 30}, {"c1", "c4"}),
        ({"field": "first_seen_at", "op": "within_days", "value": 7}, {"c3"}),
        ({"field": "first_seen_at", "op": "<", "value": date(2025, 1, 1)}, {"c1"}),
        ({"field": "first_seen_at", "op": ">=", "value": "2025-06-20T08:00:00"}, {"c2", "c3"}),
        ({"field": "date_of_birth", "op": ">=", "value": "2000-01-01"}, {"c4"}),
        ({"field": "date_of_birth", "op": "older_than_days", "value": 365 * 30}, {"c1", "c2"}),
        ({"field": "date_of_birth", "op": "within_days", "value": 365 * 30}, {"c4"}),
    ],
)
def test_each_op(
    con: duckdb.DuckDBPyConnection, members_for: Members, rule: dict, expected: set[str]
) -> None:
    assert members_for(con, rule) == expected


def test_all_any_not_nesting(con: duckdb.DuckDBPyConnection, members_for: Members) -> None:
    rule = {
        "all": [
            {"field": "lifetime_value", "op": ">=", "value": 100},
            {
                "any": [
                    {"field": "country", "op": "=", "value": "US"},
                    {"not": {"field": "country", "op": "in", "value": ["US", "CA"]}},
                ]
            },
        ]
    }
    # c4 has no country: `in` does not match it, so `not in-rule` does
    assert members_for(con, rule) == {"c1", "c4"}
    assert members_for(con, {"not": {"not": rule}}) == {"c1", "c4"}
    assert members_for(con, {"any": [rule, {"field": "events_30d", "op": ">", "value": 30}]}) == {
        "c1",
        "c3",
        "c4",
    }


@pytest.mark.parametrize(
    "rule",
    [
        {"field": "country", "op": "!=", "value": "US"},
        {"field": "lifetime_value", "op": ">", "value": 100},
        {"field": "first_seen_at", "op": "within_days", "value": 30},
        {
            "any": [
                {"field": "is_known", "op": "=", "value": True},
                {"field": "top_intent_score", "op": "<", "value": 0.3},
            ]
        },
    ],
)
def test_not_is_the_exact_complement(
    con: duckdb.DuckDBPyConnection, members_for: Members, rule: dict
) -> None:
    matched = members_for(con, rule)
    negated = members_for(con, {"not": rule})
    assert matched | negated == ALL
    assert not matched & negated


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        (None, ALL),
        ("email_marketing", {"c1", "c4", "c5"}),
        ("personalization", {"c1", "c2", "c5"}),
        ("advertising", {"c2", "c5"}),
    ],
)
def test_consent_is_enforced_by_the_compiler(
    con: duckdb.DuckDBPyConnection, members_for: Members, purpose: str | None, expected: set[str]
) -> None:
    everyone = {"field": "order_count", "op": ">=", "value": 0}
    assert members_for(con, everyone, purpose) == expected


def test_consent_needs_its_column(con: duckdb.DuckDBPyConnection) -> None:
    columns = {"customer_id": "VARCHAR", "country": "VARCHAR"}
    rule = parse_rule({"field": "country", "op": "is_null"}, columns)
    with pytest.raises(RuleError, match="has_consent_email_marketing"):
        compile_segment_query(rule, columns, "email_marketing")


def test_injection_shaped_values_are_data(
    con: duckdb.DuckDBPyConnection, members_for: Members, injection: str
) -> None:
    columns = bind_sources(con)
    rule = parse_rule({"field": "country", "op": "=", "value": injection}, columns)
    query = compile_segment_query(rule, columns)
    assert injection not in query.sql
    assert injection in query.params.values()
    assert members_for(con, {"field": "country", "op": "=", "value": injection}) == {"c5"}
    assert members_for(con, {"field": "country", "op": "in", "value": ["US", injection]}) == {
        "c1",
        "c5",
    }
    other = "'; delete from marts.customer_profiles where '1'='1"
    assert members_for(con, {"field": "country", "op": "=", "value": other}) == set()
    assert con.execute("select count(*) from marts.customer_profiles").fetchone() == (5,)


@pytest.mark.parametrize(
    "field",
    [
        "country\" = 'US' or \"1",
        "country; drop table marts.customer_profiles; --",
        "1=1",
    ],
)
def test_injection_shaped_fields_are_rejected(con: duckdb.DuckDBPyConnection, field: str) -> None:
    columns = bind_sources(con)
    with pytest.raises(RuleError, match="unknown field"):
        parse_rule({"field": field, "op": "is_null"}, columns)
    # a hand-built AST is checked again at compile time: unchecked names never reach SQL
    with pytest.raises(RuleError, match="unknown field"):
        compile_segment_query(Condition(field, Op.IS_NULL), columns)


def test_odd_column_names_are_quoted(con: duckdb.DuckDBPyConnection, members_for: Members) -> None:
    column = '"tier ""gold"""'
    con.execute(f"alter table marts.customer_profiles add column {column} VARCHAR")
    con.execute(f"update marts.customer_profiles set {column} = 'yes' where customer_id = 'c2'")
    assert members_for(con, {"field": 'tier "gold"', "op": "=", "value": "yes"}) == {"c2"}


def test_compiled_sql_is_independent_of_as_of(con: duckdb.DuckDBPyConnection) -> None:
    columns = bind_sources(con)
    rule = parse_rule({"field": "first_seen_at", "op": "within_days", "value": 10}, columns)
    query = compile_segment_query(rule, columns)
    assert query.sql.count("$p") == 2
    first = query.bind(datetime(2025, 1, 11))
    second = query.bind(datetime(2025, 2, 11))
    assert first == {"p0": datetime(2025, 1, 1), "p1": datetime(2025, 1, 11)}
    assert second == {"p0": datetime(2025, 2, 1), "p1": datetime(2025, 2, 11)}


def test_every_value_is_a_placeholder(con: duckdb.DuckDBPyConnection) -> None:
    columns = bind_sources(con)
    raw: dict[str, Any] = {
        "all": [
            {"field": "lifetime_value", "op": ">=", "value": 12345},
            {"field": "country", "op": "not_in", "value": ["ZZ", "YY"]},
        ]
    }
    query = compile_segment_query(parse_rule(raw, columns), columns)
    assert '(p."lifetime_value" >= $p0 and p."country" not in ($p1, $p2))' in query.sql
    assert query.params == {"p0": 12345, "p1": "ZZ", "p2": "YY"}
