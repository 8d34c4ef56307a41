"""Column mappings: a ``_mapping.yml`` in a landing folder maps a real system's export onto the
landing contract, so a HubSpot, Salesforce, GA4 or Segment export loads without code.

A mapping names, per contract field, the export column it comes from (a plain string is one
column or top-level key, taken literally) or, for nested JSON, the list of keys leading to it;
optionally a strptime format per timestamp field. Fields it does not name are read from a column
of their own name, and export columns no field reads are kept in ``_extra``. See
``docs/mappings.md``.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import yaml

from cdp.contracts import CONTRACTS, Contract, Field
from cdp.yaml_strict import load_strict
from ingestion.validation import SourceMapping, json_key_path

log = logging.getLogger(__name__)

#: Names a landing folder's mapping file may have (``_`` keeps it from being loaded as data).
MAPPING_FILE_NAMES = ("_mapping.yml", "_mapping.yaml")

#: Top-level keys of a mapping file and what they hold.
MAPPING_KEYS = {
    "description": "free text: which export this is and how to produce it",
    "source": "the landing contract it maps onto, e.g. crm/customers (checked if given)",
    "fields": "contract field -> export column name, or list of keys for a nested value",
    "formats": "timestamp field -> strptime format, e.g. '%Y-%m-%d %H:%M'",
}


class MappingError(ValueError):
    """A mapping file is invalid; ``problems`` holds ``(file, message)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        lines = [f"{file}: {message}" for file, message in self.problems]
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            header = f"{len(lines)} problems in column mapping:"
            super().__init__("\n".join([header, *(f"  - {line}" for line in lines)]))


def _suggest(word: str, candidates: Iterable[str]) -> str:
    """`` did you mean 'x'?`` for a close candidate, else ``''``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def source_path(spec: str | Sequence[str | int]) -> str:
    """DuckDB JSON path for a column name (taken literally) or a list of nested keys/indexes."""
    if isinstance(spec, str):
        return json_key_path(spec)
    parts = [f"[{part}]" if isinstance(part, int) else json_key_path(part)[1:] for part in spec]
    return "$" + "".join(parts)


def _spec_problem(spec: Any) -> str | None:
    """Why a ``fields`` value is not a column name or key list (None: it is fine)."""
    quote_hint = " (quote names YAML would read as numbers, booleans or null)"
    if isinstance(spec, str):
        return None if spec.strip() else "expected a column name, found an empty string"
    if isinstance(spec, list):
        if not spec:
            return "expected a list of keys, found an empty list"
        if not isinstance(spec[0], str) or not spec[0].strip():
            return f"a nested path must start with a key name, found {_describe(spec[0])}"
        for part in spec:
            if isinstance(part, bool) or not isinstance(part, str | int):
                return f"path parts are key names or list indexes, found {_describe(part)}"
            if isinstance(part, int) and part < 0:
                return f"list indexes start at 0, found {part}"
            if isinstance(part, str) and not part:
                return "path parts must not be empty strings"
        return None
    return (
        "expected a column name or a list of keys for a nested value, "
        f"found {_describe(spec)}{quote_hint}"
    )


def _spec_text(spec: str | Sequence[str | int]) -> str:
    return repr(spec) if isinstance(spec, str) else "[" + ", ".join(map(repr, spec)) + "]"


def _field_problems(fields: Any, contract: Contract) -> tuple[dict[str, str], list[str]]:
    """Validated ``fields`` section → (field name → JSON path, problems)."""
    if fields is None:
        return {}, []
    if not isinstance(fields, Mapping):
        return {}, [
            f"fields: expected 'contract field: export column' pairs, found {_describe(fields)}"
        ]
    by_name = {f.name: f for f in contract.fields}
    by_column = {f.column: f for f in contract.fields}
    paths: dict[str, str] = {}
    problems: list[str] = []
    used: dict[str, str] = {}  # JSON path → field that reads it
    for name, spec in fields.items():
        key = f"fields.{name}"
        if name not in by_name:
            if isinstance(name, str) and name in by_column:
                hint = f"; use the contract field name {by_column[name].name!r}"
            else:
                hint = _suggest(str(name), [f.name for f in contract.input_fields])
            problems.append(f"{key}: {name!r} is not a field of {contract.source_entity}{hint}")
            continue
        promoted = by_name[name].promoted_from
        if promoted:
            parent = promoted.removeprefix("$.").split(".", 1)[0]
            problems.append(
                f"{key}: {name!r} is copied from {promoted} and cannot be mapped; map {parent!r}"
            )
            continue
        problem = _spec_problem(spec)
        if problem:
            problems.append(f"{key}: {problem}")
            continue
        path = source_path(spec)
        if path in used:
            problems.append(
                f"{key}: {_spec_text(spec)} is already mapped to {used[path]!r}; "
                "each export column feeds one field"
            )
            continue
        used[path] = name
        paths[name] = path
    return paths, problems


def _format_problems(formats: Any, contract: Contract) -> tuple[dict[str, str], list[str]]:
    """Validated ``formats`` section → (field name → strptime format, problems)."""
    if formats is None:
        return {}, []
    if not isinstance(formats, Mapping):
        return {}, [
            "formats: expected 'timestamp field: strptime format' pairs, "
            f"found {_describe(formats)}"
        ]
    by_name: dict[str, Field] = {f.name: f for f in contract.input_fields}
    timestamps = [f.name for f in contract.input_fields if f.kind == "timestamp"]
    result: dict[str, str] = {}
    problems: list[str] = []
    with duckdb.connect() as con:
        for name, fmt in formats.items():
            key = f"formats.{name}"
            field = by_name.get(name) if isinstance(name, str) else None
            if field is None:
                hint = _suggest(str(name), timestamps)
                problems.append(f"{key}: {name!r} is not a field of {contract.source_entity}{hint}")
                continue
            if field.kind != "timestamp":
                problems.append(
                    f"{key}: formats apply to timestamp fields only ({', '.join(timestamps)}); "
                    f"{name!r} is a {field.kind} field"
                )
                continue
            if not isinstance(fmt, str) or "%" not in fmt:
                problems.append(
                    f"{key}: expected a strptime format such as '%Y-%m-%d %H:%M', "
                    f"found {_describe(fmt)}"
                )
                continue
            try:
                con.execute("select try_strptime('', ?)", [fmt])
            except duckdb.Error as exc:
                reason = str(exc).split(f"{fmt}: ", 1)[-1]  # after "Failed to parse … <fmt>: "
                problems.append(f"{key}: bad strptime format {fmt!r}: {reason}")
                continue
            result[name] = fmt
    return result, problems


def parse_mapping(data: Any, contract: Contract, file: str = "<mapping>") -> SourceMapping:
    """Validate parsed mapping YAML for a contract; ``MappingError`` lists every problem."""
    if not isinstance(data, Mapping):
        found = "an empty file" if data is None else _describe(data)
        raise MappingError(
            [(file, f"expected a mapping with keys {', '.join(MAPPING_KEYS)}, found {found}")]
        )
    problems: list[str] = []
    for key in data:
        if key not in MAPPING_KEYS:
            hint = _suggest(str(key), MAPPING_KEYS) or f"; allowed keys: {', '.join(MAPPING_KEYS)}"
            problems.append(f"{key}: unknown key{hint}")
    if "fields" not in data and "formats" not in data and not problems:
        problems.append("nothing to map: give 'fields' and/or 'formats'")
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"description: expected text, found {_describe(description)}")
    source = data.get("source")
    if source is not None and source != contract.source_entity:
        problems.append(
            f"source: this mapping is for {source!r} but is used for {contract.source_entity!r}"
            " (is it in the right landing folder?)"
        )
    paths, field_problems = _field_problems(data.get("fields"), contract)
    formats, format_problems = _format_problems(data.get("formats"), contract)
    problems += field_problems + format_problems
    if problems:
        raise MappingError([(file, p) for p in problems])
    return SourceMapping(paths=paths, timestamp_formats=formats)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError([(str(path), f"cannot read file: {exc.strerror}")]) from exc
    try:
        return load_strict(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MappingError([(str(path), f"invalid YAML{where}: {problem}")]) from exc


def _top_level(path: str) -> str:
    """First key of a JSON path made by ``source_path`` (``$."a b"."c"`` → ``a b``)."""
    rest, key, escaped = path[3:], [], False
    for char in rest:
        if escaped:
            key.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            break
        else:
            key.append(char)
    return "".join(key)


def column_problems(
    mapping: SourceMapping, contract: Contract, columns: Sequence[str], export: str = "the export"
) -> list[str]:
    """Required fields the export's ``columns`` cannot fill (mapped or by their own name)."""
    problems = []
    for f in contract.fields:
        if not f.required:
            continue
        column = _top_level(mapping.path(f))
        if column in columns:
            continue
        if f.name in mapping.paths:
            problems.append(
                f"fields.{f.name}: {export} has no column {column!r}{_suggest(column, columns)}"
            )
        else:
            close = difflib.get_close_matches(f.name, list(columns), n=1, cutoff=0.4)
            example = f"{f.name}: {close[0]!r}" if close else f"{f.name}: <export column>"
            problems.append(
                f"fields: required field {f.name!r} is not mapped and {export} has no column of "
                f"that name; add e.g. {example}"
            )
    required = {f.name for f in contract.fields if f.required}
    for name, path in mapping.paths.items():
        column = _top_level(path)
        if column not in columns and name not in required:
            hint = _suggest(column, columns)
            log.warning("%s has no column %r for %r%s", export, column, name, hint)
    return problems


def load_mapping(
    path: Path, contract: Contract, columns: Sequence[str] | None = None
) -> SourceMapping:
    """Read and validate a mapping file; with ``columns`` (an export's header) check those too."""
    path = Path(path)
    mapping = parse_mapping(_read_yaml(path), contract, str(path))
    if columns is not None:
        problems = column_problems(mapping, contract, columns)
        if problems:
            raise MappingError([(str(path), p) for p in problems])
    return mapping


def export_columns(path: Path) -> list[str] | None:
    """Column names of a CSV or Parquet export (None for JSON lines, whose keys vary by record)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return list(pq.read_schema(path).names)
    if name.removesuffix(".gz").endswith(".csv"):
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace")
        header = next(csv.reader(io.StringIO(first)), [])
        return [column.strip() for column in header]
    return None


def mapping_file(folder: Path) -> Path | None:
    """The mapping file of a landing folder, if it has one."""
    found = [folder / name for name in MAPPING_FILE_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        raise MappingError([(str(found[0]), f"{found[1].name} is there too; keep one of them")])
    return found[0] if found else None


def mapping_for(
    landing_dir: Path, source_entity: str, files: Iterable[Path] = ()
) -> SourceMapping | None:
    """The mapping of ``landing/<source>/<entity>/`` (None if it has none), checked against the
    headers of the given CSV/Parquet ``files`` of that folder."""
    if source_entity not in CONTRACTS:
        known = ", ".join(sorted(CONTRACTS))
        raise ValueError(f"unknown source {source_entity!r}; known sources: {known}")
    contract = CONTRACTS[source_entity]
    folder = Path(landing_dir) / source_entity
    path = mapping_file(folder)
    if path is None:
        return None
    mapping = load_mapping(path, contract)
    problems = []
    for export in map(Path, files):
        columns = export_columns(export)
        if columns is not None:
            name = export.relative_to(folder) if export.is_relative_to(folder) else export
            problems += column_problems(mapping, contract, columns, str(name))
    if problems:
        raise MappingError([(str(path), p) for p in dict.fromkeys(problems)])
    return mapping
