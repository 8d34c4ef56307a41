{#-
    The latest third-party intent observation (up to as_of) per customer and topic. Intent links
    only by normalized email to customers whose CRM record has that email; company-level and
    unmatched signals are dropped (third-party data never creates customers).
-#}

with

intent as (

    select * from {{ ref('stg_thirdparty__intent') }}
    where observed_at <= {{ as_of_timestamp() }}
        and email is not null

),

email_customers as (

    select * from {{ ref('int_customer_emails') }}

),

linked as (

    select
        email_customers.customer_id,
        intent.*

    from intent

    inner join email_customers
        on intent.email = email_customers.email

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id, topic
            order by observed_at desc, loaded_at desc, line_no desc
        ) as observation_rank

    from linked

),

latest as (

    select
        customer_id,
        topic,
        intent_score,
        provider,
        observed_at

    from ranked

    where observation_rank = 1

)

select * from latest
