#!/usr/bin/env bash
# Run the test suite on CPU (creates or reuses .venv). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$REPO"
exec "$PY" -m pytest -q "$@" tests
