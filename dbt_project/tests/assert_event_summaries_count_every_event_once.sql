{#- The summaries count every identified event of fct_events exactly once: per customer, the
    daily events and the category touches equal fct_events' counts. Returns the customers that
    differ. -#}

with

daily_totals as (

    select
        customer_id,
        sum(event_count) as event_count

    from {{ ref('int_events_summarized_daily') }}

    group by customer_id

),

category_totals as (

    select
        customer_id,
        sum(touch_count) as category_event_count

    from {{ ref('int_customer_categories_summarized') }}

    group by customer_id

),

event_totals as (

    select
        customer_id,
        count(*) as event_count,
        count(category) as category_event_count

    from {{ ref('fct_events') }}
    where customer_id is not null

    group by customer_id

),

customers as (

    select customer_id from event_totals
    union
    select customer_id from daily_totals
    union
    select customer_id from category_totals

),

compared as (

    select
        customers.customer_id,
        coalesce(event_totals.event_count, 0) as event_count,
        daily_totals.event_count as daily_event_count,
        coalesce(event_totals.category_event_count, 0) as category_event_count,
        coalesce(category_totals.category_event_count, 0) as summarized_category_event_count

    from customers

    left join event_totals
        on customers.customer_id = event_totals.customer_id

    left join daily_totals
        on customers.customer_id = daily_totals.customer_id

    left join category_totals
        on customers.customer_id = category_totals.customer_id

)

select * from compared
where coalesce(daily_event_count, 0) <> event_count
    or summarized_category_event_count <> category_event_count
