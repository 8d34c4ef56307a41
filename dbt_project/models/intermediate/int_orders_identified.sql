{#-
    Orders up to as_of with their unified customer_id (the crm_customer_id's cluster).
    is_completed marks the orders that count as revenue: a status in var
    completed_order_statuses, or no status at all.
-#}

with

orders as (

    select * from {{ ref('stg_crm__orders') }}
    where ordered_at <= {{ as_of_timestamp() }}

),

crm_clusters as (

    select
        crm_customer_id,
        customer_id

    from {{ ref('int_crm_customers_identified') }}

),

identified as (

    select
        orders.order_id,
        crm_clusters.customer_id,
        orders.crm_customer_id,
        orders.status,
        -- an order without a status (exports that carry none, e.g. plain order histories)
        -- counts as revenue; with a status, only the completed ones do
        coalesce(
            orders.status in {{ sql_string_list(var('completed_order_statuses')) }},
            true
        ) as is_completed,
        orders.category,
        orders.currency,
        orders.item_count,
        orders.total_amount,
        orders.ordered_at,
        orders.loaded_at

    from orders

    left join crm_clusters
        on orders.crm_customer_id = crm_clusters.crm_customer_id

)

select * from identified
