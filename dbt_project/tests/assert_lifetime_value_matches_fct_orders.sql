-- Invariant: profile revenue reconciles with the order fact table.
-- Returns a row (fails) when the sums of identified orders differ.

with

profiles as (

    select
        coalesce(sum(lifetime_value), 0) as lifetime_value,
        coalesce(sum(total_order_amount), 0) as total_order_amount,
        coalesce(sum(order_count), 0) as order_count

    from {{ ref('customer_profiles') }}

),

orders as (

    select
        coalesce(sum(case when is_completed then total_amount end), 0) as lifetime_value,
        coalesce(sum(total_amount), 0) as total_order_amount,
        count(*) as order_count

    from {{ ref('fct_orders') }}
    where customer_id is not null

)

select
    profiles.*,
    orders.lifetime_value as fct_lifetime_value,
    orders.total_order_amount as fct_total_order_amount,
    orders.order_count as fct_order_count

from profiles
cross join orders

where profiles.lifetime_value <> orders.lifetime_value
    or profiles.total_order_amount <> orders.total_order_amount
    or profiles.order_count <> orders.order_count
