{#- Events (rows with occurred_at, event_name) after `since`, optionally only the named events:
    one definition of "count of X in the last N days" for profiles and ML features. -#}
{% macro count_events_since(since, event_names=none) -%}
    sum(
        case
            when occurred_at > {{ since }}
            {%- if event_names %} and event_name in {{ sql_string_list(event_names) }}{% endif %}
                then 1
            else 0
        end
    )
{%- endmacro %}
