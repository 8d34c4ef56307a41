"""Helpers that write raw rows straight into a real warehouse for identity tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest

from cdp.warehouse import connect

BATCH_1 = datetime(2026, 11, 1)


class RawWriter:
    """Inserts CRM customers and analytics events as one loaded batch at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.loaded_at = BATCH_1
        self.line = 0

    def next_batch(self) -> None:
        """Later rows belong to a later load."""
        self.loaded_at += timedelta(hours=1)

    def _meta(self) -> list:
        self.line += 1
        return [f"b{self.loaded_at:%H}", "test", "f", self.line, self.loaded_at, f"h{self.line}"]

    def customer(self, crm_id: str, **fields: str | None) -> None:
        """One CRM customer row (``first_name``, ``email``, ``date_of_birth`` …)."""
        columns = ["crm_customer_id", *fields]
        values = [crm_id, *fields.values()]
        updated = self.loaded_at - timedelta(days=1)
        self.con.execute(
            f"insert into raw.crm_customers ({', '.join(columns)}, updated_at, _batch_id,"
            " _source, _source_file, _line_no, _loaded_at, _row_hash)"
            f" values ({', '.join('?' * len(values))}, ?, ?, ?, ?, ?, ?, ?)",
            [*values, updated, *self._meta()],
        )

    def event(self, event_type: str, anonymous_id=None, user_id=None, traits=None) -> None:
        """One analytics event."""
        self.con.execute(
            "insert into raw.analytics_events (message_id, type, event, anonymous_id, user_id,"
            ' "timestamp", traits, _batch_id, _source, _source_file, _line_no, _loaded_at,'
            " _row_hash) values (?, ?, 'x', ?, ?, '2026-11-01', ?, ?, ?, ?, ?, ?, ?)",
            [f"m{self.line}", event_type, anonymous_id, user_id,
             json.dumps(traits) if traits else None, *self._meta()],
        )  # fmt: skip


def clusters(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """record key → customer id."""
    rows = con.execute("select id_type, source_record_id, customer_id from identity.clusters")
    return {f"{t}:{r}": c for t, r, c in rows.fetchall()}


def crm(crm_id: str) -> str:
    """Record key of a CRM customer."""
    return f"crm_customer_id:{crm_id}"


@pytest.fixture
def warehouse(settings):
    """A writable warehouse connection and a raw-row writer on it."""
    with connect(settings) as con:
        yield con, RawWriter(con)
