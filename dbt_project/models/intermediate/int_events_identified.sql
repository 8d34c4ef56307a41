{#-
    Every event up to as_of (first arrival of each message_id) with its unified customer_id.
    The logic lives in the macro identified_events, which the incremental fct_events also runs
    over only the events it must re-check.
-#}

{{ identified_events(ref('stg_analytics__events')) }}
