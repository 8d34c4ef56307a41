"""Multiply a real, small warehouse into a big one in DuckDB SQL (for the dbt benchmark).

``python -m bench.scale_up --base DIR --home DIR --copies N``

The real generator + ingestion would need ~40 min for 50M events on 2 cores, so the big
warehouse is made from a small one that the real pipeline built (``python -m bench --customers
20000 --events 1000000 --home DIR``: generate → ingest → identity) by copying it ``N`` times in
SQL. Copy ``k`` (0 … N-1) is a new population of the same shape:

- every id gets the suffix ``-k`` (copy 0 keeps the original ids): CRM customer ids, order ids,
  message ids, anonymous ids, user ids (= CRM ids, so logins still point at their CRM record),
  erasure request ids, batch ids, source files, row hashes, and in ``identity.clusters`` the
  record ids and the ``customer_id`` — so identity covers every copied record exactly like the
  real resolution covered the base (merges, anonymous-only visitors, unresolved ids included);
- every email gets the plus-address ``+k`` (CRM, consent, intent, identify traits), so emails
  stay unique per copy and still match between sources;
- every business timestamp (event time, order time, CRM created/updated, consent, intent,
  erasure) moves ``k × 11`` minutes earlier, so copies do not share exact timestamps but keep
  their sessions and 7/30/90-day windows.

Tables are created with the platform's own DDL (``cdp.warehouse.ensure_schema``), so the raw
schemas are exactly the ones ingestion writes; ``audit.load_batches`` is copied with the same
renaming. Only what dbt and the gates read is copied: the other ``identity.*`` tables (edges,
identifiers, model state) and ``quarantine.rows`` stay empty — an identity run on the result
would start from scratch.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb

from cdp.settings import load_settings
from cdp.warehouse import connect

#: Minutes each copy's timestamps move back, per copy number.
SHIFT_MINUTES = 11

#: DuckDB memory cap while copying (above it DuckDB spills next to the new warehouse).
MEMORY_LIMIT = "4GB"

#: How each kind of column is rewritten for copy ``k`` > 0 ({c} = the column, {k} = the copy).
REWRITES = {
    "id": "{c} || '-{k}'",
    "email": "replace({c}, '@', '+{k}@')",
    "json_email": "replace({c}::varchar, '@', '+{k}@')::json",
    "time": f"{{c}} - to_minutes({{k}} * {SHIFT_MINUTES})",
}

RAW_METADATA = {"_batch_id": "id", "_source_file": "id", "_row_hash": "id"}

#: Table → {column: kind of rewrite}; columns not named are copied as they are.
TABLES: dict[str, dict[str, str]] = {
    "raw.crm_customers": {
        "crm_customer_id": "id",
        "email": "email",
        "created_at": "time",
        "updated_at": "time",
        **RAW_METADATA,
    },
    "raw.crm_orders": {
        "order_id": "id",
        "crm_customer_id": "id",
        "ordered_at": "time",
        **RAW_METADATA,
    },
    "raw.analytics_events": {
        "message_id": "id",
        "anonymous_id": "id",
        "user_id": "id",
        "order_id": "id",
        "trait_email": "email",
        "traits": "json_email",
        "timestamp": "time",
        **RAW_METADATA,
    },
    "raw.consent_events": {
        "crm_customer_id": "id",
        "email": "email",
        "recorded_at": "time",
        **RAW_METADATA,
    },
    "raw.thirdparty_intent": {"email": "email", "observed_at": "time", **RAW_METADATA},
    "raw.privacy_erasure_requests": {
        "request_id": "id",
        "crm_customer_id": "id",
        "email": "email",
        "requested_at": "time",
        **RAW_METADATA,
    },
    "identity.clusters": {"source_record_id": "id", "customer_id": "id"},
    "audit.load_batches": {"batch_id": "id", "source_file": "id", "supersedes_batch_id": "id"},
}


def base_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of ``base.<table>`` in table order."""
    schema, name = table.split(".")
    return [
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns"
            " where table_catalog = 'base' and table_schema = ? and table_name = ?"
            " order by ordinal_position",
            [schema, name],
        ).fetchall()
    ]


def copy_select(table: str, columns: list[str], rewrites: dict[str, str], k: int) -> str:
    """``select`` of every column of ``base.<table>`` as copy ``k`` (copy 0 is the base as is)."""
    missing = set(rewrites) - set(columns)
    if missing:
        raise ValueError(f"base.{table} has no columns {sorted(missing)}: the raw schema changed")
    expressions = [
        REWRITES[rewrites[c]].format(c=f'"{c}"', k=k) if c in rewrites and k else f'"{c}"'
        for c in columns
    ]
    return f"select {', '.join(expressions)} from base.{table}"


def scale_up(base_warehouse: Path, target_warehouse: Path, copies: int) -> dict[str, int]:
    """Write ``copies`` renamed copies of the base's raw tables, identity.clusters and load
    batches into a new warehouse; returns the rows per table."""
    if target_warehouse.exists():
        raise FileExistsError(f"{target_warehouse} exists; scale_up writes a new warehouse")
    settings = load_settings({"CDP_WAREHOUSE": str(target_warehouse)})
    rows: dict[str, int] = {}
    with connect(settings) as con:  # creates every schema with the platform's DDL
        con.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
        con.execute(f"attach '{base_warehouse}' as base (read_only)")
        for table, rewrites in TABLES.items():
            columns = base_columns(con, table)
            for k in range(copies):  # copy by copy, as if each copy were a later load
                con.execute(f"insert into {table} {copy_select(table, columns, rewrites, k)}")
            rows[table] = con.execute(f"select count(*) from {table}").fetchone()[0]
        con.execute("detach base")
    return rows


def main() -> None:
    """Scale a benchmark warehouse up and print the rows per table."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale_up", description=__doc__)
    parser.add_argument("--base", required=True, help="CDP_HOME of a `python -m bench` run")
    parser.add_argument("--home", required=True, help="new CDP_HOME for the scaled warehouse")
    parser.add_argument("--copies", type=int, required=True, help="copies of the base (>= 1)")
    args = parser.parse_args()
    if args.copies < 1:
        parser.error("--copies must be at least 1")
    base = load_settings({"CDP_HOME": args.base}).warehouse_path
    if not base.exists():
        parser.error(f"no warehouse at {base}; run `python -m bench --home {args.base}` first")
    settings = load_settings({"CDP_HOME": args.home})
    settings.ensure_dirs()
    started = time.perf_counter()
    try:
        rows = scale_up(base, settings.warehouse_path, args.copies)
    except (FileExistsError, ValueError) as error:
        parser.error(str(error))
    print(f"scaled {base} x{args.copies} into {settings.warehouse_path}"
          f" in {time.perf_counter() - started:.0f} s")  # fmt: skip
    for table, count in rows.items():
        print(f"  {table}: {count:,} rows")


if __name__ == "__main__":
    main()
