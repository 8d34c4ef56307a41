{#-
    The latest consent decision (recorded up to as_of) per customer and purpose.
    A consent row links through its crm_customer_id's cluster when that id is known, otherwise
    through its normalized email to every customer whose CRM record has that email. Rows that
    match no customer are dropped. Ties on recorded_at resolve to the most restrictive status
    (revoked, then denied, then granted), then the latest load.
-#}

with

consent as (

    select * from {{ ref('stg_consent__events') }}
    where recorded_at <= {{ as_of_timestamp() }}

),

crm_clusters as (

    select
        crm_customer_id,
        customer_id

    from {{ ref('int_crm_customers_identified') }}

),

email_customers as (

    select * from {{ ref('int_customer_emails') }}

),

linked_by_id as (

    select
        consent.*,
        crm_clusters.customer_id

    from consent

    inner join crm_clusters
        on consent.crm_customer_id = crm_clusters.crm_customer_id

),

linked_by_email as (

    select
        consent.*,
        email_customers.customer_id

    from consent

    inner join email_customers
        on consent.email = email_customers.email

    left join crm_clusters
        on consent.crm_customer_id = crm_clusters.crm_customer_id

    where crm_clusters.customer_id is null

),

linked as (

    select * from linked_by_id
    union all
    select * from linked_by_email

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id, purpose
            order by
                recorded_at desc,
                case status when 'revoked' then 0 when 'denied' then 1 else 2 end,
                loaded_at desc,
                line_no desc
        ) as decision_rank

    from linked

),

latest as (

    select
        customer_id,
        purpose,
        status,
        status = 'granted' as is_granted,
        consent_source,
        recorded_at

    from ranked

    where decision_rank = 1

)

select * from latest
