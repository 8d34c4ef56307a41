{#-
    How the incremental customer_profiles follows its inputs. Every profile row records the
    as_of it is valid for (profile_as_of, the same on every row) and the state of each input
    when it was computed (profile_watermarks). An incremental build re-computes only the
    customers whose profile can differ from the one the table holds (profile_changed_customers),
    deletes the profiles of customer_ids identity no longer has, and moves every other profile to
    the new as_of (profile_as_of and recency_days, the only columns that change without any
    input changing).
-#}

{#- The event windows of customer_profiles: column suffix -> days before as_of. -#}
{% macro profile_windows() -%}
    {{ return({'7d': 7, '30d': 30, '90d': 90}) }}
{%- endmacro %}


{#- The input watermarks every profile row records: column -> a query of the input's state now
    (fct_events' newest write, identity's newest resolution, each raw source's newest load). -#}
{% macro profile_watermarks() -%}
    {{ return({
        'events_transformed_at': 'select max(transformed_at) from ' ~ ref('fct_events'),
        'identity_resolved_at': 'select max(resolved_at) from ' ~ ref('stg_identity__clusters'),
        'crm_customers_loaded_at': 'select max(_loaded_at) from ' ~ source('crm', 'customers'),
        'crm_orders_loaded_at': 'select max(_loaded_at) from ' ~ source('crm', 'orders'),
        'consent_loaded_at': 'select max(_loaded_at) from ' ~ source('consent', 'events'),
        'intent_loaded_at': 'select max(_loaded_at) from ' ~ source('thirdparty', 'intent'),
    }) }}
{%- endmacro %}


{#- A timestamp literal (value from run_query). -#}
{% macro timestamp_literal(value) -%}
    cast('{{ value }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}


{#- `column` is past a watermark read from the table; everything is past an unknown one. -#}
{% macro past_watermark(column, watermark) -%}
    {%- if watermark is none -%}
        true
    {%- else -%}
        {{ column }} > {{ timestamp_literal(watermark) }}
    {%- endif -%}
{%- endmacro %}


{#- `column` is after the previous as_of and up to the new one. -#}
{% macro between_as_ofs(column, old_as_of) -%}
    ({{ column }} > {{ old_as_of }} and {{ column }} <= {{ as_of_timestamp() }})
{%- endmacro %}


{#-
    The state the table was built from, read before the query runs (as literals the watermarks
    prune the inputs' scans by zone maps): a dict of profile_as_of and every watermark, or none
    when every profile must be re-computed:
      - not an incremental build, or the table predates these columns or is empty;
      - as_of moved backwards (upstream marts hold nothing after an as_of; see the README);
      - as_of moved forward more than var profiles_recompute_all_after_days: nearly every
        customer is then affected and one full pass is cheaper than the change detection.
-#}
{% macro profile_previous_state() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- set names = ['profile_as_of'] + (profile_watermarks().keys() | list) -%}
    {%- for name in names if name not in columns -%}
        {{ return(none) }}
    {%- endfor -%}
    {%- set query -%}
        select
            {%- for name in names %}
            max({{ name }}),
            {%- endfor %}
            {{ as_of_timestamp() }} < max(profile_as_of)
                or {{ as_of_timestamp() }} > {{ dbt.dateadd('day', var('profiles_recompute_all_after_days', 7), 'max(profile_as_of)') }}
        from {{ this }}
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- if row[0] is none or row[names | length] -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set state = {} -%}
    {%- for name in names -%}
        {%- do state.update({name: row[loop.index0]}) -%}
    {%- endfor -%}
    {{ return(state) }}
{%- endmacro %}


{#-
    CTEs ending in changed_customers and edge_customers. changed_customers: every customer whose
    profile as of var as_of can differ from the one the table holds in more than its window
    measures; edge_customers: the others with activity on a day a window edge or as_of moved
    across (only their window measures change; profile_moved_windows moves them). The table
    holds the profiles as of previous.profile_as_of from the inputs at previous' watermarks. Narrow scans only; day ranges are whole days (a superset is
    harmless, a miss is not). `scores` / `memberships`: the model's unfiltered CTEs of the
    optional relations refreshed outside dbt. A customer is changed when
      - a fct_events row written since the watermark belongs to them now or did before;
      - an identity record of theirs (re)resolved since the watermark, now or as their profile
        lists it (a link, merge or split re-writes every record it moves);
      - a CRM record of theirs was loaded since, or created between the old and the new as_of;
        an order of theirs (any version: a re-export can move it) loaded since or placed in
        between; consent by their crm_customer_id or email, intent by their email, loaded since
        or observed in between; consent by a crm_customer_id whose record or identity changed
        (it then links by id instead of by email, or the reverse);
      - their propensity score / decile or segment list differs from the profile's.
    The emails and identifiers come from the profiles: a customer whose CRM records or identity
    changed is re-computed anyway, everyone else's are as the table holds them.
-#}
{% macro profile_changed_customers(previous, scores, memberships) -%}
{%- set as_of = as_of_timestamp() -%}
{%- set old_as_of = timestamp_literal(previous.profile_as_of) -%}

clusters as {{ inline_cte() }} (

    select customer_id, id_type, source_record_id, resolved_at
    from {{ ref('stg_identity__clusters') }}

),

written_events as (

    select customer_id, previous_customer_id
    from {{ ref('fct_events') }}
    where {{ past_watermark('transformed_at', previous.events_transformed_at) }}

),

window_edge_customers as (

    -- activity on the days a window edge (or as_of) moved across
    select customer_id
    from {{ ref('int_events_summarized_daily') }}
    where {{ as_of }} > {{ old_as_of }}
        and (
            activity_on between cast({{ old_as_of }} as date) and cast({{ as_of }} as date)
            {%- for days in profile_windows().values() %}
            or activity_on between cast({{ dbt.dateadd('day', -days, old_as_of) }} as date)
                and cast({{ dbt.dateadd('day', -days, as_of) }} as date)
            {%- endfor %}
        )

    union

    select customer_id
    from {{ ref('fct_sessions') }}
    where started_at > {{ dbt.dateadd('day', -30, old_as_of) }}
        and started_at <= {{ dbt.dateadd('day', -30, as_of) }}

),

previous_identifiers as (

    select customer_id, 'anonymous_id' as id_type, {{ unnest_list('anonymous_ids') }} as source_record_id
    from {{ this }}
    union all
    select customer_id, 'user_id' as id_type, {{ unnest_list('user_ids') }} as source_record_id
    from {{ this }}
    union all
    select customer_id, 'crm_customer_id' as id_type, {{ unnest_list('crm_customer_ids') }} as source_record_id
    from {{ this }}

),

resolved_records as (

    -- records (re)resolved since the watermark, under the customer that holds them now
    select customer_id, id_type, source_record_id
    from clusters
    where {{ past_watermark('resolved_at', previous.identity_resolved_at) }}

),

identity_changes as (

    select * from resolved_records

    union all

    -- and under the customer whose profile lists them (identity re-writes every record of a
    -- link, merge or split; a record deleted without that needs a full refresh)
    select previous_identifiers.customer_id, previous_identifiers.id_type, previous_identifiers.source_record_id
    from previous_identifiers
    inner join resolved_records
        on previous_identifiers.id_type = resolved_records.id_type
        and previous_identifiers.source_record_id = resolved_records.source_record_id

),

crm_changes as (

    select crm_customer_id
    from {{ source('crm', 'customers') }}
    where {{ past_watermark('_loaded_at', previous.crm_customers_loaded_at) }}
        or {{ between_as_ofs('created_at', old_as_of) }}

),

changed_orders as (

    select order_id
    from {{ source('crm', 'orders') }}
    where {{ past_watermark('_loaded_at', previous.crm_orders_loaded_at) }}
        or {{ between_as_ofs('ordered_at', old_as_of) }}

),

consent_changes as (

    select crm_customer_id, email
    from {{ ref('stg_consent__events') }}
    where {{ past_watermark('loaded_at', previous.consent_loaded_at) }}
        or {{ between_as_ofs('recorded_at', old_as_of) }}
        or crm_customer_id in (
            select crm_customer_id from crm_changes
            union all
            select source_record_id from identity_changes where id_type = 'crm_customer_id'
        )

),

changed_crm_customer_ids as (

    select crm_customer_id from crm_changes
    union all
    -- every version of a changed order: a re-export can move it to another CRM record
    select crm_customer_id from {{ source('crm', 'orders') }}
    where order_id in (select order_id from changed_orders)
    union all
    select crm_customer_id from consent_changes

),

changed_emails as (

    select email from consent_changes
    union all
    select email
    from {{ ref('stg_thirdparty__intent') }}
    where {{ past_watermark('loaded_at', previous.intent_loaded_at) }}
        or {{ between_as_ofs('observed_at', old_as_of) }}

),

previous_emails as (

    select customer_id, {{ unnest_list('emails') }} as email
    from {{ this }}

),

prediction_changes as (

    -- customers whose score or segments differ from the profile's, either way round
    {%- for columns, now in [('propensity_score, propensity_decile', scores), ('segments', memberships)] %}
    {%- set before -%}
        select customer_id, {{ columns }} from {{ this }}
        where {{ columns.replace(', ', ' is not null or ') }} is not null
    {%- endset -%}
    {%- set after -%}
        select customer_id, {{ columns }} from {{ now }}
        where {{ columns.replace(', ', ' is not null or ') }} is not null
    {%- endset %}
    {{ 'union' if not loop.first }}
    select customer_id from ({{ before }} except {{ after }}) as dropped
    union
    select customer_id from ({{ after }} except {{ before }}) as added
    {%- endfor %}

),

changed_customers as (

    {{ under_current_and_previous_customer('written_events') }}
    union
    select customer_id from identity_changes
    union
    select customer_id from clusters
    where id_type = 'crm_customer_id'
        and source_record_id in (select crm_customer_id from changed_crm_customer_ids)
    union
    select customer_id from previous_emails
    where email in (select email from changed_emails)
    union
    select customer_id from prediction_changes

),

edge_customers as (

    -- nothing but the windows moved: only their window measures change
    select customer_id from window_edge_customers
    except
    select customer_id from changed_customers

)
{%- endmacro %}


{#- post_hook: delete the profiles of customer_ids identity no longer has (merged away). -#}
{% macro delete_vanished_profiles() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where customer_id not in (
            select customer_id from {{ ref('stg_identity__clusters') }}
            where customer_id is not null
        )
    {%- endif -%}
{%- endmacro %}


{#- recency_days as of var as_of (as int_customer_orders_summarized computes it). -#}
{% macro recency_days_as_of(last_order_at) -%}
    {{ dbt.datediff(last_order_at, as_of_timestamp(), 'day') }}
{%- endmacro %}


{#- post_hook: move the profiles not re-computed to the new as_of. Only recency_days depends on
    as_of alone (every other as_of-dependent value changed only for affected customers). -#}
{% macro move_profiles_to_as_of() -%}
    {%- if is_incremental() -%}
        update {{ this }}
        set
            profile_as_of = {{ as_of_timestamp() }},
            recency_days = {{ recency_days_as_of('last_order_at') }}
        where profile_as_of is distinct from {{ as_of_timestamp() }}
    {%- endif -%}
{%- endmacro %}


{#- Sum of an activity column over the events with last_occurred_at in (after, until]. -#}
{% macro sum_activity_between(after, until, column) -%}
    sum(case when last_occurred_at > {{ after }} and last_occurred_at <= {{ until }} then {{ column }} else 0 end)
{%- endmacro %}


{#-
    CTEs ending in moved_profiles: the profiles of edge_customers (no input of theirs changed)
    moved from the previous as_of to var as_of, exact without re-computing them: each window
    (as_of - N days, as_of] loses the events (and the 30-day window the sessions) in
    (old as_of - N days, as_of - N days] and gains those in (old as_of, as_of] (both read
    event by event: a few days of events). `columns`: the table's columns, in order;
    `state`: the CTE with this build's watermarks.
-#}
{% macro profile_moved_windows(previous, columns, state) -%}
{%- set as_of = as_of_timestamp() -%}
{%- set old_as_of = timestamp_literal(previous.profile_as_of) -%}
{%- set ranges = {'arrived': (old_as_of, as_of)} -%}
{%- for window, days in profile_windows().items() -%}
    {%- do ranges.update({window: (dbt.dateadd('day', -days, old_as_of), dbt.dateadd('day', -days, as_of))}) -%}
{%- endfor -%}
{%- set measures = {} -%}
{%- for window in profile_windows() -%}
    {%- do measures.update({'events_' ~ window: (window, 'event_count')}) -%}
    {%- for event_type in activity_event_types() -%}
        {%- do measures.update({event_type ~ '_events_' ~ window: (window, event_type ~ '_count')}) -%}
    {%- endfor -%}
{%- endfor -%}
{%- do measures.update({'product_views_30d': ('30d', 'product_view_count'), 'cart_adds_30d': ('30d', 'cart_add_count')}) -%}

crossing_events as {{ inline_cte() }} (

    select * from {{ ref('fct_events') }}
    where customer_id in (select customer_id from edge_customers)
        and (
            {%- for after, until in ranges.values() %}
            {{ 'or ' if not loop.first }}(occurred_at > {{ after }} and occurred_at <= {{ until }})
            {%- endfor %}
        )

),

crossing_activity as (

    -- per measure: the events that arrived in every window minus those that left it
    select
        customer_id,
        {%- for column, source in measures.items() %}
        {{ sum_activity_between(ranges.arrived[0], ranges.arrived[1], source[1]) }}
            - {{ sum_activity_between(ranges[source[0]][0], ranges[source[0]][1], source[1]) }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

    from ({{ event_activity_rows('crossing_events') }}) as activity

    group by customer_id

),

crossing_sessions as (

    select
        customer_id,
        {%- for column, expression in {'sessions_30d': '1', 'time_on_site_seconds_30d': 'duration_seconds'}.items() %}
        sum(case when started_at > {{ ranges.arrived[0] }} and started_at <= {{ ranges.arrived[1] }} then {{ expression }} else 0 end)
            - sum(case when started_at > {{ ranges['30d'][0] }} and started_at <= {{ ranges['30d'][1] }} then {{ expression }} else 0 end) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ ref('fct_sessions') }}
    where customer_id in (select customer_id from edge_customers)
        and (
            (started_at > {{ ranges.arrived[0] }} and started_at <= {{ ranges.arrived[1] }})
            or (started_at > {{ ranges['30d'][0] }} and started_at <= {{ ranges['30d'][1] }})
        )

    group by customer_id

),

moved_profiles as (

    select
        {%- for column in columns %}
        {%- if column in measures or column in ('sessions_30d', 'time_on_site_seconds_30d') %}
        cast(
            profiles.{{ column }}
            + coalesce({{ 'crossing_activity' if column in measures else 'crossing_sessions' }}.{{ column }}, 0)
            as {{ dbt.type_bigint() }}
        ) as {{ column }}
        {%- elif column == 'avg_session_seconds_30d' %}
        -- avg(duration_seconds) of the window's sessions = their sum / their count
        (profiles.time_on_site_seconds_30d + coalesce(crossing_sessions.time_on_site_seconds_30d, 0))
            / nullif(profiles.sessions_30d + coalesce(crossing_sessions.sessions_30d, 0), 0) as {{ column }}
        {%- elif column == 'recency_days' %}
        {{ recency_days_as_of('profiles.last_order_at') }} as {{ column }}
        {%- elif column == 'profile_as_of' %}
        {{ as_of }} as {{ column }}
        {%- elif column in profile_watermarks() %}
        {{ state }}.{{ column }}
        {%- else %}
        profiles.{{ column }}
        {%- endif %}{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ this }} as profiles

    cross join {{ state }}

    left join crossing_activity
        on profiles.customer_id = crossing_activity.customer_id

    left join crossing_sessions
        on profiles.customer_id = crossing_sessions.customer_id

    where profiles.customer_id in (select customer_id from edge_customers)

)
{%- endmacro %}
