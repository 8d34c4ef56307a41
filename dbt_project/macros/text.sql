{#- Portable text normalizers built on the dispatched macros. -#}

{#- Trimmed text with empty strings turned into null. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- An email as a matching key: lower-case, trimmed, empty -> null. -#}
{% macro normalize_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- Only the digits of a phone number, empty -> null. -#}
{% macro digits_only(column) -%}
    nullif({{ regexp_replace_all(column, '[^0-9]', '') }}, '')
{%- endmacro %}

{#- 'Product Viewed' / 'product-viewed ' -> 'product_viewed'. -#}
{% macro snake_case(column) -%}
    {%- set underscored = regexp_replace_all('lower(trim(' ~ column ~ '))', '[^a-z0-9]+', '_') -%}
    nullif({{ regexp_replace_all(underscored, '^_|_$', '') }}, '')
{%- endmacro %}
