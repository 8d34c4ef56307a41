"""Where gate results live: ``audit.quality_results`` (one row per expectation per run),
``audit.quality_watermarks`` (how far the raw gate has checked each table) and a GX result
JSON file per gate run under ``$CDP_HOME/quality/results/``."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import duckdb

from cdp.quality.findings import Finding

RESULTS_DDL = """
create table if not exists audit.quality_results (
    gate VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    checked_at TIMESTAMP NOT NULL,
    suite VARCHAR NOT NULL,
    expectation VARCHAR NOT NULL,
    column_name VARCHAR,
    success BOOLEAN NOT NULL,
    errored BOOLEAN NOT NULL,
    element_count BIGINT,
    unexpected_count BIGINT,
    detail VARCHAR
)
"""

WATERMARKS_DDL = """
create table if not exists audit.quality_watermarks (
    table_name VARCHAR PRIMARY KEY,
    loaded_until TIMESTAMP NOT NULL,
    run_id VARCHAR NOT NULL
)
"""


def raw_watermark(con: duckdb.DuckDBPyConnection, table: str) -> datetime | None:
    """Latest ``_loaded_at`` of ``table`` that a passed raw gate has checked (None: nothing yet)."""
    con.execute(WATERMARKS_DDL)
    row = con.execute(
        "select loaded_until from audit.quality_watermarks where table_name = ?", [table]
    ).fetchone()
    return None if row is None else row[0]


def advance_watermarks(
    con: duckdb.DuckDBPyConnection, high_water: dict[str, datetime], run_id: str
) -> None:
    """Mark rows up to ``high_water[table]`` as checked (only after the gate passed)."""
    con.execute(WATERMARKS_DDL)
    if not high_water:
        return
    con.executemany(
        "insert or replace into audit.quality_watermarks values (?, ?, ?)",
        [(table, until, run_id) for table, until in high_water.items()],
    )


def record_findings(
    con: duckdb.DuckDBPyConnection,
    gate: str,
    run_id: str,
    checked_at: datetime,
    findings: list[Finding],
) -> None:
    """Append one row per evaluated expectation to ``audit.quality_results``."""
    con.execute(RESULTS_DDL)
    if not findings:
        return
    con.executemany(
        "insert into audit.quality_results values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                gate,
                run_id,
                checked_at,
                f.suite,
                f.expectation,
                f.column,
                f.success,
                f.errored,
                f.element_count,
                f.unexpected_count,
                f.detail,
            )
            for f in findings
        ],
    )


def write_result_json(results_dir: Path, gate: str, run_id: str, results: list[dict]) -> Path:
    """Write the GX validation results of one gate run; returns the file."""
    safe_run_id = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
    path = results_dir / gate / f"{safe_run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=str))
    return path
