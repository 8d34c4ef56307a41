"""Shared fixtures: every test gets its own CDP_HOME; Airflow gets one metadata DB per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from cdp import airflow_env
from cdp.dbt_manifest import ensure_manifest
from cdp.settings import Settings, load_settings


def pytest_configure(config: pytest.Config) -> None:
    """Airflow reads its config once per process: configure it for the session before import."""
    session_home = Path(tempfile.mkdtemp(prefix="cdp-test-"))
    settings = load_settings({"CDP_HOME": str(session_home)})
    airflow_env.configure(settings)
    ensure_manifest(settings)  # tests parse the build DAG: the dbt manifest must match the project


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a fresh temporary CDP_HOME."""
    env = {"CDP_HOME": str(tmp_path / "cdp_home"), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    resolved = load_settings(env)
    resolved.ensure_dirs()
    return resolved
