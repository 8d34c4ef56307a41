{#
    Engine-specific SQL lives here, behind adapter.dispatch, so models stay portable.
    Each macro has a `duckdb__` implementation; another adapter (e.g. Spark) adds its own
    `<adapter>__` implementation. `default__` raises where no portable SQL exists.
#}


{#- A JSON field as text; `json_path` is a JSONPath such as '$.page.url'. -#}
{% macro json_extract_text(json_column, json_path) -%}
    {{ return(adapter.dispatch('json_extract_text', 'microcdp')(json_column, json_path)) }}
{%- endmacro %}

{% macro default__json_extract_text(json_column, json_path) -%}
    {{ exceptions.raise_compiler_error("json_extract_text has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__json_extract_text(json_column, json_path) -%}
    json_extract_string({{ json_column }}, '{{ json_path }}')
{%- endmacro %}


{#- Replace every match of a regular expression (DuckDB replaces only the first without 'g'). -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'microcdp')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}


{#- Sorted list of the distinct non-null values of a column (an aggregate). -#}
{% macro list_agg_distinct(column) -%}
    {{ return(adapter.dispatch('list_agg_distinct', 'microcdp')(column)) }}
{%- endmacro %}

{% macro default__list_agg_distinct(column) -%}
    {{ exceptions.raise_compiler_error("list_agg_distinct has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__list_agg_distinct(column) -%}
    list(distinct {{ column }} order by {{ column }}) filter (where {{ column }} is not null)
{%- endmacro %}


{#- One row per element of a list column (a set-returning select expression). -#}
{% macro unnest_list(column) -%}
    {{ return(adapter.dispatch('unnest_list', 'microcdp')(column)) }}
{%- endmacro %}

{% macro default__unnest_list(column) -%}
    {{ exceptions.raise_compiler_error("unnest_list has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__unnest_list(column) -%}
    unnest({{ column }})
{%- endmacro %}


{#-
    The non-null value of `column` on the row with the smallest `order_column` (an aggregate).
    Used for survivorship: order_column is a rank where 1 = most trusted record.
-#}
{% macro first_non_null_by(column, order_column) -%}
    {{ return(adapter.dispatch('first_non_null_by', 'microcdp')(column, order_column)) }}
{%- endmacro %}

{% macro default__first_non_null_by(column, order_column) -%}
    {{ exceptions.raise_compiler_error("first_non_null_by has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__first_non_null_by(column, order_column) -%}
    arg_min({{ column }}, {{ order_column }}) filter (where {{ column }} is not null)
{%- endmacro %}


{#- A cheap 64-bit integer hash of a value, for grouping, summing and finding candidate rows
    (fct_events.message_hash): collisions possible, so never an id; compare the value itself. -#}
{% macro fast_hash(expression) -%}
    {{ return(adapter.dispatch('fast_hash', 'microcdp')(expression)) }}
{%- endmacro %}

{% macro default__fast_hash(expression) -%}
    {{ exceptions.raise_compiler_error("fast_hash has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__fast_hash(expression) -%}
    hash({{ expression }})
{%- endmacro %}


{#-
    Placed between a CTE's name and `as (`: compute the CTE where it is used instead of storing
    it. DuckDB materializes a CTE that is referenced more than once; for a filter over a big
    table (50M events) scanning again is far cheaper than writing every column to memory/disk.
-#}
{% macro inline_cte() -%}
    {{ return(adapter.dispatch('inline_cte', 'microcdp')()) }}
{%- endmacro %}

{% macro default__inline_cte() -%}
{%- endmacro %}

{% macro duckdb__inline_cte() -%}
    not materialized
{%- endmacro %}


{#- A double-precision float type. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'microcdp')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}


{#-
    dbt.safe_cast renders a plain `cast` on dbt-duckdb, which raises on bad values;
    try_cast returns null instead (see shared/PITFALLS.md).
-#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}


{#- A row's position in the table it is read from (a pseudo-column; stable within one query).
    Finding rows by a narrow scan and then reading them whole by position reads their wide
    columns only, instead of every row's. -#}
{% macro row_position() -%}
    {{ return(adapter.dispatch('row_position', 'microcdp')()) }}
{%- endmacro %}

{% macro default__row_position() -%}
    {{ exceptions.raise_compiler_error("row_position has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{% macro duckdb__row_position() -%}
    rowid
{%- endmacro %}
