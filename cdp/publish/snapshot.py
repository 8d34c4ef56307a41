"""Build one analyst snapshot: a new DuckDB file of the analyst-facing tables, PII hashed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from cdp.publish.pii import (
    HASHED_COLUMNS,
    YEAR_ONLY_COLUMNS,
    pseudonymize_macro_sql,
    published_expression,
)

#: Every table and view of these warehouse schemas is published (schemas that do not exist yet,
#: e.g. ``ml`` before the first model run, are skipped).
PUBLISHED_SCHEMAS = ("marts", "segments", "ml")
#: Single tables published from other schemas.
PUBLISHED_TABLES = (("identity", "clusters"),)


@dataclass(frozen=True)
class SnapshotInfo:
    """What one snapshot holds: rows per ``schema.table`` and the columns that were protected."""

    publish_id: str
    row_counts: dict[str, int]
    protected_columns: list[str]


def _published_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    schemas = ", ".join(f"'{s}'" for s in PUBLISHED_SCHEMAS)
    rows = con.execute(
        f"""
        select schema_name, table_name from duckdb_tables()
        where database_name = 'wh' and schema_name in ({schemas})
        union
        select schema_name, view_name from duckdb_views()
        where database_name = 'wh' and schema_name in ({schemas}) and not internal
        order by 1, 2
        """
    ).fetchall()
    present = set(
        con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'wh'"
        ).fetchall()
    )
    return [*rows, *(t for t in PUBLISHED_TABLES if t in present)]


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        """
        select column_name, data_type from duckdb_columns()
        where database_name = 'wh' and schema_name = ? and table_name = ?
        order by column_index
        """,
        [schema, table],
    ).fetchall()


def build_snapshot(
    warehouse: Path, target: Path, key: str, publish_id: str, run_id: str, as_of: datetime
) -> SnapshotInfo:
    """Write ``target`` (must not exist) from the warehouse, fsync it, and describe it."""
    con = duckdb.connect(str(target))
    try:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        con.execute(pseudonymize_macro_sql(key))
        row_counts: dict[str, int] = {}
        protected: list[str] = []
        for schema, table in _published_tables(con):
            columns = _columns(con, schema, table)
            select = ",\n    ".join(published_expression(name, kind) for name, kind in columns)
            con.execute(f'create schema if not exists "{schema}"')
            con.execute(
                f'create table "{schema}"."{table}" as select\n    {select}\n'
                f'from wh."{schema}"."{table}"'
            )
            name = f"{schema}.{table}"
            [(row_counts[name],)] = con.execute(
                f'select count(*) from "{schema}"."{table}"'
            ).fetchall()
            protected += [
                f"{name}.{column}"
                for column, _ in columns
                if column in HASHED_COLUMNS | YEAR_ONLY_COLUMNS
            ]
        con.execute("create schema snapshot")
        con.execute(
            """
            create table snapshot.info as select
                ? as publish_id, ? as run_id, cast(? as timestamp) as as_of,
                cast(? as json) as row_counts, cast(? as varchar[]) as pseudonymized_columns
            """,
            [publish_id, run_id, as_of, json.dumps(row_counts), protected],
        )
        con.execute("detach wh")
        con.execute("checkpoint")
    finally:
        con.close()
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    return SnapshotInfo(publish_id, row_counts, protected)
