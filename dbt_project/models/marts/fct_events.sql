with

events as (

    select * from {{ ref('int_events_identified') }}

),

final as (

    select
        message_id,
        customer_id,
        identified_by,
        anonymous_id,
        user_id,
        order_id,
        event_type,
        event_name,
        category,
        page_url,
        price,
        revenue,
        occurred_at

    from events

)

select * from final
