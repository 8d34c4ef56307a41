"""Load one batch of input records into ``raw.*``: atomically, once, losing nothing.

A batch is what one file or one API page delivered. Its id is derived from where it came from
and a hash of its content, so loading the same content again is a no-op. In one transaction:
valid rows whose record key is new go to ``raw.<table>`` (events are keyed on ``messageId``,
everything else on the row's content hash, which keeps CRM history as new versions), invalid rows
go to ``quarantine.rows`` with line, original text, field and reason, and the counts go to
``audit.load_batches``: ``rows_read = rows_loaded + rows_duplicate + rows_quarantined``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from cdp.contracts import Contract
from cdp.settings import Settings
from cdp.warehouse import raw_table_name
from ingestion.validation import NOT_A_JSON_OBJECT, SourceMapping, validation_query

log = logging.getLogger(__name__)

#: Columns of every chunk of a batch.
BATCH_SCHEMA = pa.schema(
    [
        ("line_no", pa.int64()),  # line (files) or record number (pages), 1-based
        ("payload", pa.string()),  # the original text of the record
        ("record", pa.string()),  # the record as a JSON object; NULL: payload is the JSON record
        ("error", pa.string()),  # why a reader could not parse it (then record is NULL)
    ]
)


class QuarantineThresholdExceeded(RuntimeError):
    """Too large a share of a batch failed validation; nothing of it was loaded."""


@dataclass(frozen=True)
class Batch:
    """What one file or API page delivered."""

    source_file: str  # landing-relative path, or "api:<connector>/<page key>"
    content_sha256: str
    size_bytes: int
    #: Reads the records, a bounded chunk (``BATCH_SCHEMA``) at a time; called only when the
    #: batch is actually loaded (a batch already loaded costs nothing but its hash).
    read_chunks: Callable[[], Iterable[pa.Table]]

    @property
    def batch_id(self) -> str:
        """Stable id: the same content from the same place is the same batch."""
        key = f"{self.source_file}\0{self.content_sha256}"
        return "b_" + hashlib.sha256(key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class BatchResult:
    """What happened to one batch."""

    batch_id: str
    source: str
    source_file: str
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_quarantined: int
    skipped: bool = False  # this exact content was loaded before


def records_batch(source_file: str, records: list[dict]) -> Batch:
    """A batch from already-parsed records (e.g. an API page), numbered from 1."""
    texts = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in records]
    content = "\n".join(texts).encode()
    rows = pa.table(
        {
            "line_no": list(range(1, len(texts) + 1)),
            "payload": texts,
            "record": [None] * len(texts),
            "error": [None] * len(texts),
        },
        schema=BATCH_SCHEMA,
    )
    return Batch(source_file, hashlib.sha256(content).hexdigest(), len(content), lambda: [rows])


#: Validated rows collected before they go into ``raw.*`` in one insert. DuckDB compresses and
#: writes the row groups of one large insert straight to the database file, once;
#: many small inserts went through the write-ahead log and were compressed again by the
#: checkpoint. Four row groups of 122,880 rows bound the memory a large file holds.
FLUSH_ROWS = 4 * 122_880

#: Rows per Arrow record batch handed to DuckDB: its scan parallelism unit (zero-copy slices).
_SCAN_UNIT_ROWS = 16_384


def _in_scan_units(chunk: pa.Table) -> pa.Table:
    """The same rows as record batches DuckDB can scan on every core at once."""
    return pa.Table.from_batches(chunk.to_batches(max_chunksize=_SCAN_UNIT_ROWS), BATCH_SCHEMA)


def _read_ahead(chunks: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """The same chunks, the next one read in a background thread while this one loads.

    Decompressing and splitting (ISA-L, Arrow) and DuckDB's work all release the GIL, so
    reading overlaps loading. At most one chunk is read ahead.
    """
    iterator = iter(chunks)
    with ThreadPoolExecutor(1, thread_name_prefix="ingestion-read-ahead") as pool:
        pending = pool.submit(next, iterator, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, iterator, None)
            yield chunk


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json_problem(payload: str) -> str:
    """Precise reason for a record that is not a JSON object."""
    try:
        value = json.loads(payload)
    except json.JSONDecodeError as exc:
        return f"bad JSON: {exc.msg} (column {exc.colno})"
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return f"expected a JSON object, found {names.get(type(value), 'number')}"


def _check_quarantine_share(
    con: duckdb.DuckDBPyConnection, batch: Batch, read: int, bad: int, max_share: float
) -> None:
    """Fail the batch (before commit) when too large a share of its rows is invalid."""
    if not read or bad / read <= max_share:
        return
    examples = con.execute(
        "select _line_no, reason from quarantine.rows where _batch_id = ? "
        "order by _line_no limit 5",
        [batch.batch_id],
    ).fetchall()
    top = con.execute(
        "select reason, count(*) from quarantine.rows where _batch_id = ? "
        "group by 1 order by 2 desc, 1 limit 3",
        [batch.batch_id],
    ).fetchall()
    raise QuarantineThresholdExceeded(
        f"{batch.source_file}: {bad} of {read} rows ({bad / read:.1%}) failed validation, above "
        f"the {max_share:.1%} limit (CDP_QUARANTINE_MAX_SHARE); nothing from it was loaded. "
        f"Most common reasons: {top}. First rows: "
        + "; ".join(f"line {n}: {r}" for n, r in examples)
    )


def _insert_new_rows(con: duckdb.DuckDBPyConnection, contract: Contract, meta: dict) -> int:
    """Insert valid rows whose key is not in raw yet (first occurrence in the batch wins)."""
    table = raw_table_name(contract.source_entity)
    key = contract.dedup_column or "_row_hash"
    columns = ", ".join(f'"{c}"' for c in contract.columns)
    scope, params = "", dict(meta)
    if contract.dedup_scope:
        params["low"], params["high"] = con.execute(
            f'select min("{contract.dedup_scope}"), max("{contract.dedup_scope}") '
            "from _validated where _reason is null"
        ).fetchone()
        scope = f'existing."{contract.dedup_scope}" between $low and $high and'
    return con.execute(
        f"""
        insert into {table} ({columns}, _batch_id, _source, _source_file, _line_no,
                             _loaded_at, _row_hash, _extra)
        select {columns}, $batch_id, $source, $source_file, _line_no, $loaded_at, _row_hash,
               cast(_extra as json)
        from _validated as incoming
        where _reason is null
          and not exists (select 1 from {table} as existing
                          where {scope} existing."{key}" = incoming."{key}")
          and not exists (select 1 from _validated as earlier
                          where earlier._reason is null and earlier."{key}" = incoming."{key}"
                            and earlier._line_no < incoming._line_no)
        """,
        params,
    ).fetchone()[0]


def _insert_quarantine(con: duckdb.DuckDBPyConnection, meta: dict) -> None:
    """Quarantine every invalid row, wording 'not a JSON object' precisely."""
    unparsed = con.execute(
        "select _line_no, rtrim(payload, chr(13) || chr(10)) from _validated where _reason = ?",
        [NOT_A_JSON_OBJECT],
    ).fetchall()
    reworded = pa.table(
        {
            "line_no": [line_no for line_no, _ in unparsed],
            "reason": [_json_problem(payload) for _, payload in unparsed],
        },
        schema=pa.schema([("line_no", pa.int64()), ("reason", pa.string())]),
    )
    con.register("_reworded", reworded)
    try:
        con.execute(
            """
            insert into quarantine.rows
            select $batch_id, $source, $source_file, v._line_no,
                   rtrim(v.payload, chr(13) || chr(10)), v._field,
                   coalesce(r.reason, v._reason), $loaded_at
            from _validated as v left join _reworded as r on r.line_no = v._line_no
            where v._reason is not null
            """,
            meta,
        )
    finally:
        con.unregister("_reworded")


def _flush_validated(
    con: duckdb.DuckDBPyConnection, contract: Contract, meta: dict, loaded: int, quarantined: int
) -> tuple[int, int]:
    """Move the validated rows into raw and quarantine; return the updated counts.

    Rows of earlier flushes are visible here, so duplicates across them are caught.
    """
    bad = con.execute("select count(_reason) from _validated").fetchone()[0]
    loaded += _insert_new_rows(con, contract, meta)
    if bad:
        _insert_quarantine(con, meta)
    con.execute("drop table _validated")
    return loaded, quarantined + bad


def load_batch(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    batch: Batch,
    settings: Settings,
    *,
    mapping: SourceMapping | None = None,
    in_transaction: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> BatchResult:
    """Validate and load one batch atomically; skip it if this exact content was loaded."""
    done = con.execute(
        "select rows_read, rows_loaded, rows_duplicate, rows_quarantined "
        "from audit.load_batches where batch_id = ?",
        [batch.batch_id],
    ).fetchone()
    if done:
        return BatchResult(batch.batch_id, contract.source_entity, batch.source_file, *done,
                           skipped=True)  # fmt: skip
    started_at = _now()
    meta = {
        "batch_id": batch.batch_id,
        "source": contract.source_entity,
        "source_file": batch.source_file,
        "loaded_at": started_at,
    }
    previous = con.execute(
        "select batch_id from audit.load_batches where source_file = ? "
        "order by finished_at desc limit 1",
        [batch.source_file],
    ).fetchone()
    if previous:
        log.warning("%s changed since batch %s; loading only rows not seen before",
                    batch.source_file, previous[0])  # fmt: skip
    con.execute("set TimeZone = 'UTC'")  # offsets convert to UTC; naive times are UTC
    query = validation_query(contract, mapping)
    read = loaded = quarantined = pending = 0
    collecting = False  # whether _validated holds rows not flushed yet
    con.execute("begin transaction")
    try:
        for chunk in _read_ahead(batch.read_chunks()):
            con.register("_incoming", _in_scan_units(chunk))
            try:
                con.execute(
                    f"insert into _validated {query}"
                    if collecting
                    else f"create or replace temp table _validated as {query}"
                )
            finally:
                con.unregister("_incoming")
            read, pending, collecting = read + chunk.num_rows, pending + chunk.num_rows, True
            if pending >= FLUSH_ROWS:
                loaded, quarantined = _flush_validated(con, contract, meta, loaded, quarantined)
                pending, collecting = 0, False
        if collecting:
            loaded, quarantined = _flush_validated(con, contract, meta, loaded, quarantined)
        _check_quarantine_share(con, batch, read, quarantined, settings.quarantine_max_share)
        result = BatchResult(batch.batch_id, contract.source_entity, batch.source_file, read,
                             loaded, read - quarantined - loaded, quarantined)  # fmt: skip
        con.execute(
            "insert into audit.load_batches values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [batch.batch_id, contract.source_entity, batch.source_file, batch.content_sha256,
             batch.size_bytes, result.rows_read, result.rows_loaded, result.rows_duplicate,
             result.rows_quarantined, previous[0] if previous else None, started_at, _now()],
        )  # fmt: skip
        if in_transaction is not None:
            in_transaction(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result
