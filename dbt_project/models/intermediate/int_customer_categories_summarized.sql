{#-
    How often and how recently each customer's events carried each category: one row per
    customer_id and category (events with properties.category only; customer_profiles adds
    orders), over all of fct_events — which holds events up to the latest build's as_of.

    Incremental (delete+insert on customer_id): a build re-summarizes only the customers of
    fct_events rows with a category written after the table's watermark (events_transformed_at),
    the row's customer and the customer it had before (previous_customer_id). A customer left
    with no category is written as a placeholder row (touch_count 0) that the post-hook deletes.
    Full refresh: `dbt build --full-refresh --select fct_events+`.
-#}

{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_placeholders('touch_count') }}"
    )
}}

with

events_state as (

    {{ events_state() }}

),

{% if is_incremental() %}

written_events as (

    select
        fct_events.customer_id,
        fct_events.previous_customer_id

    from {{ ref('fct_events') }} as fct_events

    where {{ written_since_watermark() }}
        and fct_events.category is not null

),

touched_customers as (

    {{ under_current_and_previous_customer('written_events') }}

),

category_events as (

    select
        fct_events.customer_id,
        fct_events.category,
        fct_events.occurred_at

    from {{ ref('fct_events') }} as fct_events

    inner join touched_customers
        on fct_events.customer_id = touched_customers.customer_id

    where fct_events.category is not null

),

{% else %}

category_events as (

    select
        customer_id,
        category,
        occurred_at

    from {{ ref('fct_events') }}
    where customer_id is not null
        and category is not null

),

{% endif %}

summarized as (

    select
        customer_id,
        category,
        cast(count(*) as {{ dbt.type_int() }}) as touch_count,
        max(occurred_at) as last_touched_at

    from category_events

    group by customer_id, category

),

{% if is_incremental() %}

emptied_customers as (

    -- customers that lost their last category: a placeholder the post-hook deletes
    select
        touched_customers.customer_id,
        cast(null as {{ dbt.type_string() }}) as category,
        0 as touch_count,
        cast(null as {{ dbt.type_timestamp() }}) as last_touched_at

    from touched_customers

    where touched_customers.customer_id not in (select customer_id from summarized)

),

categories as (

    select * from summarized
    union all
    select * from emptied_customers

),

{% else %}

categories as (

    select * from summarized

),

{% endif %}

final as (

    select
        categories.*,
        events_state.events_transformed_at

    from categories

    cross join events_state

)

select * from final
