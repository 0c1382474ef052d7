#!/usr/bin/env bash
# `make run`: Airflow 3 with dagops on an embedded default (SQLite), a local demo repository synced
# into namespace `demo`, served at http://localhost:8080 (login admin / admin).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
# DAGOPS_RUN_HOME and AIRFLOW__API__PORT let tests run this very script in a tmp folder on a free port.
RUN_HOME=${DAGOPS_RUN_HOME:-$ROOT/.airflow}
PORT=${AIRFLOW__API__PORT:-8080}

ENV_FILE=$RUN_HOME/env.sh
mkdir -p "$RUN_HOME"
cat > "$ENV_FILE" <<ENV
# Source this file to use \`airflow\` and \`dagops\` against the \`make run\` instance.
export AIRFLOW_HOME="$RUN_HOME"
export PATH="$BIN:\$PATH"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__API__PORT=$PORT
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$PORT/execution/
# Look for new DAG files every 5 s and re-parse known ones every 10 s (defaults: 300 s and 30 s), so a
# freshly published namespace shows up within seconds.
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=10
# Standalone starts one LocalExecutor worker per parallelism slot (32 by default): 4 suit a laptop.
export AIRFLOW__CORE__PARALLELISM=4
# The scheduler naps 1 s when idle; 0.2 s starts a webhook-triggered sync about 1 s sooner (BENCHMARKS (g)).
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2
ENV
# DAG files are validated inside bubblewrap. Where this machine cannot run it (no bwrap, a container without
# namespaces), the local demo runs degraded, loudly, instead of blocking every sync: production keeps `strict`.
if ! "$BIN/python" -c 'import sys; from airflow_dagops.validate.sandbox_host import sandbox_support as s
r = s(); print(r.reason, file=sys.stderr) if not r.available else None; sys.exit(0 if r.available else 1)'; then
  echo "WARNING: no OS sandbox for validation here (see above); this local instance imports DAG files degraded." >&2
  echo "         Install bubblewrap (apt-get install bubblewrap) for the real thing: docs/security.md" >&2
  echo "export AIRFLOW__DAGOPS__SANDBOX=degraded" >> "$ENV_FILE"
fi
# shellcheck disable=SC1090
source "$ENV_FILE"

# A fixed login for local use (SimpleAuthManager reads its passwords from this file).
PASSWORDS=$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated
[ -s "$PASSWORDS" ] || echo '{"admin": "admin"}' > "$PASSWORDS"

airflow db migrate >/dev/null
dagops init

# Turn examples/demo-repo into a real local git repository (commit any edits made to the example).
DEMO=$AIRFLOW_HOME/demo-remote
if [ ! -d "$DEMO/.git" ]; then
  mkdir -p "$DEMO"
  cp -R examples/demo-repo/. "$DEMO/"
  git -C "$DEMO" init -q -b main
  git -C "$DEMO" add -A
  git -C "$DEMO" -c user.name=dagops-demo -c user.email=demo@localhost commit -q -m "Demo DAGs"
fi
dagops repos show demo >/dev/null 2>&1 || dagops repos add demo "file://$DEMO" --namespace demo
dagops sync demo

# Turn examples/catalog into a local catalog repository (one tag per package version) and register it as the
# marketplace's `community` catalog: one Python process, not three `dagops` start-ups.
CATALOG=$AIRFLOW_HOME/catalog-remote
python - examples/catalog "$CATALOG" <<'PY'
import sys
from pathlib import Path

from airflow_dagops.marketplace import catalogs as market

source, dest = sys.argv[1:]
if not (Path(dest) / ".git").is_dir():
    market.catalog_repo_from_folder(source, dest)
if "community" not in {c["name"] for c in market.list_catalogs()}:
    market.add_catalog("community", f"file://{dest}")
print(market.refresh_catalogs(["community"])[0]["message"])
PY

cat <<MSG

  Airflow with dagops is starting at http://localhost:$AIRFLOW__API__PORT  (login: admin / admin)
  Demo repository: $DEMO (commit there; dagops_sync publishes it).
  Marketplace catalog \`community\`: $CATALOG (try: dagops marketplace search backup).
  CLI against this instance:  source $ENV_FILE && dagops status

MSG
exec airflow standalone
