"""``cdp segments microbatch · explain · members`` and ``--as-of`` with a full timestamp."""

from __future__ import annotations

import argparse
from datetime import datetime

import pytest
from segment_data import MICRO_T as T
from segment_data import burst, land_events

from cdp.cli import _parse_date, main
from cdp.settings import load_settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_HOME", str(tmp_path / "home"))
    for name in ("CDP_WAREHOUSE", "CDP_LANDING", "CDP_SEGMENTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:30:00Z", datetime(2026, 11, 20, 10, 30)),
        ("2026-11-20T11:30:00+01:00", datetime(2026, 11, 20, 10, 30)),
        ("2026-11-20 10:30", datetime(2026, 11, 20, 10, 30)),
        ("2026-11-20", datetime(2026, 11, 20)),
    ],
)
def test_as_of_accepts_full_timestamps_as_utc(text: str, expected: datetime) -> None:
    assert _parse_date(text) == expected


def test_as_of_rejects_text_that_is_not_a_time() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="is not a date"):
        _parse_date("yesterday at ten")


def test_microbatch_explain_and_members_from_the_command_line(home, capsys) -> None:
    settings = load_settings()
    settings.ensure_dirs()
    land_events(settings, "burst", burst("anon-cli"))
    assert main(["segments", "microbatch", "--as-of", "2026-11-20T10:30:00Z"]) == 0
    out = capsys.readouterr().out
    assert "4 new events" in out and "rapid_browsers" in out

    assert main(["segments", "members", "rapid_browsers", "--limit", "5"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    customer_id = line.split()[0]
    assert customer_id.startswith("cus_")

    at = f"{T:%Y-%m-%dT%H:%M:%S}Z"
    assert main(["segments", "explain", "rapid_browsers", customer_id, "--as-of", at]) == 0
    out = capsys.readouterr().out
    assert f"{customer_id} IS in rapid_browsers" in out and "(value: 4)" in out
    # Without --as-of it judges at the time the current membership was decided, not "now"
    # (by the wall clock the burst is long out of the 30-minute window).
    assert main(["segments", "explain", "rapid_browsers", customer_id]) == 0
    assert f"IS in rapid_browsers at {T:%Y-%m-%d %H:%M:%S}" in capsys.readouterr().out
    assert main(["segments", "explain", "rapid_browsers", "cus_nobody", "--as-of", at]) == 1
    assert "unknown customer 'cus_nobody'" in capsys.readouterr().err
    assert main(["segments", "explain", "rapid_browser", customer_id]) == 1
    assert "unknown segment 'rapid_browser'" in capsys.readouterr().err
