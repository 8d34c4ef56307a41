{#-
    Behavioural events with their unified customer_id. Incremental (delete+insert on
    message_id). A full build identifies every event (int_events_identified). An incremental
    build reads only the rows that can differ from the table, never all of raw:
      - arrivals loaded after the table's newest loaded_at (new loads, late arrivals) or after
        its newest occurred_at (an earlier as_of cut them off); of their messages, those the
        table does not hold are new, and these arrivals are all of theirs (the table holds
        every event up to the previous as_of); the others are re-deliveries of rows it has.
        The table is searched by message_hash, message_id compared on the candidates only;
      - rows of the table whose user_id or anonymous_id identity (re)resolved after the
        identity state the table was built from (identity_resolved_at: identity.clusters'
        newest resolved_at at build time; a link, merge or split rewrites the records'
        resolved_at), identified again from the row itself (it keeps its first arrival's
        event columns) and re-written when their customer_id or identified_by differ.
    Nothing else is touched.

    Every written row records what its dependents need to follow the change incrementally:
    transformed_at (when this build wrote it) and previous_customer_id (the customer it belonged
    to before this write: null for a new row and after a full refresh). The incremental
    dependents (int_events_summarized_daily, fct_sessions) re-compute the customers and days of
    rows written after their own watermark, so they must be built after every build of this
    model (dbt build / run of the project, as the pipeline does); after building fct_events
    alone, rebuild them with --full-refresh.

    Full-refresh path (needed after a backfill to an EARLIER as_of, after erasures, or when the
    identity logic changes wholesale):
        dbt build --full-refresh --select fct_events+   (plus the usual --vars '{as_of: ...}')
-#}

-- the incremental branch reads these (dbt cannot see refs inside is_incremental()):
-- depends_on: {{ ref('stg_analytics__events') }}
-- depends_on: {{ ref('int_crm_customers_identified') }}

{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

{#- The table's loaded_at and occurred_at watermarks, read before the query runs: as literals
    they prune raw's scan by zone maps (a value joined in from a CTE would not). -#}
{%- set watermarks = {'loaded_at': none, 'occurred_at': none} -%}
{%- if execute and is_incremental() -%}
    {%- if 'message_hash' not in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
        {{ exceptions.raise_compiler_error(this ~ " predates its message_hash column: rebuild it once with `dbt build --full-refresh --select fct_events+`") }}
    {%- endif -%}
    {%- set newest = run_query('select max(loaded_at), max(occurred_at) from ' ~ this).rows[0] -%}
    {%- do watermarks.update({'loaded_at': newest[0], 'occurred_at': newest[1]}) -%}
{%- endif -%}
{%- set past_loaded = 'loaded_at > cast(\'%s\' as %s)' % (watermarks.loaded_at, dbt.type_timestamp())
    if watermarks.loaded_at is not none else 'true' -%}
{%- set past_occurred = 'occurred_at > cast(\'%s\' as %s)' % (watermarks.occurred_at, dbt.type_timestamp())
    if watermarks.occurred_at is not none else 'true' %}

with

identity_state as (

    select max(resolved_at) as identity_resolved_at
    from {{ ref('stg_identity__clusters') }}

),

{% if is_incremental() %}

watermarks as (

    select max(identity_resolved_at) as identity_resolved_at
    from {{ this }}

),

staged as {{ inline_cte() }} (

    select * from {{ ref('stg_analytics__events') }}

),

arrived as {{ inline_cte() }} (

    -- arrivals past the table's watermarks: two filters in a union rather than one with OR,
    -- so each prunes raw's scan by zone maps (raw is appended in load order, and the table
    -- holds every older occurred_at)
    select * from staged
    where {{ past_loaded }}

    union all

    select * from staged
    where {{ past_occurred }}
        and not ({{ past_loaded }})

),

held_messages as (

    -- arrived messages the table already holds (re-deliveries): candidates by message_hash
    -- (an integer column, far cheaper to scan than 50M message ids), then exactly, reading
    -- only the candidate rows
    select message_id
    from {{ this }}
    where {{ row_position() }} in (
        select {{ row_position() }} from {{ this }}
        where message_hash in (select {{ fast_hash('message_id') }} from arrived)
    )
        and message_id in (select message_id from arrived)

),

arrivals_of_new_messages as (

    -- a message the table does not hold has every arrival here: its first arrival is either
    -- past the loaded_at watermark (and so are the later ones), or was loaded earlier but
    -- left out by an earlier as_of, so it is past the occurred_at watermark
    select * from arrived
    where message_id not in (select message_id from held_messages)

),

relinked_ids as (

    -- identity records (re)written since the table's identity state; all of them when unknown
    select
        clusters.id_type,
        clusters.source_record_id

    from {{ ref('stg_identity__clusters') }} as clusters

    cross join watermarks

    where watermarks.identity_resolved_at is null
        or clusters.resolved_at > watermarks.identity_resolved_at

),

relinked_rows as (

    -- rows of the table whose userId (the user_id record and the CRM record of the same value)
    -- or anonymous_id identity re-resolved: their positions by two narrow filters in a union
    -- (not one scan with ORs, so each id list runs as a hash semi-join), then the rows
    select * from {{ this }}
    where {{ row_position() }} in (
        select {{ row_position() }} from {{ this }}
        where user_id in (
            select source_record_id from relinked_ids
            where id_type in ('user_id', 'crm_customer_id')
        )

        union

        select {{ row_position() }} from {{ this }}
        where anonymous_id in (
            select source_record_id from relinked_ids
            where id_type = 'anonymous_id'
        )
    )

),

relinked_as_arrivals as (

    -- a re-linked row as the one arrival that made it: the table keeps its first arrival's
    -- event columns, so re-identifying it needs no trip back to raw
    select
        message_id,
        anonymous_id,
        user_id,
        order_id,
        event_type,
        event_name,
        category,
        cast(null as {{ dbt.type_string() }}) as email,
        page_url,
        price,
        revenue,
        occurred_at,
        loaded_at,
        cast(null as {{ dbt.type_bigint() }}) as source_line_no

    from relinked_rows

),

new_events as (

    {{ identified_events('arrivals_of_new_messages') }}

),

relinked_events as (

    {{ identified_events('relinked_as_arrivals') }}

),

changed as (

    -- new to the table ...
    select
        new_events.*,
        cast(null as {{ dbt.type_string() }}) as previous_customer_id

    from new_events

    union all

    -- ... or a re-linked row now claimed by a different customer or identifier (re-delivered
    -- messages of the other rows are left alone)
    select
        relinked_events.*,
        relinked_rows.customer_id as previous_customer_id

    from relinked_events

    inner join relinked_rows
        on relinked_events.message_id = relinked_rows.message_id

    where relinked_rows.customer_id is distinct from relinked_events.customer_id
        or relinked_rows.identified_by is distinct from relinked_events.identified_by

),

{% else %}

changed as (

    select
        *,
        cast(null as {{ dbt.type_string() }}) as previous_customer_id

    from {{ ref('int_events_identified') }}

),

{% endif %}

final as (

    select
        changed.message_id,
        {{ fast_hash('changed.message_id') }} as message_hash,
        changed.customer_id,
        changed.identified_by,
        changed.anonymous_id,
        changed.user_id,
        changed.order_id,
        changed.event_type,
        changed.event_name,
        changed.category,
        changed.page_url,
        changed.price,
        changed.revenue,
        changed.occurred_at,
        changed.loaded_at,
        identity_state.identity_resolved_at,
        changed.previous_customer_id,
        {{ run_started_timestamp() }} as transformed_at

    from changed

    cross join identity_state

)

select * from final
