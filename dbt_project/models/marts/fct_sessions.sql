{#-
    Web/app sessions of identified customers, up to as_of: a customer's events (fct_events) split
    wherever two consecutive events are more than var session_timeout_minutes apart.

    Incremental (delete+insert on session_id): a build re-sessionizes a customer only from the
    point their events changed. The changes are the fct_events rows written after the table's
    watermark (events_transformed_at), under the row's customer and the customer it had before
    (previous_customer_id). For each such customer, with changed_from = their earliest changed
    event, every session that ended more than session_timeout_minutes before changed_from stays
    as it is (no change after it can reach back across that gap); the events after the last such
    session are sessionized again, numbered on from it. The old sessions from there on are
    also written, as placeholders (event_count 0), so that delete+insert removes them; the
    post-hook then deletes the placeholders. Full refresh:
    `dbt build --full-refresh --select fct_events+`.
-#}

{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook="{{ delete_placeholders('event_count') }}"
    )
}}

{%- set timeout_minutes = var('session_timeout_minutes') -%}

with

events_state as (

    {{ events_state() }}

),

{% if is_incremental() %}

written_events as (

    select
        fct_events.customer_id,
        fct_events.previous_customer_id,
        fct_events.occurred_at

    from {{ ref('fct_events') }} as fct_events

    where {{ written_since_watermark() }}
        and fct_events.occurred_at <= {{ as_of_timestamp() }}

),

changes as (

    {{ under_current_and_previous_customer('written_events', ['occurred_at'], 'union all') }}

),

changed_customers as (

    select
        customer_id,
        min(occurred_at) as changed_from

    from changes

    group by customer_id

),

existing_sessions as (

    select
        existing.session_id,
        existing.customer_id,
        existing.session_number,
        existing.ended_at,
        existing.ended_at < {{ dbt.dateadd('minute', -timeout_minutes, 'changed_customers.changed_from') }} as is_kept

    from {{ this }} as existing

    inner join changed_customers
        on existing.customer_id = changed_customers.customer_id

),

resume_points as (

    -- per changed customer: the last kept session (none: sessionize from the first event)
    select
        changed_customers.customer_id,
        max(existing_sessions.ended_at) as kept_until,
        coalesce(max(existing_sessions.session_number), 0) as kept_sessions

    from changed_customers

    left join existing_sessions
        on changed_customers.customer_id = existing_sessions.customer_id
        and existing_sessions.is_kept

    group by changed_customers.customer_id

),

events as (

    select
        fct_events.customer_id,
        fct_events.occurred_at,
        resume_points.kept_sessions

    from {{ ref('fct_events') }} as fct_events

    inner join resume_points
        on fct_events.customer_id = resume_points.customer_id

    where fct_events.occurred_at <= {{ as_of_timestamp() }}
        and (resume_points.kept_until is null or fct_events.occurred_at > resume_points.kept_until)

),

{% else %}

events as (

    select
        customer_id,
        occurred_at,
        0 as kept_sessions

    from {{ ref('fct_events') }}
    where customer_id is not null
        and occurred_at <= {{ as_of_timestamp() }}

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
            when occurred_at > {{ dbt.dateadd('minute', timeout_minutes, 'previous_occurred_at') }} then 1
            else 0
        end as is_session_start

    from with_previous

),

numbered as (

    select
        *,
        kept_sessions + sum(is_session_start) over (
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
        count(*) as event_count

    from numbered

    group by customer_id, session_number

),

built as (

    select
        {{ dbt.hash(dbt.concat(['customer_id', "'-'", dbt.safe_cast('session_number', dbt.type_string())])) }} as session_id,
        customer_id,
        session_number,
        event_count,
        {{ dbt.datediff('started_at', 'ended_at', 'second') }} as duration_seconds,
        started_at,
        ended_at

    from sessions

),

{% if is_incremental() %}

replaced_sessions as (

    -- every old session after the kept ones, as a placeholder: delete+insert removes the old
    -- row, and the post-hook the placeholder (a rebuilt session of the same id stays)
    select
        existing_sessions.session_id,
        existing_sessions.customer_id,
        existing_sessions.session_number,
        0 as event_count,
        cast(null as {{ dbt.type_bigint() }}) as duration_seconds,
        cast(null as {{ dbt.type_timestamp() }}) as started_at,
        cast(null as {{ dbt.type_timestamp() }}) as ended_at

    from existing_sessions

    where not existing_sessions.is_kept

),

written as (

    select * from built
    union all
    select * from replaced_sessions

),

{% else %}

written as (

    select * from built

),

{% endif %}

final as (

    select
        written.*,
        events_state.events_transformed_at

    from written

    cross join events_state

)

select * from final
