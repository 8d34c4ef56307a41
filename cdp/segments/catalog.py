"""Read segments back out of the warehouse: what exists, how big, and who is in it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

import duckdb


@dataclass(frozen=True)
class SegmentInfo:
    """A stored segment definition with its current size and latest run."""

    name: str
    description: str
    owner: str
    kind: str
    refresh: str
    consent_purpose: str | None
    rule_json: str
    compiled_sql: str
    updated_at: datetime
    members: int
    last_run_id: str | None
    last_as_of: datetime | None


@dataclass(frozen=True)
class SegmentMember:
    """One current member of a segment."""

    customer_id: str
    entered_at: datetime
    run_id: str


class UnknownSegmentError(LookupError):
    """The named segment is not in ``segments.definitions``."""


def _has_segments_schema(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        """
        select count(*) from information_schema.tables
        where table_catalog = current_database()
          and table_schema = 'segments' and table_name = 'definitions'
        """
    ).fetchone()
    return bool(row and row[0])


_SELECT_SEGMENTS = """
    with last_runs as (
        select segment, run_id, as_of
        from segments.sizes
        qualify row_number() over (partition by segment order by computed_at desc, as_of desc) = 1
    ),
    member_counts as (
        select segment, count(*) as members
        from segments.membership
        group by segment
    )
    select
        d.name,
        d.description,
        d.owner,
        d.kind,
        d.refresh,
        d.consent_purpose,
        cast(d.rule_json as varchar),
        d.compiled_sql,
        d.updated_at,
        coalesce(c.members, 0),
        r.run_id,
        r.as_of
    from segments.definitions d
    left join member_counts c on c.segment = d.name
    left join last_runs r on r.segment = d.name
"""


def list_segments(con: duckdb.DuckDBPyConnection) -> list[SegmentInfo]:
    """Every stored segment, by name (empty if segments were never evaluated)."""
    if not _has_segments_schema(con):
        return []
    rows = con.execute(_SELECT_SEGMENTS + " order by d.name").fetchall()
    return [SegmentInfo(*row) for row in rows]


def get_segment(con: duckdb.DuckDBPyConnection, name: str) -> SegmentInfo:
    """One stored segment; raise ``UnknownSegmentError`` (with close names) if there is none."""
    if _has_segments_schema(con):
        rows = con.execute(_SELECT_SEGMENTS + " where d.name = ?", [name]).fetchall()
        if rows:
            return SegmentInfo(*rows[0])
    raise UnknownSegmentError(_unknown_message(con, name))


def segment_members(
    con: duckdb.DuckDBPyConnection, name: str, limit: int | None = 100
) -> list[SegmentMember]:
    """Current members of a segment, earliest entrants first (``limit=None`` for all)."""
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise ValueError(f"limit must be a whole number >= 0 or None, got {limit!r}")
    get_segment(con, name)  # a clear error for unknown names
    sql = """
        select customer_id, entered_at, run_id
        from segments.membership
        where segment = ?
        order by entered_at, customer_id
    """
    params: list[object] = [name]
    if limit is not None:
        sql += " limit ?"
        params.append(limit)
    return [SegmentMember(*row) for row in con.execute(sql, params).fetchall()]


def _unknown_message(con: duckdb.DuckDBPyConnection, name: str) -> str:
    names = [s.name for s in list_segments(con)]
    if not names:
        return f"unknown segment {name!r}: no segments have been evaluated yet"
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean: {', '.join(close)}?" if close else f"known segments: {', '.join(names)}"
    return f"unknown segment {name!r}; {hint}"
