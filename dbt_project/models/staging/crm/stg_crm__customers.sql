with

source as (

    select * from {{ source('crm', 'customers') }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by crm_customer_id
            order by updated_at desc nulls last, _loaded_at desc, _line_no desc
        ) as version_rank

    from source

),

renamed as (

    select

        ----------  ids
        crm_customer_id,

        ----------  text
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ normalize_email('email') }} as email,
        {{ clean_text('phone') }} as phone,
        {{ digits_only('phone') }} as phone_normalized,
        {{ clean_text('address_line1') }} as address_line1,
        {{ clean_text('address_line2') }} as address_line2,
        {{ clean_text('city') }} as city,
        {{ clean_text('postcode') }} as postcode,
        {{ clean_text('state') }} as state,
        {{ clean_text('country') }} as country,

        ----------  dates
        date_of_birth,

        ----------  timestamps
        created_at,
        updated_at,
        _loaded_at as loaded_at

    from versioned

    where version_rank = 1

)

select * from renamed
