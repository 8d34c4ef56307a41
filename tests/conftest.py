"""Shared fixtures: every test gets its own CDP_HOME; Airflow gets one metadata DB per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from cdp import airflow_env
from cdp.settings import Settings, load_settings


def pytest_configure(config: pytest.Config) -> None:
    """Airflow reads its config once per process: configure it for the session before import."""
    session_home = Path(tempfile.mkdtemp(prefix="cdp-test-"))
    airflow_env.configure(load_settings({"CDP_HOME": str(session_home)}))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a fresh temporary CDP_HOME."""
    env = {"CDP_HOME": str(tmp_path / "cdp_home"), "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"]}
    resolved = load_settings(env)
    resolved.ensure_dirs()
    return resolved
