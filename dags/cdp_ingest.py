"""
### MicroCDP — ingest

Loads new files from `$CDP_HOME/landing/<source>/<entity>/` into the DuckDB warehouse:
valid rows into `raw.*` (append-only, de-duplicated), invalid rows into `quarantine.rows` with
the file, line and reason; every file's counts into `audit.load_batches`.

One task per landing source, plus one per REST connector file in `$CDP_HOME/connectors/`
(`pull_<name>`, see docs/rest-connector.md), each in the `duckdb_writer` pool (one DuckDB
writer at a time). A file or API page is loaded once per content, so retries and backfills
never duplicate rows. A source with nothing new is *skipped*; one that loaded updates the
Asset of its raw table. When at least one source loaded and none failed,
**announce_new_raw_data** updates the `raw` Asset once, which starts one **cdp_build** run.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowSkipException

from cdp.assets import RAW_ASSETS, RAW_LANDED, WRITER_POOL
from cdp.dag_defaults import START_DATE, default_args
from cdp.settings import load_settings


def _connector_source(path: Path) -> str:
    """The landing contract a connector file loads into (validated fully when it runs)."""
    from ingestion.rest import load_rest_config

    return load_rest_config(path).source


@dag(
    dag_id="cdp_ingest",
    schedule=timedelta(minutes=15),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=2),
    tags=["microcdp", "ingest"],
    doc_md=__doc__,
)
def cdp_ingest():
    loads = []
    for source, asset in RAW_ASSETS.items():

        @task(task_id="load_" + source.replace("/", "_"), pool=WRITER_POOL, outlets=[asset])
        def load(source_entity: str = source) -> dict[str, int]:
            """Load every new landing file of one source."""
            from cdp.settings import load_settings
            from ingestion import ingest_entity

            results = [r for r in ingest_entity(load_settings(), source_entity) if not r.skipped]
            if not results:
                raise AirflowSkipException(f"no new files for {source_entity}")
            return {
                "files": len(results),
                "rows_read": sum(r.rows_read for r in results),
                "rows_loaded": sum(r.rows_loaded for r in results),
                "rows_quarantined": sum(r.rows_quarantined for r in results),
            }

        loads.append(load())

    # REST connectors: one task per YAML file (read at parse time; no network until it runs).
    for connector_file in sorted(load_settings().connectors_dir.glob("*.yml")):

        @task(
            task_id="pull_" + connector_file.stem,
            pool=WRITER_POOL,
            outlets=[RAW_ASSETS[_connector_source(connector_file)]],
        )
        def pull(path: str = str(connector_file)) -> dict[str, int]:
            """Fetch new pages from one REST API into raw."""
            from ingestion.rest import ingest_rest, load_rest_config

            results = [
                r for r in ingest_rest(load_settings(), load_rest_config(path)) if not r.skipped
            ]
            if not results:
                raise AirflowSkipException(f"no new records from {path}")
            return {"pages": len(results), "rows_loaded": sum(r.rows_loaded for r in results)}

        loads.append(pull())

    @task(outlets=[RAW_LANDED], trigger_rule="none_failed_min_one_success")
    def announce_new_raw_data() -> None:
        """Runs only when some source loaded new rows: one Asset event → one build."""

    loads >> announce_new_raw_data()


cdp_ingest()
