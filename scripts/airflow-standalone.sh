#!/usr/bin/env bash
# Airflow UI for MicroCDP on this machine: `airflow standalone` (SQLite metadata, LocalExecutor,
# scheduler + dag-processor + triggerer + api-server) with a known login, the MicroCDP DAGs
# unpaused, and the `duckdb_writer` pool. Ctrl-C stops every Airflow process it started.
#
# Knobs (environment):
#   CDP_HOME               default <repo>/var; AIRFLOW_HOME defaults to $CDP_HOME/airflow
#   CDP_DAGS_DIR           default <repo>/dags
#   CDP_AIRFLOW_PORT       default 8080 (the API server and UI listen on 127.0.0.1 only)
#   CDP_AIRFLOW_PASSWORD   default "admin" (user "admin", role admin)
#   CDP_AIRFLOW_FOLLOW_LOGS=1      also stream Airflow's output to the terminal
#   CDP_AIRFLOW_START_TIMEOUT      seconds to wait for the API to be healthy (default 300)
#   CDP_AIRFLOW_STOP_GRACE         seconds for a clean stop after Ctrl-C before SIGTERM, then
#                                  SIGKILL 10 s later, go to every Airflow process (default 30)
#
# Measured facts this relies on are in shared/PITFALLS.md ("Airflow 3.3").
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Prefer the project's virtualenv (make airflow already puts it first on PATH).
if [[ -x "$REPO_ROOT/.venv/bin/airflow" && ":$PATH:" != *":$REPO_ROOT/.venv/bin:"* ]]; then
    PATH="$REPO_ROOT/.venv/bin:$PATH"
fi
if ! command -v airflow >/dev/null 2>&1; then
    echo "airflow-standalone: 'airflow' is not on PATH; run 'make install' first (or use 'make airflow')." >&2
    exit 1
fi
PYTHON="$(dirname "$(command -v airflow)")/python"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"

abspath() { mkdir -p "$1" && (cd "$1" && pwd); }

# --- locations (absolute, so every Airflow process and task sees the same warehouse) ---------
CDP_HOME="$(abspath "${CDP_HOME:-$REPO_ROOT/var}")"
AIRFLOW_HOME="$(abspath "${AIRFLOW_HOME:-$CDP_HOME/airflow}")"
DAGS_DIR="${CDP_DAGS_DIR:-$REPO_ROOT/dags}"
if [[ ! -d "$DAGS_DIR" ]]; then
    echo "airflow-standalone: DAG folder '$DAGS_DIR' does not exist (set CDP_DAGS_DIR)." >&2
    exit 1
fi
DAGS_DIR="$(cd "$DAGS_DIR" && pwd)"
PORT="${CDP_AIRFLOW_PORT:-8080}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
    echo "airflow-standalone: CDP_AIRFLOW_PORT must be a port number, got '$PORT'." >&2
    exit 1
fi
PASSWORD="${CDP_AIRFLOW_PASSWORD:-admin}"
START_TIMEOUT="${CDP_AIRFLOW_START_TIMEOUT:-300}"
STOP_GRACE="${CDP_AIRFLOW_STOP_GRACE:-30}"
TERM_GRACE=10
LOG_FILE="$AIRFLOW_HOME/standalone.log"
PID_FILE="$AIRFLOW_HOME/standalone.pid"
PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json"
URL="http://127.0.0.1:$PORT"

export CDP_HOME AIRFLOW_HOME CDP_DAGS_DIR="$DAGS_DIR"

# --- Airflow configuration (environment beats airflow.cfg) ------------------------------------
export AIRFLOW__CORE__DAGS_FOLDER="$DAGS_DIR"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False  # astronomer-cosmos: no usage pings (offline)
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
# The default (32) forks 32 idle LocalExecutor workers; DuckDB allows one writer anyway.
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="$URL"
# Tasks talk to the API server; without this they call localhost:8080 and fail on another port.
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$URL/execution/"
# Look for new DAG files every 30 s instead of 300 s.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=30
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
# Known local login: SimpleAuthManager reads {"user": "password"} JSON from this file.
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$PASSWORDS_FILE"

log() { printf 'airflow-standalone | %s\n' "$*"; }

port_in_use() {
    "$PYTHON" - "$PORT" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

if port_in_use; then
    echo "airflow-standalone: port $PORT on 127.0.0.1 is already in use (another Airflow?)." >&2
    echo "  Stop it, or pick another port: CDP_AIRFLOW_PORT=8081 make airflow" >&2
    exit 1
fi

# Password file, rewritten on every start so CDP_AIRFLOW_PASSWORD always wins.
(
    umask 077
    CDP_AIRFLOW_PASSWORD="$PASSWORD" "$PYTHON" -c \
        'import json, os, sys; print(json.dumps({"admin": os.environ["CDP_AIRFLOW_PASSWORD"]}))' \
        >"$PASSWORDS_FILE"
)

log "AIRFLOW_HOME=$AIRFLOW_HOME"
log "DAGs folder=$DAGS_DIR  CDP_HOME=$CDP_HOME"
log "migrating the metadata database (airflow db migrate) ..."
if ! airflow db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1; then
    tail -n 40 "$AIRFLOW_HOME/db-migrate.log" >&2
    echo "airflow-standalone: 'airflow db migrate' failed; full output in $AIRFLOW_HOME/db-migrate.log" >&2
    exit 1
fi
log "creating pool duckdb_writer (1 slot) ..."
airflow pools set duckdb_writer 1 "one DuckDB writer at a time" >/dev/null

# --- start standalone in its own session / process group ---------------------------------------
PGID=""
TAIL_PID=""
STOPPING=0

group_alive() { [[ -n "$PGID" ]] && kill -0 -- "-$PGID" 2>/dev/null; }

wait_group_gone() { # seconds
    local deadline=$((SECONDS + $1))
    while group_alive && ((SECONDS < deadline)); do sleep 0.5; done
    ! group_alive
}

# Stopping: SIGINT to standalone only (it SIGTERMs each component once and waits for them), then
# SIGTERM and finally SIGKILL to the whole process group. Do not SIGINT the whole group: each
# component would then get two signals (ours and standalone's), and Airflow's signal handlers log
# through a non-reentrant lock - a second signal arriving while the first handler is logging
# deadlocks the scheduler (measured: only SIGKILL stopped it).
stop_airflow() {
    local rc=${1:-0}
    ((STOPPING)) && return
    STOPPING=1
    trap '' INT TERM HUP
    if group_alive; then
        log "stopping Airflow (process group $PGID): SIGINT to standalone, up to ${STOP_GRACE}s ..."
        kill -INT "$PGID" 2>/dev/null || true
        if ! wait_group_gone "$STOP_GRACE"; then
            log "still running after ${STOP_GRACE}s:"
            ps -eo pid=,pgid=,stat=,args= | awk -v g="$PGID" '$2 == g' | cut -c1-120 || true
            log "sending SIGTERM to the process group, up to ${TERM_GRACE}s ..."
            kill -TERM -- "-$PGID" 2>/dev/null || true
            if ! wait_group_gone "$TERM_GRACE"; then
                log "still running: SIGKILL to the process group"
                kill -KILL -- "-$PGID" 2>/dev/null || true
                wait_group_gone 10 || log "WARNING: processes of group $PGID survived SIGKILL"
            fi
        fi
    fi
    wait "$PGID" 2>/dev/null || true
    if [[ -n "$TAIL_PID" ]]; then
        kill "$TAIL_PID" 2>/dev/null || true
        wait "$TAIL_PID" 2>/dev/null || true
    fi
    if [[ -n "$PGID" ]]; then
        rm -f "$PID_FILE"
        log "stopped; logs: $LOG_FILE"
    fi
    exit "$rc"
}

trap 'stop_airflow 130' INT
trap 'stop_airflow 143' TERM HUP
trap 'stop_airflow $?' EXIT

: >"$LOG_FILE"
# A tiny Python shim (portable: macOS has no setsid(1)) that
#  - calls setsid(): standalone gets its own session and process group, so we can signal every
#    Airflow process at once (killing only standalone orphans the scheduler and its workers);
#    the background subshell is not a group leader, so $! is the pid and the pgid of that group;
#  - resets SIGINT to its default: a non-interactive shell starts background jobs with SIGINT
#    ignored (and a shell started with it ignored, e.g. under nohup, cannot un-ignore it), and
#    Python keeps an ignored SIGINT ignored, so standalone would not stop its components on INT.
(
    exec "$PYTHON" -c 'import os, signal
os.setsid()
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp("airflow", ["airflow", "standalone"])' </dev/null >>"$LOG_FILE" 2>&1
) &
PGID=$!
echo "$PGID" >"$PID_FILE"
log "started airflow standalone (process group $PGID); output goes to $LOG_FILE"
if [[ "${CDP_AIRFLOW_FOLLOW_LOGS:-0}" == 1 ]]; then
    tail -n +1 -F "$LOG_FILE" 2>/dev/null &
    TAIL_PID=$!
fi

# --- wait until the API answers and all components report healthy -----------------------------
health() {
    "$PYTHON" - "$URL/api/v2/monitor/health" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        body = json.load(r)
except Exception:
    sys.exit(2)
parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
bad = [p for p in parts if (body.get(p) or {}).get("status") != "healthy"]
sys.exit(1 if bad else 0)
EOF
}

log "waiting for $URL/api/v2/monitor/health (up to ${START_TIMEOUT}s) ..."
deadline=$((SECONDS + START_TIMEOUT))
until health; do
    if ! kill -0 "$PGID" 2>/dev/null; then
        tail -n 40 "$LOG_FILE" >&2 || true
        log "ERROR: airflow standalone exited during start-up; full output in $LOG_FILE" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        tail -n 40 "$LOG_FILE" >&2 || true
        log "ERROR: Airflow did not become healthy within ${START_TIMEOUT}s; output in $LOG_FILE" >&2
        exit 1
    fi
    sleep 1
done

cat <<EOF

================================================================================
 MicroCDP Airflow is ready
   UI / API   $URL          (listens on 127.0.0.1 only)
   login      user: admin   password: $PASSWORD
   DAGs       $DAGS_DIR  (unpaused; new files picked up within ~30 s)
   CDP_HOME   $CDP_HOME   (warehouse: $CDP_HOME/warehouse.duckdb)
   logs       $LOG_FILE
              task logs under $AIRFLOW_HOME/logs
   stop       Ctrl-C here (or: kill $$) - stops every Airflow process
================================================================================

EOF

# --- run until Ctrl-C (trap) or until standalone exits by itself -------------------------------
set +e
wait "$PGID"
rc=$?
set -e
if ((!STOPPING)); then
    tail -n 40 "$LOG_FILE" >&2 || true
    log "ERROR: airflow standalone exited unexpectedly (status $rc); output in $LOG_FILE" >&2
    stop_airflow 1
fi
