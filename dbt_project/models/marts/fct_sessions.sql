{#-
    Web/app sessions of identified customers, up to as_of: a customer's events split wherever
    two consecutive events are more than var session_timeout_minutes apart.
-#}

with

sessions as (

    select * from {{ ref('int_sessions_sessionized') }}

),

final as (

    select
        session_id,
        customer_id,
        session_number,
        event_count,
        duration_seconds,
        started_at,
        ended_at

    from sessions

)

select * from final
