with

source as (

    select * from {{ source('privacy', 'erasure_requests') }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by request_id
            order by _loaded_at, _line_no
        ) as arrival_rank

    from source

),

renamed as (

    select

        ----------  ids
        request_id,
        {{ clean_text('crm_customer_id') }} as crm_customer_id,
        {{ normalize_email('email') }} as email,

        ----------  timestamps
        requested_at,
        _loaded_at as loaded_at

    from versioned

    where arrival_rank = 1

)

select * from renamed
