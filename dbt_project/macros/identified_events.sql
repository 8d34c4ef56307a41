{#-
    Analytics events with their unified customer_id, as one query (used by int_events_identified
    over every staged event, and by the incremental fct_events over only the events it must
    re-check). `staged_events` is stg_analytics__events or a subset of it that holds every arrival
    of its message_ids.

    - At-least-once delivery repeats messages: the first arrival of each message_id wins
      (earliest loaded_at, then the earlier line of its file).
    - Only events up to as_of.
    - customer_id: the user_id's cluster (a logged-in user), else the crm_customer_id cluster of
      the same value (userId is the CRM id), else the anonymous_id's cluster; events no cluster
      claims keep a null customer_id.
-#}
{% macro identified_events(staged_events) -%}

{%- set event_columns = [
    'message_id', 'anonymous_id', 'user_id', 'order_id', 'event_type', 'event_name', 'category',
    'email', 'page_url', 'price', 'revenue', 'occurred_at', 'loaded_at',
] -%}

with

arrivals as {{ inline_cte() }} (

    select
        *,
        {{ fast_hash('message_id') }} as message_hash

    from {{ staged_events }}

),

repeated_messages as (

    -- message ids that arrived more than once (by hash: a collision only sends a few more
    -- arrivals through the ranking below, which is exact); ranking only these keeps the window
    -- small, since repeats are rare
    select message_hash
    from arrivals
    group by message_hash
    having count(*) > 1

),

ranked_repeats as (

    select
        *,
        row_number() over (
            partition by message_id
            order by loaded_at, source_line_no
        ) as arrival_rank

    from arrivals
    where message_hash in (select message_hash from repeated_messages)

),

first_arrivals as (

    select {{ event_columns | join(', ') }}
    from arrivals
    where message_hash not in (select message_hash from repeated_messages)

    union all

    select {{ event_columns | join(', ') }}
    from ranked_repeats
    where arrival_rank = 1

),

events as (

    select * from first_arrivals
    where occurred_at <= {{ as_of_timestamp() }}

),

clusters as (

    select * from {{ ref('stg_identity__clusters') }}

),

user_clusters as (

    select
        source_record_id as user_id,
        customer_id

    from clusters
    where id_type = 'user_id'

),

crm_clusters as (

    select
        crm_customer_id,
        customer_id

    from {{ ref('int_crm_customers_identified') }}

),

anonymous_clusters as (

    select
        source_record_id as anonymous_id,
        customer_id

    from clusters
    where id_type = 'anonymous_id'

),

identified as (

    select
        events.message_id,
        coalesce(
            user_clusters.customer_id,
            crm_clusters.customer_id,
            anonymous_clusters.customer_id
        ) as customer_id,
        case
            when user_clusters.customer_id is not null then 'user_id'
            when crm_clusters.customer_id is not null then 'user_id'
            when anonymous_clusters.customer_id is not null then 'anonymous_id'
        end as identified_by,
        events.anonymous_id,
        events.user_id,
        events.order_id,
        events.event_type,
        events.event_name,
        events.category,
        events.email,
        events.page_url,
        events.price,
        events.revenue,
        events.occurred_at,
        events.loaded_at

    from events

    left join user_clusters
        on events.user_id = user_clusters.user_id

    left join crm_clusters
        on events.user_id = crm_clusters.crm_customer_id

    left join anonymous_clusters
        on events.anonymous_id = anonymous_clusters.anonymous_id

)

select * from identified

{%- endmacro %}
