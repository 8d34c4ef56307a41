{#
    The reference timestamp of a build: the `as_of` var (the Airflow logical date).
    Marts ignore everything observed after it and measure recency and windows relative to it.
#}
{% macro as_of_timestamp() -%}
    cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}


{#- Render a list var as a SQL list of string literals: ('a', 'b'). -#}
{% macro sql_string_list(values) -%}
    ({%- for value in values -%}'{{ value }}'{{ ", " if not loop.last }}{%- endfor -%})
{%- endmacro %}


{#- When this dbt invocation started (UTC), as a timestamp: marks the rows a build wrote. -#}
{% macro run_started_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
