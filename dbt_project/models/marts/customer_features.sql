{#-
    The ML feature table: one row per customer known at as_of, every feature computed only from
    what was observed up to as_of. Each input is filtered on its own timestamp here (not only
    upstream), so the ML package compiles this same model for past as_of dates and gets
    point-in-time correct snapshots from marts built at a later date. Event counts come from
    int_events_summarized_daily for the whole days before as_of's day (every event of such a day
    happened before it) and from fct_events, event by event, for the days as_of or a window edge
    cuts.
    A purchase is an order whose status counts as revenue, or that carries no status at all
    (order exports without a status column).
-#}

{%- set as_of = as_of_timestamp() -%}
{%- set since_30d = dbt.dateadd('day', -30, as_of) -%}
{%- set since_90d = dbt.dateadd('day', -90, as_of) -%}
{%- set since_180d = dbt.dateadd('day', -180, as_of) -%}
{%- set since_365d = dbt.dateadd('day', -365, as_of) -%}

with

customers as (

    select
        customer_id,
        first_seen_at

    from {{ ref('customer_profiles') }}
    where first_seen_at <= {{ as_of }}

),

purchases as (

    select
        customer_id,
        ordered_at,
        total_amount,
        category

    from {{ ref('fct_orders') }}
    where customer_id is not null
        and ordered_at <= {{ as_of }}
        and is_completed

),

activity as {{ inline_cte() }} (

    -- every identified event up to as_of: whole days from the daily summary, and the days a
    -- window edge cuts event by event (exact windows for any as_of, as in customer_profiles)
    {{ activity_as_of(as_of, [since_30d, since_90d]) }}

),

purchases_summary as (

    select
        customer_id,
        count(*) as purchase_count,
        sum(case when ordered_at > {{ since_30d }} then 1 else 0 end) as purchases_30d,
        sum(case when ordered_at > {{ since_90d }} then 1 else 0 end) as purchases_90d,
        sum(case when ordered_at > {{ since_180d }} then 1 else 0 end) as purchases_180d,
        sum(case when ordered_at > {{ since_365d }} then 1 else 0 end) as purchases_365d,
        sum(total_amount) as revenue_total,
        sum(case when ordered_at > {{ since_90d }} then total_amount else 0 end) as revenue_90d,
        avg(total_amount) as avg_order_value,
        max(total_amount) as max_order_value,
        {{ dbt.datediff('max(ordered_at)', as_of, 'day') }} as days_since_last_purchase,
        {{ dbt.datediff('min(ordered_at)', as_of, 'day') }} as days_since_first_purchase,
        {{ dbt.datediff('min(ordered_at)', 'max(ordered_at)', 'day') }} as purchase_span_days,
        count(distinct {{ dbt.date_trunc('day', 'ordered_at') }}) as purchase_days,
        count(distinct category) as distinct_categories

    from purchases

    group by customer_id

),

category_counts as (

    select
        customer_id,
        category,
        count(*) as purchases_in_category

    from purchases
    where category is not null

    group by customer_id, category

),

category_mix as (

    select
        customer_id,
        max(purchases_in_category) * 1.0 / sum(purchases_in_category) as top_category_share

    from category_counts

    group by customer_id

),

events_summary as (

    select
        customer_id,
        {{ sum_activity_since(since_30d, 'event_count') }} as events_30d,
        {{ sum_activity_since(since_90d, 'event_count') }} as events_90d,
        {{ sum_activity_since(since_30d, 'product_view_count') }} as product_views_30d,
        {{ sum_activity_since(since_30d, 'cart_add_count') }} as cart_adds_30d,
        {{ dbt.datediff('max(last_occurred_at)', as_of, 'day') }} as days_since_last_event

    from activity

    group by customer_id

),

final as (

    select
        customers.customer_id,
        {{ as_of }} as features_as_of,
        {{ dbt.datediff('customers.first_seen_at', as_of, 'day') }} as days_since_first_seen,
        coalesce(purchases_summary.purchase_count, 0) as purchase_count,
        coalesce(purchases_summary.purchases_30d, 0) as purchases_30d,
        coalesce(purchases_summary.purchases_90d, 0) as purchases_90d,
        coalesce(purchases_summary.purchases_180d, 0) as purchases_180d,
        coalesce(purchases_summary.purchases_365d, 0) as purchases_365d,
        coalesce(purchases_summary.revenue_total, 0) as revenue_total,
        coalesce(purchases_summary.revenue_90d, 0) as revenue_90d,
        purchases_summary.avg_order_value,
        purchases_summary.max_order_value,
        purchases_summary.days_since_last_purchase,
        purchases_summary.days_since_first_purchase,
        coalesce(purchases_summary.purchase_days, 0) as purchase_days,
        -- tenure-free rates, comparable between young and old customers
        purchases_summary.purchase_count * 30.0
            / (purchases_summary.days_since_first_purchase + 1) as purchases_per_30d,
        purchases_summary.days_since_last_purchase * 1.0
            / (purchases_summary.days_since_first_purchase + 1) as recency_share,
        case
            when purchases_summary.purchase_count > 1
                then purchases_summary.purchase_span_days * 1.0 / (purchases_summary.purchase_count - 1)
        end as avg_days_between_purchases,
        -- time since the last purchase in units of the customer's own purchase cadence
        case
            when purchases_summary.purchase_count > 1
                then purchases_summary.days_since_last_purchase * (purchases_summary.purchase_count - 1)
                    / (purchases_summary.purchase_span_days + 1.0)
        end as cadence_overdue_ratio,
        coalesce(purchases_summary.distinct_categories, 0) as distinct_categories,
        category_mix.top_category_share,
        coalesce(events_summary.events_30d, 0) as events_30d,
        coalesce(events_summary.events_90d, 0) as events_90d,
        coalesce(events_summary.product_views_30d, 0) as product_views_30d,
        coalesce(events_summary.cart_adds_30d, 0) as cart_adds_30d,
        events_summary.days_since_last_event

    from customers

    left join purchases_summary
        on customers.customer_id = purchases_summary.customer_id

    left join category_mix
        on customers.customer_id = category_mix.customer_id

    left join events_summary
        on customers.customer_id = events_summary.customer_id

)

select * from final
