"""The ``cdp`` command line: clear errors and exit codes on bad input, safe demo resets."""

from __future__ import annotations

import pytest

from cdp.cli import DEMO_MARKER, main


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CDP_HOME", str(home))
    for name in ("CDP_WAREHOUSE", "CDP_LANDING"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_sql_without_a_warehouse_says_what_to_do(home, capsys):
    assert main(["sql", "select 1"]) == 2
    assert "no warehouse at" in capsys.readouterr().err


def test_sql_errors_are_one_line_not_a_traceback(home, capsys):
    main(["generate", "--customers", "50", "--events", "500", "--end-date", "2026-10-01"])
    from cdp.settings import load_settings
    from cdp.warehouse import connect

    with connect(load_settings()):
        pass  # create an empty warehouse
    assert main(["sql", "select * from marts.nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cdp: error: Catalog Error") and "Traceback" not in err


def test_unknown_step_is_rejected(home, capsys):
    assert main(["run", "--only", "ingest,publish"]) == 1
    assert (
        "unknown step(s) ['publish']; choose from ['ingest', 'build', 'ml']"
        in capsys.readouterr().err
    )


def test_a_logical_date_before_every_dag_start_is_a_failure_not_an_empty_success(home, capsys):
    assert main(["run", "--as-of", "1969-12-31", "--only", "ingest"]) == 1
    assert "cdp_ingest run" in (err := capsys.readouterr().err) and "ran no task" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--as-of", "31/12/2026"], "'31/12/2026' is not a date"),
        (["generate", "--customers", "0"], "'0' is not a positive whole number"),
        (["generate", "--events", "lots"], "'lots' is not a positive whole number"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(home, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_generate_writes_landing_and_truth(home, capsys):
    argv = ["generate", "--customers", "60", "--events", "800", "--end-date", "2026-10-01"]
    assert main([*argv, "--seed", "3"]) == 0
    assert (home / "landing" / "crm" / "customers" / "customers.csv").exists()
    assert (home / "truth" / "summary.json").exists()
    assert "generated" in capsys.readouterr().out


def test_demo_never_wipes_a_home_it_did_not_create(home, capsys):
    (home / "landing" / "crm" / "customers").mkdir(parents=True)
    precious = home / "landing" / "crm" / "customers" / "export.csv"
    precious.write_text("crm_customer_id\nC1\n")
    assert main(["demo", "--customers", "50", "--events", "500"]) == 2
    assert "already holds data that `cdp demo` did not create" in capsys.readouterr().err
    assert precious.exists() and not (home / DEMO_MARKER).exists()


def test_segments_validate_reports_every_problem(home, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "big.yml").write_text(
        "name: big\ndescription: d\nowner: o\nkind: static\nrefresh: daily\n"
        "rule: {field: lifetime_valu, op: '>', value: 1}\n"
    )
    monkeypatch.setenv("CDP_SEGMENTS_DIR", str(folder))
    assert main(["segments", "validate"]) == 1
    err = capsys.readouterr().err
    assert "big.yml" in err and "lifetime_valu" in err and "lifetime_value" in err


def test_segments_validate_accepts_the_starter_library(home, capsys):
    assert main(["segments", "validate"]) == 0
    assert "segment definitions in" in capsys.readouterr().out
