"""Stable customer ids: keep the ids records already had; change them only by a recorded merge
or split.

Works on temp table ``components(record_key, source, id_type, source_record_id, component)``.
A component keeps the previous id most of its records held (ties: the id its anchor-most record
held); its records' other previous ids are merged into it. A previous id now spread over several
components stays with the one holding most of its records (ties: the smaller anchor); the others
get fresh ids, recorded as splits. A component without a previous id gets one derived from its
anchor record (a CRM record first), so the same input always gives the same ids.
"""

from __future__ import annotations

import hashlib

import duckdb

#: Which kind of record anchors a customer id (a CRM record is the most durable).
ANCHOR_RANK_SQL = """case split_part(record_key, ':', 1) when 'crm_customer_id' then 0
    when 'user_id' then 1 else 2 end || '|' || record_key"""


def customer_id_for(anchor_key: str) -> str:
    """Stable customer id derived from the cluster's anchor record key."""
    return "cus_" + hashlib.sha256(anchor_key.encode()).hexdigest()[:16]


def _fresh_id_sql(anchor: str) -> str:
    return f"'cus_' || left(sha256({anchor}), 16)"


def assign_ids(con: duckdb.DuckDBPyConnection) -> None:
    """Create temp tables ``assigned(record_key, customer_id)`` and ``id_changes(old_customer_id,
    new_customer_id, reason, records)`` from ``components`` and ``identity.clusters``."""
    con.execute(
        f"""create or replace temp table _anchors as
        select component, split_part(min({ANCHOR_RANK_SQL}), '|', 2) as anchor
        from components group by component"""
    )
    con.execute(
        f"""create or replace temp table _held as
        select c.component, p.customer_id as old_id, count(*) as n,
               min({ANCHOR_RANK_SQL.replace("record_key", "c.record_key")}) as first_holder
        from components as c
        join identity.clusters as p
          on p.id_type = c.id_type and p.source_record_id = c.source_record_id
        group by all"""
    )
    con.execute(
        """create or replace temp table _winners as
        select h.old_id, h.component, h.n, h.first_holder
        from _held as h join _anchors as a using (component)
        qualify row_number() over (partition by h.old_id order by h.n desc, a.anchor) = 1"""
    )
    con.execute(
        """create or replace temp table _chosen as
        select component, old_id as customer_id from _winners
        qualify row_number() over (partition by component order by n desc, first_holder) = 1"""
    )
    con.execute(
        f"""create or replace temp table _ids as
        select a.component, coalesce(c.customer_id, {_fresh_id_sql("a.anchor")}) as customer_id,
               c.customer_id is null as is_fresh, a.anchor
        from _anchors as a left join _chosen as c using (component)"""
    )
    _resolve_fresh_collisions(con)
    con.execute(
        """create or replace temp table assigned as
        select c.record_key, i.customer_id from components as c join _ids as i using (component)"""
    )
    con.execute(
        """create or replace temp table id_changes as
        select h.old_id as old_customer_id, i.customer_id as new_customer_id,
               case when w.component = h.component then 'merge' else 'split' end as reason,
               h.n as records
        from _held as h
        join _ids as i using (component)
        join _winners as w using (old_id)
        where h.old_id <> i.customer_id
        order by all"""
    )


#: A fresh id that is already some other component's or an out-of-scope record's id.
_CLASHES = """is_fresh and (
    exists (select 1 from _ids as o where o.customer_id = _ids.customer_id
            and o.component <> _ids.component and not o.is_fresh)
    or exists (select 1 from identity.clusters as p where p.customer_id = _ids.customer_id
               and not exists (select 1 from components as k where k.id_type = p.id_type
                               and k.source_record_id = p.source_record_id)))"""


def _resolve_fresh_collisions(con: duckdb.DuckDBPyConnection) -> None:
    """A fresh id must not be one already in use elsewhere: salt it until it is new."""
    for salt in range(1, 100):
        (clashes,) = con.execute(f"select count(*) from _ids where {_CLASHES}").fetchone()
        if not clashes:
            return
        salted = _fresh_id_sql(f"anchor || '#{salt}'")
        con.execute(f"update _ids set customer_id = {salted} where {_CLASHES}")
    raise RuntimeError("could not find an unused customer id in 100 attempts")
