"""Read landing files into batch rows: line number, original text, parsed record or parse error.

JSON lines are only split here (validation happens in DuckDB); CSV rows are parsed with the
csv module so quoted commas and newlines work and every row keeps its exact original text.
Nothing is skipped silently: a line that cannot be read becomes a row with an ``error``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from isal import igzip, isal_zlib

from ingestion.batch import BATCH_SCHEMA
from ingestion.row_hash import line_hashes, text_hashes


def file_format(path: Path) -> str:
    """Format of a landing file from its name: ``csv``, ``jsonl`` or ``parquet``."""
    name = path.name.lower()
    plain = name.removesuffix(".gz")
    if plain.endswith(".csv"):
        return "csv"
    if plain.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise ValueError(f"{path}: unsupported file type (expected .csv, .jsonl, .ndjson, .parquet)")


#: Decompressed text per chunk of a JSON-lines file: what bounds a load's memory.
CHUNK_BYTES = 64 << 20
#: The first chunk of a file is small: it is read while nothing else runs, later chunks are
#: read in the background while the one before loads (``ingestion.batch``).
FIRST_CHUNK_BYTES = 8 << 20
#: Rows per chunk of a CSV or Parquet file.
CHUNK_ROWS = 250_000


def read_chunks(path: Path, chunk_bytes: int | None = None) -> Iterator[pa.Table]:
    """A landing file's records as batch rows (``BATCH_SCHEMA``), a bounded chunk at a time."""
    kind = file_format(path)
    try:
        if kind == "jsonl":
            yield from _jsonl_chunks(path, chunk_bytes or CHUNK_BYTES)
        elif kind == "csv":
            yield from _slices(_read_csv(path))
        else:
            yield from _parquet_chunks(path)
    except (EOFError, gzip.BadGzipFile, isal_zlib.error) as exc:  # e.g. a file still being copied
        raise ValueError(f"{path}: cannot be decompressed ({exc})") from exc


def _open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes; ``.gz`` decompressed by ISA-L (~2.3x faster than zlib, same format)."""
    return igzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _read_bytes(path: Path) -> bytes:
    with _open_binary(path) as handle:
        return handle.read()


def _jsonl_chunks(path: Path, chunk_bytes: int) -> Iterator[pa.Table]:
    """Read the (decompressed) stream in blocks; number lines on across blocks.

    A block's whole lines are views into the block itself (no copies: copying and splitting
    each block into new buffers cost more than decompressing it). Only the line that began in
    the block before is copied, joined with its start.
    """
    first_line, carry = 1, b""
    with _open_binary(path) as handle:
        size = min(chunk_bytes, FIRST_CHUNK_BYTES)
        while block := handle.read(size):
            size = chunk_bytes
            line_feeds = _line_feeds(block)
            if not len(line_feeds):
                carry += block
                continue
            joined = carry + block[: line_feeds[0] + 1]
            yield pa.concat_tables(
                [
                    _jsonl_table(joined, np.array([0]), np.array([len(joined) - 1]), first_line),
                    _jsonl_table(block, line_feeds[:-1] + 1, line_feeds[1:], first_line + 1),
                ]
            )
            first_line += len(line_feeds)
            carry = block[line_feeds[-1] + 1 :]
    if carry:  # the last line has no line feed
        yield _jsonl_table(carry, np.array([0]), np.array([len(carry)]), first_line)


#: Bytes searched for line feeds at a time: the comparison's result stays in the CPU cache.
_SEARCH_BYTES = 1 << 20


def _line_feeds(block: bytes) -> np.ndarray:
    """Positions of the line feeds in a block, in order."""
    data = np.frombuffer(block, np.uint8)
    return np.concatenate(
        [
            np.flatnonzero(data[start : start + _SEARCH_BYTES] == ord("\n")) + start
            for start in range(0, len(data), _SEARCH_BYTES)
        ]
    )


#: Bytes an Arrow string view holds in itself (longer strings: a prefix and a reference).
_INLINE_BYTES = 12


def _line_views(block: bytes, starts: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Lines of a block as Arrow binary views: 16 bytes each, pointing into the block.

    A view is (length, then the bytes themselves up to 12, else a 4-byte prefix, the data
    buffer's number and the offset), the layout DuckDB reads without copying.
    """
    data = np.frombuffer(block, np.uint8)
    views = np.zeros((len(starts), 4), np.int32)
    views[:, 0] = lengths
    inline = lengths <= _INLINE_BYTES
    if inline.any():
        views[inline, 1:] = _inline_bytes(data, starts[inline], lengths[inline])
    if not inline.all():
        pointing = ~inline
        views[pointing, 1] = _prefixes(data, starts[pointing])
        views[pointing, 3] = starts[pointing]  # buffer 0
    return pa.Array.from_buffers(
        pa.binary_view(), len(starts), [None, pa.py_buffer(views), pa.py_buffer(block)]
    )


def _inline_bytes(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The bytes of short lines as three int32 each, zero-padded past a line's end."""
    width = np.arange(_INLINE_BYTES)
    positions = np.minimum(starts[:, None] + width, len(data) - 1)
    head = np.where(width < lengths[:, None], data[positions], 0)
    return np.ascontiguousarray(head, np.uint8).view(np.int32)


def _prefixes(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The first 4 bytes of each line at ``starts`` (at least 4 bytes long) as one int32."""
    windows = np.lib.stride_tricks.as_strided(data, (len(data) - 3, 4), (1, 1), writeable=False)
    return np.ascontiguousarray(windows[starts]).view(np.int32)[:, 0]


def _split_lines(
    block: bytes, starts: np.ndarray, ends: np.ndarray, first_line: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numbers, starts and lengths of the non-blank lines ``block[start:end]``, numbered from
    ``first_line``; a carriage return before a line feed (at ``end``) is dropped (CRLF files).

    Blank lines are left out; their numbers are skipped, so every line keeps its number in
    the file.
    """
    data = np.frombuffer(block, np.uint8)
    lengths = ends - starts
    before_line_feed = (lengths > 0) & (ends < len(data))
    lengths -= before_line_feed & (data[np.maximum(ends - 1, 0)] == ord("\r"))
    numbers = np.arange(first_line, first_line + len(starts), dtype=np.int64)
    kept = lengths > 0
    if not kept.all():
        starts, lengths, numbers = starts[kept], lengths[kept], numbers[kept]
    return numbers, starts, lengths


def _int64_array(values: np.ndarray) -> pa.Array:
    """Zero-copy Arrow array (``pa.array`` on numpy imports pandas: a second of start-up)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _jsonl_table(block: bytes, starts: np.ndarray, ends: np.ndarray, first_line: int) -> pa.Table:
    """Batch rows of the lines ``block[start:end]``; a line that is not UTF-8 gets an error."""
    numbers, starts, lengths = _split_lines(block, starts, ends, first_line)
    lines = _line_views(block, starts, lengths)
    error = pa.nulls(len(lines), pa.string())
    text = lines.view(pa.string_view())
    try:
        text.validate(full=True)  # checks UTF-8
    except pa.ArrowInvalid:  # keep undecodable lines, readable, with a reason
        decoded = [line.decode("utf-8", "replace") for line in lines.to_pylist()]
        text = pa.array(decoded, pa.string_view())
        error = pa.array(["line is not valid UTF-8" if "\ufffd" in d else None for d in decoded])
    return pa.table(
        [
            _int64_array(numbers),
            text,
            pa.nulls(len(text), pa.string()),
            error,
            line_hashes(block, starts, lengths),
        ],
        schema=BATCH_SCHEMA,
    )


class _LineRecorder:
    """Iterator over a text file that remembers the raw lines the csv module consumed."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.consumed: list[str] = []

    def __iter__(self) -> _LineRecorder:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.consumed.append(line)
        return line


def _csv_rows(handle: io.TextIOBase) -> Iterator[tuple[int, str, str | None, str | None]]:
    recorder = _LineRecorder(handle)
    reader = csv.reader(recorder)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    recorder.consumed.clear()
    line_no = 2  # the header is line 1
    while True:
        error = None
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            values, error = None, f"unreadable CSV: {exc}"
        payload = "".join(recorder.consumed).rstrip("\r\n")
        start, line_no = line_no, line_no + len(recorder.consumed)
        recorder.consumed.clear()
        if values == []:  # blank line
            continue
        if values is not None and len(values) != len(header):
            error = f"expected {len(header)} CSV columns (header), found {len(values)}"
        if error:
            yield start, payload, None, error
            continue
        record = {k: v for k, v in zip(header, values, strict=True) if v.strip()}
        yield start, payload, json.dumps(record, ensure_ascii=False), None


def _read_csv(path: Path) -> pa.Table:
    data = _read_bytes(path).decode("utf-8", "replace")
    rows = list(_csv_rows(io.StringIO(data, newline="")))
    if not rows:
        return BATCH_SCHEMA.empty_table()
    hashes = text_hashes(payload if record is None else record for _, payload, record, _ in rows)
    columns = [pa.array(column) for column in zip(*rows, strict=True)]
    return pa.table([*columns, hashes], schema=BATCH_SCHEMA)


def _slices(table: pa.Table) -> Iterator[pa.Table]:
    for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
        yield pa.Table.from_batches([batch], schema=BATCH_SCHEMA)


def _parquet_chunks(path: Path) -> Iterator[pa.Table]:
    row_no = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
        texts = [json.dumps(r, ensure_ascii=False, default=str) for r in batch.to_pylist()]
        yield pa.table(
            {
                "line_no": range(row_no + 1, row_no + len(texts) + 1),
                "payload": texts,
                "record": [None] * len(texts),
                "error": [None] * len(texts),
                "row_hash": text_hashes(texts),
            },
            schema=BATCH_SCHEMA,
        )
        row_no += len(texts)
