"""Publishing the analyst snapshot: pseudonymized, atomic, read-only, audited, rollback-able."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest
from conftest import fill_warehouse

from cdp.publish import (
    PublishError,
    history_snapshots,
    publish_snapshot,
    rollback_snapshot,
    snapshot_path,
)
from cdp.publish.pii import hmac_sha256_hex
from cdp.settings import load_settings
from cdp.warehouse import connect

AS_OF = datetime(2024, 6, 30)


def _read(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_snapshot_holds_analyst_tables_with_pii_replaced_by_keyed_hash(publish_settings):
    result = publish_snapshot(publish_settings, "run-1", AS_OF)
    path = snapshot_path(publish_settings)
    assert result.snapshot_path == path and not result.uses_dev_key

    tables = _read(path, "select schema_name || '.' || table_name from duckdb_tables() order by 1")
    assert [t for (t,) in tables] == [
        "identity.clusters",
        "marts.customer_profiles",
        "marts.fct_orders",
        "marts.vip",  # a view, published as a table
        "segments.membership",
        "snapshot.info",
    ]
    profiles = _read(path, "select * from marts.customer_profiles order by customer_id")
    key = "test-key-123"
    assert profiles[0] == (
        "cust-a",
        hmac_sha256_hex(key, "alice@example.com"),
        [hmac_sha256_hex(key, "alice@example.com"), hmac_sha256_hex(key, "a@work.example")],
        hmac_sha256_hex(key, "Alice"),
        datetime(1990, 1, 1).date(),  # year only
        150.5,
    )
    assert profiles[2] == ("cust-c", None, None, None, None, 0.0)
    [(order_crm_id,)] = _read(path, "select crm_customer_id from marts.fct_orders")
    assert order_crm_id == hmac_sha256_hex(key, "CRM-1")
    assert _read(path, "select source_record_id from identity.clusters order by customer_id") == [
        (hmac_sha256_hex(key, "alice@example.com"),),
        (hmac_sha256_hex(key, "anon-9"),),
    ]
    # joins and distinct counts still work: the same value always hashes the same
    assert _read(
        path, "select count(*) from marts.vip join marts.customer_profiles using (customer_id)"
    ) == [(1,)]
    [(publish_id, run_id, counts, protected)] = _read(
        path, "select publish_id, run_id, row_counts, pseudonymized_columns from snapshot.info"
    )
    assert (publish_id, run_id) == (result.publish_id, "run-1")
    assert json.loads(counts)["marts.customer_profiles"] == 3
    assert "marts.customer_profiles.email" in protected


def test_no_plaintext_pii_and_no_key_anywhere_in_the_file(publish_settings):
    publish_snapshot(publish_settings, "run-1", AS_OF)
    content = snapshot_path(publish_settings).read_bytes()
    for secret in (b"alice@example.com", b"bob@example.com", b"CRM-1", b"anon-9", b"test-key-123"):
        assert secret not in content
    assert b"cust-a" in content  # the customer id itself is not PII


def test_snapshot_is_read_only_and_never_holds_the_working_warehouse(publish_settings):
    publish_snapshot(publish_settings, "run-1", AS_OF)
    path = snapshot_path(publish_settings)
    assert path.stat().st_mode & 0o777 == 0o444  # a read-write open fails (for non-root users)
    # the working warehouse is free again for the next writer
    with connect(publish_settings) as con:
        [(action, profiles, dev_key)] = con.execute(
            "select action, profiles_rows, uses_dev_key from audit.publishes"
        ).fetchall()
    assert (action, profiles, dev_key) == ("publish", 3, False)


def test_keeps_n_previous_snapshots_and_rolls_back_to_the_last_one(publish_settings):
    ids = []
    for count in range(4):
        fill_warehouse(
            publish_settings, [(f"c{i}", None, None, None, None, 1.0) for i in range(count + 1)]
        )
        ids.append(publish_snapshot(publish_settings, f"run-{count}", AS_OF).publish_id)
    kept = history_snapshots(publish_settings)
    assert [p.name for p in kept] == [f"warehouse-{i}.duckdb" for i in ids[1:]]  # keep=2 + current
    assert not list(publish_settings.publish_dir.glob(".*tmp"))

    restored = rollback_snapshot(publish_settings)
    assert restored.publish_id == ids[2]
    path = snapshot_path(publish_settings)
    assert _read(path, "select count(*) from marts.customer_profiles") == [(3,)]
    assert _read(path, "select publish_id from snapshot.info") == [(ids[2],)]
    with connect(publish_settings) as con:
        rows = con.execute(
            "select action, publish_id from audit.publishes order by published_at"
        ).fetchall()
    assert rows[-1] == ("rollback", ids[2])
    rollback_snapshot(publish_settings)
    with pytest.raises(PublishError, match="nothing to roll back to"):
        rollback_snapshot(publish_settings)


def test_dev_key_is_flagged(tmp_path, caplog):
    settings = load_settings({"CDP_HOME": str(tmp_path / "home")})
    settings.ensure_dirs()
    fill_warehouse(settings)
    assert settings.uses_dev_pseudonymization_key
    assert publish_snapshot(settings, "run-1", AS_OF).uses_dev_key
    assert "DEV pseudonymization key" in caplog.text


def test_publishing_without_a_warehouse_is_a_clear_error(tmp_path):
    settings = load_settings({"CDP_HOME": str(tmp_path / "empty")})
    with pytest.raises(PublishError, match="no warehouse at"):
        publish_snapshot(settings, "run-1", AS_OF)
