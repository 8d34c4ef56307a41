{#-
    Survivorship: for each customer_id, every CRM attribute takes the most recent non-null value
    across the customer's CRM records (the current version of each linked crm_customer_id),
    ranked by updated_at desc (nulls last), then created_at desc, then crm_customer_id
    (macro survived_attributes).
-#}

{{ survived_attributes(ref('int_crm_customers_identified')) }}
