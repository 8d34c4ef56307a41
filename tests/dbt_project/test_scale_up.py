"""bench.scale_up multiplies a real warehouse into a bigger one with the platform's exact schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bench.scale_up import SHIFT_MINUTES, scale_up
from cdp.warehouse import ensure_schema

LOADED = datetime(2026, 11, 1, 12, 0)


def _base_warehouse(path: Path) -> Path:
    """One CRM customer who logged in on a device, one order, one identify event, consent."""
    con = duckdb.connect(str(path))
    try:
        ensure_schema(con)
        meta = f"'b1', 'src', 'file.csv', 1, timestamp '{LOADED}', 'h1', null"
        con.execute(
            "insert into raw.crm_customers (crm_customer_id, email, updated_at, _batch_id,"
            " _source, _source_file, _line_no, _loaded_at, _row_hash, _extra) values"
            f" ('C1', 'ann@example.com', timestamp '2026-10-01 10:00', {meta})"
        )
        con.execute(
            "insert into raw.crm_orders (order_id, crm_customer_id, ordered_at, total_amount,"
            " _batch_id, _source, _source_file, _line_no, _loaded_at, _row_hash, _extra) values"
            f" ('O1', 'C1', timestamp '2026-10-02 10:00', 12.50, {meta})"
        )
        con.execute(
            "insert into raw.analytics_events (message_id, type, anonymous_id, user_id,"
            ' "timestamp", traits, trait_email, _batch_id, _source, _source_file, _line_no,'
            " _loaded_at, _row_hash, _extra) values ('m1', 'identify', 'a1', 'C1',"
            " timestamp '2026-10-03 10:00', '{\"email\": \"ann@example.com\"}',"
            f" 'ann@example.com', {meta})"
        )
        con.execute(
            "insert into raw.consent_events (email, purpose, status, recorded_at, _batch_id,"
            " _source, _source_file, _line_no, _loaded_at, _row_hash, _extra) values"
            f" ('ann@example.com', 'advertising', 'granted', timestamp '2026-10-04', {meta})"
        )
        con.executemany(
            "insert into identity.clusters values (?, ?, ?, 'cus_ann', 'r1', timestamp"
            f" '{LOADED}')",
            [
                ("crm", "crm_customer_id", "C1"),
                ("analytics", "user_id", "C1"),
                ("analytics", "anonymous_id", "a1"),
            ],
        )
    finally:
        con.close()
    return path


def test_copies_are_new_people_with_shifted_times_and_identity_coverage(tmp_path: Path) -> None:
    base = _base_warehouse(tmp_path / "base.duckdb")
    rows = scale_up(base, tmp_path / "big.duckdb", copies=3)
    assert rows["raw.analytics_events"] == 3
    assert rows["identity.clusters"] == 9
    assert rows["raw.privacy_erasure_requests"] == 0
    con = duckdb.connect(str(tmp_path / "big.duckdb"), read_only=True)
    try:
        events = con.execute(
            "select message_id, anonymous_id, user_id, trait_email, traits->>'email',"
            ' "timestamp", _batch_id from raw.analytics_events order by message_id'
        ).fetchall()
        assert events[0] == (
            "m1", "a1", "C1", "ann@example.com", "ann@example.com",
            datetime(2026, 10, 3, 10, 0), "b1",
        )  # fmt: skip
        assert events[2] == (
            "m1-2", "a1-2", "C1-2", "ann+2@example.com", "ann+2@example.com",
            datetime(2026, 10, 3, 10, 0) - timedelta(minutes=2 * SHIFT_MINUTES),
            "b1-2",
        )  # fmt: skip
        # every copied id resolves, each copy to its own customer
        resolved = con.execute(
            """
            select e.message_id, u.customer_id, a.customer_id, c.customer_id
            from raw.analytics_events as e
            join identity.clusters as u on u.id_type = 'user_id' and u.source_record_id = e.user_id
            join identity.clusters as a
                on a.id_type = 'anonymous_id' and a.source_record_id = e.anonymous_id
            join raw.crm_customers as crm on crm.crm_customer_id = e.user_id
            join identity.clusters as c
                on c.id_type = 'crm_customer_id' and c.source_record_id = crm.crm_customer_id
            order by 1
            """
        ).fetchall()
        assert resolved == [
            ("m1", "cus_ann", "cus_ann", "cus_ann"),
            ("m1-1", "cus_ann-1", "cus_ann-1", "cus_ann-1"),
            ("m1-2", "cus_ann-2", "cus_ann-2", "cus_ann-2"),
        ]
        assert con.execute("select list(email order by email) from raw.consent_events").fetchone()[
            0
        ] == ["ann+1@example.com", "ann+2@example.com", "ann@example.com"]
        assert con.execute(
            "select list(order_id order by order_id) from raw.crm_orders"
        ).fetchone()[0] == ["O1", "O1-1", "O1-2"]
    finally:
        con.close()


def test_refuses_an_existing_target_and_a_changed_raw_schema(tmp_path: Path) -> None:
    base = _base_warehouse(tmp_path / "base.duckdb")
    (tmp_path / "exists.duckdb").touch()
    with pytest.raises(FileExistsError, match="exists.duckdb exists"):
        scale_up(base, tmp_path / "exists.duckdb", copies=2)
    con = duckdb.connect(str(base))
    con.execute("alter table raw.thirdparty_intent drop column observed_at")
    con.close()
    with pytest.raises(ValueError, match=r"raw.thirdparty_intent has no columns \['observed_at'\]"):
        scale_up(base, tmp_path / "big.duckdb", copies=2)
