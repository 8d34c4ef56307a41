{#-
    One row per arrival in raw.analytics_events (re-delivered messages included, with their
    loaded_at and source_line_no): no window here, so a filter on any column reaches the raw
    scan. The first arrival of each message_id is picked where events are identified
    (macro identified_events).
-#}

with

source as (

    select * from {{ source('analytics', 'events') }}

),

renamed as (

    select

        ----------  ids
        message_id,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ clean_text('user_id') }} as user_id,
        {{ clean_text('order_id') }} as order_id,

        ----------  text
        lower(trim(type)) as event_type,
        case lower(trim(type))
            when 'track' then {{ snake_case('event') }}
            when 'page' then 'page_viewed'
            when 'screen' then 'screen_viewed'
            else lower(trim(type))
        end as event_name,
        lower({{ clean_text('category') }}) as category,
        {{ normalize_email('trait_email') }} as email,
        coalesce(
            {{ clean_text('page_url') }},
            {{ clean_text(json_extract_text('properties', '$.url')) }}
        ) as page_url,

        ----------  numerics
        price,
        revenue,

        ----------  timestamps
        {{ adapter.quote('timestamp') }} as occurred_at,
        _loaded_at as loaded_at,

        ----------  arrival order
        _line_no as source_line_no

    from source

)

select * from renamed
