{#-
    Every normalized email on a customer's current CRM records: how third-party intent and
    consent given by email find their customer. An email on several customers' records maps to
    each of them.
-#}

select distinct
    email,
    customer_id

from {{ ref('int_crm_customers_identified') }}
where email is not null
