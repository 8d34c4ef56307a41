{#-
    Sessions: a customer's events (up to as_of) split wherever the gap between two consecutive
    events exceeds var session_timeout_minutes (30). Identified events only.
-#}

with

events as (

    select
        customer_id,
        message_id,
        occurred_at

    from {{ ref('int_events_identified') }}
    where customer_id is not null

),

with_previous as (

    select
        *,
        lag(occurred_at) over (
            partition by customer_id
            order by occurred_at, message_id
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
            order by occurred_at, message_id
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

final as (

    select
        {{ dbt.hash(dbt.concat(['customer_id', "'-'", dbt.safe_cast('session_number', dbt.type_string())])) }} as session_id,
        customer_id,
        session_number,
        started_at,
        ended_at,
        {{ dbt.datediff('started_at', 'ended_at', 'second') }} as duration_seconds,
        event_count

    from sessions

)

select * from final
