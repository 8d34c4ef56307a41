{#
    A relation MicroCDP steps outside dbt may or may not have written yet (ml.current_scores is
    written by model scoring, segments.membership by the segment refresh that runs after dbt).
    Renders the relation when it exists at run time, else an empty relation with `columns`
    (a dict of name -> SQL type), so the model builds either way. Not a dbt source on purpose:
    a source must exist, and these are optional inputs.
#}
{% macro optional_relation(schema, identifier, columns) -%}
    {%- set relation = adapter.get_relation(database=target.database, schema=schema, identifier=identifier) if execute else none -%}
    {%- if relation is not none -%}
        {{ relation }}
    {%- else -%}
        (
            select
            {%- for name, type in columns.items() %}
                cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        )
    {%- endif -%}
{%- endmacro %}
