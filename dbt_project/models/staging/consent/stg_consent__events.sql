with

source as (

    select * from {{ source('consent', 'events') }}

),

renamed as (

    select

        ----------  ids
        {{ clean_text('crm_customer_id') }} as crm_customer_id,
        {{ normalize_email('email') }} as email,

        ----------  text
        lower(trim(purpose)) as purpose,
        lower(trim(status)) as status,
        {{ clean_text('source') }} as consent_source,

        ----------  timestamps
        recorded_at,
        _loaded_at as loaded_at,

        ----------  lineage (tie-breaks)
        _line_no as line_no

    from source

)

select * from renamed
