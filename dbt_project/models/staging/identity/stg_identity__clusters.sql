with

source as (

    select * from {{ source('identity', 'clusters') }}

),

renamed as (

    select

        ----------  ids
        {{ dbt.concat(['id_type', "':'", 'source_record_id']) }} as identity_key,
        customer_id,
        id_type,
        source_record_id,
        run_id,

        ----------  text
        source as identity_source,

        ----------  timestamps
        resolved_at

    from source

)

select * from renamed
