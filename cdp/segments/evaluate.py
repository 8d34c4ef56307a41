"""Compute segment membership into the warehouse's ``segments`` schema, incrementally per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import duckdb

from cdp.segments.columns import profile_columns
from cdp.segments.definitions import SUPPORTED_KINDS, SegmentDefinition, SegmentDefinitionError
from cdp.segments.rules import CompiledQuery, RuleError, compile_segment_query, rule_to_json

SEGMENTS_DDL = [
    "create schema if not exists segments",
    """
    create table if not exists segments.definitions (
        name VARCHAR NOT NULL,
        description VARCHAR NOT NULL,
        owner VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        refresh VARCHAR NOT NULL,
        consent_purpose VARCHAR,
        rule_json JSON NOT NULL,
        compiled_sql VARCHAR NOT NULL,
        updated_at TIMESTAMP NOT NULL
    )
    """,
    """
    create table if not exists segments.membership (
        segment VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL,
        entered_at TIMESTAMP NOT NULL,
        run_id VARCHAR NOT NULL
    )
    """,
    """
    create table if not exists segments.membership_history (
        segment VARCHAR NOT NULL,
        customer_id VARCHAR NOT NULL,
        entered_at TIMESTAMP NOT NULL,
        exited_at TIMESTAMP,
        entered_run_id VARCHAR NOT NULL,
        exited_run_id VARCHAR
    )
    """,
    """
    create table if not exists segments.sizes (
        run_id VARCHAR NOT NULL,
        segment VARCHAR NOT NULL,
        as_of TIMESTAMP NOT NULL,
        members BIGINT NOT NULL,
        entered BIGINT NOT NULL,
        exited BIGINT NOT NULL,
        computed_at TIMESTAMP NOT NULL
    )
    """,
]

_NEW_MEMBERS = "_segment_new_members"


@dataclass(frozen=True)
class SegmentResult:
    """What one run did to one segment."""

    segment: str
    run_id: str
    as_of: datetime
    members: int
    entered: int
    exited: int
    removed: bool = False  # the definition left the folder; its membership was closed


class SegmentRunOrderError(ValueError):
    """A run would rewrite segment history out of order (a backfill or a stale retry)."""


def ensure_segments_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``segments`` schema and its tables if they do not exist (idempotent)."""
    for statement in SEGMENTS_DDL:
        con.execute(statement)


def to_utc_naive(moment: datetime | date) -> datetime:
    """Normalize a run time to naive UTC, as the warehouse stores timestamps."""
    if not isinstance(moment, datetime):
        return datetime.combine(moment, time.min)
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def compile_definitions(
    definitions: Sequence[SegmentDefinition], columns: Mapping[str, str]
) -> dict[str, CompiledQuery]:
    """Compile every definition's membership query; raise one error listing every problem."""
    problems: list[tuple[str, str]] = []
    compiled: dict[str, CompiledQuery] = {}
    for definition in definitions:
        file = str(definition.path) if definition.path else definition.name
        if definition.name in compiled:
            problems.append((file, f"duplicate segment name {definition.name!r}"))
            continue
        if definition.kind not in SUPPORTED_KINDS:
            problems.append((file, f"kind {definition.kind.value!r} is not supported yet"))
            continue
        purpose = definition.consent_purpose.value if definition.consent_purpose else None
        try:
            compiled[definition.name] = compile_segment_query(definition.rule, columns, purpose)
        except RuleError as exc:
            problems.extend((file, problem) for problem in exc.problems)
    if problems:
        raise SegmentDefinitionError(problems)
    return compiled


def evaluate_segments(
    con: duckdb.DuckDBPyConnection,
    definitions: Sequence[SegmentDefinition],
    run_id: str,
    as_of: datetime,
) -> list[SegmentResult]:
    """Recompute every segment at ``as_of`` and record entries, exits and sizes for ``run_id``.

    All definitions are checked against the live profile columns before anything is written;
    the run is one transaction. Re-running the latest ``run_id`` first undoes what it did, so
    the outcome is the same however often it runs. Segments in the warehouse but not in
    ``definitions`` are closed (members exit at ``as_of``) and their definition is removed.
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError(f"run_id must be non-empty text, got {run_id!r}")
    as_of = to_utc_naive(as_of)
    compiled = compile_definitions(definitions, profile_columns(con))
    computed_at = datetime.now(UTC).replace(tzinfo=None)

    con.begin()
    try:
        ensure_segments_schema(con)
        _check_run_order(con, run_id, as_of)
        _rewind_run(con, run_id)
        results = []
        for definition in definitions:
            query = compiled[definition.name]
            _upsert_definition(con, definition, query, computed_at)
            results.append(_refresh_membership(con, definition.name, query, run_id, as_of))
        current = {d.name for d in definitions}
        for name in sorted(_stored_segment_names(con) - current):
            results.append(_remove_segment(con, name, run_id, as_of))
        con.execute(f"drop table if exists {_NEW_MEMBERS}")
        _check_consistency(con)
        con.execute("delete from segments.sizes where run_id = ?", [run_id])
        for r in results:
            con.execute(
                "insert into segments.sizes values (?, ?, ?, ?, ?, ?, ?)",
                [r.run_id, r.segment, r.as_of, r.members, r.entered, r.exited, computed_at],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return results


def _check_run_order(con: duckdb.DuckDBPyConnection, run_id: str, as_of: datetime) -> None:
    """Refuse runs that would rewrite history out of order."""
    runs = con.execute(
        "select run_id, max(as_of), max(computed_at) from segments.sizes group by run_id"
    ).fetchall()
    this = next((row for row in runs if row[0] == run_id), None)
    for other_id, other_as_of, other_computed_at in runs:
        if other_id == run_id:
            continue
        if other_as_of > as_of:
            raise SegmentRunOrderError(
                f"run {run_id!r} has as_of {as_of.isoformat()} but run {other_id!r} already "
                f"evaluated segments at {other_as_of.isoformat()}; membership history is "
                "incremental and cannot be backfilled out of order"
            )
        if this is not None and other_computed_at > this[2]:
            raise SegmentRunOrderError(
                f"run {run_id!r} was already evaluated and later run {other_id!r} exists; only "
                "the latest run can be re-run"
            )


def _rewind_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Undo the membership changes a previous attempt of ``run_id`` made (if there was one)."""
    params = {"run_id": run_id}
    # Statements run only when there is something to undo: besides saving work, DuckDB 2.0 lost
    # rows appended later in the same transaction after a zero-row INSERT ... SELECT here.
    entered, exited = con.execute(
        """
        select
            count(*) filter (where entered_run_id = $run_id),
            count(*) filter (where exited_run_id = $run_id)
        from segments.membership_history
        """,
        params,
    ).fetchone()
    if entered:
        con.execute("delete from segments.membership where run_id = $run_id", params)
        con.execute(
            "delete from segments.membership_history where entered_run_id = $run_id", params
        )
    if exited:
        con.execute(
            """
            insert into segments.membership (segment, customer_id, entered_at, run_id)
            select segment, customer_id, entered_at, entered_run_id
            from segments.membership_history
            where exited_run_id = $run_id
            """,
            params,
        )
        con.execute(
            """
            update segments.membership_history
            set exited_at = null, exited_run_id = null
            where exited_run_id = $run_id
            """,
            params,
        )


def _check_consistency(con: duckdb.DuckDBPyConnection) -> None:
    """Fail the run (before commit) unless current membership equals the open history rows."""
    mismatches = con.execute(
        """
        with current_members as (
            select segment, customer_id, entered_at, run_id from segments.membership
        ),
        open_history as (
            select segment, customer_id, entered_at, entered_run_id as run_id
            from segments.membership_history
            where exited_at is null
        ),
        differences as (
            (select * from current_members except all select * from open_history)
            union all
            (select * from open_history except all select * from current_members)
        )
        select count(*) from differences
        """
    ).fetchone()[0]
    if mismatches:
        raise RuntimeError(
            f"segments.membership and the open rows of segments.membership_history differ in "
            f"{mismatches} rows; the run was rolled back"
        )


def _upsert_definition(
    con: duckdb.DuckDBPyConnection,
    definition: SegmentDefinition,
    query: CompiledQuery,
    computed_at: datetime,
) -> None:
    """Store the definition; ``updated_at`` moves only when something in it changed."""
    row = (
        definition.name,
        definition.description,
        definition.owner,
        definition.kind.value,
        definition.refresh.value,
        definition.consent_purpose.value if definition.consent_purpose else None,
        rule_to_json(definition.rule),
        query.sql,
    )
    stored = con.execute(
        """
        select name, description, owner, kind, refresh, consent_purpose,
            cast(rule_json as varchar), compiled_sql
        from segments.definitions
        where name = ?
        """,
        [definition.name],
    ).fetchall()
    if stored == [row]:
        return
    con.execute("delete from segments.definitions where name = ?", [definition.name])
    con.execute(
        "insert into segments.definitions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*row, computed_at],
    )


def _refresh_membership(
    con: duckdb.DuckDBPyConnection, segment: str, query: CompiledQuery, run_id: str, as_of: datetime
) -> SegmentResult:
    """Diff the segment's new members against the current ones: insert entrants, close exits."""
    con.execute(f"create or replace temp table {_NEW_MEMBERS} as {query.sql}", query.bind(as_of))
    params = {"segment": segment, "run_id": run_id, "as_of": as_of}
    entrants = f"""
        from {_NEW_MEMBERS} n
        where not exists (
            select 1 from segments.membership m
            where m.segment = $segment and m.customer_id = n.customer_id
        )
    """
    con.execute(
        f"""
        insert into segments.membership_history
            (segment, customer_id, entered_at, exited_at, entered_run_id, exited_run_id)
        select $segment, n.customer_id, $as_of, null, $run_id, null
        {entrants}
        """,
        params,
    )
    con.execute(
        f"""
        insert into segments.membership (segment, customer_id, entered_at, run_id)
        select $segment, n.customer_id, $as_of, $run_id
        {entrants}
        """,
        params,
    )
    _close_memberships(con, segment, run_id, as_of, only_leavers=True)
    return _result(con, segment, run_id, as_of)


def _close_memberships(
    con: duckdb.DuckDBPyConnection, segment: str, run_id: str, as_of: datetime, only_leavers: bool
) -> None:
    """Close open memberships (all, or those not among the new members) at ``as_of``."""

    def leaving(alias: str) -> str:
        if not only_leavers:
            return ""
        return (
            f"and not exists (select 1 from {_NEW_MEMBERS} n "
            f"where n.customer_id = {alias}.customer_id)"
        )

    con.execute(
        f"""
        update segments.membership_history h
        set exited_at = $as_of, exited_run_id = $run_id
        where h.segment = $segment and h.exited_at is null {leaving("h")}
        """,
        {"segment": segment, "run_id": run_id, "as_of": as_of},
    )
    con.execute(
        f"delete from segments.membership m where m.segment = $segment {leaving('m')}",
        {"segment": segment},
    )


def _result(
    con: duckdb.DuckDBPyConnection,
    segment: str,
    run_id: str,
    as_of: datetime,
    removed: bool = False,
) -> SegmentResult:
    """Count a segment's members, and its entries and exits in this run."""
    members, entered, exited = con.execute(
        """
        select
            (select count(*) from segments.membership where segment = $segment),
            (select count(*) from segments.membership_history
             where segment = $segment and entered_run_id = $run_id),
            (select count(*) from segments.membership_history
             where segment = $segment and exited_run_id = $run_id)
        """,
        {"segment": segment, "run_id": run_id},
    ).fetchone()
    return SegmentResult(segment, run_id, as_of, members, entered, exited, removed)


def _stored_segment_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Segments the warehouse knows: stored definitions, current members or open history."""
    rows = con.execute(
        """
        select name from segments.definitions
        union select segment from segments.membership
        union select segment from segments.membership_history where exited_at is null
        """
    ).fetchall()
    return {name for (name,) in rows}


def _remove_segment(
    con: duckdb.DuckDBPyConnection, segment: str, run_id: str, as_of: datetime
) -> SegmentResult:
    """Close a removed segment's memberships and drop its definition."""
    _close_memberships(con, segment, run_id, as_of, only_leavers=False)
    con.execute("delete from segments.definitions where name = ?", [segment])
    return _result(con, segment, run_id, as_of, removed=True)
