{#-
    How the incremental dependents of fct_events (int_events_summarized_daily,
    int_customer_categories_summarized, fct_sessions) follow it: each row they write records
    fct_events' newest transformed_at (events_state), and a build re-computes only what the
    fct_events rows written after the dependent's own newest events_transformed_at touch.
-#}

{#- fct_events' newest transformed_at, as one row (events_transformed_at). -#}
{% macro events_state() -%}
    select max(transformed_at) as events_transformed_at
    from {{ ref('fct_events') }}
{%- endmacro %}


{#- A filter on fct_events: rows written after the watermark of the model being built (every row
    on its first build). Read before the query runs: as a literal it prunes by zone maps. -#}
{% macro written_since_watermark() -%}
    {%- set watermark = none -%}
    {%- if execute and is_incremental() -%}
        {%- set watermark = run_query('select max(events_transformed_at) from ' ~ this).rows[0][0] -%}
    {%- endif -%}
    {%- if watermark is none -%}
        true
    {%- else -%}
        transformed_at > cast('{{ watermark }}' as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}


{#- post_hook of a dependent: delete the placeholder rows (`column` = 0) an incremental build
    wrote for keys left with nothing. -#}
{% macro delete_placeholders(column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ column }} = 0
    {%- endif -%}
{%- endmacro %}



{#- The rows of `written` (fct_events rows written since the watermark, with customer_id and
    previous_customer_id) once under their customer and once under the customer they had before
    (a re-link or merge moves an event away): customer_id plus `columns`. `set_op`: 'union' for
    distinct keys, 'union all' to keep every row. -#}
{% macro under_current_and_previous_customer(written, columns=[], set_op='union') -%}
    {%- set rest = columns | join(', ') -%}
    select customer_id{{ ', ' ~ rest if rest }} from {{ written }}
    where customer_id is not null

    {{ set_op }}

    select previous_customer_id as customer_id{{ ', ' ~ rest if rest }} from {{ written }}
    where previous_customer_id is not null
{%- endmacro %}
