"""Load one batch of input records into ``raw.*``: atomically, once, losing nothing.

A batch is what one file or one API page delivered. Its id is derived from where it came from
and a hash of its content, so loading the same content again is a no-op. In one transaction:
valid rows whose record key is new go to ``raw.<table>`` (events are keyed on ``messageId``,
everything else on the row's content hash, which keeps CRM history as new versions), invalid rows
go to ``quarantine.rows`` with line, original text, field and reason, and the counts go to
``audit.load_batches``: ``rows_read = rows_loaded + rows_duplicate + rows_quarantined``.
Validation touches no table, so it runs ahead on a second connection: the next rows (of this
batch or the next) are read and validated while this batch's rows are written; small batches
are read whole in the background, and tiny ones validated together.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import duckdb
import pyarrow as pa

from cdp.contracts import Contract
from cdp.settings import Settings
from cdp.warehouse import raw_table_name
from ingestion.row_hash import text_hashes
from ingestion.validation import NOT_A_JSON_OBJECT, SourceMapping, validation_query

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Columns of every chunk of a batch.
BATCH_SCHEMA = pa.schema(
    [
        ("line_no", pa.int64()),  # line (files) or record number (pages), 1-based
        # the original text of the record; string views: a JSON line is a view into its file
        ("payload", pa.string_view()),
        ("record", pa.string()),  # the record as a JSON object; NULL: payload is the JSON record
        ("error", pa.string()),  # why a reader could not parse it (then record is NULL)
        # ``_row_hash``: of the record as it arrived (``record``, else ``payload``), computed
        # where it is read (``ingestion.row_hash``)
        ("row_hash", pa.string()),
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
            "row_hash": text_hashes(texts),
        },
        schema=BATCH_SCHEMA,
    )
    return Batch(source_file, hashlib.sha256(content).hexdigest(), len(content), lambda: [rows])


#: Rows (at least; whole chunks) validated by one statement, held as one Arrow table and then
#: inserted into ``raw.*`` together. DuckDB compresses and writes the row groups of one large
#: insert straight to the database file, once; many small inserts went through the
#: write-ahead log and were compressed again by the checkpoint. Four row groups of 122,880
#: rows bound the memory a large file holds (one table is inserted while the next is
#: validated).
FLUSH_ROWS = 4 * 122_880

#: Rows per Arrow record batch handed to DuckDB: its scan parallelism unit (zero-copy slices).
_SCAN_UNIT_ROWS = 16_384


def _streams(chunks: Iterable[pa.Table], rows_per_stream: int) -> Iterator[pa.RecordBatchReader]:
    """The chunks as consecutive streams of at least ``rows_per_stream`` rows (the last: fewer;
    no chunks: one empty stream).

    One validation statement reads a whole stream: it is planned once (~50 ms for the events
    contract) instead of once per chunk, and DuckDB's threads validate record batches while
    the next ones are read. Each stream must be read to its end before the next is taken.
    """
    iterator = iter(chunks)
    pending = next(iterator, None)

    def scan_units() -> Iterator[pa.RecordBatch]:
        nonlocal pending
        rows = 0
        while pending is not None and rows < rows_per_stream:
            chunk, rows = pending, rows + pending.num_rows
            yield from chunk.to_batches(max_chunksize=_SCAN_UNIT_ROWS)
            pending = next(iterator, None)

    if pending is None:  # no rows: one empty stream
        yield pa.RecordBatchReader.from_batches(BATCH_SCHEMA, [])
    while pending is not None:
        first = pending
        yield pa.RecordBatchReader.from_batches(BATCH_SCHEMA, scan_units())
        if pending is first:
            raise RuntimeError("a stream of batch rows was not read before the next was taken")


_END = object()


def run_ahead(items: Iterable[T], ahead: int = 1) -> Iterator[T]:
    """The same items, the next ones produced in a background thread while this one is used.

    Decompressing and splitting (ISA-L, Arrow) and DuckDB's work all release the GIL, so the
    producer runs while the consumer works. At most ``ahead`` items are produced ahead (one
    thread produces them, in order).
    """
    iterator = iter(items)
    with ThreadPoolExecutor(1, thread_name_prefix="ingestion-ahead") as pool:
        pending = deque(pool.submit(next, iterator, _END) for _ in range(ahead))
        while (item := pending.popleft().result()) is not _END:
            pending.append(pool.submit(next, iterator, _END))
            yield item


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
          -- keys already in raw, found by probing raw with the batch's keys (hashing the
          -- batch's keys, not raw's, halves this insert for 77k rows into 10M); a valid
          -- row's key is never NULL (a required field or the row hash)
          and "{key}" not in (select existing."{key}" from {table} as existing
                              where {scope} existing."{key}" in (select "{key}" from _validated
                                                                 where _reason is null))
          -- the first occurrence in the batch (line numbers are unique within a batch): a
          -- grouping on the key costs a fifth of an anti-join on key and line number
          and _line_no in (select min(_line_no) from _validated where _reason is null
                           group by "{key}")
        """,
        params,
    ).fetchone()[0]


def _insert_quarantine(con: duckdb.DuckDBPyConnection, meta: dict) -> None:
    """Quarantine every invalid row, wording 'not a JSON object' precisely."""
    unparsed = con.execute(
        "select _line_no, rtrim(payload, chr(13) || chr(10)) from _validated where _reason = ?",
        [NOT_A_JSON_OBJECT],
    ).fetchall()
    # Lists as parameters: building an Arrow table from Python lists imports pandas (~1 s).
    reworded = {
        "reworded_lines": [line_no for line_no, _ in unparsed],
        "reworded_reasons": [_json_problem(payload) for _, payload in unparsed],
    }
    con.execute(
        """
        insert into quarantine.rows
        select $batch_id, $source, $source_file, v._line_no,
               rtrim(v.payload, chr(13) || chr(10)), v._field,
               coalesce(r.reason, v._reason), $loaded_at
        from _validated as v
        left join (select unnest($reworded_lines::bigint[]) as line_no,
                          unnest($reworded_reasons::varchar[]) as reason) as r
               on r.line_no = v._line_no
        where v._reason is not null
        """,
        meta | reworded,
    )


def _flush_validated(
    con: duckdb.DuckDBPyConnection, contract: Contract, meta: dict, loaded: int, quarantined: int
) -> tuple[int, int, int]:
    """Move the validated rows into raw and quarantine; return rows read and updated counts.

    Rows of earlier flushes are visible here, so duplicates across them are caught.
    """
    read, bad = con.execute("select count(*), count(_reason) from _validated").fetchone()
    loaded += _insert_new_rows(con, contract, meta)
    if bad:
        _insert_quarantine(con, meta)
    return read, loaded, quarantined + bad


def _loaded_before(con: duckdb.DuckDBPyConnection, batch: Batch) -> tuple | None:
    """The counts of this batch if exactly this content was loaded before."""
    return con.execute(
        "select rows_read, rows_loaded, rows_duplicate, rows_quarantined "
        "from audit.load_batches where batch_id = ?",
        [batch.batch_id],
    ).fetchone()


#: Batches up to this size (as delivered, e.g. gzip) are read whole in the background, while
#: the batch before them is validated, and then validated from memory: for the 77k-event files
#: of a 1M-event increment that was 8.3-9.0 s against 8.8-10.8 s when each file's chunks were
#: read while its statement ran.
SMALL_BATCH_BYTES = 16 << 20
#: Rows of small batches in a row validated by one statement. A statement costs ~40 ms to bind,
#: which adds up over many tiny files; but the loader waits for a whole group before it inserts
#: (groups of 123k-492k rows of the increment: 8.5-12.2 s).
GROUP_ROWS = 1 << 16


@dataclass(frozen=True)
class _ToValidate:
    """A batch due for validation (read whole: a small one; or to be streamed), unreadable, or
    loaded before (by an earlier run, or earlier in this one: the loader finds it loaded)."""

    batch: Batch
    chunks: list[pa.Table] | None = None  # None: stream it chunk by chunk
    error: Exception | None = None  # why reading it failed (raised when its turn comes)
    loaded: bool = False

    @property
    def rows(self) -> int:
        return sum(chunk.num_rows for chunk in self.chunks or ())


def _to_validate(con: duckdb.DuckDBPyConnection, batches: Iterable[Batch]) -> Iterator[_ToValidate]:
    """Every batch, in order, taken from ``batches`` as the validator gets to it (a backlog's
    first files load while later ones are still being hashed); the small ones read whole."""
    seen: set[str] = set()  # the same batch twice: the loader skips the second, loaded by then
    for batch in batches:
        if batch.batch_id in seen or _loaded_before(con, batch):
            yield _ToValidate(batch, loaded=True)
            continue
        seen.add(batch.batch_id)
        if batch.size_bytes > SMALL_BATCH_BYTES:
            yield _ToValidate(batch)
            continue
        try:
            chunks = list(batch.read_chunks())
        except Exception as exc:  # it fails its own batch, after the ones before it
            yield _ToValidate(batch, error=exc)
        else:
            yield _ToValidate(batch, chunks)


#: A batch, validated rows of it (None: loaded before, nothing validated), last of its batch?
_Flush = tuple[Batch, pa.Table | None, bool]


class _Validator:
    """Runs the validation query on one connection, over one Arrow stream at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection, query: str) -> None:
        con.execute("set session TimeZone = 'UTC'")  # offsets convert to UTC; naive times UTC
        con.execute("set session arrow_lossless_conversion = true")  # JSON columns stay JSON
        self._con, self._query = con, query
        # Parsed and bound once (~30 ms of ~70 for the events contract); each run binds it
        # again, to the stream registered as ``_incoming`` then.
        self._relation: duckdb.DuckDBPyRelation | None = None

    def __call__(self, stream: pa.RecordBatchReader) -> pa.Table:
        self._con.register("_incoming", stream)
        try:
            if self._relation is None:
                self._relation = self._con.sql(self._query)
            return self._relation.to_arrow_table()
        finally:
            self._con.unregister("_incoming")

    def streamed(self, batch: Batch, chunks: Iterable[pa.Table]) -> Iterator[_Flush]:
        """One batch's chunks, validated ``FLUSH_ROWS`` rows or more at a time."""
        streams = _streams(run_ahead(chunks), FLUSH_ROWS)
        stream = next(streams)
        while stream is not None:
            validated = self(stream)
            stream = next(streams, None)
            yield batch, validated, stream is None

    def together(self, group: list[_ToValidate]) -> Iterator[_Flush]:
        """Small batches read whole, validated in one statement and handed out one by one."""
        if not group:
            return
        tables = [chunk for item in group for chunk in item.chunks or ()]
        validated = self(next(_streams(tables, sum(t.num_rows for t in tables))))
        offset = 0
        for item in group:
            part = validated.slice(offset, item.rows)
            _check_same_lines(part, item)
            offset += item.rows
            yield item.batch, part, True


def _check_same_lines(part: pa.Table, item: _ToValidate) -> None:
    """Guard: a batch's slice of the validated rows holds its own lines (order is kept)."""
    if not item.rows:
        return
    chunks = [chunk for chunk in item.chunks or () if chunk.num_rows]
    expected = (chunks[0]["line_no"][0].as_py(), chunks[-1]["line_no"][-1].as_py())
    if (part["_line_no"][0].as_py(), part["_line_no"][-1].as_py()) != expected:
        raise RuntimeError(f"{item.batch.source_file}: validated rows came back out of order")


def _validated(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    batches: Iterable[Batch],
    mapping: SourceMapping | None,
) -> Iterator[_Flush]:
    """Every batch in order with its rows validated, or marked loaded before (no table).

    At least one table per batch not loaded before (empty for an empty batch); small batches
    in a row are validated together. Runs on its own connection (a cursor of the loader's) so
    it can run ahead of the loader; of what the loader writes it reads only
    ``audit.load_batches``. A batch that cannot be read fails when its turn comes, after the
    ones before it.
    """
    validator = _Validator(con, validation_query(contract, mapping))
    with con.cursor() as audit:  # the batches are taken in a thread of their own
        items = run_ahead(_to_validate(audit, batches))
        try:
            yield from _validate_in_order(validator, items)
        finally:
            items.close()  # waits for that thread before its connection closes


def _validate_in_order(validator: _Validator, items: Iterable[_ToValidate]) -> Iterator[_Flush]:
    """Validate the items in order: small ones in a row together, large ones streamed."""
    group: list[_ToValidate] = []
    for item in items:
        if item.chunks is not None and item.rows < FLUSH_ROWS:
            group.append(item)
            if sum(member.rows for member in group) >= GROUP_ROWS:
                yield from validator.together(group)
                group = []
            continue
        yield from validator.together(group)
        group = []
        if item.loaded:
            yield item.batch, None, True
            continue
        if item.error is not None:
            raise item.error
        # a large batch, read as it is validated; or a small file of many short records
        yield from validator.streamed(
            item.batch, item.batch.read_chunks() if item.chunks is None else item.chunks
        )
    yield from validator.together(group)


def _by_batch(flushes: Iterator[_Flush]) -> Iterator[tuple[Batch, Iterator[pa.Table] | None]]:
    """Each batch with its validated tables (None: loaded before); the tables the loader does
    not read (it found the batch loaded after all) are passed over."""
    for batch, table, last in flushes:
        if table is None:
            yield batch, None
            continue
        tables = _tables_of_one_batch(table, last, flushes)
        yield batch, tables
        for _ in tables:
            pass


def _tables_of_one_batch(
    first: pa.Table, last: bool, flushes: Iterator[_Flush]
) -> Iterator[pa.Table]:
    """The validated tables of one batch, from its first one up to its last one."""
    yield first
    while not last:
        _, table, last = next(flushes)
        yield table


def load_batches(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    batches: Iterable[Batch],
    settings: Settings,
    *,
    mapping: SourceMapping | None = None,
    in_transaction: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> Iterator[BatchResult]:
    """Validate and load batches in order, each atomically; skip those loaded before.

    The rows of the next stream (of this batch or the next one) are read and validated in a
    background thread on a second connection while this one's rows go into ``raw.*``: DuckDB
    writes one insert's row groups mostly on one core, so the other validates meanwhile.
    ``batches`` is read in that thread, a batch at a time, when the validator gets to it.
    """
    validator = con.cursor()
    # Two validated tables ahead: during an insert (mostly one core) the validator goes on to
    # the next stream instead of waiting with a finished one (~5 % of a 10M-event load's time).
    flushes = run_ahead(_validated(validator, contract, batches, mapping), ahead=2)
    try:
        for batch, tables in _by_batch(flushes):
            yield _load_validated(con, contract, batch, settings, tables, in_transaction)
    finally:
        flushes.close()  # waits for the validator before its connection closes
        validator.close()


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
    [result] = load_batches(
        con, contract, [batch], settings, mapping=mapping, in_transaction=in_transaction
    )
    return result


def _load_validated(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    batch: Batch,
    settings: Settings,
    validated: Iterator[pa.Table] | None,
    in_transaction: Callable[[duckdb.DuckDBPyConnection], None] | None,
) -> BatchResult:
    """Load one batch from its validated rows in one transaction (or skip it, loaded before)."""
    done = _loaded_before(con, batch)
    if done:
        return BatchResult(batch.batch_id, contract.source_entity, batch.source_file, *done,
                           skipped=True)  # fmt: skip
    if validated is None:
        raise RuntimeError(f"{batch.source_file}: found loaded by the validator, not by the loader")
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
    read = loaded = quarantined = 0
    con.execute("begin transaction")
    try:
        for table in validated:
            con.register("_validated", table)
            try:
                flushed, loaded, quarantined = _flush_validated(
                    con, contract, meta, loaded, quarantined
                )
            finally:
                con.unregister("_validated")
            read += flushed
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
