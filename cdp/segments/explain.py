"""Why a customer is (not) in a segment: each sub-condition's value and outcome at T."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from cdp.segments.catalog import UnknownSegmentError
from cdp.segments.compiler import compile_segment
from cdp.segments.definitions import SegmentDefinition
from cdp.segments.evaluate import compile_definitions, to_utc_naive
from cdp.segments.rules import AllOf, AnyOf, Not, Rule, describe_leaf
from cdp.segments.sources import bind_sources


class UnknownCustomerError(ValueError):
    """The customer id is not known to identity or the profiles."""


@dataclass(frozen=True)
class ExplainLine:
    """One node of the rule tree: its reading, its value (leaves only) and whether it matched."""

    depth: int
    text: str
    matched: bool
    value: object = None


@dataclass(frozen=True)
class Explanation:
    """Membership of one customer in one segment at T, node by node."""

    segment: str
    customer_id: str
    as_of: datetime
    is_member: bool
    consent_purpose: str | None
    has_consent: bool
    lines: tuple[ExplainLine, ...]

    def render(self) -> str:
        """Human-readable text, as ``cdp segments explain`` prints it."""
        verdict = "IS" if self.is_member else "is NOT"
        out = [f"{self.customer_id} {verdict} in {self.segment} at {self.as_of:%Y-%m-%d %H:%M:%S}"]
        for line in self.lines:
            mark = "yes" if line.matched else "no "
            value = f"  (value: {line.value})" if line.value is not None else ""
            out.append(f"  [{mark}] {'  ' * line.depth}{line.text}{value}")
        if self.consent_purpose:
            mark = "yes" if self.has_consent else "no "
            out.append(f"  [{mark}] consent to {self.consent_purpose} (required)")
        return "\n".join(out)


def explain_membership(
    con: duckdb.DuckDBPyConnection,
    definitions: Sequence[SegmentDefinition],
    segment: str,
    customer_id: str,
    as_of: datetime,
) -> Explanation:
    """Evaluate ``segment``'s rule for one customer at ``as_of`` and report every node."""
    by_name = {d.name: d for d in definitions}
    if segment not in by_name:
        raise UnknownSegmentError(
            f"unknown segment {segment!r}; known: {', '.join(sorted(by_name))}"
        )
    as_of = to_utc_naive(as_of)
    columns = bind_sources(con)
    compile_definitions(definitions, columns)  # every problem reported before anything runs
    definition = by_name[segment]
    purpose = definition.consent_purpose.value if definition.consent_purpose else None
    compiled = compile_segment(definition.effective_rule, columns, purpose, by_name, segment)
    query = compiled.explain_query()
    row = con.execute(query.sql, query.bind(as_of, customer=customer_id)).fetchone()
    if row is None:
        raise UnknownCustomerError(f"unknown customer {customer_id!r}: not in identity or profiles")
    leaf_values = iter(zip(row[0:-2:2], row[1:-2:2], strict=True))
    lines = list(_lines(definition.effective_rule, leaf_values, 0))
    return Explanation(
        segment, customer_id, as_of, bool(row[-1]), purpose, bool(row[-2]), tuple(lines)
    )


def _lines(rule: Rule, leaf_values: Iterator[tuple], depth: int) -> Iterator[ExplainLine]:
    """The rule tree in compile order; combinators derive their outcome from their children."""
    if isinstance(rule, AllOf | AnyOf | Not):
        children = [rule.rule] if isinstance(rule, Not) else list(rule.rules)
        child_lines = [list(_lines(child, leaf_values, depth + 1)) for child in children]
        outcomes = [lines[0].matched for lines in child_lines]
        if isinstance(rule, Not):
            text, matched = "not", not outcomes[0]
        elif isinstance(rule, AllOf):
            text, matched = "all of", all(outcomes)
        else:
            text, matched = "any of", any(outcomes)
        yield ExplainLine(depth, text, matched)
        for lines in child_lines:
            yield from lines
        return
    value, matched = next(leaf_values)
    yield ExplainLine(depth, describe_leaf(rule), bool(matched), value)
