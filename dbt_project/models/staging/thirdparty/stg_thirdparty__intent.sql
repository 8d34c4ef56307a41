with

source as (

    select * from {{ source('thirdparty', 'intent') }}

),

renamed as (

    select

        ----------  ids
        {{ normalize_email('email') }} as email,
        lower({{ clean_text('company_domain') }}) as company_domain,

        ----------  text
        lower({{ clean_text('topic') }}) as topic,
        {{ clean_text('provider') }} as provider,

        ----------  numerics
        intent_score,

        ----------  timestamps
        observed_at,
        _loaded_at as loaded_at,

        ----------  lineage (tie-breaks)
        _line_no as line_no

    from source

)

select * from renamed
