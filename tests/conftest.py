"""Shared fixtures: every test gets its own CDP_HOME; Airflow gets one metadata DB per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from cdp.settings import Settings, load_settings


def pytest_configure(config: pytest.Config) -> None:
    """Airflow reads its config once per process: give the session one private AIRFLOW_HOME."""
    airflow_home = Path(tempfile.mkdtemp(prefix="cdp-test-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a fresh temporary CDP_HOME."""
    env = {"CDP_HOME": str(tmp_path / "cdp_home"), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    resolved = load_settings(env)
    resolved.ensure_dirs()
    return resolved
