"""Resolve source records into customers: the public entry point of identity resolution.

A run reads the raw rows loaded since the previous run, refreshes identifiers, links (rules and
the probabilistic model, new-vs-all) and then re-clusters only the customers those records and
links touch, keeping customer ids stable (``identity.ids``). A first run, or a run after the
settings changed, rebuilds everything — still keeping the ids records had.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from identity.config import IdentitySettings, load_identity_settings
from identity.graph import CRM_ID, GuardEvent, Link, PairEvidence, cluster
from identity.ids import assign_ids
from identity.linkage import keyed_pairs_sql
from identity.matching import match_people
from identity.normalize import install_macros
from identity.rules import add_pair_edges, refresh_blocked_values, refresh_value_edges
from identity.sources import (
    loaded_until,
    refresh_identifiers,
    refresh_person_records,
    stage_touched,
)
from identity.store import REBUILT_TABLES, ensure_state, last_run
from identity.timing import StepTimer


@dataclass(frozen=True)
class ResolutionResult:
    """Counts of one identity run."""

    run_id: str
    mode: str  # full | incremental | unchanged
    records: int  # source records in identity.clusters
    customers: int  # distinct customer ids
    records_touched: int
    records_reclustered: int
    candidate_pairs: int
    edges_by_rule: dict[str, int]
    guard_events: int
    id_changes: int


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _scope(con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """Temp table ``scope``: the records to re-cluster (all of the customers they belong to)."""
    if full:
        con.execute(
            """create or replace temp table scope as
            select record_key, source, id_type, source_record_id from touched"""
        )
        return
    con.execute(
        """create or replace temp table scope as
        with keys as (select record_key from touched union select record_key from affected),
        ids as (
            select distinct c.customer_id from identity.clusters as c
            join keys as k on k.record_key = c.id_type || ':' || c.source_record_id
        )
        select record_key, source, id_type, source_record_id from touched
        union
        select c.id_type || ':' || c.source_record_id, c.source, c.id_type, c.source_record_id
        from identity.clusters as c semi join ids using (customer_id)"""
    )


def _number_scope(con: duckdb.DuckDBPyConnection) -> tuple[int, np.ndarray, np.ndarray]:
    """Number the scope's records 0…n-1 and return n and the links between them as indexes.

    The numbering needs no order (no sort of the keys): customer ids follow from the records
    in a component, not from its number."""
    con.execute(
        """create or replace temp table scope_ix as
        select (row_number() over () - 1)::bigint as ix, * from scope"""
    )
    (n,) = con.execute("select count(*) from scope_ix").fetchone()
    links = con.execute(
        """select l.ix as a, r.ix as b from identity.edges as e
        join scope_ix as l on l.record_key = e.left_key
        join scope_ix as r on r.record_key = e.right_key"""
    ).fetchnumpy()
    return n, np.asarray(links["a"], dtype=np.int64), np.asarray(links["b"], dtype=np.int64)


def _conflicted(con: duckdb.DuckDBPyConnection, settings: IdentitySettings) -> list[int]:
    """Components whose records hold more distinct values of a limited type than allowed.

    Several CRM ids are fine as a whole when every pair of those CRM records was compared by the
    model without contradicting (duplicate records of one person)."""
    guards = settings.guards
    limits = dict(guards.max_distinct_per_cluster)
    crm_limit = limits.pop(CRM_ID, None) if guards.may_join_crm_records else None
    over = [
        f"count(distinct source_record_id) filter (where id_type = '{id_type}') > {limit}"
        for id_type, limit in limits.items()
    ]
    if crm_limit is not None:
        over.append(f"(crm_n > {crm_limit} and coalesce(max(ok.n), 0) < crm_n * (crm_n - 1) / 2)")
    if not over:
        return []
    sql = f"""
        with crm as (  -- the CRM records of components with several (only these can conflict)
            select c.component, r.rid from components as c
            join identity.person_records as r using (record_key)
            where c.id_type = '{CRM_ID}' and c.component in (
                select component from components where id_type = '{CRM_ID}'
                group by component having count(*) > 1)
        ),
        ok as (
            select a.component, count(*) as n from identity.candidate_pairs as p
            join crm as a on a.rid = p.left_rid
            join crm as b on b.rid = p.right_rid and b.component = a.component
            where not p.is_contradicted group by a.component
        ),
        counts as (
            select component, count(*) filter (where id_type = '{CRM_ID}') as crm_n
            from components group by component
        )
        select c.component from components as c
        join counts using (component) left join ok using (component)
        group by c.component, crm_n having {" or ".join(over)}"""
    return [component for (component,) in con.execute(sql).fetchall()]


def _guarded_split(
    con: duckdb.DuckDBPyConnection, settings: IdentitySettings, conflicted: list[int], first: int
) -> list[GuardEvent]:
    """Re-cluster conflicted components link by link under the guards; relabel their records."""
    con.register("_conflicted", pa.table({"component": conflicted}))
    con.execute(
        """create or replace temp table _guarded as select * from components
        semi join _conflicted using (component)"""
    )
    con.unregister("_conflicted")
    limited = set(settings.guards.max_distinct_per_cluster)
    records = {
        key: [(id_type, record_id)] if id_type in limited else []
        for key, id_type, record_id in con.execute(
            "select record_key, id_type, source_record_id from _guarded"
        ).fetchall()
    }
    links = [
        Link(*row)
        for row in con.execute(
            """select e.left_key, e.right_key, e.rule, e.score from identity.edges as e
            semi join _guarded as l on l.record_key = e.left_key
            semi join _guarded as r on r.record_key = e.right_key"""
        ).fetchall()
    ]
    con.execute(
        """create or replace temp table _guarded_records as select rid, record_key
        from identity.person_records semi join _guarded using (record_key)"""
    )
    keyed = keyed_pairs_sql("identity.candidate_pairs", "_guarded_records")
    pairs = con.execute(f"select left_key, right_key, is_contradicted from ({keyed})").fetchall()
    evidence = PairEvidence(
        compared=frozenset((a, b) for a, b, _ in pairs),
        contradicted=frozenset((a, b) for a, b, bad in pairs if bad),
    )
    groups, events = cluster(records, links, settings.rules, settings.guards, evidence)
    relabel = [(key, first + i) for i, members in enumerate(groups.values()) for key in members]
    con.register("_relabel", pa.table({"record_key": [k for k, _ in relabel],
                                       "component": [c for _, c in relabel]}))  # fmt: skip
    con.execute(
        """update components set component = r.component from _relabel as r
        where components.record_key = r.record_key"""
    )
    con.unregister("_relabel")
    return events


def _write_clusters(con: duckdb.DuckDBPyConnection, full: bool, run: dict[str, object]) -> None:
    """Write the temp table ``placed`` into ``identity.clusters``: records of the scope that left
    (in a full run: every record no longer in raw) are deleted, the others updated in place and
    new ones inserted. Not a delete and re-insert: the same keys deleted and inserted again in
    one transaction make the primary key's commit take ~15 s for 1M records."""
    same_record = "p.id_type = k.id_type and p.source_record_id = k.source_record_id"
    in_scope = "" if full else f"exists (select 1 from scope as p where {same_record}) and"
    con.execute(
        f"""delete from identity.clusters as k
        where {in_scope} not exists (select 1 from placed as p where {same_record})"""
    )
    con.execute(
        f"""update identity.clusters as k set source = p.source, customer_id = p.customer_id,
            run_id = $run, resolved_at = $now
        from placed as p where {same_record}""",
        run,
    )
    con.execute(
        """insert into identity.clusters select p.*, $run, $now from placed as p
        anti join identity.clusters as k using (id_type, source_record_id)""",
        run,
    )


def _recluster(
    con: duckdb.DuckDBPyConnection, settings: IdentitySettings, run_id: str, full: bool
) -> tuple[int, int, int]:
    """Cluster the scope, assign stable ids, write clusters, history and guard events.

    Connected components come first (scipy); only components that break a guard are then
    re-clustered link by link in priority order (``identity.graph``)."""
    n, a, b = _number_scope(con)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    con.register("_labels", pa.table({"ix": np.arange(n), "component": labels}))
    con.execute(
        """create or replace temp table components as
        select s.record_key, s.source, s.id_type, s.source_record_id, l.component::bigint
            as component
        from scope_ix as s join _labels as l using (ix)"""
    )
    con.unregister("_labels")
    conflicted = _conflicted(con, settings)
    events = _guarded_split(con, settings, conflicted, n) if conflicted else []
    assign_ids(con)
    con.execute(
        """create or replace temp table placed as
        select c.source, c.id_type, c.source_record_id, a.customer_id
        from components as c join assigned as a using (record_key)"""
    )
    now = _now()
    con.execute("begin transaction")
    try:
        _write_clusters(con, full, {"run": run_id, "now": now})
        con.execute(
            """insert into identity.id_history
            select $run, old_customer_id, new_customer_id, reason, records, $now
            from id_changes""",
            {"run": run_id, "now": now},
        )
        if events:
            con.executemany(
                "insert into identity.guard_events values (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, e.guard, e.identifier_type, e.rule, e.left, e.right, e.detail, now)
                 for e in events],
            )  # fmt: skip
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    (changes,) = con.execute("select count(*) from id_changes").fetchone()
    return n, len(events), changes


def resolve_identities(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    settings: IdentitySettings | None = None,
    full: bool = False,
) -> ResolutionResult:
    """Bring ``identity.*`` up to date with ``raw.*`` (incremental unless ``full`` or the
    settings changed) and return the run's counts."""
    settings = settings or load_identity_settings()
    install_macros(con)
    relayout = ensure_state(con)
    previous = last_run(con)
    full = full or relayout or previous is None or previous[1] != settings.digest
    since = None if full else previous[0]
    until = loaded_until(con)
    mode, touched, reclustered, candidates, guarded, changed = "unchanged", 0, 0, 0, 0, 0
    if until is not None and (full or since is None or until > since):
        mode = "full" if full else "incremental"
        if full:
            for table in REBUILT_TABLES:
                con.execute(f"delete from identity.{table}")
        step = StepTimer(f"identity run {run_id}")
        touched = step("stage", stage_touched, con, since, until)
        con.execute("create or replace temp table affected (record_key VARCHAR)")
        step("person_records", refresh_person_records, con)
        step("identifiers", refresh_identifiers, con, run_id)
        step("blocked_values", refresh_blocked_values, con, settings.guards, run_id)
        value_rules = [r for r in settings.rules if r in ("email", "phone")]
        step("value_edges", refresh_value_edges, con, run_id, value_rules)
        step("pair_edges", add_pair_edges, con, run_id, settings.rules)
        if "person_match" in settings.rules:
            candidates = step("person_match", match_people, con, settings, run_id, full)
        _scope(con, full)
        reclustered, guarded, changed = step("cluster", _recluster, con, settings, run_id, full)
    con.execute(
        "insert into identity.runs values (?, ?, ?, ?, ?, ?, ?)",
        [run_id, mode, until, settings.digest, touched, reclustered, _now()],
    )
    records, customers = con.execute(
        "select count(*), count(distinct customer_id) from identity.clusters"
    ).fetchone()
    by_rule = dict(con.execute("select rule, count(*) from identity.edges group by 1").fetchall())
    return ResolutionResult(
        run_id, mode, records, customers, touched, reclustered, candidates,
        dict(sorted(by_rule.items())), guarded, changed,
    )  # fmt: skip
