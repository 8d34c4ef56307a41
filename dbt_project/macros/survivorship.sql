{#-
    Survivorship, the one definition int_customer_attributes_survived (over every CRM record)
    and the incremental customer_profiles (over the changed customers' records only, so the
    ranking runs on those alone) share. `linked`: rows of int_crm_customers_identified.
    For each customer_id, every CRM attribute takes the most recent non-null value across the
    customer's CRM records, ranked by updated_at desc (nulls last), then created_at desc, then
    crm_customer_id.
-#}
{% macro survived_attributes(linked) -%}

with

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by
                updated_at desc nulls last,
                created_at desc nulls last,
                crm_customer_id
        ) as recency_rank

    from {{ linked }}

),

survived as (

    select
        customer_id,

        count(*) as crm_record_count,
        {{ list_agg_distinct('crm_customer_id') }} as crm_customer_ids,
        {{ list_agg_distinct('email') }} as emails,

        {{ first_non_null_by('first_name', 'recency_rank') }} as first_name,
        {{ first_non_null_by('last_name', 'recency_rank') }} as last_name,
        {{ first_non_null_by('email', 'recency_rank') }} as email,
        {{ first_non_null_by('phone_normalized', 'recency_rank') }} as phone,
        {{ first_non_null_by('date_of_birth', 'recency_rank') }} as date_of_birth,
        {{ first_non_null_by('address_line1', 'recency_rank') }} as address_line1,
        {{ first_non_null_by('address_line2', 'recency_rank') }} as address_line2,
        {{ first_non_null_by('city', 'recency_rank') }} as city,
        {{ first_non_null_by('postcode', 'recency_rank') }} as postcode,
        {{ first_non_null_by('state', 'recency_rank') }} as state,
        {{ first_non_null_by('country', 'recency_rank') }} as country,

        min(created_at) as first_created_at,
        max(updated_at) as last_updated_at

    from ranked

    group by customer_id

)

select * from survived

{%- endmacro %}
