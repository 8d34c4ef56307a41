"""``audit.publishes``: every publish and rollback of the analyst snapshot, in the warehouse."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

PUBLISHES_DDL = """
create table if not exists audit.publishes (
    publish_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL,          -- 'publish' or 'rollback'
    run_id VARCHAR NOT NULL,
    as_of TIMESTAMP,
    published_at TIMESTAMP NOT NULL,
    snapshot_path VARCHAR NOT NULL,
    row_counts JSON,
    profiles_rows BIGINT,
    pseudonymized_columns VARCHAR[],
    uses_dev_key BOOLEAN NOT NULL
)
"""


def record_publish(
    con: duckdb.DuckDBPyConnection,
    *,
    publish_id: str,
    action: str,
    run_id: str,
    as_of: datetime | None,
    published_at: datetime,
    snapshot_path: str,
    row_counts: dict[str, int] | None,
    protected_columns: list[str] | None,
    uses_dev_key: bool,
) -> None:
    """Append one publish (or rollback) to ``audit.publishes``."""
    con.execute(PUBLISHES_DDL)
    profiles = (row_counts or {}).get("marts.customer_profiles")
    con.execute(
        "insert into audit.publishes values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            publish_id,
            action,
            run_id,
            as_of,
            published_at,
            snapshot_path,
            None if row_counts is None else json.dumps(row_counts),
            profiles,
            protected_columns,
            uses_dev_key,
        ],
    )


def last_published_profiles(con: duckdb.DuckDBPyConnection) -> int | None:
    """Rows of ``marts.customer_profiles`` in the snapshot now published (None before the first)."""
    con.execute(PUBLISHES_DDL)
    row = con.execute(
        """
        select profiles_rows from audit.publishes
        order by published_at desc
        limit 1
        """
    ).fetchone()
    return None if row is None else row[0]
