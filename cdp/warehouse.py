"""The DuckDB warehouse: connections and the tables MicroCDP owns outside dbt.

All timestamps in the warehouse are UTC, stored as ``TIMESTAMP`` (without time zone).
DuckDB allows one writing process per file: open a connection, do the work, close it
(``with connect(settings) as con: ...``) so dbt and other steps can open the file next.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from cdp.contracts import CONTRACTS, Contract
from cdp.settings import Settings

#: Columns every ``raw.*`` table carries besides the source's own. The row hash (random hex)
#: compresses little; zstd writes it at two thirds of the CPU of DuckDB's dictionary + FSST,
#: at 9 % more space.
RAW_METADATA_COLUMNS = """
    _batch_id VARCHAR NOT NULL,
    _source VARCHAR NOT NULL,
    _source_file VARCHAR NOT NULL,
    _line_no BIGINT NOT NULL,
    _loaded_at TIMESTAMP NOT NULL,
    _row_hash VARCHAR NOT NULL USING COMPRESSION zstd,
    _extra JSON
"""

#: SQL type of each contract field kind.
SQL_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "decimal": "DECIMAL(18, 2)",
    "integer": "INTEGER",
    "double": "DOUBLE",
    "json": "JSON",
}


def raw_table_name(source_entity: str) -> str:
    """``crm/customers`` → ``raw.crm_customers``."""
    return "raw." + source_entity.replace("/", "_")


def raw_table_ddl(contract: Contract) -> str:
    """``create table`` statement for the raw table of one landing contract."""
    columns = ", ".join(
        f'"{f.column}" {SQL_TYPES[f.kind]}{" NOT NULL" if f.required else ""}'
        + (f" USING COMPRESSION {f.compression}" if f.compression else "")
        for f in contract.fields
    )
    return (
        f"create table if not exists {raw_table_name(contract.source_entity)} "
        f"({columns}, {RAW_METADATA_COLUMNS})"
    )


SCHEMA_DDL = [
    "create schema if not exists raw",
    "create schema if not exists quarantine",
    "create schema if not exists audit",
    "create schema if not exists identity",
    *(raw_table_ddl(contract) for contract in CONTRACTS.values()),
    """
    create table if not exists quarantine.rows (
        _batch_id VARCHAR NOT NULL,
        _source VARCHAR NOT NULL,
        _source_file VARCHAR NOT NULL,
        _line_no BIGINT NOT NULL,
        payload VARCHAR,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        _quarantined_at TIMESTAMP NOT NULL
    )
    """,
    """
    create table if not exists audit.load_batches (
        batch_id VARCHAR PRIMARY KEY,
        source VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        file_sha256 VARCHAR NOT NULL,
        file_bytes BIGINT NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_duplicate BIGINT NOT NULL,
        rows_quarantined BIGINT NOT NULL,
        supersedes_batch_id VARCHAR,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP NOT NULL
    )
    """,
    """
    create table if not exists identity.identifiers (
        source VARCHAR NOT NULL,
        id_type VARCHAR NOT NULL,
        source_record_id VARCHAR NOT NULL,
        identifier_type VARCHAR NOT NULL,
        identifier_value VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    create table if not exists identity.edges (
        left_key VARCHAR NOT NULL,
        right_key VARCHAR NOT NULL,
        rule VARCHAR NOT NULL,
        score DOUBLE NOT NULL,
        run_id VARCHAR NOT NULL,
        evidence VARCHAR
    )
    """,
    """
    create table if not exists identity.id_history (
        run_id VARCHAR NOT NULL,
        old_customer_id VARCHAR NOT NULL,
        new_customer_id VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        records BIGINT NOT NULL,
        changed_at TIMESTAMP NOT NULL
    )
    """,
    """
    create table if not exists identity.review_queue (
        left_key VARCHAR NOT NULL,
        right_key VARCHAR NOT NULL,
        match_probability DOUBLE NOT NULL,
        evidence JSON NOT NULL,
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (left_key, right_key)
    )
    """,
    """
    create table if not exists identity.guard_events (
        run_id VARCHAR NOT NULL,
        guard VARCHAR NOT NULL,
        identifier_type VARCHAR NOT NULL,
        rule VARCHAR,
        left_key VARCHAR,
        right_key VARCHAR,
        detail VARCHAR NOT NULL,
        recorded_at TIMESTAMP NOT NULL
    )
    """,
    """
    create table if not exists identity.clusters (
        source VARCHAR NOT NULL,
        id_type VARCHAR NOT NULL,
        source_record_id VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        resolved_at TIMESTAMP NOT NULL,
        PRIMARY KEY (id_type, source_record_id)
    )
    """,
]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create MicroCDP's own schemas and tables if they do not exist (idempotent)."""
    for statement in SCHEMA_DDL:
        con.execute(statement)


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the working warehouse, make sure the schema exists, and always close it again."""
    path = Path(settings.warehouse_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        if not read_only:
            ensure_schema(con)
        yield con
    finally:
        con.close()
