{#-
    The unified customer profile: one row per customer_id in identity.clusters, including
    anonymous-only visitors. Every measure is as of var as_of (upstream models drop events,
    orders, consent and intent observed after it; windows end at as_of).

    Event measures come from summaries instead of every event. Windows: whole days from
    int_events_summarized_daily (one row per customer and day), and the days a window edge cuts
    (the day of as_of and the first day of each 7/30/90-day window) event by event from
    fct_events, so every window (since, as_of] stays exact for any as_of. Top category:
    int_customer_categories_summarized (one row per customer and category) plus orders.

    Incremental (delete+insert on customer_id; macros/profile_changes.sql): every row records
    the as_of it is valid for (profile_as_of) and the state of its inputs (the watermark
    columns). A build re-computes only the customers whose profile can differ
    (changed_customers: new or re-linked events, identity, CRM, order, consent and intent
    changes, changed scores or segments), every CTE below reading only their rows; customers
    with nothing but activity on a day a window edge moved across (edge_customers) get their
    row moved instead: window counts plus what entered and minus what left (moved_profiles).
    A post-hook deletes the profiles of customer_ids identity no longer has, another moves every
    other profile to the new as_of (recency_days). Every profile is re-computed when the
    previous state is unknown, as_of moved backwards, or moved forward more than var
    profiles_recompute_all_after_days (default 7); after adding a column, run a full refresh.
    Full refresh: `dbt build --full-refresh --select customer_profiles` (needed after erasures,
    and after a backfill of fct_events to an earlier as_of).
-#}

-- the incremental branch reads these (dbt cannot see refs inside is_incremental()):
-- depends_on: {{ ref('stg_consent__events') }}
-- depends_on: {{ ref('stg_thirdparty__intent') }}

{{
    config(
        materialized='incremental',
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=["{{ delete_vanished_profiles() }}", "{{ move_profiles_to_as_of() }}"]
    )
}}

{%- set as_of = as_of_timestamp() -%}
{%- set windows = {} -%}
{%- for window, days in profile_windows().items() -%}
    {%- do windows.update({window: dbt.dateadd('day', -days, as_of)}) -%}
{%- endfor -%}
{%- set since_30d = windows['30d'] -%}
{%- set previous = profile_previous_state() -%}
{%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list if previous is not none else [] -%}
{%- set changed = 'customer_id in (select customer_id from changed_customers)' if previous is not none else 'true' %}

with

all_scores as (

    -- latest purchase-propensity score per customer, once model scoring has run
    select
        customer_id,
        score as propensity_score,
        decile as propensity_decile

    from {{ optional_relation('ml', 'current_scores', {'customer_id': dbt.type_string(), 'model_name': dbt.type_string(), 'score': type_double(), 'decile': dbt.type_int()}) }} as current_scores
    where model_name = '{{ var("propensity_model_name") }}'

),

all_memberships as (

    -- segment membership of the last segment refresh (it runs after dbt, so one build behind)
    select
        customer_id,
        {{ list_agg_distinct('segment') }} as segments

    from {{ optional_relation('segments', 'membership', {'segment': dbt.type_string(), 'customer_id': dbt.type_string()}) }} as membership

    group by customer_id

),

{% if previous is not none -%}
{{ profile_changed_customers(previous, 'all_scores', 'all_memberships') }},
{%- endif %}

customers as (

    select distinct customer_id
    from {{ ref('stg_identity__clusters') }}
    where {{ changed }}

),

identifiers as (

    -- every analytics identity of the customer (CRM ids and emails come from attributes)
    select
        customer_id,
        {{ list_agg_distinct("case when id_type = 'anonymous_id' then source_record_id end") }} as anonymous_ids,
        {{ list_agg_distinct("case when id_type = 'user_id' then source_record_id end") }} as user_ids

    from {{ ref('stg_identity__clusters') }}
    where {{ changed }}

    group by customer_id

),

scores as (

    select * from all_scores
    where {{ changed }}

),

memberships as (

    select * from all_memberships
    where {{ changed }}

),

crm_records as (

    select * from {{ ref('int_crm_customers_identified') }}
    where {{ changed }}

),

attributes as (

    -- survivorship (as int_customer_attributes_survived) over the customers' records only
    {{ survived_attributes('crm_records') }}

),

orders as (

    select * from {{ ref('int_orders_identified') }}
    where customer_id is not null
        and {{ changed }}

),

orders_summary as (

    select * from {{ ref('int_customer_orders_summarized') }}
    where {{ changed }}

),

activity as {{ inline_cte() }} (

    -- every identified event up to as_of: whole days, and the days a window edge cuts
    {{ activity_as_of(as_of, windows.values(), changed) }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    where {{ changed }}

),

consent as (

    select * from {{ ref('int_consent_latest') }}
    where {{ changed }}

),

intent as (

    select * from {{ ref('int_intent_latest') }}
    where {{ changed }}

),

inputs_state as (

    -- the watermarks this build's rows record (what the next incremental build starts from)
    select
        {%- for column, query in profile_watermarks().items() %}
        ({{ query }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

),

{% if previous is not none -%}
{{ profile_moved_windows(previous, columns, 'inputs_state') }},
{%- endif %}

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
    where {{ changed }}
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
        memberships.segments,

        ----------  state (what the incremental build follows)
        {{ as_of }} as profile_as_of,
        {%- for column in profile_watermarks() %}
        inputs_state.{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

    from customers

    cross join inputs_state

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

{% if previous is not none -%}
-- the table's column order on both sides
select {{ columns | join(', ') }} from joined
union all
select * from moved_profiles
{%- else -%}
select * from joined
{%- endif %}
