"""What identity resolution reads from ``raw.*``: the records touched since the last run, the
person attributes of CRM records and every record's identifiers.

Record keys look like ``crm_customer_id:C0000001``, ``user_id:…`` or ``anonymous_id:…``. Only raw
rows loaded after ``since`` are read (``None`` = everything), so a run after a small load reads
a small slice of a large warehouse.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from identity.linkage import derived_keys_joins
from identity.normalize import normalize_phones

RAW_TABLES = ("raw.crm_customers", "raw.analytics_events")

#: Person columns of a CRM customer row: column → (normalizing macro, raw column).
PERSON_COLUMNS_FROM_CRM = {
    "first_name": ("cdp_name", "first_name"),
    "last_name": ("cdp_name", "last_name"),
    "date_of_birth": ("cdp_date", "date_of_birth"),
    "address_line": ("cdp_text", "address_line1"),
    "address_extra": ("cdp_text", "address_line2"),
    "city": ("cdp_text", "city"),
    "postcode": ("cdp_code", "postcode"),
    "state": ("cdp_code", "state"),
    "email": ("cdp_email", "email"),
    "country": ("cdp_code", "country"),
}
#: Raw columns with about one value per person, normalized row by row. Every other column is
#: normalized once per distinct value and joined back (a million records hold ~10k first names).
ROW_BY_ROW = frozenset({"address_line1", "email"})


def _normalized_person_sql(rows: str) -> str:
    """SQL of the person columns (and ``record_key``, ``source``) of the CRM rows in ``rows``."""
    columns, joins = [], []
    for column, (macro, raw) in PERSON_COLUMNS_FROM_CRM.items():
        if raw in ROW_BY_ROW:
            columns.append(f"{macro}(r.{raw}) as {column}")
            continue
        columns.append(f"n_{column}.value as {column}")
        joins.append(
            f"""left join (select {raw} as raw, {macro}({raw}) as value
                from (select distinct {raw} from {rows})) as n_{column}
              on n_{column}.raw = r.{raw}"""
        )
    return f"""select 'crm_customer_id:' || r.crm_customer_id as record_key, 'crm' as source,
            {", ".join(columns)}, null::varchar as national_id, null::varchar as phone,
            nullif(trim(r.phone), '') as raw_phone
        from {rows} as r {" ".join(joins)}"""


def loaded_until(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest ``_loaded_at`` over the raw tables identity reads."""
    (value,) = con.execute(
        " union all ".join(f"select max(_loaded_at) from {t}" for t in RAW_TABLES).join(
            ("select max(m) from (", ") as t(m)")
        )
    ).fetchone()
    return value


def stage_touched(con: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime) -> int:
    """Temp tables ``touched_crm``, ``new_events`` and ``touched`` (every record with raw rows
    loaded in ``(since, until]``); returns how many records were touched."""
    window = "_loaded_at <= $until" + (" and _loaded_at > $since" if since else "")
    params = {"until": until, **({"since": since} if since else {})}
    con.execute(
        f"create or replace temp table touched_crm as select distinct crm_customer_id "
        f"from raw.crm_customers where {window}",
        params,
    )
    con.execute(
        f"""create or replace temp table new_events as
        select distinct anonymous_id, user_id,
            case when type = 'identify' then json_extract_string(traits, '$.email') end
                as raw_email,
            case when type = 'identify' then json_extract_string(traits, '$.phone') end
                as raw_phone
        from raw.analytics_events where {window}""",
        params,
    )
    con.execute(
        """create or replace temp table touched as
        select 'crm_customer_id:' || crm_customer_id as record_key, 'crm' as source,
               'crm_customer_id' as id_type, crm_customer_id as source_record_id
        from touched_crm
        union
        select 'anonymous_id:' || anonymous_id, 'analytics', 'anonymous_id', anonymous_id
        from new_events where anonymous_id is not null
        union
        select 'user_id:' || user_id, 'analytics', 'user_id', user_id
        from new_events where user_id is not null"""
    )
    (count,) = con.execute("select count(*) from touched").fetchone()
    return count


def refresh_person_records(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute ``identity.person_records`` for touched CRM records (their latest row)."""
    raw_columns = ", ".join(raw for _, raw in PERSON_COLUMNS_FROM_CRM.values())
    con.execute(
        f"""create or replace temp table _crm_rows as
        select crm_customer_id, phone, {raw_columns} from raw.crm_customers
        where crm_customer_id in (select crm_customer_id from touched_crm)
        qualify row_number() over (
            partition by crm_customer_id order by updated_at desc nulls last, _loaded_at desc,
            _line_no desc) = 1"""
    )
    con.execute(
        f"create or replace temp table _crm_latest as {_normalized_person_sql('_crm_rows')}"
    )
    phones = normalize_phones(con, "select raw_phone, country from _crm_latest")
    # A record keeps its number; new records are numbered on from the largest, in key order.
    con.execute(
        """create or replace temp table _rids as
        select c.record_key, coalesce(p.rid, (select coalesce(max(rid), 0)
            from identity.person_records) + row_number() over (
                partition by p.rid is null order by c.record_key))::integer as rid
        from _crm_latest as c left join identity.person_records as p using (record_key)"""
    )
    con.execute(
        "delete from identity.person_records where record_key in (select record_key from touched)"
    )
    con.execute(
        f"""insert into identity.person_records by name
        select * from (
            select c.* exclude (phone), p.phone, r.rid
            from _crm_latest as c
            join _rids as r using (record_key)
            left join {phones} as p
              on p.raw_phone = c.raw_phone and p.country = coalesce(c.country, '')
        ) {derived_keys_joins("_crm_latest")}"""
    )
    for table in ("_crm_rows", "_crm_latest", "_rids", phones):  # free memory for later steps
        con.execute(f"drop table {table}")


def refresh_identifiers(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Replace the touched CRM records' identifiers; add those new analytics rows carry."""
    con.execute(
        """delete from identity.identifiers where source = 'crm'
        and source_record_id in (select crm_customer_id from touched_crm)"""
    )
    con.execute(
        """insert into identity.identifiers
        select 'crm', 'crm_customer_id', substr(record_key, 17), kind, value, $run
        from identity.person_records
        unpivot (value for kind in (email, phone))
        where record_key in (select record_key from touched)""",
        {"run": run_id},
    )
    phones = normalize_phones(con, "select raw_phone, null::varchar as country from new_events")
    con.execute(
        f"""insert into identity.identifiers
        with found as (
            select case when e.user_id is not null then 'user_id' else 'anonymous_id' end
                       as id_type,
                   coalesce(e.user_id, e.anonymous_id) as source_record_id,
                   cdp_email(e.raw_email) as email, p.phone
            from new_events as e
            left join {phones} as p on p.raw_phone = e.raw_phone
            where e.raw_email is not null or e.raw_phone is not null
        ),
        values_ as (
            select distinct id_type, source_record_id, kind, value
            from found unpivot (value for kind in (email, phone))
        )
        select 'analytics', v.id_type, v.source_record_id, v.kind, v.value, $run
        from values_ as v
        anti join identity.identifiers as i
          on i.id_type = v.id_type and i.source_record_id = v.source_record_id
         and i.identifier_type = v.kind and i.identifier_value = v.value""",
        {"run": run_id},
    )
