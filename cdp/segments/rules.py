"""Segment rules: the AST and its parsing and validation from YAML data.

A rule is a tree of nodes, each a YAML mapping with one leading key:

- ``{field, op, value}`` — a condition on a profile column or a model field
  (``lifetime_value >= 500``, ``first_seen_at within_days 30``, ``propensity_decile >= 9``);
- ``{count: EVENT, op, value, within, ending_within?, where?}`` — how many ``EVENT`` events the
  customer had in a ``within`` window (ending at the run's time T, or — with ``ending_within`` —
  the busiest such window ending at most ``ending_within`` before T);
- ``{sequence: EVENT, then: EVENT | then_no: EVENT, within, since, where?}`` — a first event in
  the ``since`` period before T followed (``then``) or not followed (``then_no``) by a second one
  within ``within`` after it;
- ``{in_segment: NAME}`` — membership of another segment (evaluated at the same T);
- ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}``.

``where`` holds conditions on the event's own columns (``category``, ``price``, ...).
Windows are written ``"<n> <unit>"`` (seconds, minutes, hours, days, weeks).

NULL semantics: a comparison never matches a NULL field (use ``is_null`` for that); ``not``
negates whether the inner rule matched, so ``not`` of a rule is its exact complement.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cdp.segments.columns import ColumnKind, column_kind
from cdp.segments.sources import EVENT_COLUMNS, MODEL_FIELDS, TRACKED_EVENTS


class Op(StrEnum):
    """Operators a condition may use."""

    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    IS_NULL = "is_null"
    IS_NOT_NULL = "is_not_null"
    WITHIN_DAYS = "within_days"
    OLDER_THAN_DAYS = "older_than_days"


class ValueShape(StrEnum):
    """What an operator expects in ``value``."""

    NONE = "none"
    SCALAR = "scalar"
    LIST = "list"
    DAYS = "days"


@dataclass(frozen=True)
class OpSpec:
    """How an operator is validated: the value it takes and the column kinds it applies to."""

    shape: ValueShape
    kinds: frozenset[ColumnKind]


_COMPARABLE = frozenset(
    {ColumnKind.NUMBER, ColumnKind.TEXT, ColumnKind.BOOLEAN, ColumnKind.DATE, ColumnKind.TIMESTAMP}
)
_ORDERED = _COMPARABLE - {ColumnKind.BOOLEAN}
_TEMPORAL = frozenset({ColumnKind.DATE, ColumnKind.TIMESTAMP})

#: Every operator and its contract; add an entry (and a branch in the compiler) to extend.
OPS: dict[Op, OpSpec] = {
    Op.EQ: OpSpec(ValueShape.SCALAR, _COMPARABLE),
    Op.NE: OpSpec(ValueShape.SCALAR, _COMPARABLE),
    Op.GT: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.GE: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.LT: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.LE: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.IN: OpSpec(ValueShape.LIST, _ORDERED),
    Op.NOT_IN: OpSpec(ValueShape.LIST, _ORDERED),
    Op.CONTAINS: OpSpec(ValueShape.SCALAR, frozenset({ColumnKind.TEXT})),
    Op.IS_NULL: OpSpec(ValueShape.NONE, frozenset(ColumnKind)),
    Op.IS_NOT_NULL: OpSpec(ValueShape.NONE, frozenset(ColumnKind)),
    Op.WITHIN_DAYS: OpSpec(ValueShape.DAYS, _TEMPORAL),
    Op.OLDER_THAN_DAYS: OpSpec(ValueShape.DAYS, _TEMPORAL),
}

#: Operators a count compares with (counts are whole numbers).
COUNT_OPS = (Op.EQ, Op.NE, Op.GT, Op.GE, Op.LT, Op.LE)

Scalar = int | float | Decimal | str | bool | date | datetime
Value = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True)
class Condition:
    """One test on one column (a profile column, model field or event column)."""

    field: str
    op: Op
    value: Value = None


@dataclass(frozen=True)
class EventCount:
    """``count(event where ...) op value`` in a sliding ``within`` window (see the compiler)."""

    event: str
    op: Op
    value: int
    within: timedelta
    ending_within: timedelta = timedelta(0)
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class EventSequence:
    """A ``first`` event in the ``since`` period, then (or ``absent``: then no) ``second`` event."""

    first: str
    second: str
    absent: bool
    within: timedelta
    since: timedelta
    where: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class InSegment:
    """Membership of another segment at the same run time."""

    segment: str


@dataclass(frozen=True)
class AllOf:
    """Matches when every child rule matches."""

    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    """Matches when at least one child rule matches."""

    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    """Matches exactly when the child rule does not."""

    rule: Rule


Rule = Condition | EventCount | EventSequence | InSegment | AllOf | AnyOf | Not

_COMBINATORS = ("all", "any", "not")
_LEAF_KINDS = ("field", "count", "sequence", "in_segment")
_CONDITION_KEYS = ("field", "op", "value")
_COUNT_KEYS = ("count", "op", "value", "within", "ending_within", "where")
_SEQUENCE_KEYS = ("sequence", "then", "then_no", "within", "since", "where")
_MISSING = object()

_DURATION = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week)s?\s*$")
#: The longest window a rule may use.
MAX_WINDOW = timedelta(days=3660)


class RuleError(ValueError):
    """A rule is malformed or does not fit the known fields; ``problems`` lists each issue."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --------------------------------------------------------------------------------------------
# Parsing and validation
# --------------------------------------------------------------------------------------------


def rule_fields_catalog(profile_columns: Mapping[str, str]) -> dict[str, str]:
    """Fields a ``field`` condition may use: the profile columns and the model fields."""
    return {**profile_columns, **MODEL_FIELDS}


def parse_rule(raw: Any, columns: Mapping[str, str], where: str = "rule") -> Rule:
    """Parse YAML data into a rule, checked against the profile ``columns`` (name → type)."""
    problems: list[str] = []
    rule = _parse_node(raw, rule_fields_catalog(columns), where, problems)
    if problems or rule is None:
        raise RuleError(problems or [f"{where}: empty rule"])
    return rule


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _parse_node(
    raw: Any, fields: Mapping[str, str], where: str, problems: list[str]
) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.append(
            f"{where}: expected a mapping with one of {', '.join(_COMBINATORS + _LEAF_KINDS)}, "
            f"got {_type_name(raw)}"
        )
        return None
    leading = [key for key in _COMBINATORS + _LEAF_KINDS if key in raw]
    if len(leading) != 1:
        if leading:
            used = ", ".join(repr(k) for k in leading)
            problems.append(f"{where}: mixes {used}; a rule node uses exactly one of them")
        else:
            keys = ", ".join(str(k) for k in raw) or "none"
            problems.append(
                f"{where}: a rule node needs one of {', '.join(_COMBINATORS + _LEAF_KINDS)} "
                f"(got keys: {keys})"
            )
        return None
    key = leading[0]
    if key == "field":
        return _parse_condition(raw, fields, "profiles or model fields", where, problems)
    if key == "count":
        return _parse_count(raw, where, problems)
    if key == "sequence":
        return _parse_sequence(raw, where, problems)
    if key == "in_segment":
        return _parse_in_segment(raw, where, problems)
    extra = sorted(str(k) for k in raw if k != key)
    if extra:
        problems.append(f"{where}: unexpected key(s) {', '.join(extra)} next to '{key}'")
    if key == "not":
        child = _parse_node(raw["not"], fields, f"{where}.not", problems)
        return Not(child) if child is not None else None
    items = raw[key]
    if not isinstance(items, list) or not items:
        problems.append(f"{where}.{key}: expected a non-empty list of rules")
        return None
    children = [
        _parse_node(item, fields, f"{where}.{key}[{i}]", problems) for i, item in enumerate(items)
    ]
    if any(child is None for child in children):
        return None
    combinator = AllOf if key == "all" else AnyOf
    return combinator(tuple(c for c in children if c is not None))


def _unknown_keys(
    raw: Mapping[str, Any], allowed: tuple[str, ...], where: str, problems: list[str]
) -> bool:
    """Record keys of ``raw`` outside ``allowed``; return whether there were any."""
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        allowed_text = ", ".join(allowed)
        problems.append(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed here: {allowed_text}"
        )
    return bool(unknown)


def _parse_condition(
    raw: Mapping[str, Any],
    fields: Mapping[str, str],
    source: str,
    where: str,
    problems: list[str],
) -> Condition | None:
    if _unknown_keys(raw, _CONDITION_KEYS, where, problems):
        return None
    missing = [k for k in ("field", "op") if k not in raw]
    if missing:
        problems.append(f"{where}: missing required key(s) {', '.join(missing)}")
        return None
    field, op_name = raw["field"], raw["op"]
    if not isinstance(field, str):
        problems.append(f"{where}: 'field' must be a column name, got {_type_name(field)}")
        return None
    op = _parse_op(op_name, tuple(Op), where, problems)
    if op is None:
        return None
    condition, problem = check_condition(field, op, raw.get("value", _MISSING), fields, source)
    if problem:
        problems.append(f"{where}: {problem}")
    return condition


def _parse_op(raw: Any, allowed: tuple[Op, ...], where: str, problems: list[str]) -> Op | None:
    names = [op.value for op in allowed]
    if not isinstance(raw, str) or raw not in names:
        hint = difflib.get_close_matches(str(raw), names, n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        problems.append(f"{where}: unknown op {raw!r}{did_you_mean}; valid ops: {', '.join(names)}")
        return None
    return Op(raw)


def parse_duration(raw: Any) -> timedelta:
    """``"10 minutes"`` → ``timedelta(minutes=10)``; raise ``ValueError`` on anything else."""
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise ValueError(
            f"bad window {raw!r}: write '<whole number> <unit>' with unit seconds, minutes, "
            "hours, days or weeks, e.g. '10 minutes'"
        )
    amount, unit = int(match.group(1)), match.group(2)
    window = timedelta(**{unit + "s": amount})
    if not timedelta(0) < window <= MAX_WINDOW:
        raise ValueError(
            f"bad window {raw!r}: must be longer than 0 and at most {MAX_WINDOW.days} days"
        )
    return window


def _duration(
    raw: Mapping[str, Any], key: str, where: str, problems: list[str], required: bool = True
) -> timedelta | None:
    if key not in raw:
        if required:
            problems.append(f"{where}: missing required key {key!r} (a window such as '30 days')")
        return None
    try:
        return parse_duration(raw[key])
    except ValueError as exc:
        problems.append(f"{where}.{key}: {exc}")
        return None


def _event_name(raw: Any, where: str, problems: list[str]) -> str | None:
    if isinstance(raw, str) and raw in TRACKED_EVENTS:
        return raw
    close = difflib.get_close_matches(str(raw), TRACKED_EVENTS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    problems.append(
        f"{where}: unknown event {raw!r}{hint}; tracked events: {', '.join(TRACKED_EVENTS)}"
    )
    return None


def _event_filters(raw: Mapping[str, Any], where: str, problems: list[str]) -> tuple | None:
    items = raw.get("where", [])
    if not isinstance(items, list):
        problems.append(f"{where}.where: expected a list of conditions on event columns")
        return None
    before = len(problems)
    filters = [
        _parse_condition(item, EVENT_COLUMNS, "event columns", f"{where}.where[{i}]", problems)
        if isinstance(item, Mapping)
        else problems.append(f"{where}.where[{i}]: expected a mapping with field, op, value")
        for i, item in enumerate(items)
    ]
    return None if len(problems) > before else tuple(filters)


def _parse_count(raw: Mapping[str, Any], where: str, problems: list[str]) -> EventCount | None:
    before = len(problems)
    where = f"{where}.count"
    _unknown_keys(raw, _COUNT_KEYS, where, problems)
    event = _event_name(raw["count"], where, problems)
    op = _parse_op(raw.get("op"), COUNT_OPS, where, problems)
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: 'value' must be a whole number >= 0, got {value!r}")
    within = _duration(raw, "within", where, problems)
    ending = _duration(raw, "ending_within", where, problems, required=False)
    filters = _event_filters(raw, where, problems)
    if len(problems) > before:
        return None
    return EventCount(event, op, value, within, ending or timedelta(0), filters)  # type: ignore[arg-type]


def _parse_sequence(
    raw: Mapping[str, Any], where: str, problems: list[str]
) -> EventSequence | None:
    before = len(problems)
    where = f"{where}.sequence"
    _unknown_keys(raw, _SEQUENCE_KEYS, where, problems)
    first = _event_name(raw["sequence"], where, problems)
    follow_keys = [k for k in ("then", "then_no") if k in raw]
    second = None
    if len(follow_keys) != 1:
        problems.append(f"{where}: needs exactly one of 'then' or 'then_no' (the second event)")
    else:
        second = _event_name(raw[follow_keys[0]], f"{where}.{follow_keys[0]}", problems)
    within = _duration(raw, "within", where, problems)
    since = _duration(raw, "since", where, problems)
    filters = _event_filters(raw, where, problems)
    if len(problems) > before:
        return None
    return EventSequence(first, second, follow_keys[0] == "then_no", within, since, filters)  # type: ignore[arg-type]


def _parse_in_segment(raw: Mapping[str, Any], where: str, problems: list[str]) -> InSegment | None:
    name = raw["in_segment"]
    if _unknown_keys(raw, ("in_segment",), where, problems):
        return None
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: 'in_segment' must be a segment name, got {_type_name(name)}")
        return None
    return InSegment(name)


def check_condition(
    field: str,
    op: Op,
    value: Any,
    columns: Mapping[str, str],
    source: str = "profiles or model fields",
) -> tuple[Condition | None, str | None]:
    """Validate one condition; return it with its value normalized, or a problem message."""
    if field not in columns:
        close = difflib.get_close_matches(field, list(columns), n=3, cutoff=0.6)
        hint = (
            f"; did you mean: {', '.join(close)}?"
            if close
            else f"; known fields: {', '.join(columns)}"
        )
        return None, f"unknown field {field!r} (not one of the {source}){hint}"
    kind = column_kind(columns[field])
    spec = OPS[op]
    if kind not in spec.kinds:
        applies = ", ".join(sorted(k.value for k in spec.kinds))
        return None, (
            f"op '{op}' does not apply to field {field!r} ({kind.value}: {columns[field]}); "
            f"it applies to {applies} fields"
        )
    missing = value is _MISSING
    if spec.shape is ValueShape.NONE:
        if not missing and value is not None:
            return None, f"op '{op}' takes no value, got {value!r} for field {field!r}"
        return Condition(field, op), None
    if missing or value is None:
        hint = " (to match missing values use op: is_null)" if op is Op.EQ else ""
        return None, f"op '{op}' on field {field!r} needs a 'value'{hint}"
    if spec.shape is ValueShape.DAYS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None, (
                f"op '{op}' on field {field!r} needs a whole number of days >= 0, got {value!r}"
            )
        return Condition(field, op, value), None
    if spec.shape is ValueShape.LIST:
        if not isinstance(value, list | tuple) or not value:
            return None, (
                f"op '{op}' on field {field!r} needs a non-empty list value, "
                f"got {_type_name(value)} {value!r}"
            )
        items = []
        for i, item in enumerate(value):
            normalized, problem = _check_scalar(item, kind)
            if problem:
                return None, f"field {field!r} value[{i}] {item!r}: {problem}"
            items.append(normalized)
        return Condition(field, op, tuple(items)), None
    normalized, problem = _check_scalar(value, kind)
    if problem:
        return None, f"field {field!r} with op '{op}', value {value!r}: {problem}"
    return Condition(field, op, normalized), None


def _check_scalar(value: Any, kind: ColumnKind) -> tuple[Scalar | None, str | None]:
    """Check one value against a column kind; return it normalized or a problem message."""
    if isinstance(value, Mapping | list | tuple) or value is None:
        return None, f"expected a single {kind.value} value, got {_type_name(value)}"
    if kind is ColumnKind.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            return None, f"expected a number, got {_type_name(value)}"
        return value, None
    if kind is ColumnKind.TEXT:
        if isinstance(value, bool):
            return None, (
                "expected text, got boolean (YAML reads unquoted yes/no/on/off/true/false as "
                "booleans: quote the value)"
            )
        if not isinstance(value, str):
            return None, f"expected text, got {_type_name(value)} (quote the value in YAML)"
        return value, None
    if kind is ColumnKind.BOOLEAN:
        if not isinstance(value, bool):
            return None, f"expected true or false, got {_type_name(value)}"
        return value, None
    if kind in (ColumnKind.DATE, ColumnKind.TIMESTAMP):
        return _check_temporal(value, kind)
    return None, f"values cannot be compared with a {kind.value} column"


def _check_temporal(value: Any, kind: ColumnKind) -> tuple[Scalar | None, str | None]:
    expected = "expected a date (YYYY-MM-DD) or timestamp (YYYY-MM-DD HH:MM:SS)"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None, f"{expected}, got text that is neither"
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # the warehouse stores UTC without a time zone
            value = value.astimezone(UTC).replace(tzinfo=None)
        if kind is ColumnKind.DATE and value == datetime.combine(value.date(), datetime.min.time()):
            return value.date(), None
        return value, None
    if isinstance(value, date):
        return value, None
    return None, f"{expected}, got {_type_name(value)}"


# --------------------------------------------------------------------------------------------
# Serialization and inspection
# --------------------------------------------------------------------------------------------


def _json_value(value: Value) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def format_duration(window: timedelta) -> str:
    """``timedelta(minutes=10)`` → ``"10 minutes"`` (the largest whole unit)."""
    seconds = int(window.total_seconds())
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            amount = seconds // size
            return f"{amount} {unit}{'s' if amount != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _condition_dict(rule: Condition) -> dict[str, Any]:
    out: dict[str, Any] = {"field": rule.field, "op": rule.op.value}
    if OPS[rule.op].shape is not ValueShape.NONE:
        out["value"] = _json_value(rule.value)
    return out


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The rule as plain data in the YAML grammar (dates as ISO strings)."""
    if isinstance(rule, AllOf):
        return {"all": [rule_to_dict(r) for r in rule.rules]}
    if isinstance(rule, AnyOf):
        return {"any": [rule_to_dict(r) for r in rule.rules]}
    if isinstance(rule, Not):
        return {"not": rule_to_dict(rule.rule)}
    if isinstance(rule, InSegment):
        return {"in_segment": rule.segment}
    filters = (
        {"where": [_condition_dict(c) for c in rule.where]}
        if not isinstance(rule, Condition) and rule.where
        else {}
    )
    if isinstance(rule, EventCount):
        out: dict[str, Any] = {
            "count": rule.event,
            "op": rule.op.value,
            "value": rule.value,
            "within": format_duration(rule.within),
        }
        if rule.ending_within:
            out["ending_within"] = format_duration(rule.ending_within)
        return {**out, **filters}
    if isinstance(rule, EventSequence):
        return {
            "sequence": rule.first,
            "then_no" if rule.absent else "then": rule.second,
            "within": format_duration(rule.within),
            "since": format_duration(rule.since),
            **filters,
        }
    return _condition_dict(rule)


def rule_to_json(rule: Rule) -> str:
    """The rule as canonical JSON (stable key order), for storage and change detection."""
    return json.dumps(rule_to_dict(rule), sort_keys=True)


def _describe_condition(cond: Condition) -> str:
    if OPS[cond.op].shape is ValueShape.NONE:
        return f"{cond.field} {cond.op.value.replace('_', ' ')}"
    value = _json_value(cond.value)
    return f"{cond.field} {cond.op.value.replace('_', ' ')} {json.dumps(value)}"


def describe_leaf(rule: Rule) -> str:
    """A one-line human reading of a leaf rule, as ``explain`` prints it."""
    filters = ""
    if isinstance(rule, EventCount | EventSequence) and rule.where:
        filters = " where " + " and ".join(_describe_condition(c) for c in rule.where)
    if isinstance(rule, EventCount):
        ending = (
            f", window ending in the last {format_duration(rule.ending_within)}"
            if rule.ending_within
            else ""
        )
        return (
            f"count({rule.event}{filters}) {rule.op.value} {rule.value} "
            f"within {format_duration(rule.within)}{ending}"
        )
    if isinstance(rule, EventSequence):
        then = "then no" if rule.absent else "then"
        return (
            f"{rule.first}{filters} in the last {format_duration(rule.since)}, {then} "
            f"{rule.second} within {format_duration(rule.within)}"
        )
    if isinstance(rule, InSegment):
        return f"in segment {rule.segment}"
    if isinstance(rule, Condition):
        return _describe_condition(rule)
    raise TypeError(f"not a leaf rule: {rule!r}")


def rule_fields(rule: Rule) -> set[str]:
    """Every profile column or model field a rule's ``field`` conditions read."""
    if isinstance(rule, AllOf | AnyOf):
        return set().union(*(rule_fields(r) for r in rule.rules))
    if isinstance(rule, Not):
        return rule_fields(rule.rule)
    return {rule.field} if isinstance(rule, Condition) else set()


def referenced_segments(rule: Rule) -> set[str]:
    """Names of the segments a rule's ``in_segment`` nodes refer to."""
    if isinstance(rule, AllOf | AnyOf):
        return set().union(*(referenced_segments(r) for r in rule.rules))
    if isinstance(rule, Not):
        return referenced_segments(rule.rule)
    return {rule.segment} if isinstance(rule, InSegment) else set()
