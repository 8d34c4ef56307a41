{#-
    Behavioural events with their unified customer_id. Incremental (delete+insert on
    message_id): a run inserts events not in the table yet (new loads, late arrivals, events an
    earlier as_of cut off) and re-writes events whose customer_id changed because identity
    linked or merged their ids since the last build; nothing else is re-written.

    Full-refresh path (needed after a backfill to an EARLIER as_of, after erasures, or when the
    identity logic changes wholesale):
        dbt build --full-refresh --select fct_events+   (plus the usual --vars '{as_of: ...}')
-#}

{{
    config(
        materialized='incremental',
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}

with

events as (

    select * from {{ ref('int_events_identified') }}

),

{% if is_incremental() %}

changed as (

    -- new to the table, or now claimed by a different customer
    select events.*

    from events

    left join {{ this }} as existing
        on events.message_id = existing.message_id

    where existing.message_id is null
        or existing.customer_id is distinct from events.customer_id

),

{% else %}

changed as (

    select * from events

),

{% endif %}

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
        occurred_at,
        loaded_at

    from changed

)

select * from final
