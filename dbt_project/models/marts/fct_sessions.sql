{#-
    Web/app sessions of identified customers, up to as_of: a customer's events (fct_events) split
    wherever two consecutive events are more than var session_timeout_minutes apart.

    Incremental (delete+insert on customer_id): a customer's sessions depend only on that
    customer's events, so a build re-sessionizes only customers whose events up to as_of differ
    from what their sessions were built from — compared by event count and event_fingerprint (a
    sum of message-id hashes) per customer. That covers new events, events re-linked to another
    customer, merges and splits, and a moved as_of; the post-hook removes the sessions of
    customers left with no events at all. Full refresh: `dbt build --full-refresh --select fct_sessions+`.
-#}

{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="
            {% if is_incremental() %}
            delete from {{ this }}
            where customer_id not in (
                select customer_id from {{ ref('fct_events') }}
                where customer_id is not null
                    and occurred_at <= {{ as_of_timestamp() }}
                group by customer_id
            )
            {% endif %}
        "
    )
}}

{#- A table built before event_fingerprint existed is re-sessionized for every customer once. -#}
{%- set existing_columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list
    if execute and is_incremental() else [] -%}
{%- set only_changed_customers = 'event_fingerprint' in existing_columns -%}

with

all_events as {{ inline_cte() }} (

    select
        customer_id,
        {{ fast_hash('message_id') }} as message_hash,
        occurred_at

    from {{ ref('fct_events') }}
    where customer_id is not null
        and occurred_at <= {{ as_of_timestamp() }}

),

{% if only_changed_customers %}

event_fingerprints as (

    select
        customer_id,
        count(*) as event_count,
        sum(message_hash) as event_fingerprint

    from all_events

    group by customer_id

),

session_fingerprints as (

    select
        customer_id,
        sum(event_count) as event_count,
        sum(event_fingerprint) as event_fingerprint

    from {{ this }}

    group by customer_id

),

changed_customers as (

    select event_fingerprints.customer_id

    from event_fingerprints

    left join session_fingerprints
        on event_fingerprints.customer_id = session_fingerprints.customer_id

    where session_fingerprints.customer_id is null
        or session_fingerprints.event_count <> event_fingerprints.event_count
        or session_fingerprints.event_fingerprint is distinct from event_fingerprints.event_fingerprint

),

events as (

    select * from all_events
    where customer_id in (select customer_id from changed_customers)

),

{% else %}

events as (

    select * from all_events

),

{% endif %}

with_previous as (

    -- ties on occurred_at never start a session, so their order does not matter
    select
        *,
        lag(occurred_at) over (
            partition by customer_id
            order by occurred_at
        ) as previous_occurred_at

    from events

),

flagged as (

    select
        *,
        case
            when previous_occurred_at is null then 1
            when occurred_at > {{ dbt.dateadd('minute', var('session_timeout_minutes'), 'previous_occurred_at') }} then 1
            else 0
        end as is_session_start

    from with_previous

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by customer_id
            order by occurred_at
            rows between unbounded preceding and current row
        ) as session_number

    from flagged

),

sessions as (

    select
        customer_id,
        session_number,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as event_count,
        sum(message_hash) as event_fingerprint

    from numbered

    group by customer_id, session_number

),

final as (

    select
        {{ dbt.hash(dbt.concat(['customer_id', "'-'", dbt.safe_cast('session_number', dbt.type_string())])) }} as session_id,
        customer_id,
        session_number,
        event_count,
        {{ dbt.datediff('started_at', 'ended_at', 'second') }} as duration_seconds,
        started_at,
        ended_at,
        event_fingerprint

    from sessions

)

select * from final
