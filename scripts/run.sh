#!/usr/bin/env bash
# `make run`: Airflow 3 with dagops on an embedded default (SQLite), a local demo repository synced
# into namespace `demo`, served at http://localhost:8080 on the loopback interface only (login admin / admin).
# Ctrl-C or `make stop` stops every process it started.
#
# Start-up, fastest first: one Python process prepares everything Airflow needs before it starts (its DB,
# `dagops init`, the demo repository and the catalog registered: scripts/make_run.py), then `airflow standalone`
# starts while a second one validates and publishes the demo repository (BENCHMARKS.md, start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
# DAGOPS_RUN_HOME and AIRFLOW__API__PORT let tests run this very script in a tmp folder on a free port.
RUN_HOME=${DAGOPS_RUN_HOME:-$ROOT/.airflow}
PORT=${AIRFLOW__API__PORT:-8080}
PID_FILE=$RUN_HOME/run.pid

mkdir -p "$RUN_HOME"
RUN_HOME=$(cd "$RUN_HOME" && pwd)
if [ -s "$PID_FILE" ] && kill -0 "$(head -n1 "$PID_FILE")" 2>/dev/null \
  && tr '\0' ' ' < "/proc/$(head -n1 "$PID_FILE")/cmdline" | grep -q run.sh; then
  echo "make run is already running for $RUN_HOME (pid $(head -n1 "$PID_FILE")); stop it first: make stop" >&2
  exit 1
fi

ENV_FILE=$RUN_HOME/env.sh
cat > "$ENV_FILE" <<ENV
# Source this file to use \`airflow\` and \`dagops\` against the \`make run\` instance.
export AIRFLOW_HOME="$RUN_HOME"
export PATH="$BIN:\$PATH"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT=$PORT
# Loopback only: this instance has a fixed admin / admin login. http://localhost:$PORT reaches it; to serve other
# machines, deploy it properly (docs/deployment.md), with real accounts.
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$PORT/execution/
# DAG bundles keep their copies here, not in Airflow's default of /tmp/airflow/dag_bundles, which every Airflow on
# the machine shares: another instance's dagops-releases bundle would replace this one's DAG files there.
export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH="$RUN_HOME/dag_bundles"
# Look for new DAG files every 5 s and re-parse known ones every 10 s (defaults: 300 s and 30 s), so a
# freshly published namespace shows up within seconds.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=10
# Check every second whether a bundle is due for a refresh (default 5 s): the dagops-releases bundle's refresh
# (every second, one state DB query) then picks a new release up within a second, not five (BENCHMARKS (d)).
export AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL=1
# Standalone starts one LocalExecutor worker per parallelism slot (32 by default): 4 suit a laptop.
export AIRFLOW__CORE__PARALLELISM=4
# The scheduler naps 1 s when idle; 0.2 s starts a webhook-triggered sync about 1 s sooner (BENCHMARKS (g)).
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2
# Standalone starts the scheduler and the api-server together, and the api-server (which also serves the
# execution API every task talks to) is the slowest to listen: 15-40 s on 2 cores. A task's worker retries
# that API 5 times over about 15 s by default, so the first runs failed with httpx.ConnectError. Every 5 s for
# up to 2 minutes instead (a running Airflow answers at once, so this costs nothing later).
export AIRFLOW__WORKERS__EXECUTION_API_RETRIES=25
export AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN=5
export AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX=5
# One SQLite file, one writer at a time: wait up to a minute for it rather than pysqlite's 5 s, after which the API
# answered a DAG run trigger with 500 on busy cores (airflow_dagops/airflow/sqlite_wait.py).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=airflow_dagops.airflow.sqlite_wait.CONNECT_ARGS
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC=airflow_dagops.airflow.sqlite_wait.CONNECT_ARGS_ASYNC
ENV
# shellcheck disable=SC1090
source "$ENV_FILE"

# How stopping finds every process (scripts/make_run.py): Airflow runs in a session of its own, recorded in
# $PID_FILE once it starts; the helpers started from here carry this mark in their environment.
MARK="$RUN_HOME#$$"
export DAGOPS_RUN_MARK=$MARK
AIRFLOW_SESSION=
printf '%s\n%s\n' "$$" "$MARK" > "$PID_FILE"
stop_all() {
  trap - INT TERM HUP EXIT
  echo "Stopping Airflow and dagops (every process of this make run)..." >&2
  "$BIN/python" scripts/make_run.py sweep "$MARK" ${AIRFLOW_SESSION:+"$AIRFLOW_SESSION"} || true
  rm -f "$PID_FILE"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 0' TERM HUP  # `make stop`: asked for, not a failure
trap stop_all EXIT

# A fixed login for local use (SimpleAuthManager reads its passwords from this file).
PASSWORDS=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
[ -s "$PASSWORDS" ] || echo '{"admin": "admin"}' > "$PASSWORDS"

# DAG files are validated inside bubblewrap. Where this machine cannot run it (no bwrap, a container without
# namespaces), the local demo runs degraded, loudly, instead of blocking every sync: production keeps `strict`.
if ! "$BIN/python" -c 'import sys; from airflow_dagops.validate.sandbox_host import sandbox_support as s
r = s(); print(r.reason, file=sys.stderr) if not r.available else None; sys.exit(0 if r.available else 1)'; then
  echo "WARNING: no OS sandbox for validation here (see above); this local instance imports DAG files degraded." >&2
  echo "         Install bubblewrap (apt-get install bubblewrap) for the real thing: docs/security.md" >&2
  echo "export AIRFLOW__DAGOPS__SANDBOX=degraded" >> "$ENV_FILE"
  export AIRFLOW__DAGOPS__SANDBOX=degraded
fi

# Airflow's DB, `dagops init`, the demo repository and the `community` catalog: before any Airflow component
# starts, so the dag-processor loads the dagops bundle and the first scheduled runs find what they need.
"$BIN/python" scripts/make_run.py prepare

echo "Starting Airflow at http://localhost:$PORT (login: admin / admin); the demo repository is published meanwhile..."
"$BIN/python" scripts/make_run.py airflow &  # `airflow standalone`, leading a new session: its id is this pid
AIRFLOW_SESSION=$!
printf '%s\n%s\n%s\n' "$$" "$MARK" "$AIRFLOW_SESSION" > "$PID_FILE"
"$BIN/python" scripts/make_run.py publish &
# Until Airflow ends (or Ctrl-C / make stop: the traps above end everything).
wait "$AIRFLOW_SESSION"
