{#-
    Order history and RFM per customer, relative to as_of (orders after as_of are already
    excluded by int_orders_identified):
      recency_days = days from the last order (any status) to as_of
      frequency    = number of completed orders
      monetary     = average completed order value
-#}

with

orders as (

    select * from {{ ref('int_orders_identified') }}
    where customer_id is not null

),

summarized as (

    select
        customer_id,

        count(*) as order_count,
        sum(total_amount) as total_order_amount,
        coalesce(sum(case when is_completed then total_amount end), 0) as lifetime_value,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        {{ dbt.datediff('max(ordered_at)', as_of_timestamp(), 'day') }} as recency_days,
        sum(case when is_completed then 1 else 0 end) as frequency,
        round(avg(case when is_completed then total_amount end), 2) as monetary

    from orders

    group by customer_id

)

select * from summarized
