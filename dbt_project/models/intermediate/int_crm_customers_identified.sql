{#-
    The current version of every CRM customer record with its unified customer_id.
    The one place that maps crm_customer_id → customer_id; CRM records that identity has not
    resolved (yet) are left out.
-#}

with

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

crm_clusters as (

    select
        source_record_id as crm_customer_id,
        customer_id

    from {{ ref('stg_identity__clusters') }}
    where id_type = 'crm_customer_id'

),

identified as (

    select
        crm_clusters.customer_id,
        crm_customers.*

    from crm_customers

    inner join crm_clusters
        on crm_customers.crm_customer_id = crm_clusters.crm_customer_id

)

select * from identified
