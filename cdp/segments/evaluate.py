"""Compute segment membership into the warehouse's ``segments`` schema, incrementally per run.

Membership at T is a pure function of (definitions, data, T). History is a per-segment timeline
that only moves forward:

- a run at T not earlier than a segment's last recorded run diffs the new members against the
  current ones and writes only the changes (entrants, exits); re-running the latest run first
  undoes what its previous attempt did, so retries give the same outcome;
- a run at T earlier than a segment's last recorded run (a replay or backfill of a decided T) is
  computed the same way but writes nothing; its result says how many members it found and how
  many differ from what the history says was true at T (0 unless data arrived late);
- ``segments.sizes`` gets one row per segment per forward run, even when nothing changed (the
  size time series and the run ledger); membership and history rows change only on a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import duckdb

from cdp.segments.compiler import CompiledQuery, CompiledSegment, compile_segment
from cdp.segments.definitions import (
    Refresh,
    SegmentDefinition,
    SegmentDefinitionError,
    SegmentKind,
)
from cdp.segments.rules import RuleError, rule_to_json
from cdp.segments.sources import bind_sources

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
    "alter table segments.definitions add column if not exists priority INTEGER default 0",
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
    replay: bool = False  # T was already decided: computed, compared, nothing written
    history_mismatch: int = 0  # replay only: members differing from the history at T


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
) -> dict[str, CompiledSegment]:
    """Compile every definition (exclusions and referenced segments included); one error for all."""
    problems: list[tuple[str, str]] = []
    by_name: dict[str, SegmentDefinition] = {}
    for definition in definitions:
        if definition.name in by_name:
            file = str(definition.path) if definition.path else definition.name
            problems.append((file, f"duplicate segment name {definition.name!r}"))
        by_name[definition.name] = definition
    compiled: dict[str, CompiledSegment] = {}
    for definition in definitions:
        purpose = definition.consent_purpose.value if definition.consent_purpose else None
        try:
            compiled[definition.name] = compile_segment(
                definition.effective_rule, columns, purpose, by_name, definition.name
            )
        except RuleError as exc:
            file = str(definition.path) if definition.path else definition.name
            problems.extend((file, problem) for problem in exc.problems)
    if problems:
        raise SegmentDefinitionError(problems)
    return compiled


def evaluate_segments(
    con: duckdb.DuckDBPyConnection,
    definitions: Sequence[SegmentDefinition],
    run_id: str,
    as_of: datetime,
    refresh: Refresh | None = None,
    kind: SegmentKind | None = None,
) -> list[SegmentResult]:
    """Evaluate segments at ``as_of`` and record entries, exits and sizes for ``run_id``.

    Every definition is compiled against the live sources before anything is written, and the
    run is one transaction. With ``refresh`` only segments of that cadence are evaluated (the
    micro-batch: ``Refresh.MINUTES``), with ``kind`` only segments of that kind (model
    segments after a scoring run); with neither, segments in the warehouse but not in
    ``definitions`` are closed (members exit at ``as_of``) and their definition is removed.
    See the module docstring for forward runs, retries and replays.
    """
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError(f"run_id must be non-empty text, got {run_id!r}")
    as_of = to_utc_naive(as_of)
    compiled = compile_definitions(definitions, bind_sources(con))
    selected = [
        d
        for d in definitions
        if (refresh is None or d.refresh is refresh) and (kind is None or d.kind is kind)
    ]
    computed_at = datetime.now(UTC).replace(tzinfo=None)

    con.begin()
    try:
        ensure_segments_schema(con)
        results = []
        for definition in selected:
            query = compiled[definition.name].membership_query()
            if _is_replay(con, definition.name, run_id, as_of):
                results.append(_replay(con, definition.name, query, run_id, as_of))
                continue
            _rewind_run(con, definition.name, run_id)
            _upsert_definition(con, definition, query, computed_at)
            results.append(_refresh_membership(con, definition.name, query, run_id, as_of))
        if refresh is None and kind is None:
            current = {d.name for d in definitions}
            for name in sorted(_stored_segment_names(con) - current):
                results.append(_remove_segment(con, name, run_id, as_of))
        con.execute(f"drop table if exists {_NEW_MEMBERS}")
        _check_consistency(con)
        for r in results:
            if r.replay:
                continue
            con.execute(
                "delete from segments.sizes where run_id = ? and segment = ?", [run_id, r.segment]
            )
            con.execute(
                "insert into segments.sizes values (?, ?, ?, ?, ?, ?, ?)",
                [r.run_id, r.segment, r.as_of, r.members, r.entered, r.exited, computed_at],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return results


def _is_replay(con: duckdb.DuckDBPyConnection, segment: str, run_id: str, as_of: datetime) -> bool:
    """Whether T is already decided for the segment: a later run, or this run is not the latest."""
    runs = con.execute(
        "select run_id, as_of, computed_at from segments.sizes where segment = ?", [segment]
    ).fetchall()
    this = next((row for row in runs if row[0] == run_id), None)
    return any(
        other_as_of > as_of or (this is not None and other_computed_at > this[2])
        for other_id, other_as_of, other_computed_at in runs
        if other_id != run_id
    )


def _replay(
    con: duckdb.DuckDBPyConnection, segment: str, query: CompiledQuery, run_id: str, as_of: datetime
) -> SegmentResult:
    """Recompute a decided T and compare it with what the history says was true at T."""
    con.execute(f"create or replace temp table {_NEW_MEMBERS} as {query.sql}", query.bind(as_of))
    members, mismatch = con.execute(
        f"""
        with recorded as (
            select customer_id from segments.membership_history
            where segment = $segment and entered_at <= $as_of
              and (exited_at is null or exited_at > $as_of)
        ),
        computed as (select customer_id from {_NEW_MEMBERS})
        select
            (select count(*) from computed),
            (select count(*) from (
                (select * from computed except select * from recorded)
                union all
                (select * from recorded except select * from computed)))
        """,
        {"segment": segment, "as_of": as_of},
    ).fetchone()
    return SegmentResult(
        segment, run_id, as_of, members, 0, 0, replay=True, history_mismatch=mismatch
    )


def _rewind_run(con: duckdb.DuckDBPyConnection, segment: str, run_id: str) -> None:
    """Undo the changes a previous attempt of ``run_id`` made to a segment (if there was one)."""
    params = {"run_id": run_id, "segment": segment}
    # Statements run only when there is something to undo: besides saving work, DuckDB 2.0 lost
    # rows appended later in the same transaction after a zero-row INSERT ... SELECT here.
    entered, exited = con.execute(
        """
        select
            count(*) filter (where entered_run_id = $run_id),
            count(*) filter (where exited_run_id = $run_id)
        from segments.membership_history
        where segment = $segment
        """,
        params,
    ).fetchone()
    if entered:
        con.execute(
            "delete from segments.membership where run_id = $run_id and segment = $segment", params
        )
        con.execute(
            """
            delete from segments.membership_history
            where entered_run_id = $run_id and segment = $segment
            """,
            params,
        )
    if exited:
        con.execute(
            """
            insert into segments.membership (segment, customer_id, entered_at, run_id)
            select segment, customer_id, entered_at, entered_run_id
            from segments.membership_history
            where exited_run_id = $run_id and segment = $segment
            """,
            params,
        )
        con.execute(
            """
            update segments.membership_history
            set exited_at = null, exited_run_id = null
            where exited_run_id = $run_id and segment = $segment
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
        rule_to_json(definition.effective_rule),
        query.sql,
        definition.priority,
    )
    stored = con.execute(
        """
        select name, description, owner, kind, refresh, consent_purpose,
            cast(rule_json as varchar), compiled_sql, priority
        from segments.definitions
        where name = ?
        """,
        [definition.name],
    ).fetchall()
    if stored == [row]:
        return
    con.execute("delete from segments.definitions where name = ?", [definition.name])
    con.execute(
        """
        insert into segments.definitions (name, description, owner, kind, refresh,
            consent_purpose, rule_json, compiled_sql, priority, updated_at)
        values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
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
