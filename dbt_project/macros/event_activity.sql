{#-
    Per-customer event activity, the one definition shared by int_events_summarized_daily (summed
    per customer and day) and customer_profiles (which reads the partial days at the edges of its
    windows event by event, in the same shape).
-#}

{#- Event types counted separately (page_count, track_count, identify_count). -#}
{% macro activity_event_types() -%}
    {{ return(['page', 'track', 'identify']) }}
{%- endmacro %}


{#- The activity columns after customer_id and activity_on, in order. -#}
{% macro activity_measures() -%}
    {%- set measures = ['event_count'] -%}
    {%- for event_type in activity_event_types() %}{% do measures.append(event_type ~ '_count') %}{% endfor -%}
    {{ return(measures + ['product_view_count', 'cart_add_count']) }}
{%- endmacro %}


{#- One activity row per identified event of `events` (fct_events or a subset of it). -#}
{% macro event_activity_rows(events) -%}
    select
        customer_id,
        cast(occurred_at as date) as activity_on,
        1 as event_count,
        {%- for event_type in activity_event_types() %}
        case when event_type = '{{ event_type }}' then 1 else 0 end as {{ event_type }}_count,
        {%- endfor %}
        case when event_name in {{ sql_string_list(var('product_view_event_names')) }} then 1 else 0 end as product_view_count,
        case when event_name in {{ sql_string_list(var('cart_add_event_names')) }} then 1 else 0 end as cart_add_count,
        occurred_at as first_occurred_at,
        occurred_at as last_occurred_at

    from {{ events }}
    where customer_id is not null
{%- endmacro %}


{#- Sum of an activity column over rows whose last event is after `since`. Exact for a window
    (since, as_of] when every row is either one event or a whole day inside or outside it. -#}
{% macro sum_activity_since(since, column) -%}
    sum(case when last_occurred_at > {{ since }} then {{ column }} else 0 end)
{%- endmacro %}


{#- The columns an activity row has apart from activity_on, as a select list. -#}
{% macro activity_columns() -%}
    customer_id, {{ activity_measures() | join(', ') }}, first_occurred_at, last_occurred_at
{%- endmacro %}


{#- Every identified event up to `as_of` as activity rows, exact for windows starting at each of
    `window_starts`: whole days from int_events_summarized_daily, and the days an edge cuts (the
    day of as_of and the first day of each window) event by event from fct_events; only the
    customers `customer_filter` (a condition on customer_id) keeps. -#}
{% macro activity_as_of(as_of, window_starts, customer_filter='true') -%}
    {%- set edge_days = [dbt.date_trunc('day', as_of)] -%}
    {%- for since in window_starts %}{% do edge_days.append(dbt.date_trunc('day', since)) %}{% endfor -%}

    select {{ activity_columns() }}
    from {{ ref('int_events_summarized_daily') }}
    where activity_on < cast({{ as_of }} as date)
        and activity_on not in (
            {%- for day in edge_days %}cast({{ day }} as date){{ ', ' if not loop.last }}{% endfor -%}
        )
        and {{ customer_filter }}

    union all

    select {{ activity_columns() }}
    from (
        {% set edge_events -%}
        (
            select * from {{ ref('fct_events') }}
            where occurred_at <= {{ as_of }}
                and {{ customer_filter }}
                and (
                    {%- for day in edge_days %}
                    {{ 'or ' if not loop.first }}(occurred_at >= {{ day }} and occurred_at < {{ dbt.dateadd('day', 1, day) }})
                    {%- endfor %}
                )
        ) as edge_events
        {%- endset %}
        {{ event_activity_rows(edge_events) }}
    ) as edge_activity
{%- endmacro %}
