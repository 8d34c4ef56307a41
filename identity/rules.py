"""Deterministic links, each rule a small named SQL step over the touched records.

* ``crm_customer_id`` — a logged-in ``userId`` is the CRM customer id;
* ``email`` / ``phone`` — records sharing a normalized value are linked to the value's hub
  record (a CRM record first), unless the value is blocked;
* ``login`` — an ``anonymousId`` seen together with a ``userId``.

Every step notes the records whose links changed in the temp table ``affected``.
"""

from __future__ import annotations

import duckdb

from identity.config import Guards

_ANCHOR_RANK = (
    "case split_part({k}, ':', 1) when 'crm_customer_id' then 0 when 'user_id' then 1 else 2 end"
)
_KEY = "i.id_type || ':' || i.source_record_id"


def _note_affected(con: duckdb.DuckDBPyConnection, edges_sql: str) -> None:
    con.execute(
        f"""insert into affected
        select left_key from ({edges_sql}) union select right_key from ({edges_sql})"""
    )


def refresh_blocked_values(con: duckdb.DuckDBPyConnection, guards: Guards, run_id: str) -> None:
    """Block placeholder values and values held by too many known records; record each block."""
    con.execute("create or replace temp table _placeholders (kind VARCHAR, value VARCHAR)")
    rows = [(kind, value) for kind, values in guards.placeholders.items() for value in values]
    if rows:
        con.executemany("insert into _placeholders values (?, ?)", rows)
    con.execute(
        f"""create or replace temp table touched_values as
        select distinct i.identifier_type, i.identifier_value
        from identity.identifiers as i join touched as t on t.record_key = {_KEY}"""
    )
    con.execute(
        """delete from identity.blocked_values where (identifier_type, identifier_value) in
        (select (identifier_type, identifier_value) from touched_values)"""
    )
    con.execute(
        """insert into identity.blocked_values
        with counts as (
            select i.identifier_type, i.identifier_value,
                   count(distinct i.id_type || i.source_record_id) filter (
                       where i.id_type <> 'anonymous_id') as records
            from identity.identifiers as i
            semi join touched_values as v using (identifier_type, identifier_value)
            group by all
        )
        select c.identifier_type, c.identifier_value, c.records,
               case when p.value is not null then 'placeholder' else 'max_records_per_value' end,
               $run
        from counts as c
        left join _placeholders as p on p.kind = c.identifier_type and p.value = c.identifier_value
        where p.value is not null or c.records > $max""",
        {"run": run_id, "max": guards.max_records_per_value},
    )
    con.execute(
        """insert into identity.guard_events
        select $run, reason, identifier_type, null, null, null,
               'value ' || identifier_value || ' held by ' || records
               || ' known records never links them', now()::timestamp
        from identity.blocked_values where run_id = $run""",
        {"run": run_id},
    )


def refresh_value_edges(con: duckdb.DuckDBPyConnection, run_id: str, kinds: list[str]) -> None:
    """Rebuild the star links of every touched email/phone value that is not blocked."""
    if not kinds:
        return
    kind_list = ", ".join(f"'{k}'" for k in kinds)
    stale = f"""select left_key, right_key from identity.edges
        where rule in ({kind_list}) and evidence in (
            select identifier_type || ':' || identifier_value from touched_values)"""
    _note_affected(con, stale)
    con.execute(
        f"""delete from identity.edges where rule in ({kind_list}) and evidence in (
            select identifier_type || ':' || identifier_value from touched_values)"""
    )
    con.execute(
        f"""create or replace temp table _value_edges as
        with holders as (
            select distinct i.identifier_type, i.identifier_value, {_KEY} as record_key
            from identity.identifiers as i
            semi join touched_values as v using (identifier_type, identifier_value)
            anti join identity.blocked_values as b using (identifier_type, identifier_value)
            where i.identifier_type in ({kind_list})
        ),
        ranked as (
            select *, first_value(record_key) over (
                partition by identifier_type, identifier_value
                order by {_ANCHOR_RANK.format(k="record_key")}, record_key) as hub
            from holders
        )
        select hub as left_key, record_key as right_key, identifier_type as rule,
               identifier_type || ':' || identifier_value as evidence
        from ranked where record_key <> hub"""
    )
    con.execute(
        """insert into identity.edges (left_key, right_key, rule, score, run_id, evidence)
        select left_key, right_key, rule, 1.0, $run, evidence from _value_edges""",
        {"run": run_id},
    )
    _note_affected(con, "select left_key, right_key from _value_edges")


def add_pair_edges(con: duckdb.DuckDBPyConnection, run_id: str, rules: tuple[str, ...]) -> None:
    """Add the new ``crm_customer_id`` and ``login`` links of the touched records."""
    sql = {
        "crm_customer_id": """
            select 'user_id:' || t.source_record_id as left_key, p.record_key as right_key
            from touched as t
            join identity.person_records as p
              on p.record_key = 'crm_customer_id:' || t.source_record_id
            where t.id_type = 'user_id'
            union
            select 'user_id:' || c.source_record_id, t.record_key
            from touched as t
            join (select source_record_id from identity.clusters where id_type = 'user_id'
                  union select source_record_id from touched where id_type = 'user_id') as c
              on t.record_key = 'crm_customer_id:' || c.source_record_id
            where t.id_type = 'crm_customer_id'""",
        "login": """
            select distinct 'anonymous_id:' || anonymous_id, 'user_id:' || user_id
            from new_events where anonymous_id is not null and user_id is not null""",
    }
    for rule in (r for r in rules if r in sql):
        con.execute(
            f"""create or replace temp table _pair_edges as
            select * from ({sql[rule]}) as p(left_key, right_key)
            anti join (select left_key, right_key from identity.edges where rule = '{rule}')
            using (left_key, right_key)"""
        )
        con.execute(
            """insert into identity.edges (left_key, right_key, rule, score, run_id, evidence)
            select left_key, right_key, $rule, 1.0, $run, null from _pair_edges""",
            {"rule": rule, "run": run_id},
        )
        _note_affected(con, "select left_key, right_key from _pair_edges")
