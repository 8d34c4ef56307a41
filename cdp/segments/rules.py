"""Segment rules: the AST, parsing from YAML data, and compilation to parameterized DuckDB SQL.

Field names reach SQL only after they are checked against the known profile columns, and then
only as quoted identifiers; every value is a ``?`` parameter. Values relative to the run's
``as_of`` (``within_days``, ``older_than_days``) are markers bound per run, so the compiled SQL
text of a segment does not change from run to run.

NULL semantics: a comparison never matches a NULL field (use ``is_null`` for that); ``not``
negates whether the inner rule matched, so ``not`` of a rule is its exact complement.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cdp.segments.columns import PROFILES_TABLE, ColumnKind, column_kind


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

#: Every operator and its contract; add an entry (and a branch in ``_compile_condition``) to extend.
OPS: dict[Op, OpSpec] = {
    Op.EQ: OpSpec(ValueShape.SCALAR, _COMPARABLE),
    Op.NE: OpSpec(ValueShape.SCALAR, _COMPARABLE),
    Op.GT: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.GE: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.LT: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.LE: OpSpec(ValueShape.SCALAR, _ORDERED),
    Op.IN: OpSpec(ValueShape.LIST, _ORDERED),
    Op.NOT_IN: OpSpec(ValueShape.LIST, _ORDERED),
    Op.IS_NULL: OpSpec(ValueShape.NONE, frozenset(ColumnKind)),
    Op.IS_NOT_NULL: OpSpec(ValueShape.NONE, frozenset(ColumnKind)),
    Op.WITHIN_DAYS: OpSpec(ValueShape.DAYS, _TEMPORAL),
    Op.OLDER_THAN_DAYS: OpSpec(ValueShape.DAYS, _TEMPORAL),
}

Scalar = int | float | Decimal | str | bool | date | datetime
Value = Scalar | tuple[Scalar, ...] | None


@dataclass(frozen=True)
class Condition:
    """One test on one profile column, e.g. ``lifetime_value >= 500``."""

    field: str
    op: Op
    value: Value = None


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


Rule = Condition | AllOf | AnyOf | Not

_COMBINATORS = ("all", "any", "not")
_CONDITION_KEYS = ("field", "op", "value")
_MISSING = object()


class RuleError(ValueError):
    """A rule is malformed or does not fit the profile columns; ``problems`` lists each issue."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --------------------------------------------------------------------------------------------
# Parsing and validation
# --------------------------------------------------------------------------------------------


def parse_rule(raw: Any, columns: Mapping[str, str], where: str = "rule") -> Rule:
    """Parse YAML data into a rule, checked against ``columns`` (name → DuckDB type)."""
    problems: list[str] = []
    rule = _parse_node(raw, columns, where, problems)
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
    raw: Any, columns: Mapping[str, str], where: str, problems: list[str]
) -> Rule | None:
    if not isinstance(raw, Mapping):
        problems.append(
            f"{where}: expected a mapping with one of 'all', 'any', 'not' or 'field', "
            f"got {_type_name(raw)}"
        )
        return None
    combinators = [key for key in _COMBINATORS if key in raw]
    if len(combinators) > 1 or (combinators and "field" in raw):
        used = ", ".join(repr(k) for k in [*combinators, *(["field"] if "field" in raw else [])])
        problems.append(f"{where}: mixes {used}; a rule node uses exactly one of them")
        return None
    if combinators:
        key = combinators[0]
        extra = sorted(str(k) for k in raw if k != key)
        if extra:
            problems.append(f"{where}: unexpected key(s) {', '.join(extra)} next to '{key}'")
        if key == "not":
            child = _parse_node(raw["not"], columns, f"{where}.not", problems)
            return Not(child) if child is not None else None
        items = raw[key]
        if not isinstance(items, list) or not items:
            problems.append(f"{where}.{key}: expected a non-empty list of rules")
            return None
        children = [
            _parse_node(item, columns, f"{where}.{key}[{i}]", problems)
            for i, item in enumerate(items)
        ]
        if any(child is None for child in children):
            return None
        combinator = AllOf if key == "all" else AnyOf
        return combinator(tuple(c for c in children if c is not None))
    return _parse_condition(raw, columns, where, problems)


def _parse_condition(
    raw: Mapping[str, Any], columns: Mapping[str, str], where: str, problems: list[str]
) -> Condition | None:
    unknown = sorted(str(k) for k in raw if k not in _CONDITION_KEYS)
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {', '.join(unknown)}; a condition has keys field, op, value "
            "(or use all/any/not)"
        )
        return None
    missing = [k for k in ("field", "op") if k not in raw]
    if missing:
        problems.append(f"{where}: missing required key(s) {', '.join(missing)}")
        return None
    field, op_name = raw["field"], raw["op"]
    if not isinstance(field, str):
        problems.append(f"{where}: 'field' must be a column name, got {_type_name(field)}")
        return None
    if not isinstance(op_name, str) or op_name not in OPS:
        valid = ", ".join(op.value for op in Op)
        hint = difflib.get_close_matches(str(op_name), [op.value for op in Op], n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        problems.append(f"{where}: unknown op {op_name!r}{did_you_mean}; valid ops: {valid}")
        return None
    condition, problem = check_condition(field, Op(op_name), raw.get("value", _MISSING), columns)
    if problem:
        problems.append(f"{where}: {problem}")
    return condition


def check_condition(
    field: str, op: Op, value: Any, columns: Mapping[str, str]
) -> tuple[Condition | None, str | None]:
    """Validate one condition; return it with its value normalized, or a problem message."""
    if field not in columns:
        close = difflib.get_close_matches(field, list(columns), n=3, cutoff=0.6)
        hint = (
            f"; did you mean: {', '.join(close)}?"
            if close
            else f"; known fields: {', '.join(columns)}"
        )
        return None, f"unknown field {field!r} (not a column of {PROFILES_TABLE}){hint}"
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
# Serialization
# --------------------------------------------------------------------------------------------


def _json_value(value: Value) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The rule as plain data in the YAML grammar (dates as ISO strings)."""
    if isinstance(rule, AllOf):
        return {"all": [rule_to_dict(r) for r in rule.rules]}
    if isinstance(rule, AnyOf):
        return {"any": [rule_to_dict(r) for r in rule.rules]}
    if isinstance(rule, Not):
        return {"not": rule_to_dict(rule.rule)}
    out: dict[str, Any] = {"field": rule.field, "op": rule.op.value}
    if OPS[rule.op].shape is not ValueShape.NONE:
        out["value"] = _json_value(rule.value)
    return out


def rule_to_json(rule: Rule) -> str:
    """The rule as canonical JSON (stable key order), for storage and change detection."""
    return json.dumps(rule_to_dict(rule), sort_keys=True)


def rule_fields(rule: Rule) -> set[str]:
    """Every profile column a rule reads."""
    if isinstance(rule, AllOf | AnyOf):
        return set().union(*(rule_fields(r) for r in rule.rules))
    if isinstance(rule, Not):
        return rule_fields(rule.rule)
    return {rule.field}


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsOfParam:
    """A parameter bound at run time: the run's ``as_of`` minus ``days`` (a date if ``as_date``)."""

    days: int = 0
    as_date: bool = False

    def resolve(self, as_of: datetime) -> date | datetime:
        """The concrete value for a run at ``as_of``."""
        moment = as_of - timedelta(days=self.days)
        return moment.date() if self.as_date else moment


Param = Scalar | AsOfParam


@dataclass(frozen=True)
class CompiledQuery:
    """SQL with ``?`` placeholders and its parameters, some of them relative to ``as_of``."""

    sql: str
    params: tuple[Param, ...]

    def bind(self, as_of: datetime) -> list[Scalar]:
        """The parameter list for a run at ``as_of`` (naive UTC)."""
        return [p.resolve(as_of) if isinstance(p, AsOfParam) else p for p in self.params]


def quote_identifier(name: str) -> str:
    """Quote a SQL identifier (doubling embedded quotes)."""
    return '"' + name.replace('"', '""') + '"'


_COMPARISONS = {Op.EQ: "=", Op.NE: "<>", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}


def compile_rule(rule: Rule, columns: Mapping[str, str]) -> CompiledQuery:
    """Compile a rule to a SQL boolean expression over the profile columns."""
    params: list[Param] = []
    problems: list[str] = []
    sql = _compile(rule, columns, params, problems)
    if problems:
        raise RuleError(problems)
    return CompiledQuery(sql, tuple(params))


def _compile(
    rule: Rule, columns: Mapping[str, str], params: list[Param], problems: list[str]
) -> str:
    if isinstance(rule, AllOf | AnyOf):
        joiner = " and " if isinstance(rule, AllOf) else " or "
        return "(" + joiner.join(_compile(r, columns, params, problems) for r in rule.rules) + ")"
    if isinstance(rule, Not):
        return f"(not coalesce({_compile(rule.rule, columns, params, problems)}, false))"
    # Re-check against the columns we compile for: never emit an unchecked identifier.
    checked, problem = check_condition(
        rule.field,
        rule.op,
        list(rule.value) if isinstance(rule.value, tuple) else rule.value,
        columns,
    )
    if problem or checked is None:
        problems.append(problem or f"invalid condition on {rule.field!r}")
        return "false"
    return _compile_condition(checked, column_kind(columns[checked.field]), params)


def _compile_condition(cond: Condition, kind: ColumnKind, params: list[Param]) -> str:
    column = quote_identifier(cond.field)
    as_date = kind is ColumnKind.DATE
    if cond.op in _COMPARISONS:
        params.append(cond.value)  # type: ignore[arg-type]
        return f"{column} {_COMPARISONS[cond.op]} ?"
    if cond.op in (Op.IN, Op.NOT_IN):
        values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
        params.extend(values)
        keyword = "in" if cond.op is Op.IN else "not in"
        return f"{column} {keyword} ({', '.join('?' for _ in values)})"
    if cond.op is Op.IS_NULL:
        return f"{column} is null"
    if cond.op is Op.IS_NOT_NULL:
        return f"{column} is not null"
    if cond.op is Op.WITHIN_DAYS:
        params.extend([AsOfParam(int(cond.value), as_date), AsOfParam(0, as_date)])  # type: ignore[arg-type]
        return f"({column} >= ? and {column} <= ?)"
    if cond.op is Op.OLDER_THAN_DAYS:
        params.append(AsOfParam(int(cond.value), as_date))  # type: ignore[arg-type]
        return f"{column} < ?"
    raise AssertionError(f"op {cond.op} has no SQL translation")  # pragma: no cover


def consent_column(purpose: str) -> str:
    """The profile column that holds consent for a purpose."""
    return f"has_consent_{purpose}"


def compile_segment_query(
    rule: Rule, columns: Mapping[str, str], consent_purpose: str | None = None
) -> CompiledQuery:
    """Compile the query selecting a segment's members: the rule, plus consent when required."""
    problems: list[str] = []
    if "customer_id" not in columns:
        problems.append(f"{PROFILES_TABLE} has no customer_id column")
    consent_sql = ""
    if consent_purpose is not None:
        column = consent_column(consent_purpose)
        if column not in columns:
            problems.append(
                f"consent_purpose {consent_purpose!r} needs column {column!r} in {PROFILES_TABLE}"
            )
        elif column_kind(columns[column]) is not ColumnKind.BOOLEAN:
            problems.append(f"consent column {column!r} must be BOOLEAN, is {columns[column]}")
        else:
            consent_sql = f"\n  and coalesce({quote_identifier(column)}, false)"
    try:
        where = compile_rule(rule, columns)
    except RuleError as exc:
        problems.extend(exc.problems)
    if problems:
        raise RuleError(problems)
    sql = (
        f"select distinct {quote_identifier('customer_id')} as customer_id\n"
        f"from {PROFILES_TABLE}\n"
        f"where {quote_identifier('customer_id')} is not null\n"
        f"  and {where.sql}"
        f"{consent_sql}"
    )
    return CompiledQuery(sql, where.params)
