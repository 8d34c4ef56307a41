with

source as (

    select * from {{ source('crm', 'orders') }}

),

versioned as (

    select
        *,
        row_number() over (
            partition by order_id
            order by _loaded_at desc, _line_no desc
        ) as version_rank

    from source

),

renamed as (

    select

        ----------  ids
        order_id,
        crm_customer_id,

        ----------  text
        upper({{ clean_text('currency') }}) as currency,
        lower({{ clean_text('category') }}) as category,
        case lower({{ clean_text('status') }})
            when 'canceled' then 'cancelled'
            else lower({{ clean_text('status') }})
        end as status,

        ----------  numerics
        total_amount,
        item_count,

        ----------  timestamps
        ordered_at,
        _loaded_at as loaded_at

    from versioned

    where version_rank = 1

)

select * from renamed
