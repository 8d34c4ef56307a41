with

orders as (

    select * from {{ ref('int_orders_identified') }}

),

final as (

    select
        order_id,
        customer_id,
        crm_customer_id,
        status,
        is_completed,
        category,
        currency,
        item_count,
        total_amount,
        ordered_at

    from orders

)

select * from final
