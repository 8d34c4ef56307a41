"""Validation compiled to one vectorized DuckDB query, generated from the landing contract.

Input: a relation ``_incoming(line_no, payload, record, error, row_hash)`` — one row per input
record; ``record`` is the record as a JSON object (NULL: ``payload`` itself is the JSON record),
``error`` a reader's parse error and ``row_hash`` the record's fingerprint (``ingestion.row_hash``,
passed through as ``_row_hash``). Output: one row per input row with every contract column
typed, ``_extra`` (fields the contract does not know), ``_row_hash``, and ``_field`` /
``_reason`` saying why the row cannot be loaded (NULL when it can); ``payload`` is kept only for
the rows that cannot (it goes to quarantine).

Each record is parsed once by ``from_json`` into the top-level keys the contract paths go through
(text values unquoted; JSON objects and timestamps as raw JSON), and nested paths are read from
their parent object's JSON; a JSON type is read from a raw value's first character, and
conversions run vectorized on the values.
A record's key list (``json_keys``) tells whether it has keys outside the contract; only such
records are parsed again, for their ``_extra``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from cdp.contracts import Contract, Field

#: Placeholder reason for records that are not a JSON object; the loader words it precisely.
NOT_A_JSON_OBJECT = "__not_a_json_object__"

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


#: Characters a value may be padded with (DuckDB's one-argument ``trim`` removes only spaces).
_BLANKS = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"


def _trimmed(text: str) -> str:
    """SQL for ``text`` without surrounding blanks (spaces, tabs, line breaks)."""
    return f"trim({text}, {_BLANKS})"


#: Kinds read as text (a JSON string unescaped, any other value as its JSON text): numbers
#: accept a JSON number or a string, so the text decides; a string field refuses objects,
#: arrays and booleans, whose text is told from a string's by the raw value (read again only
#: when the text could be one of them). The other kinds are read as raw JSON.
_TEXT_KINDS = ("string", "decimal", "integer", "double")


def _typed(kind: str, i: int, timestamp_format: str | None, raw: str) -> str:
    """Expression converting text ``t{i}`` to the field's type, or NULL.

    NULL too when the value is missing (``m{i}``). ``raw`` is the raw JSON text of the value,
    whose type shows in its first character, compared rather than extracted: a string starts
    with '"' (below '#'), a number with '-' or a digit (so a string or a number is below
    ':'); objects, arrays and booleans start above (JSON null is already NULL).
    """
    text, trimmed, present = f"t{i}", f"s{i}", f"not m{i}"
    if kind == "string":  # text that cannot be an object's, an array's or a boolean's is text
        could_be_other = (
            f"({text} >= '{{' or ({text} >= '[' and {text} < '\\')"
            f" or {text} = 'true' or {text} = 'false')"
        )
        return (
            f"case when not {present} then null when not {could_be_other} then {text}"
            f" when {raw} < ':' then {text} end"
        )
    if kind == "timestamp":
        parsed = (
            f"try_strptime({trimmed}, {_literal(timestamp_format)})"
            if timestamp_format
            else f"try_cast({trimmed} as timestamptz)"
        )
        return f"case when {present} and {raw} < '#' then cast({parsed} as timestamp) end"
    if kind == "date":
        return f"case when {present} and {raw} < '#' then try_cast({trimmed} as date) end"
    if kind == "decimal":
        return f"case when {present} then try_cast({trimmed} as decimal(18, 2)) end"
    if kind == "integer":
        return (
            f"case when {present} and regexp_full_match({trimmed}, '[+-]?[0-9]+')"
            f" then try_cast({trimmed} as bigint) end"
        )
    if kind == "double":
        return (
            f"case when {present} and isfinite(try_cast({trimmed} as double))"
            f" then try_cast({trimmed} as double) end"
        )
    if kind == "json":  # an object, or (CSV) text holding one
        return (
            f"case when not {present} then null when starts_with({raw}, '{{') then x{i}"
            f" when {raw} < '#' and json_valid({text})"
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


def _problem(f: Field, i: int, raw: str) -> str:
    """Reason text for a present value that could not be converted (``raw``: its JSON text)."""
    prefix = _literal(f"field '{f.name}': ")
    found = f"lower({_JSON_TYPE.format(x=raw)})"
    if f.kind == "string":
        return f"{prefix} || 'expected text, found ' || {found}"
    if f.kind == "json":
        return f"{prefix} || 'expected a JSON object, found ' || {found}"
    quoted = f"'''' || left(t{i}, {_MAX_QUOTED}) || ''''"
    return f"{prefix} || {quoted} || ' ' || {_literal(_EXPECTATION[f.kind])}"


@dataclass(frozen=True)
class _Values:
    """How the validation query reads the contract paths of each record."""

    record: str  # select item ``r``: the top-level values read; NULL when not a JSON object
    lists: list[str]  # select items over ``r``: the values of nested paths, a list per source
    columns: list[str]  # per path: ``t{i}`` (text kinds) or ``x{i}`` (raw JSON)
    raw: list[str]  # per path: its raw JSON text (read again for the text kinds, when needed)


def _top_level_fields(segments: list[list[str | int]], kinds: list[str]) -> dict[str, str]:
    """The record's top-level keys read through ``from_json``, each with its type: text
    (``VARCHAR``) when only text kinds read the key itself, else raw ``JSON`` (also the
    parents of nested paths). DuckDB's struct fields ignore case, so of keys differing only
    in case the first is taken; the others are read from the record."""
    fields: dict[str, str] = {}
    for path, kind in zip(segments, kinds, strict=True):
        key = path[0]
        if not isinstance(key, str):
            continue
        if key not in fields and key.casefold() in {k.casefold() for k in fields}:
            continue
        as_text = len(path) == 1 and kind in _TEXT_KINDS
        fields[key] = "VARCHAR" if as_text and fields.get(key) != "JSON" else "JSON"
    return fields


def _raw_values(paths: list[str], kinds: list[str]) -> _Values:
    """SQL reading every path's value: the record parsed once, nested values from their parent.

    ``from_json`` reads the top-level keys the paths go through into one struct (``r``; text
    values unquoted, the others as raw JSON), one parse of the record; a nested path is read
    from its parent's JSON text (a fraction of the record, written by that parse, so always
    valid) by one list extraction per parent and kind. Two list extractions of the whole record
    cost ~0.4 µs per event more. A record is an object, so a path starting with an array index
    has no value; a key the struct cannot hold is read from the record itself.
    """
    segments = [path_segments(p) for p in paths]
    fields = _top_level_fields(segments, kinds)
    lists: dict[tuple[str, bool], list[str]] = {}  # (source, text?) → paths read from it
    names: dict[tuple[str, bool], str] = {}  # (source, text?) → its list column
    columns, raw = [], []
    for i, (path, kind) in enumerate(zip(segments, kinds, strict=True)):
        text, key = kind in _TEXT_KINDS, path[0]
        if not isinstance(key, str):
            value = "null"
        elif key in fields and len(path) == 1:
            value = f"struct_extract(r, {_literal(key)})"
            value = _JSON_TEXT.format(x=value) if text and fields[key] == "JSON" else value
        else:  # a nested path, from its parent's JSON; or a key the struct cannot hold
            if key in fields:
                source, relative = f"struct_extract(r, {_literal(key)})", segments_path(path[1:])
            else:
                source, relative = "doc", paths[i]
            listed = lists.setdefault((source, text), [])
            if relative not in listed:
                listed.append(relative)
            name = names.setdefault((source, text), f"n{len(names)}")
            value = f"{name}[{listed.index(relative) + 1}]"
            value = value if text else f"nullif({value}, 'null')"
        if text:
            columns.append(f"cast({value} as varchar) as t{i}")
            raw.append(f"cast(json_extract(doc, {_literal(paths[i])}) as varchar)")
        else:
            columns.append(f"cast({value} as json) as x{i}")
            raw.append(f"cast(x{i} as varchar)")
    function = {True: "json_extract_string", False: "json_extract"}
    extractions = [
        f"case when r is not null then {function[text]}({source}, "
        f"[{', '.join(_literal(p) for p in listed)}]) end as {names[source, text]}"
        for (source, text), listed in lists.items()
    ]
    # no top-level key read (every path starts with an array index): only whether it parses
    parse = f"from_json(doc, {_literal(json.dumps(fields))})" if fields else "json_keys(doc)"
    record = f"case when error is null then try({parse}) end as r"
    return _Values(record, extractions, columns, raw)


#: JSON type of a raw JSON value from its first character (names as DuckDB's ``json_type``).
_JSON_TYPE = (
    "case left({x}, 1) when '\"' then 'VARCHAR' when '{{' then 'OBJECT' when '[' then 'ARRAY'"
    " when 't' then 'BOOLEAN' when 'f' then 'BOOLEAN'"
    " else (case when contains({x}, '.') or contains(lower({x}), 'e') then 'DOUBLE'"
    " when starts_with({x}, '-') then 'BIGINT' else 'UBIGINT' end) end"
)
#: Text of a raw JSON value: strings unquoted (unescaped only when they hold an escape; the
#: quotes cut off by character positions, a third of the cost of slicing, which counts graphemes).
_JSON_TEXT = (
    "case when starts_with({x}, '\"') then (case when contains({x}, '\\') then {x} ->> '$'"
    " else substring({x}, 2, length({x}) - 2) end) else cast({x} as varchar) end"
)


#: Keys the fast ``_extra`` builds by hand: no escaping needed in the JSON text or the path.
_PLAIN_KEY = "[A-Za-z0-9_-]+"


def _extra_sql(paths: list[str]) -> tuple[str, str]:
    """SQL for a record's keys the paths do not read (``unknown_keys``) and its ``_extra``.

    ``_extra`` (computed only for records that have such keys) is a JSON merge patch of the
    record that nulls the mapped values and prunes the objects left empty. When the paths only
    read whole top-level keys and the unknown keys are plain and distinct (the usual case: a
    Segment event's ``name``, ``sentAt``, ...), it is assembled from those keys' values instead,
    at half the cost (the patch copies and rewrites the whole record).
    """
    patch, whole, parents = _strip_patch(paths)
    known = ", ".join(_literal(k) for k in sorted(whole))
    unknown = (
        f"list_filter(json_keys(doc), lambda k: k not in ({known}))" if whole else "json_keys(doc)"
    )
    patched = f"json_merge_patch(doc, {_literal(json.dumps(patch))})"
    for keys in parents:  # deepest first: drop objects that only held mapped keys
        emptied = (
            f"cast(json_extract({patched}, {_literal(segments_path(keys))}) as varchar) = '{{}}'"
        )
        pruned = f"json_merge_patch({patched}, {_literal(_null_at(keys))})"
        patched = f"(case when {emptied} then {pruned} else {patched} end)"
    patched = f"nullif(cast({patched} as varchar), '{{}}')"
    if parents:  # nested keys to drop from inside an unknown key's value
        return unknown, patched
    assembled = (
        "case when len(unknown_keys) = len(list_distinct(unknown_keys)) and list_bool_and("
        f"list_transform(unknown_keys, lambda k: regexp_full_match(k, '{_PLAIN_KEY}')))"
        " then '{' || array_to_string(list_transform(unknown_keys, lambda k:"
        " '\"' || k || '\":' || json_extract(doc, '$.\"' || k || '\"')), ',') || '}' end"
    )
    return unknown, f"coalesce({assembled}, {patched})"


def validation_query(contract: Contract, mapping: SourceMapping | None = None) -> str:
    """The SELECT that types, checks and fingerprints every row of ``_incoming``."""
    mapping = mapping or SourceMapping()
    fields = contract.fields
    values = _raw_values([mapping.path(f) for f in fields], [f.kind for f in fields])
    described = [
        f"{_JSON_TEXT.format(x=f'x{i}')} as t{i}"
        for i, f in enumerate(fields)
        if f.kind not in _TEXT_KINDS
    ]
    # trim() copies every string; most values have nothing to trim (s: the trimmed text, for
    # the kinds that convert it). m: missing (absent, null or blank); "t < '!'" means the first
    # byte is a blank or control character (or t is empty); the CASE costs ~2.5 µs per row
    # less than "t is null or (t[1] <= ' ' and trim(t) = '')" over the 16 event fields.
    trimmed = [
        f"case when t{i}[1] > ' ' and t{i}[-1] > ' ' then t{i} else {_trimmed(f't{i}')} end as s{i}"
        for i, f in enumerate(fields)
        if f.kind not in ("string", "json")
    ]
    missing = [
        f"(case when t{i} < '!' then {_trimmed(f't{i}')} = '' else t{i} is null end) as m{i}"
        for i in range(len(fields))
    ]
    typed = [
        f"{_typed(f.kind, i, mapping.timestamp_formats.get(f.name), values.raw[i])} as v{i}"
        for i, f in enumerate(fields)
    ]
    reasons: list[tuple[str, str, str | None]] = [
        ("error is not null", "error", None),
        ("not is_object", _literal(NOT_A_JSON_OBJECT), None),
    ]
    for i, f in enumerate(fields):
        if f.promoted_from:
            continue  # a convenience copy never rejects a row
        if f.required:
            reasons.append((f"m{i}", _literal(f"missing required field '{f.name}'"), f.name))
        reasons.append((f"not m{i} and v{i} is null", _problem(f, i, values.raw[i]), f.name))
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
    unknown_keys, extra = _extra_sql([mapping.path(f) for f in fields])
    return f"""
        with source as (
            select line_no, payload, error, row_hash, coalesce(record, payload) as doc
            from _incoming
        ),
        parsed as (select *, {values.record} from source),
        transformed as (
            select *{"".join(", " + item for item in values.lists)},
                   case when r is null then false
                        when starts_with(doc, '{{') then true
                        else json_type(doc) = 'OBJECT' end as is_object
            from parsed
        ),
        extracted as (select *, {", ".join(values.columns)} from transformed),
        described as (select *{"".join(", " + d for d in described)} from extracted),
        stripped as (select *, {", ".join(missing + trimmed)} from described),
        -- typed values of missing text (m) are NULL, so row rules see NULL for "absent"
        typed as (select *, {", ".join(typed)} from stripped),
        named as (select *, {named} from typed),
        checked as (
            select *, case {problem_sql} end as _problem,
                   case when is_object then {unknown_keys} end as unknown_keys
            from named
        ),
        extras as (select *, case when len(unknown_keys) > 0 then {extra} end as _extra
                   from checked)
        select line_no as _line_no,
               case when _problem is not null then payload end as payload,  -- for quarantine
               case when _problem is not null then (case _problem {reason_sql} end) end
                   as _reason,
               {field_list}[_problem] as _field,
               _extra,
               {", ".join(f'"{f.column}"' for f in fields)},
               row_hash as _row_hash
        from extras
    """
