{#-
    The unified customer profile: one row per customer_id in identity.clusters, including
    anonymous-only visitors. Every measure is as of var as_of (upstream models drop events,
    orders, consent and intent observed after it; windows end at as_of).

    Event measures come from summaries instead of every event. Windows: whole days from
    int_events_summarized_daily (one row per customer and day), and the days a window edge cuts
    (the day of as_of and the first day of each 7/30/90-day window) event by event from
    fct_events, so every window (since, as_of] stays exact for any as_of. Top category:
    int_customer_categories_summarized (one row per customer and category) plus orders.
-#}

{%- set as_of = as_of_timestamp() -%}
{%- set since_30d = dbt.dateadd('day', -30, as_of) -%}
{%- set since_90d = dbt.dateadd('day', -90, as_of) -%}
{%- set windows = {'7d': dbt.dateadd('day', -7, as_of), '30d': since_30d, '90d': since_90d} -%}

with

customers as (

    select distinct customer_id
    from {{ ref('stg_identity__clusters') }}

),

identifiers as (

    -- every analytics identity of the customer (CRM ids and emails come from attributes)
    select
        customer_id,
        {{ list_agg_distinct("case when id_type = 'anonymous_id' then source_record_id end") }} as anonymous_ids,
        {{ list_agg_distinct("case when id_type = 'user_id' then source_record_id end") }} as user_ids

    from {{ ref('stg_identity__clusters') }}

    group by customer_id

),

scores as (

    -- latest purchase-propensity score per customer, once model scoring has run
    select
        customer_id,
        score as propensity_score,
        decile as propensity_decile

    from {{ optional_relation('ml', 'current_scores', {'customer_id': dbt.type_string(), 'model_name': dbt.type_string(), 'score': type_double(), 'decile': dbt.type_int()}) }} as current_scores
    where model_name = '{{ var("propensity_model_name") }}'

),

memberships as (

    -- segment membership of the last segment refresh (it runs after dbt, so one build behind)
    select
        customer_id,
        {{ list_agg_distinct('segment') }} as segments

    from {{ optional_relation('segments', 'membership', {'segment': dbt.type_string(), 'customer_id': dbt.type_string()}) }} as membership

    group by customer_id

),

attributes as (

    select * from {{ ref('int_customer_attributes_survived') }}

),

orders as (

    select * from {{ ref('int_orders_identified') }}
    where customer_id is not null

),

orders_summary as (

    select * from {{ ref('int_customer_orders_summarized') }}

),

activity as {{ inline_cte() }} (

    -- every identified event up to as_of: whole days, and the days a window edge cuts
    {{ activity_as_of(as_of, windows.values()) }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

consent as (

    select * from {{ ref('int_consent_latest') }}

),

intent as (

    select * from {{ ref('int_intent_latest') }}

),

events_summary as (

    select
        customer_id,
        {%- for window, since in windows.items() %}
        {{ sum_activity_since(since, 'event_count') }} as events_{{ window }},
        {%- endfor %}
        {%- for event_type in activity_event_types() %}
        {%- for window, since in windows.items() %}
        {{ sum_activity_since(since, event_type ~ '_count') }} as {{ event_type }}_events_{{ window }},
        {%- endfor %}
        {%- endfor %}
        {{ sum_activity_since(since_30d, 'product_view_count') }} as product_views_30d,
        {{ sum_activity_since(since_30d, 'cart_add_count') }} as cart_adds_30d,
        min(first_occurred_at) as first_event_at,
        max(last_occurred_at) as last_event_at

    from activity

    group by customer_id

),

sessions_summary as (

    select
        customer_id,
        count(*) as sessions_30d,
        avg(duration_seconds) as avg_session_seconds_30d,
        sum(duration_seconds) as time_on_site_seconds_30d

    from sessions

    where started_at > {{ since_30d }}

    group by customer_id

),

consent_flags as (

    select
        customer_id,
        max(case when purpose = 'email_marketing' and is_granted then 1 else 0 end) as email_marketing_granted,
        max(case when purpose = 'personalization' and is_granted then 1 else 0 end) as personalization_granted,
        max(case when purpose = 'advertising' and is_granted then 1 else 0 end) as advertising_granted

    from consent

    group by customer_id

),

touchpoints as (

    -- events enter through their per-customer first and last (one pass over events is enough)
    select customer_id, first_event_at as seen_at from events_summary
    union all
    select customer_id, last_event_at as seen_at from events_summary
    union all
    select customer_id, ordered_at as seen_at from orders
    union all
    select customer_id, first_created_at as seen_at from attributes
    where first_created_at <= {{ as_of }}

),

seen as (

    select
        customer_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at

    from touchpoints

    group by customer_id

),

category_touches as (

    -- interest in a category: any event carrying properties.category, and any order
    select customer_id, category, touch_count, last_touched_at as touched_at
    from {{ ref('int_customer_categories_summarized') }}
    union all
    select customer_id, category, 1 as touch_count, ordered_at as touched_at from orders
    where category is not null

),

category_ranked as (

    select
        customer_id,
        category,
        row_number() over (
            partition by customer_id
            order by sum(touch_count) desc, max(touched_at) desc, category
        ) as category_rank

    from category_touches

    group by customer_id, category

),

intent_topics as (

    select
        customer_id,
        {{ list_agg_distinct('topic') }} as intent_topics

    from intent

    group by customer_id

),

intent_ranked as (

    select
        customer_id,
        topic,
        intent_score,
        row_number() over (
            partition by customer_id
            order by intent_score desc, observed_at desc, topic
        ) as intent_rank

    from intent

),

joined as (

    select
        ----------  ids
        customers.customer_id,
        attributes.customer_id is not null as is_known,
        attributes.crm_customer_ids,
        attributes.emails,
        identifiers.anonymous_ids,
        identifiers.user_ids,

        ----------  survived CRM attributes
        attributes.first_name,
        attributes.last_name,
        attributes.email,
        attributes.phone,
        attributes.date_of_birth,
        attributes.city,
        attributes.postcode,
        attributes.state,
        attributes.country,

        ----------  consent (latest decision is 'granted')
        coalesce(consent_flags.email_marketing_granted = 1, false) as has_consent_email_marketing,
        coalesce(consent_flags.personalization_granted = 1, false) as has_consent_personalization,
        coalesce(consent_flags.advertising_granted = 1, false) as has_consent_advertising,

        ----------  orders and RFM
        cast(coalesce(orders_summary.order_count, 0) as {{ dbt.type_bigint() }}) as order_count,
        coalesce(orders_summary.total_order_amount, 0) as total_order_amount,
        coalesce(orders_summary.lifetime_value, 0) as lifetime_value,
        orders_summary.first_order_at,
        orders_summary.last_order_at,
        orders_summary.recency_days,
        cast(coalesce(orders_summary.frequency, 0) as {{ dbt.type_bigint() }}) as frequency,
        orders_summary.monetary,

        ----------  engagement
        seen.first_seen_at,
        seen.last_seen_at,
        cast(coalesce(events_summary.events_7d, 0) as {{ dbt.type_bigint() }}) as events_7d,
        cast(coalesce(events_summary.events_30d, 0) as {{ dbt.type_bigint() }}) as events_30d,
        cast(coalesce(events_summary.events_90d, 0) as {{ dbt.type_bigint() }}) as events_90d,
        {%- for event_type in activity_event_types() %}
        {%- for window in windows %}
        cast(coalesce(events_summary.{{ event_type }}_events_{{ window }}, 0) as {{ dbt.type_bigint() }}) as {{ event_type }}_events_{{ window }},
        {%- endfor %}
        {%- endfor %}
        cast(coalesce(sessions_summary.sessions_30d, 0) as {{ dbt.type_bigint() }}) as sessions_30d,
        sessions_summary.avg_session_seconds_30d,
        cast(coalesce(sessions_summary.time_on_site_seconds_30d, 0) as {{ dbt.type_bigint() }}) as time_on_site_seconds_30d,
        cast(coalesce(events_summary.product_views_30d, 0) as {{ dbt.type_bigint() }}) as product_views_30d,
        cast(coalesce(events_summary.cart_adds_30d, 0) as {{ dbt.type_bigint() }}) as cart_adds_30d,

        ----------  interests
        category_ranked.category as top_category,
        intent_ranked.topic as top_intent_topic,
        intent_ranked.intent_score as top_intent_score,
        intent_topics.intent_topics,

        ----------  predictions and segments (null / empty until models and segments have run)
        scores.propensity_score,
        scores.propensity_decile,
        memberships.segments

    from customers

    left join attributes
        on customers.customer_id = attributes.customer_id

    left join identifiers
        on customers.customer_id = identifiers.customer_id

    left join intent_topics
        on customers.customer_id = intent_topics.customer_id

    left join scores
        on customers.customer_id = scores.customer_id

    left join memberships
        on customers.customer_id = memberships.customer_id

    left join orders_summary
        on customers.customer_id = orders_summary.customer_id

    left join events_summary
        on customers.customer_id = events_summary.customer_id

    left join sessions_summary
        on customers.customer_id = sessions_summary.customer_id

    left join consent_flags
        on customers.customer_id = consent_flags.customer_id

    left join seen
        on customers.customer_id = seen.customer_id

    left join category_ranked
        on customers.customer_id = category_ranked.customer_id
        and category_ranked.category_rank = 1

    left join intent_ranked
        on customers.customer_id = intent_ranked.customer_id
        and intent_ranked.intent_rank = 1

)

select * from joined
