{#-
    Identified events summarized per customer and day: one row per customer_id and activity_on
    (event counts in total and per event type, product views, cart adds, first and last event),
    over all of fct_events. customer_profiles computes its 7/30/90-day windows from it instead of
    rescanning every event.

    Incremental (delete+insert on customer_id, activity_on): a build re-summarizes only the
    customer-days of the fct_events rows written after the table's watermark
    (events_transformed_at), under both the row's customer and the customer it had before
    (previous_customer_id: a re-link or merge moves an event away). A customer-day left with no
    events is written as a placeholder row with event_count 0 that the post-hook deletes.
    Full refresh: `dbt build --full-refresh --select fct_events+`.
-#}

{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'activity_on'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook="{{ delete_placeholders('event_count') }}"
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
        fct_events.previous_customer_id,
        cast(fct_events.occurred_at as date) as activity_on

    from {{ ref('fct_events') }} as fct_events

    where {{ written_since_watermark() }}

),

touched_days as (

    {{ under_current_and_previous_customer('written_events', ['activity_on']) }}

),

events as {{ inline_cte() }} (

    select fct_events.*

    from {{ ref('fct_events') }} as fct_events

    inner join touched_days
        on fct_events.customer_id = touched_days.customer_id
        and cast(fct_events.occurred_at as date) = touched_days.activity_on

),

{% else %}

events as {{ inline_cte() }} (

    select * from {{ ref('fct_events') }}

),

{% endif %}

activity as (

    {{ event_activity_rows('events') }}

),

summarized as (

    select
        customer_id,
        activity_on,
        {%- for measure in activity_measures() %}
        cast(sum({{ measure }}) as {{ dbt.type_int() }}) as {{ measure }},
        {%- endfor %}
        min(first_occurred_at) as first_occurred_at,
        max(last_occurred_at) as last_occurred_at

    from activity

    group by customer_id, activity_on

),

{% if is_incremental() %}

emptied_days as (

    -- customer-days that lost their last event: a placeholder the post-hook deletes
    select
        touched_days.customer_id,
        touched_days.activity_on,
        {%- for measure in activity_measures() %}
        0 as {{ measure }},
        {%- endfor %}
        cast(null as {{ dbt.type_timestamp() }}) as first_occurred_at,
        cast(null as {{ dbt.type_timestamp() }}) as last_occurred_at

    from touched_days

    left join summarized
        on touched_days.customer_id = summarized.customer_id
        and touched_days.activity_on = summarized.activity_on

    where summarized.customer_id is null

),

days as (

    select * from summarized
    union all
    select * from emptied_days

),

{% else %}

days as (

    select * from summarized

),

{% endif %}

final as (

    select
        days.*,
        events_state.events_transformed_at

    from days

    cross join events_state

)

select * from final
