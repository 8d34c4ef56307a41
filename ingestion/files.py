"""Load landing files into ``raw.*``: once per file content, atomically, losing nothing.

A file is one batch. Its batch id is derived from the file's path and content hash, so loading
the same file again is a no-op, and a file whose content changed under the same name becomes a
new batch that records which batch it supersedes; its rows already in ``raw`` (same record key)
are counted as duplicates instead of being appended again. Per batch:
``rows_read = rows_loaded + rows_duplicate + rows_quarantined``, recorded in
``audit.load_batches`` in the same transaction as the rows themselves.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from cdp.contracts import CONTRACTS, Contract
from cdp.settings import Settings
from cdp.warehouse import SQL_TYPES, connect, raw_table_name
from ingestion.readers import SourceRecord, read_records
from ingestion.validate import Rejection, validate_record

log = logging.getLogger(__name__)

_ARROW_TYPES = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
    "decimal": pa.string(),  # exact text; cast to DECIMAL inside DuckDB
    "integer": pa.int64(),
    "double": pa.float64(),
    "json": pa.string(),
}


class QuarantineThresholdExceeded(RuntimeError):
    """Too large a share of a file's rows failed validation; the batch was not loaded."""


@dataclass(frozen=True)
class BatchResult:
    """What happened to one landing file."""

    batch_id: str
    source: str
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    skipped: bool = False  # already loaded with this exact content


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def landing_files(landing_dir: Path, contract: Contract) -> list[Path]:
    """Files waiting under ``landing/<source>/<entity>/``, in name order."""
    folder = landing_dir / contract.source_entity
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not p.name.startswith(".")
        and p.name.lower().endswith(contract.file_suffixes)
    )


def _row_hash(values: dict, extra: dict) -> str:
    canonical = json.dumps([values, extra], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class _ParsedBatch:
    rows: dict[str, list]
    quarantined: list[tuple[int, str, str | None, str]]  # line_no, payload, field, reason
    rows_read: int = 0


def _parse(contract: Contract, records: list[SourceRecord] | object) -> _ParsedBatch:
    columns = [*contract.columns, "_line_no", "_row_hash", "_extra"]
    batch = _ParsedBatch(rows={c: [] for c in columns}, quarantined=[])
    for source_record in records:
        batch.rows_read += 1
        if source_record.record is None:
            batch.quarantined.append(
                (source_record.line_no, source_record.payload, None, source_record.parse_error)
            )
            continue
        outcome = validate_record(contract, source_record.record)
        if isinstance(outcome, Rejection):
            batch.quarantined.append(
                (source_record.line_no, source_record.payload, outcome.field, outcome.reason)
            )
            continue
        for column in contract.columns:
            batch.rows[column].append(outcome.values[column])
        batch.rows["_line_no"].append(source_record.line_no)
        batch.rows["_row_hash"].append(_row_hash(outcome.values, outcome.extra))
        batch.rows["_extra"].append(
            json.dumps(outcome.extra, default=str, ensure_ascii=False) if outcome.extra else None
        )
    return batch


def _arrow_batch(contract: Contract, rows: dict[str, list]) -> pa.Table:
    schema = pa.schema(
        [(f.column, _ARROW_TYPES[f.kind]) for f in contract.fields]
        + [("_line_no", pa.int64()), ("_row_hash", pa.string()), ("_extra", pa.string())]
    )
    decimals = [f.column for f in contract.fields if f.kind == "decimal"]
    exact = {c: [None if v is None else str(v) for v in rows[c]] for c in decimals}
    return pa.Table.from_pydict({**rows, **exact}, schema=schema)


def _insert_new_rows(
    con: duckdb.DuckDBPyConnection, contract: Contract, batch_meta: dict, arrow_rows: pa.Table
) -> int:
    """Insert rows whose key is not yet in raw (nor earlier in this batch); return how many."""
    table = raw_table_name(contract.source_entity)
    key = contract.dedup_column or "_row_hash"
    casts = ", ".join(f'cast("{f.column}" as {SQL_TYPES[f.kind]})' for f in contract.fields)
    columns = ", ".join(f'"{c}"' for c in contract.columns)
    con.register("_incoming", arrow_rows)
    try:
        inserted = con.execute(
            f"""
            insert into {table} ({columns}, _batch_id, _source, _source_file, _line_no,
                                 _loaded_at, _row_hash, _extra)
            select {casts}, $batch_id, $source, $source_file, _line_no,
                   $loaded_at, _row_hash, cast(_extra as JSON)
            from _incoming as incoming
            where not exists (select 1 from {table} as existing
                              where existing."{key}" = incoming."{key}")
            qualify row_number() over (partition by incoming."{key}" order by _line_no) = 1
            """,
            batch_meta,
        ).fetchone()[0]
    finally:
        con.unregister("_incoming")
    return int(inserted)


def _check_quarantine_share(source_file: str, parsed: _ParsedBatch, max_share: float) -> None:
    if not parsed.rows_read:
        return
    share = len(parsed.quarantined) / parsed.rows_read
    if share <= max_share:
        return
    top = Counter(reason for _, _, _, reason in parsed.quarantined).most_common(3)
    examples = "; ".join(
        f"line {line_no}: {reason}" for line_no, _, _, reason in parsed.quarantined[:5]
    )
    raise QuarantineThresholdExceeded(
        f"{source_file}: {len(parsed.quarantined)} of {parsed.rows_read} rows "
        f"({share:.1%}) failed validation, above the {max_share:.1%} limit "
        f"(CDP_QUARANTINE_MAX_SHARE); nothing from this file was loaded. "
        f"Most common reasons: {top}. First rows: {examples}"
    )


def load_file(
    con: duckdb.DuckDBPyConnection, contract: Contract, path: Path, settings: Settings
) -> BatchResult:
    """Load one landing file as one atomic batch (or skip it if this content is loaded)."""
    try:
        source_file = str(path.resolve().relative_to(settings.landing_dir))
    except ValueError:
        source_file = str(path.resolve())
    file_sha256 = _sha256(path)
    batch_id = "b_" + hashlib.sha256(f"{source_file}\0{file_sha256}".encode()).hexdigest()[:24]
    done = con.execute(
        "select rows_read, rows_loaded, rows_duplicate, rows_quarantined "
        "from audit.load_batches where batch_id = ?",
        [batch_id],
    ).fetchone()
    if done:
        return BatchResult(batch_id, contract.source_entity, source_file, *done, skipped=True)

    started_at = _now()
    parsed = _parse(contract, read_records(path))
    _check_quarantine_share(source_file, parsed, settings.quarantine_max_share)
    previous = con.execute(
        "select batch_id from audit.load_batches where source_file = ? and file_sha256 <> ? "
        "order by finished_at desc limit 1",
        [source_file, file_sha256],
    ).fetchone()
    if previous:
        log.warning(
            "%s changed since batch %s; loading only rows not seen before", source_file, previous[0]
        )
    meta = {
        "batch_id": batch_id,
        "source": contract.source_entity,
        "source_file": source_file,
        "loaded_at": started_at,
    }
    con.execute("begin transaction")
    try:
        loaded = _insert_new_rows(con, contract, meta, _arrow_batch(contract, parsed.rows))
        if parsed.quarantined:
            con.executemany(
                "insert into quarantine.rows values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        batch_id,
                        contract.source_entity,
                        source_file,
                        line_no,
                        payload,
                        field,
                        reason,
                        started_at,
                    )
                    for line_no, payload, field, reason in parsed.quarantined
                ],
            )
        valid = parsed.rows_read - len(parsed.quarantined)
        result = BatchResult(
            batch_id,
            contract.source_entity,
            source_file,
            parsed.rows_read,
            loaded,
            valid - loaded,
            len(parsed.quarantined),
        )
        con.execute(
            "insert into audit.load_batches values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                contract.source_entity,
                source_file,
                file_sha256,
                path.stat().st_size,
                result.rows_read,
                result.rows_loaded,
                result.rows_duplicate,
                result.rows_quarantined,
                previous[0] if previous else None,
                started_at,
                _now(),
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result


def ingest_entity(settings: Settings, source_entity: str) -> list[BatchResult]:
    """Load every new landing file of one ``<source>/<entity>`` into the warehouse."""
    if source_entity not in CONTRACTS:
        known = ", ".join(sorted(CONTRACTS))
        raise ValueError(f"unknown source {source_entity!r}; known sources: {known}")
    contract = CONTRACTS[source_entity]
    results = []
    with connect(settings) as con:
        for path in landing_files(settings.landing_dir, contract):
            result = load_file(con, contract, path, settings)
            log.info("%s", result)
            results.append(result)
    return results
