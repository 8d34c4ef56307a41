"""End-to-end test of scripts/airflow-standalone.sh (what `make airflow` runs).

No mocks: it starts the real `airflow standalone` on a free port with a throwaway CDP_HOME and a
one-task DAG, logs in with the known credentials, checks the DAG is listed and unpaused, triggers
a run through the REST API, waits for it to succeed, then sends SIGINT to the script and checks
that no Airflow process survives. Takes about a minute on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "airflow-standalone.sh"
DAG_ID = "cdp_standalone_smoke"
PASSWORD = "not-the-default-pw"

START_TIMEOUT = 180  # seconds until the API is healthy
DAG_TIMEOUT = 90  # seconds until the DAG processor has registered the DAG
RUN_TIMEOUT = 90  # seconds until the triggered run has finished
STOP_TIMEOUT = 90  # seconds for the script to stop everything (its own INT/TERM/KILL ladder)

DAG_SOURCE = f'''
import pendulum
from airflow.sdk import dag, task


@dag(dag_id="{DAG_ID}", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def smoke():
    @task
    def hello():
        return "hello from MicroCDP"

    hello()


smoke()
'''

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or not (Path(sys.executable).parent / "airflow").exists(),
    reason="needs bash and the airflow CLI next to the test interpreter",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(method: str, url: str, body: dict | None = None, token: str | None = None):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def _wait_for(what: str, timeout: float, probe, proc: subprocess.Popen, output: list[str]):
    """Call probe() until it returns a truthy value; fail with the script's output otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"script exited ({proc.returncode}) while waiting for {what}:\n" + _tail(output)
            )
        try:
            result = probe()
            if result:
                return result
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = exc
        time.sleep(1)
    pytest.fail(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error}):\n"
        + _tail(output)
    )


def _tail(output: list[str], n: int = 40) -> str:
    return "".join(output[-n:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes_with_airflow_home(airflow_home: Path) -> list[str]:
    """Live processes whose environment holds our AIRFLOW_HOME (Linux /proc; [] elsewhere)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return []
    needle = f"AIRFLOW_HOME={airflow_home}".encode()
    found = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            status = (entry / "status").read_text()
            if "\nState:\tZ" in status:
                continue  # a zombie is dead; only its parent's wait() is missing
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def test_standalone_runs_a_dag_and_stops_cleanly(tmp_path: Path) -> None:
    started = time.monotonic()
    dags_dir = tmp_path / "dags"
    dags_dir.mkdir()
    (dags_dir / "smoke_dag.py").write_text(DAG_SOURCE)
    cdp_home = tmp_path / "cdp_home"
    airflow_home = cdp_home / "airflow"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        CDP_HOME=str(cdp_home),
        CDP_DAGS_DIR=str(dags_dir),
        CDP_AIRFLOW_PORT=str(port),
        CDP_AIRFLOW_PASSWORD=PASSWORD,
        # The scheduler and triggerer also serve task logs (default ports 8793/8794); use free
        # ports so the test does not clash with a `make airflow` running on the same machine.
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port()),
        NO_COLOR="1",
    )
    proc = subprocess.Popen(
        ["bash", str(SCRIPT)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the script's own group, like a terminal's foreground job
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")))
    reader.daemon = True
    reader.start()
    pgid: int | None = None
    try:
        # 1. healthy API, banner with the login printed
        def healthy():
            status, body = _request("GET", f"{base}/api/v2/monitor/health")
            return status == 200 and body["scheduler"]["status"] == "healthy"

        _wait_for("a healthy API", START_TIMEOUT, healthy, proc, output)
        _wait_for(
            "the ready banner",
            30,
            lambda: "MicroCDP Airflow is ready" in "".join(output),
            proc,
            output,
        )
        banner = "".join(output)
        assert base in banner and "user: admin" in banner and f"password: {PASSWORD}" in banner
        pgid = int((airflow_home / "standalone.pid").read_text())
        assert pgid != os.getpgid(proc.pid), "standalone must run in its own process group"
        assert json.loads((airflow_home / "simple_auth_manager_passwords.json").read_text()) == {
            "admin": PASSWORD
        }

        # 2. log in with the known credentials
        status, body = _request(
            "POST", f"{base}/auth/token", {"username": "admin", "password": PASSWORD}
        )
        assert status in (200, 201)
        token = body["access_token"]
        with pytest.raises(urllib.error.HTTPError) as denied:
            _request("POST", f"{base}/auth/token", {"username": "admin", "password": "wrong"})
        assert denied.value.code == 401

        # 3. the DAG is listed and not paused; the single-writer pool exists
        def listed():
            _, body = _request("GET", f"{base}/api/v2/dags?dag_id_pattern={DAG_ID}", token=token)
            return next((d for d in body["dags"] if d["dag_id"] == DAG_ID), None)

        dag = _wait_for(f"DAG {DAG_ID} to be listed", DAG_TIMEOUT, listed, proc, output)
        assert dag["is_paused"] is False
        _, pool = _request("GET", f"{base}/api/v2/pools/duckdb_writer", token=token)
        assert pool["slots"] == 1

        # 4. trigger a run and wait for it to succeed
        status, run = _request(
            "POST", f"{base}/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None}, token=token
        )
        assert status in (200, 201), run
        run_url = f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run['dag_run_id'])}"

        def finished():
            _, body = _request("GET", run_url, token=token)
            return body["state"] if body["state"] in ("success", "failed") else None

        state = _wait_for("the DAG run to finish", RUN_TIMEOUT, finished, proc, output)
        assert state == "success", _tail(output)
        assert (airflow_home / "standalone.log").stat().st_size > 0
    finally:
        # 5. Ctrl-C: the script stops every Airflow process and exits
        if pgid is None:
            with contextlib.suppress(OSError, ValueError):
                pgid = int((airflow_home / "standalone.pid").read_text())
        stop_started = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            if pgid:
                os.killpg(pgid, signal.SIGKILL)
            pytest.fail("the script did not exit after SIGINT:\n" + _tail(output))
        stop_seconds = time.monotonic() - stop_started
        reader.join(timeout=5)
        survivors = _processes_with_airflow_home(airflow_home)
        leftover_groups = [g for g in (pgid, proc.pid) if g and _group_alive(g)]
        for g in leftover_groups:  # do not leave anything behind, even on failure
            with contextlib.suppress(OSError):
                os.killpg(g, signal.SIGKILL)

    print(
        f"\nstandalone test: {time.monotonic() - started:.1f}s in total, "
        f"stop took {stop_seconds:.1f}s, exit status {proc.returncode}"
    )
    assert not survivors, f"Airflow processes survived the script: {survivors}"
    assert not leftover_groups, f"process groups still alive: {leftover_groups}"
    assert "stopped; logs:" in "".join(output), _tail(output)
    assert proc.returncode == 130, _tail(output)  # 128 + SIGINT, from the script's trap
