"""Compile segment rules to parameterized DuckDB SQL over the source views (see ``sources``).

Field names reach SQL only after they are checked against the known columns, and then only as
quoted identifiers; every value, event name and window is a named ``$pN`` parameter. Values
relative to the run's time T are markers bound per run (``CompiledQuery.bind``), so the SQL text
of a segment never changes from run to run and evaluation is a pure function of (rule, data, T).

Time semantics (all bounds inclusive, events after T are never read):

- ``count(E) op N within W``: the E events in ``[T - W, T]``;
- with ``ending_within L``: the most E events in any window ``[a, a + W]`` that ends in
  ``[T - L, T]`` (anchored on an event ``a >= T - L - W``; events after T are not counted);
- ``sequence A then_no B within W since S``: an A in ``[T - S, T - W]`` with no B of the same
  customer in ``[A, A + W]`` (an A later than ``T - W`` is still pending); ``then B``: an A in
  ``[T - S, T]`` with a B in ``[A, min(A + W, T)]``;
- ``in_segment X``: X's own rule and consent at the same T, inlined (so no run order matters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from cdp.segments.columns import ColumnKind, column_kind
from cdp.segments.rules import (
    AllOf,
    AnyOf,
    Condition,
    EventCount,
    EventSequence,
    InSegment,
    Not,
    Op,
    Rule,
    RuleError,
    Scalar,
    check_condition,
)
from cdp.segments.sources import (
    CLUSTERS_VIEW,
    CUSTOMERS_VIEW,
    EVENT_COLUMNS,
    EVENTS_VIEW,
    MODEL_FIELDS,
    PROFILES_VIEW,
    SCORES_VIEW,
)

if TYPE_CHECKING:
    from cdp.segments.definitions import SegmentDefinition


@dataclass(frozen=True)
class AsOfParam:
    """A parameter bound at run time: the run's T minus ``offset`` (a date if ``as_date``)."""

    offset: timedelta = timedelta(0)
    as_date: bool = False

    def resolve(self, as_of: datetime) -> date | datetime:
        """The concrete value for a run at ``as_of``."""
        moment = as_of - self.offset
        return moment.date() if self.as_date else moment


Param = Scalar | timedelta | AsOfParam


@dataclass(frozen=True)
class CompiledQuery:
    """SQL with named ``$pN`` placeholders and their values, some relative to T."""

    sql: str
    params: Mapping[str, Param]

    def bind(self, as_of: datetime, **extra: Scalar) -> dict[str, object]:
        """The parameter values for a run at ``as_of`` (naive UTC), plus ``extra`` ones."""
        bound = {
            name: p.resolve(as_of) if isinstance(p, AsOfParam) else p
            for name, p in self.params.items()
        }
        return {**bound, **extra}


@dataclass(frozen=True)
class Leaf:
    """A leaf rule's SQL: its value for a customer and whether it matches."""

    rule: Rule
    value_sql: str
    match_sql: str


@dataclass(frozen=True)
class CompiledSegment:
    """A segment's rule compiled: CTEs, joins, the membership test and each leaf's SQL."""

    ctes: tuple[str, ...]
    joins: tuple[str, ...]
    rule_sql: str
    consent_sql: str | None
    leaves: tuple[Leaf, ...]
    params: Mapping[str, Param]

    def _from(self, select: str, where: str) -> str:
        with_clause = f"with {', '.join(self.ctes)}\n" if self.ctes else ""
        joins = "".join(f"\n{join}" for join in self.joins)
        return f"{with_clause}select {select}\nfrom {CUSTOMERS_VIEW} c{joins}\nwhere {where}"

    def membership_query(self) -> CompiledQuery:
        """The query selecting the segment's members (``customer_id``) at T."""
        where = f"c.customer_id is not null\n  and {self.member_sql}"
        return CompiledQuery(self._from("c.customer_id", where), self.params)

    @property
    def member_sql(self) -> str:
        """The full membership test: the rule, and the consent when the segment requires one."""
        return self.rule_sql + (f"\n  and {self.consent_sql}" if self.consent_sql else "")

    def explain_query(self) -> CompiledQuery:
        """One row for customer ``$customer``: each leaf's value and match, consent, membership."""
        columns = [f"{leaf.value_sql}, coalesce({leaf.match_sql}, false)" for leaf in self.leaves]
        columns.append(f"coalesce({self.consent_sql}, false)" if self.consent_sql else "true")
        columns.append(f"coalesce({self.member_sql}, false)")
        return CompiledQuery(
            self._from(",\n    ".join(columns), "c.customer_id = $customer"), self.params
        )


_COMPARISONS = {Op.EQ: "=", Op.NE: "<>", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<="}
_BASE_JOINS = (
    f"left join {PROFILES_VIEW} p on p.customer_id = c.customer_id",
    f"left join {SCORES_VIEW} s on s.customer_id = c.customer_id",
    f"left join {CLUSTERS_VIEW} k on k.customer_id = c.customer_id",
)


def quote_identifier(name: str) -> str:
    """Quote a SQL identifier (doubling embedded quotes)."""
    return '"' + name.replace('"', '""') + '"'


def consent_column(purpose: str) -> str:
    """The profile column that holds consent for a purpose."""
    return f"has_consent_{purpose}"


@dataclass
class _Compiler:
    """Accumulates parameters, CTEs and leaves while one segment's rule tree is compiled."""

    columns: Mapping[str, str]
    segments: Mapping[str, SegmentDefinition]
    params: dict[str, Param] = field(default_factory=dict)
    ctes: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)

    def param(self, value: Param) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "$" + name

    def relation(self, prefix: str, body: str) -> str:
        name = f"{prefix}{len(self.ctes)}"
        self.ctes.append(f"{name} as (\n{body}\n)")
        self.joins.append(f"left join {name} on {name}.customer_id = c.customer_id")
        return name

    def rule(self, rule: Rule, leaves: bool = True) -> str:
        if isinstance(rule, AllOf | AnyOf):
            joiner = " and " if isinstance(rule, AllOf) else " or "
            return "(" + joiner.join(self.rule(r, leaves) for r in rule.rules) + ")"
        if isinstance(rule, Not):
            return f"(not coalesce({self.rule(rule.rule, leaves)}, false))"
        value_sql, match_sql = self.leaf(rule)
        if leaves:
            self.leaves.append(Leaf(rule, value_sql, match_sql))
        return match_sql

    def leaf(self, rule: Rule) -> tuple[str, str]:
        if isinstance(rule, Condition):
            return self.profile_condition(rule)
        if isinstance(rule, EventCount):
            value = f"coalesce({self.relation('count_', self.count_sql(rule))}.value, 0)"
            return value, f"{value} {_COMPARISONS[rule.op]} {self.param(rule.value)}"
        if isinstance(rule, EventSequence):
            value = f"coalesce({self.relation('sequence_', self.sequence_sql(rule))}.value, 0)"
            return value, f"{value} >= 1"
        if isinstance(rule, InSegment):
            match = self.segment_sql(rule.segment)
            return match, match
        raise TypeError(f"not a leaf rule: {rule!r}")  # pragma: no cover

    def profile_condition(self, rule: Condition) -> tuple[str, str]:
        fields = {**self.columns, **MODEL_FIELDS}
        alias = {"propensity_score": "s", "propensity_decile": "s", "cluster": "k"}
        column = f"{alias.get(rule.field, 'p')}.{quote_identifier(rule.field)}"
        return column, self.condition(rule, fields, column)

    def condition(self, rule: Condition, fields: Mapping[str, str], column: str) -> str:
        # Re-check against the columns we compile for: never emit an unchecked identifier.
        value = list(rule.value) if isinstance(rule.value, tuple) else rule.value
        checked, problem = check_condition(rule.field, rule.op, value, fields)
        if problem or checked is None:
            self.problems.append(problem or f"invalid condition on {rule.field!r}")
            return "false"
        as_date = column_kind(fields[checked.field]) is ColumnKind.DATE
        op = checked.op
        if op in _COMPARISONS:
            return f"{column} {_COMPARISONS[op]} {self.param(checked.value)}"  # type: ignore[arg-type]
        if op in (Op.IN, Op.NOT_IN):
            values = ", ".join(self.param(v) for v in checked.value)  # type: ignore[union-attr]
            return f"{column} {'in' if op is Op.IN else 'not in'} ({values})"
        if op is Op.CONTAINS:
            return f"contains({column}, {self.param(checked.value)})"  # type: ignore[arg-type]
        if op in (Op.IS_NULL, Op.IS_NOT_NULL):
            return f"{column} {'is null' if op is Op.IS_NULL else 'is not null'}"
        start = self.param(AsOfParam(timedelta(days=int(checked.value)), as_date))  # type: ignore[arg-type]
        if op is Op.WITHIN_DAYS:
            return f"({column} >= {start} and {column} <= {self.param(AsOfParam(as_date=as_date))})"
        return f"{column} < {start}"  # OLDER_THAN_DAYS

    def event_filters(self, alias: str, filters: tuple[Condition, ...]) -> str:
        tests = [
            self.condition(f, EVENT_COLUMNS, f"{alias}.{quote_identifier(f.field)}")
            for f in filters
        ]
        return "".join(f"\n      and {test}" for test in tests)

    def count_sql(self, rule: EventCount) -> str:
        event, until = self.param(rule.event), self.param(AsOfParam())
        since = self.param(AsOfParam(rule.within + rule.ending_within))
        events = (
            f"    from {EVENTS_VIEW} e\n"
            f"    where e.event = {event} and e.ts >= {since} and e.ts <= {until}"
            f"{self.event_filters('e', rule.where)}"
        )
        if not rule.ending_within:
            return (
                f"    select e.customer_id, count(*) as value\n{events}\n    group by e.customer_id"
            )
        frame = f"range between current row and {self.param(rule.within)} following"
        return (
            "    select customer_id, max(in_window) as value from (\n"
            "    select e.customer_id, count(*) over (\n"
            f"        partition by e.customer_id order by e.ts {frame}) as in_window\n"
            f"{events}\n    ) group by customer_id"
        )

    def sequence_sql(self, rule: EventSequence) -> str:
        until = self.param(AsOfParam())
        latest_first = self.param(AsOfParam(rule.within)) if rule.absent else until
        exists = "not exists" if rule.absent else "exists"
        return (
            f"    select a.customer_id, count(*) as value\n"
            f"    from {EVENTS_VIEW} a\n"
            f"    where a.event = {self.param(rule.first)}\n"
            f"      and a.ts >= {self.param(AsOfParam(rule.since))} and a.ts <= {latest_first}"
            f"{self.event_filters('a', rule.where)}\n"
            f"      and {exists} (\n"
            f"        select 1 from {EVENTS_VIEW} b\n"
            f"        where b.customer_id = a.customer_id and b.event = {self.param(rule.second)}\n"
            f"          and b.ts >= a.ts and b.ts <= a.ts + {self.param(rule.within)}"
            f" and b.ts <= {until})\n"
            "    group by a.customer_id"
        )

    def consent(self, purpose: str | None) -> str | None:
        if purpose is None:
            return None
        column = consent_column(purpose)
        if column not in self.columns:
            self.problems.append(f"consent_purpose {purpose!r} needs profile column {column!r}")
            return "false"
        if column_kind(self.columns[column]) is not ColumnKind.BOOLEAN:
            self.problems.append(f"consent column {column!r} must be BOOLEAN")
            return "false"
        return f"coalesce(p.{quote_identifier(column)}, false)"

    def segment_sql(self, name: str) -> str:
        if name in self.stack:
            cycle = " -> ".join([*self.stack[self.stack.index(name) :], name])
            self.problems.append(f"cycle between segments: {cycle}")
            return "false"
        definition = self.segments.get(name)
        if definition is None:
            self.problems.append(f"in_segment refers to unknown segment {name!r}")
            return "false"
        self.stack.append(name)
        purpose = definition.consent_purpose.value if definition.consent_purpose else None
        rule_sql = self.rule(definition.rule, leaves=False)
        consent = self.consent(purpose)
        self.stack.pop()
        return f"({rule_sql}{f' and {consent}' if consent else ''})"


def compile_segment(
    rule: Rule,
    columns: Mapping[str, str],
    consent_purpose: str | None = None,
    segments: Mapping[str, SegmentDefinition] | None = None,
    name: str | None = None,
) -> CompiledSegment:
    """Compile one segment (its rule, consent, and any segments it refers to)."""
    compiler = _Compiler(columns, segments or {}, stack=[name] if name else [])
    rule_sql = compiler.rule(rule)
    consent_sql = compiler.consent(consent_purpose)
    if compiler.problems:
        raise RuleError(compiler.problems)
    return CompiledSegment(
        tuple(compiler.ctes),
        (*_BASE_JOINS, *compiler.joins),
        rule_sql,
        consent_sql,
        tuple(compiler.leaves),
        dict(compiler.params),
    )


def compile_segment_query(
    rule: Rule,
    columns: Mapping[str, str],
    consent_purpose: str | None = None,
    segments: Mapping[str, SegmentDefinition] | None = None,
) -> CompiledQuery:
    """The membership query of a rule (plus consent when a purpose is required)."""
    return compile_segment(rule, columns, consent_purpose, segments).membership_query()
