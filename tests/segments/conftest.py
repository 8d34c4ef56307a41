"""Fixtures: a real DuckDB file with a small marts.customer_profiles table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from segment_data import AS_OF, INJECTION, EventLog

from cdp.segments import bind_sources
from cdp.segments.compiler import compile_segment_query
from cdp.segments.rules import parse_rule

PROFILE_DDL = """
create table marts.customer_profiles (
    customer_id VARCHAR,
    is_known BOOLEAN,
    emails VARCHAR[],
    email VARCHAR,
    date_of_birth DATE,
    postcode VARCHAR,
    country VARCHAR,
    has_consent_email_marketing BOOLEAN,
    has_consent_personalization BOOLEAN,
    has_consent_advertising BOOLEAN,
    order_count BIGINT,
    lifetime_value DECIMAL(18, 2),
    recency_days INTEGER,
    frequency BIGINT,
    first_seen_at TIMESTAMP,
    events_30d BIGINT,
    top_intent_score DOUBLE
)
"""

# customer_id, is_known, emails, email, date_of_birth, postcode, country,
# consent email/personalization/advertising, order_count, lifetime_value, recency_days,
# frequency, first_seen_at, events_30d, top_intent_score
PROFILES: list[tuple[Any, ...]] = [
    ("c1", True, ["a@x.io"], "a@x.io", "1990-05-01", "10001", "US",
     True, True, False, 6, 1500, 10, 6, "2024-01-01 00:00:00", 25, 0.9),
    ("c2", True, ["b@x.io"], "b@x.io", "1985-01-15", "M5V", "CA",
     False, True, True, 2, 200, 90, 2, "2025-06-20 08:00:00", 5, 0.2),
    ("c3", False, None, None, None, None, "DE",
     None, None, None, 0, None, None, 0, "2025-06-25 09:30:00", 40, None),
    ("c4", None, ["d@x.io"], "d@x.io", "2000-12-31", "75001", None,
     True, False, None, 1, 600, 61, 1, "2025-03-01 00:00:00", 0, 0.5),
    ("c5", True, [], "e@x.io", None, None, INJECTION,
     True, True, True, 3, 50, 30, 3, "2025-05-31 12:00:00", 20, 0.0),
]  # fmt: skip


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A DuckDB file holding marts.customer_profiles with five customers."""
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(PROFILE_DDL)
    con.executemany(
        f"insert into marts.customer_profiles values ({', '.join('?' * len(PROFILES[0]))})",
        PROFILES,
    )
    con.close()
    return path


@pytest.fixture
def con(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the fixture warehouse, closed after the test."""
    connection = duckdb.connect(str(db_path))
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def segments_dir(tmp_path: Path) -> Path:
    """An empty folder for segment YAML files."""
    path = tmp_path / "segments"
    path.mkdir()
    return path


def _write_segment(folder: Path, name: str, rule: Any = None, /, **fields: Any) -> Path:
    """Write a segment YAML file (``stem`` overrides the file name); return its path."""
    stem = fields.pop("stem", name)
    body: dict[str, Any] = {
        "name": name,
        "description": f"test segment {name}",
        "owner": "tests",
        "kind": "static",
        "refresh": "daily",
    }
    if rule is not None:
        body["rule"] = rule
    body.update(fields)
    body = {k: v for k, v in body.items() if v is not ...}
    path = folder / f"{stem}.yml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), encoding="utf-8")
    return path


def _members_for(
    con: duckdb.DuckDBPyConnection, rule: Any, consent_purpose: str | None = None
) -> set[str]:
    """Customer ids a rule (YAML data) selects from the fixture profiles at ``AS_OF``."""
    columns = bind_sources(con)
    query = compile_segment_query(parse_rule(rule, columns), columns, consent_purpose)
    return {row[0] for row in con.execute(query.sql, query.bind(AS_OF)).fetchall()}


@pytest.fixture
def write_segment() -> Callable[..., Path]:
    """``write_segment(folder, name, rule, **fields)`` writes YAML; ``key=...`` omits a key."""
    return _write_segment


@pytest.fixture
def members_for() -> Callable[..., set[str]]:
    """``members_for(con, rule, consent_purpose=None)``: ids a rule selects at ``AS_OF``."""
    return _members_for


@pytest.fixture
def as_of() -> datetime:
    """The run time the fixture data is built around."""
    return AS_OF


@pytest.fixture
def injection() -> str:
    """A SQL-injection-shaped string (also stored as customer c5's country)."""
    return INJECTION


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    """An empty warehouse with the real raw/identity schema; add events with ``events.track``."""
    from cdp.warehouse import ensure_schema

    connection = duckdb.connect(str(tmp_path / "events.duckdb"))
    ensure_schema(connection)
    try:
        yield EventLog(connection)
    finally:
        connection.close()
