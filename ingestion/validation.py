"""Validation compiled to one vectorized DuckDB query, generated from the landing contract.

Input: a relation ``_incoming(line_no, payload, record, error)`` — one row per input record;
``record`` is the record as a JSON object (NULL: ``payload`` itself is the JSON record) and
``error`` a reader's parse error. Output: one row per input row with every contract column
typed, ``_extra`` (fields the contract does not know), ``_row_hash``, and ``_field`` /
``_reason`` saying why the row cannot be loaded (NULL when it can).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from cdp.contracts import Contract, Field

#: Placeholder reason for records that are not a JSON object; the loader words it precisely.
NOT_A_JSON_OBJECT = "__not_a_json_object__"

_NUMBER_TYPES = "('UBIGINT', 'BIGINT', 'DOUBLE', 'VARCHAR')"
_MAX_QUOTED = 80


@dataclass(frozen=True)
class SourceMapping:
    """Where each contract field is found in incoming records (default: a key of its own name)."""

    paths: dict[str, str] = field(default_factory=dict)  # field name → JSON path, e.g. $."Email"
    timestamp_formats: dict[str, str] = field(default_factory=dict)  # field name → strptime fmt

    def path(self, contract_field: Field) -> str:
        """JSON path of a field in the incoming record."""
        if contract_field.promoted_from:  # follows its parent object if that is mapped
            parent, *rest = path_segments(contract_field.promoted_from)
            if parent in self.paths:
                return segments_path([*path_segments(self.paths[parent]), *rest])
            return contract_field.promoted_from
        return self.paths.get(contract_field.name, json_key_path(contract_field.name))


def json_key_path(key: str) -> str:
    """JSON path selecting one top-level key, safe for any key text."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_SEGMENT = re.compile(r'\."((?:[^"\\]|\\.)*)"|\.([^."\[\]]+)|\[(\d+)\]')


def path_segments(path: str) -> list[str | int]:
    """``$."a b".c[0]`` → ``["a b", "c", 0]``."""
    if not path.startswith("$"):
        raise ValueError(f"unsupported JSON path {path!r} (must start with $)")
    segments: list[str | int] = []
    position = 1
    while position < len(path):
        match = _SEGMENT.match(path, position)
        if not match:
            raise ValueError(f"unsupported JSON path {path!r} at character {position}")
        quoted, plain, index = match.groups()
        if quoted is not None:
            segments.append(re.sub(r"\\(.)", r"\1", quoted))
        else:
            segments.append(plain if plain is not None else int(index))
        position = match.end()
    return segments


def segments_path(segments: list[str | int]) -> str:
    """``["a b", "c", 0]`` → ``$."a b"."c"[0]``."""
    return "$" + "".join(
        f"[{s}]" if isinstance(s, int) else json_key_path(s).removeprefix("$") for s in segments
    )


def _strip_patch(paths: list[str]) -> tuple[dict, list[str], list[list[str]]]:
    """What to remove from a record to leave only unknown keys (its ``_extra``).

    Returns a JSON merge patch (mapped keys set to null, nested where a path is nested), the
    top-level keys read whole, and the nested objects a record may be left holding empty.
    Array elements cannot be addressed by a merge patch: an array stays in ``_extra`` whole.
    """
    patch: dict = {}
    whole = []
    for segments in sorted((path_segments(p) for p in paths), key=len):
        keys = segments[: next((n for n, s in enumerate(segments) if isinstance(s, int)),
                                len(segments))]  # fmt: skip
        if not keys or len(keys) < len(segments):
            continue
        node = patch
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if node is None:
                break
        else:
            node[keys[-1]] = None
            if len(keys) == 1:
                whole.append(keys[0])
    parents: list[list[str]] = []

    def walk(node: dict, prefix: list[str]) -> None:
        for key, child in node.items():
            if isinstance(child, dict):
                walk(child, [*prefix, key])
                parents.append([*prefix, key])

    walk(patch, [])
    return patch, whole, parents


def _null_at(keys: list[str]) -> str:
    patch: dict | None = None
    for key in reversed(keys):
        patch = {key: patch}
    return json.dumps(patch)


def _typed(kind: str, i: int, timestamp_format: str | None) -> str:
    """Expression converting text ``t{i}`` (JSON type ``j{i}``) to the field's type, or NULL."""
    text, trimmed, jtype = f"t{i}", f"trim(t{i})", f"j{i}"
    if kind == "string":
        return f"case when {jtype} not in ('OBJECT', 'ARRAY', 'BOOLEAN') then {text} end"
    if kind == "timestamp":
        parsed = (
            f"try_strptime({trimmed}, {_literal(timestamp_format)})"
            if timestamp_format
            else f"try_cast({trimmed} as timestamptz)"
        )
        return f"case when {jtype} = 'VARCHAR' then cast({parsed} as timestamp) end"
    if kind == "date":
        return f"case when {jtype} = 'VARCHAR' then try_cast({trimmed} as date) end"
    if kind == "decimal":
        return (
            f"case when {jtype} in {_NUMBER_TYPES} then try_cast({trimmed} as decimal(18, 2)) end"
        )
    if kind == "integer":
        return (
            f"case when {jtype} in {_NUMBER_TYPES} and regexp_full_match({trimmed}, '[+-]?[0-9]+')"
            f" then try_cast({trimmed} as bigint) end"
        )
    if kind == "double":
        return (
            f"case when {jtype} in {_NUMBER_TYPES} and isfinite(try_cast({trimmed} as double))"
            f" then try_cast({trimmed} as double) end"
        )
    if kind == "json":  # an object, or (CSV) text holding one
        return (
            f"case when {jtype} = 'OBJECT' then x{i}"
            f" when {jtype} = 'VARCHAR' and json_valid({text})"
            f" then (case when json_type({text}) = 'OBJECT' then cast({text} as json) end) end"
        )
    raise ValueError(f"unknown field kind {kind!r}")


_EXPECTATION = {
    "timestamp": "is not an ISO 8601 timestamp",
    "date": "is not a date (expected YYYY-MM-DD)",
    "decimal": "is not a number",
    "integer": "is not an integer",
    "double": "is not a finite number",
}


def _problem(f: Field, i: int) -> str:
    """Reason text for a present value that could not be converted."""
    prefix = _literal(f"field '{f.name}': ")
    if f.kind == "string":
        return f"{prefix} || 'expected text, found ' || lower(j{i})"
    if f.kind == "json":
        return f"{prefix} || 'expected a JSON object, found ' || lower(j{i})"
    quoted = f"'''' || left(t{i}, {_MAX_QUOTED}) || ''''"
    return f"{prefix} || {quoted} || ' ' || {_literal(_EXPECTATION[f.kind])}"


def validation_query(contract: Contract, mapping: SourceMapping | None = None) -> str:
    """The SELECT that types, checks and fingerprints every row of ``_incoming``."""
    mapping = mapping or SourceMapping()
    fields = contract.fields
    paths = "[" + ", ".join(_literal(mapping.path(f)) for f in fields) + "]"
    described = [f"texts[{i + 1}] as t{i}, types[{i + 1}] as j{i}" for i in range(len(fields))]
    # JSON-kind values come JSON-typed from one json_extract (no re-validation of their text).
    json_fields = [i for i, f in enumerate(fields) if f.kind == "json"]
    json_paths = "[" + ", ".join(_literal(mapping.path(fields[i])) for i in json_fields) + "]"
    described += [f"objects[{k + 1}] as x{i}" for k, i in enumerate(json_fields)]
    typed = [
        f"{_typed(f.kind, i, mapping.timestamp_formats.get(f.name))} as v{i}, "
        f"(t{i} is null or trim(t{i}) = '') as m{i}"
        for i, f in enumerate(fields)
    ]
    reasons: list[tuple[str, str, str | None]] = [
        ("error is not null", "error", None),
        ("obj is null", _literal(NOT_A_JSON_OBJECT), None),
    ]
    for i, f in enumerate(fields):
        if f.promoted_from:
            continue  # a convenience copy never rejects a row
        if f.required:
            reasons.append((f"m{i}", _literal(f"missing required field '{f.name}'"), f.name))
        reasons.append((f"not m{i} and v{i} is null", _problem(f, i), f.name))
        if f.choices:
            allowed = ", ".join(_literal(c) for c in f.choices)
            opening = _literal(f"field '{f.name}': '")
            closing = _literal("' is not one of: " + ", ".join(f.choices))
            message = f"{opening} || v{i} || {closing}"
            reasons.append((f"not m{i} and v{i} not in ({allowed})", message, f.name))
    named = ", ".join(f'v{i} as "{f.column}"' for i, f in enumerate(fields))
    for description, predicate in contract.row_rules:
        reasons.append((f"not coalesce(({predicate}), false)", _literal(description), None))
    # The first failed check decides; its number is computed once per row and the (dynamic)
    # text is rendered only for the few rows that fail.
    problem_sql = " ".join(f"when {cond} then {n}" for n, (cond, _, _) in enumerate(reasons, 1))
    reason_sql = " ".join(f"when {n} then {text}" for n, (_, text, _) in enumerate(reasons, 1))
    field_list = "[" + ", ".join(_literal(name) if name else "null" for _, _, name in reasons) + "]"
    patch, whole, parents = _strip_patch([mapping.path(f) for f in fields])
    whole_list = "[" + ", ".join(_literal(k) for k in sorted(whole)) + "]"
    extra = f"json_merge_patch(obj, {_literal(json.dumps(patch))})"
    for keys in parents:  # deepest first: drop objects that only held mapped keys
        emptied = (
            f"cast(json_extract({extra}, {_literal(segments_path(keys))}) as varchar) = '{{}}'"
        )
        pruned = f"json_merge_patch({extra}, {_literal(_null_at(keys))})"
        extra = f"(case when {emptied} then {pruned} else {extra} end)"
    # Typed values with missing text (m) are NULL, so row rules see NULL for "absent".
    nulled = ", ".join(
        f"case when m{i} then null else v{i} end as v{i}" for i in range(len(fields))
    )
    # Each document is parsed a fixed few times (multi-path functions), never once per field.
    return f"""
        with source as (
            select line_no, payload, error, coalesce(record, payload) as doc
            from _incoming
        ),
        parsed as (
            select line_no, payload, error, doc,
                   case when error is null and json_valid(doc)
                        then (case when json_type(doc) = 'OBJECT' then doc end)
                   end as obj
            from source
        ),
        extracted as (
            select *, json_extract_string(obj, {paths}) as texts, json_type(obj, {paths}) as types,
                   {f"json_extract(obj, {json_paths})" if json_fields else "null"} as objects
            from parsed
        ),
        described as (select *, {", ".join(described)} from extracted),
        typed as (select *, {", ".join(typed)} from described),
        cleaned as (select * replace ({nulled}) from typed),
        named as (select *, {named} from cleaned),
        checked as (
            select *,
                   case {problem_sql} end as _problem,
                   case when obj is not null
                             and not list_has_all({whole_list}, json_keys(obj))
                        then nullif(cast({extra} as varchar), '{{}}')
                   end as _extra
            from named
        )
        select line_no as _line_no, payload,
               case when _problem is not null then (case _problem {reason_sql} end) end
                   as _reason,
               {field_list}[_problem] as _field,
               _extra,
               {", ".join(f'"{f.column}"' for f in fields)},
               md5(doc) as _row_hash  -- the record as it arrived
        from checked
    """
