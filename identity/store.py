"""Identity's own working tables (beside the contract tables ``cdp.warehouse`` creates), the
model it fitted, and the record of each run."""

from __future__ import annotations

from datetime import datetime

import duckdb

from identity.model import FellegiSunterModel

STATE_DDL = (
    # rid numbers the records for the model's pair tables; the derived blocking keys are
    # stored so that an incremental run does not derive them again for every record.
    """create table if not exists identity.person_records (
        record_key VARCHAR NOT NULL, source VARCHAR NOT NULL, rid INTEGER NOT NULL,
        first_name VARCHAR, last_name VARCHAR, date_of_birth VARCHAR, address_line VARCHAR,
        address_extra VARCHAR, city VARCHAR, postcode VARCHAR, state VARCHAR,
        national_id VARCHAR, email VARCHAR, phone VARCHAR, raw_phone VARCHAR, country VARCHAR,
        first_initial VARCHAR, last_name_phonetic VARCHAR, birth_year VARCHAR
    )""",
    """create table if not exists identity.candidate_pairs (
        left_rid INTEGER NOT NULL, right_rid INTEGER NOT NULL,
        match_probability DOUBLE NOT NULL, is_contradicted BOOLEAN NOT NULL
    )""",
    """create table if not exists identity.blocked_values (
        identifier_type VARCHAR NOT NULL, identifier_value VARCHAR NOT NULL,
        records BIGINT NOT NULL, reason VARCHAR NOT NULL, run_id VARCHAR NOT NULL
    )""",
    """create table if not exists identity.model (
        settings_digest VARCHAR NOT NULL, model_json VARCHAR NOT NULL, fitted_at TIMESTAMP NOT NULL
    )""",
    """create table if not exists identity.runs (
        run_id VARCHAR NOT NULL, mode VARCHAR NOT NULL, loaded_until TIMESTAMP,
        settings_digest VARCHAR NOT NULL, records_touched BIGINT NOT NULL,
        records_reclustered BIGINT NOT NULL, finished_at TIMESTAMP NOT NULL
    )""",
)
#: Tables a full rebuild empties (clusters and id_history are kept: they carry the stable ids).
REBUILT_TABLES = (
    "person_records", "candidate_pairs", "blocked_values", "identifiers", "edges", "review_queue",
)  # fmt: skip


#: A column whose absence marks working tables of an older layout.
_LAYOUT_MARK = ("person_records", "rid")


def ensure_state(con: duckdb.DuckDBPyConnection) -> bool:
    """Create identity's working tables if they do not exist. Working tables of an older layout
    are dropped and made anew; True then, and the caller must rebuild them (a full run)."""
    table, column = _LAYOUT_MARK
    columns = {
        name
        for (name,) in con.execute(
            """select column_name from duckdb_columns()
            where database_name = current_database() and schema_name = 'identity'
              and table_name = ?""",
            [table],
        ).fetchall()
    }
    old_layout = bool(columns) and column not in columns
    if old_layout:
        for name in ("person_records", "candidate_pairs"):
            con.execute(f"drop table if exists identity.{name}")
    for statement in STATE_DDL:
        con.execute(statement)
    return old_layout


def last_run(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, str] | None:
    """``(loaded_until, settings_digest)`` of the latest run, or None before the first."""
    return con.execute(
        "select loaded_until, settings_digest from identity.runs order by finished_at desc limit 1"
    ).fetchone()


def save_model(con: duckdb.DuckDBPyConnection, digest: str, model: FellegiSunterModel) -> None:
    """Store the fitted model for later incremental runs."""
    con.execute("delete from identity.model")
    con.execute(
        "insert into identity.model values (?, ?, now()::timestamp)", [digest, model.to_json()]
    )


def load_model(con: duckdb.DuckDBPyConnection, digest: str) -> FellegiSunterModel | None:
    """The stored model if it was fitted under the same settings."""
    row = con.execute(
        "select model_json from identity.model where settings_digest = ?", [digest]
    ).fetchone()
    return None if row is None else FellegiSunterModel.from_json(row[0])
