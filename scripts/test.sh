#!/usr/bin/env bash
# Run the test suite on CPU (creates or reuses .venv). Extra arguments go to pytest; test paths among
# them replace the whole tests/ folder, e.g. `bash scripts/test.sh tests/test_metrics.py -k chance`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
WHAT=(tests)
for arg in "$@"; do [[ "$arg" == tests* ]] && WHAT=(); done
exec "$PY" -m pytest -q "$@" "${WHAT[@]}"
