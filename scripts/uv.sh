#!/usr/bin/env bash
# Print how to run uv, installing it with pip first when the machine has none (a fresh machine needs
# only python3). Used by the Makefile; messages go to stderr, the command to stdout.
set -euo pipefail
PY=${PYTHON:-python3}
if command -v uv >/dev/null 2>&1; then command -v uv; exit 0; fi
if [ -x "$HOME/.local/bin/uv" ]; then echo "$HOME/.local/bin/uv"; exit 0; fi
if ! "$PY" -m uv --version >/dev/null 2>&1; then
  echo "uv not found: installing it with pip" >&2
  # --user first; Debian's system Python refuses that (PEP 668) unless told it may.
  "$PY" -m pip install --quiet --user uv >&2 \
    || "$PY" -m pip install --quiet uv >&2 \
    || "$PY" -m pip install --quiet --user --break-system-packages uv >&2
fi
if [ -x "$HOME/.local/bin/uv" ]; then echo "$HOME/.local/bin/uv"; else echo "$PY -m uv"; fi
