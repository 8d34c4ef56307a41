"""Read landing files record by record, keeping the line number and the original text.

Every reader yields ``SourceRecord``s: either a parsed ``record`` (field name → value) or a
``parse_error`` explaining why the line could not be read. Nothing is skipped silently.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq


@dataclass(frozen=True)
class SourceRecord:
    """One input row: where it came from, its original text, and what was parsed from it."""

    line_no: int
    payload: str
    record: dict | None
    parse_error: str | None = None


def file_format(path: Path) -> str:
    """Format of a landing file from its name: ``csv``, ``jsonl`` or ``parquet``."""
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
        if name.endswith(suffix):
            return kind
    if name.endswith(".parquet") and not path.name.lower().endswith(".gz"):
        return "parquet"
    raise ValueError(f"{path}: unsupported file type (expected .csv, .jsonl, .ndjson, .parquet)")


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_records(path: Path) -> Iterator[SourceRecord]:
    """Yield every record of a landing file, whatever its format."""
    readers = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}
    yield from readers[file_format(path)](path)


class _LineRecorder:
    """Iterator over a text file that remembers the raw lines the csv module consumed."""

    def __init__(self, lines: io.TextIOBase) -> None:
        self._lines = lines
        self.consumed: list[str] = []

    def __iter__(self) -> _LineRecorder:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.consumed.append(line)
        return line


def _read_csv(path: Path) -> Iterator[SourceRecord]:
    with _open_text(path) as handle:
        recorder = _LineRecorder(handle)
        reader = csv.reader(recorder)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            return
        recorder.consumed.clear()
        line_no = 2  # the header is line 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                payload = "".join(recorder.consumed).rstrip("\r\n")
                yield SourceRecord(line_no, payload, None, f"unreadable CSV: {exc}")
                line_no += len(recorder.consumed)
                recorder.consumed.clear()
                continue
            payload = "".join(recorder.consumed).rstrip("\r\n")
            start, line_no = line_no, line_no + len(recorder.consumed)
            recorder.consumed.clear()
            if not values:  # blank line
                continue
            if len(values) != len(header):
                error = f"expected {len(header)} CSV columns (header), found {len(values)}"
                yield SourceRecord(start, payload, None, error)
                continue
            yield SourceRecord(start, payload, dict(zip(header, values, strict=True)))


def _read_jsonl(path: Path) -> Iterator[SourceRecord]:
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield SourceRecord(line_no, text, None, f"bad JSON: {exc.msg} (column {exc.colno})")
                continue
            if not isinstance(value, dict):
                kind = type(value).__name__
                yield SourceRecord(line_no, text, None, f"expected a JSON object, found {kind}")
                continue
            yield SourceRecord(line_no, text, value)


def _read_parquet(path: Path) -> Iterator[SourceRecord]:
    parquet = pq.ParquetFile(path)
    row_no = 0
    for batch in parquet.iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            row_no += 1
            yield SourceRecord(row_no, json.dumps(row, default=str), row)
