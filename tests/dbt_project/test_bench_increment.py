"""bench.dbt_build lands the increment it says: a day of new traffic plus late arrivals, or a
backfill spread over the history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from bench.dbt_build import AS_OF, land_new_events
from cdp.settings import Settings, load_settings
from cdp.warehouse import ensure_schema

HISTORY_DAYS = 10
EVENTS_PER_HOUR = 10


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A warehouse with 10 events an hour over the 10 days before the as_of, 20 visitors."""
    settings = load_settings({"CDP_HOME": str(tmp_path)})
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        ensure_schema(con)
        con.execute(
            f"""
            insert into raw.analytics_events (message_id, type, anonymous_id, user_id,
                "timestamp", _batch_id, _source, _source_file, _line_no, _loaded_at, _row_hash)
            select 'm' || i, 'page', 'a' || (i % 20), case when i % 2 = 0 then 'C' || (i % 20) end,
                timestamp '{AS_OF}' - interval (i * 6) minute, 'b1', 'analytics', 'f.jsonl', i,
                timestamp '{AS_OF}', 'h' || i
            from range(1, {HISTORY_DAYS * 24 * EVENTS_PER_HOUR}) as t(i)
            """
        )
    finally:
        con.close()
    return settings


def _landed(settings: Settings) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(
            'select message_id, anonymous_id, user_id, "timestamp" from raw.analytics_events'
            " where _batch_id = 'bench-increment'"
        ).fetchall()
    finally:
        con.close()


def test_recent_increment_is_the_next_hours_of_traffic_plus_late_arrivals(settings) -> None:
    what, as_of = land_new_events(settings, 200, "recent", late_share=0.1, new_visitor_share=0.5)
    landed = _landed(settings)
    assert len(landed) == 200
    assert len({message_id for message_id, *_ in landed}) == 200
    span = as_of - AS_OF
    assert timedelta(hours=17) <= span <= timedelta(hours=19)  # 180 events at 10 an hour
    recent = [row for row in landed if row[3] > AS_OF]
    late = [row for row in landed if row[3] <= AS_OF]
    assert len(recent) == 180 and all(row[3] <= as_of for row in recent)
    assert len(late) == 20 and min(row[3] for row in late) < AS_OF - timedelta(days=5)
    new_visitors = [row for row in recent if "-bench-" in (row[1] or "")]
    assert 0 < len(new_visitors) < len(recent)
    assert all(row[2] is None for row in new_visitors)  # a new visitor is not logged in
    assert what.startswith("180 in the next") and what.endswith("+ 20 late")


def test_spread_increment_is_a_backfill_and_keeps_the_as_of(settings) -> None:
    what, as_of = land_new_events(settings, 100, "spread", late_share=0.0, new_visitor_share=0.0)
    landed = _landed(settings)
    assert as_of == AS_OF
    assert len(landed) == 100 and what == "100 spread over the history"
    assert all(row[3] <= AS_OF for row in landed)
    assert max(row[3] for row in landed) - min(row[3] for row in landed) > timedelta(days=5)
