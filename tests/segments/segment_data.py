"""Shared test data for segment tests: fixture times, rules, hand-built events and landing files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb

from cdp.settings import Settings

#: The run time the profile and event fixtures are built around.
AS_OF = datetime(2025, 6, 30, 12, 0, 0)
#: A SQL-injection-shaped string (also stored as customer c5's country).
INJECTION = "x'); drop table marts.customer_profiles; --"

RAPID_BROWSERS = {
    "count": "product_viewed",
    "op": ">",
    "value": 3,
    "within": "10 minutes",
    "ending_within": "30 minutes",
}
CART_ABANDONERS = {
    "sequence": "product_added_to_cart",
    "then_no": "order_completed",
    "within": "15 minutes",
    "since": "24 hours",
}


class EventLog:
    """A real warehouse (``cdp.warehouse`` DDL) with hand-built analytics events and clusters."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._line = 0

    def customer(self, customer_id: str, *anonymous_ids: str) -> None:
        """Map anonymous ids to ``customer_id`` in ``identity.clusters`` (as identity would)."""
        for anonymous_id in anonymous_ids:
            self.con.execute(
                "insert into identity.clusters values ('analytics', 'anonymous_id', ?, ?, 't', ?)",
                [anonymous_id, customer_id, AS_OF],
            )

    def track(
        self,
        anonymous_id: str,
        event: str,
        at: datetime,
        category: str | None = None,
        price: float | None = None,
    ) -> None:
        """Append one track event as ingestion would store it."""
        self._line += 1
        self.con.execute(
            """
            insert into raw.analytics_events
                (message_id, type, event, anonymous_id, "timestamp", category, price,
                 _batch_id, _source, _source_file, _line_no, _loaded_at, _row_hash)
            values (?, 'track', ?, ?, ?, ?, ?, 'b', 'analytics/events', 'f.jsonl', ?, ?, ?)
            """,
            [
                f"m{self._line}",
                event,
                anonymous_id,
                at,
                category,
                price,
                self._line,
                at,
                str(self._line),
            ],
        )


MICRO_T = datetime(2026, 11, 20, 10, 30)


def land_events(settings: Settings, name: str, events: list[tuple[str, str, datetime]]) -> None:
    """Write a Segment-spec JSONL file of track events ``(anonymousId, event, at)``."""
    folder = settings.landing_dir / "analytics" / "events"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "messageId": f"{name}-{i}",
                "type": "track",
                "event": event,
                "anonymousId": anonymous_id,
                "timestamp": at.isoformat() + "Z",
                "properties": {"product_id": "p1", "category": "electronics", "price": 250.0},
            }
        )
        for i, (anonymous_id, event, at) in enumerate(events)
    ]
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def burst(anonymous_id: str) -> list[tuple[str, str, datetime]]:
    """Four product views in 4 minutes, 10 minutes before MICRO_T: a rapid browser at MICRO_T."""
    return [
        (anonymous_id, "product_viewed", MICRO_T - timedelta(minutes=m)) for m in (13, 12, 11, 10)
    ]
