"""Shared fixtures: every test gets its own CDP_HOME; Airflow gets one metadata DB per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from cdp import airflow_env
from cdp.dbt_manifest import ensure_manifest
from cdp.settings import Settings, load_settings

_SESSION_HOME = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Airflow reads its config once per process: configure it for the session before import."""
    session_home = Path(tempfile.mkdtemp(prefix="cdp-test-"))
    config.stash[_SESSION_HOME] = session_home
    settings = load_settings({"CDP_HOME": str(session_home)})
    airflow_env.configure(settings)
    ensure_manifest(settings)  # tests parse the build DAG: the dbt manifest must match the project


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's Airflow home (metadata DB, logs) once the run is over."""
    session_home = config.stash.get(_SESSION_HOME, None)
    if session_home is not None:
        shutil.rmtree(session_home, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a fresh temporary CDP_HOME."""
    env = {"CDP_HOME": str(tmp_path / "cdp_home"), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    resolved = load_settings(env)
    resolved.ensure_dirs()
    return resolved
