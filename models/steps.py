"""Run a ``models.pipeline`` step from inside an Airflow task (the DAG files stay thin)."""

from __future__ import annotations

from typing import Any


def run_step(name: str, *args: Any, skip_without_champion: bool = False) -> Any:
    """Call ``models.pipeline.<name>(settings, as_of, run_id, *args)`` for the current task run.

    With ``skip_without_champion`` a missing champion skips the task instead of failing it
    (daily scoring before the first retrain has nothing to score with).
    """
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    from cdp.logical_time import run_as_of, run_identifier
    from cdp.settings import load_settings
    from models import pipeline

    context = get_current_context()
    step = getattr(pipeline, name)
    try:
        return step(load_settings(), run_as_of(context), run_identifier(context), *args)
    except pipeline.NoChampion as error:
        if skip_without_champion:
            raise AirflowSkipException(str(error)) from error
        raise
