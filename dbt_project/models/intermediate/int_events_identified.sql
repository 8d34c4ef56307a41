{#-
    Events up to as_of with their unified customer_id: the user_id's cluster (a logged-in user),
    else the crm_customer_id cluster of the same value (userId is the CRM id), else the
    anonymous_id's cluster. Events no cluster claims keep a null customer_id.
-#}

with

events as (

    select * from {{ ref('stg_analytics__events') }}
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
