{#-
    Behavioural events with their unified customer_id. Incremental (delete+insert on
    message_id). A full build identifies every event (int_events_identified). An incremental
    build first narrows the work to the messages that can differ from the table, and only then
    de-duplicates (over all their arrivals) and joins identity:
      - messages with an arrival loaded after the table's newest loaded_at (new loads, late
        arrivals) or after its newest occurred_at (an earlier as_of cut them off); of these,
        only those whose first arrival is past a watermark are new (the table holds every event
        up to the previous as_of), the rest are re-deliveries of rows it has;
      - rows of the table whose user_id or anonymous_id identity (re)resolved after the
        identity state the table was built from (identity_resolved_at: identity.clusters'
        newest resolved_at at build time; a link, merge or split rewrites the records'
        resolved_at), re-written when their customer_id or identified_by differ.
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

arrived_messages as (

    -- messages with an arrival past the table's watermarks: two filters in a union rather
    -- than one with OR, so each prunes raw's scan by zone maps (raw is appended in load
    -- order, and the table holds every older occurred_at)
    select message_id from staged
    where {{ past_loaded }}

    union

    select message_id from staged
    where {{ past_occurred }}

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
    -- or anonymous_id identity re-resolved, with what they hold now; two narrow filters in a
    -- union, not one scan with ORs, so each id list runs as a hash semi-join
    select message_id, customer_id, identified_by
    from {{ this }}
    where user_id in (
        select source_record_id from relinked_ids
        where id_type in ('user_id', 'crm_customer_id')
    )

    union

    select message_id, customer_id, identified_by
    from {{ this }}
    where anonymous_id in (
        select source_record_id from relinked_ids
        where id_type = 'anonymous_id'
    )

),

pending_messages as (

    select message_id from arrived_messages
    union
    select message_id from relinked_rows

),

pending_arrivals as (

    -- every arrival of the pending messages: the first one decides what the event is
    select * from staged
    where message_id in (select message_id from pending_messages)

),

events as (

    {{ identified_events('pending_arrivals') }}

),

changed as (

    -- new to the table (its first arrival is past a watermark: the table holds every earlier
    -- event up to the previous as_of), or a re-linked row now claimed by a different customer
    -- or identifier; re-delivered messages of unchanged rows are left alone
    select
        events.*,
        relinked_rows.customer_id as previous_customer_id

    from events

    left join relinked_rows
        on events.message_id = relinked_rows.message_id

    where (
            relinked_rows.message_id is null
            and ({{ past_loaded }} or {{ past_occurred }})  -- the columns of events
        )
        or (
            relinked_rows.message_id is not null
            and (
                relinked_rows.customer_id is distinct from events.customer_id
                or relinked_rows.identified_by is distinct from events.identified_by
            )
        )

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
