#!/usr/bin/env bash
# Upstream Spatial-AST needed timm 0.3.2 patched for newer torch. This codebase uses timm 1.x
# as released, so this script patches nothing: it only checks the installed torch and timm.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$( [ -x "$REPO/.venv/bin/python" ] && echo "$REPO/.venv/bin/python" || echo python )}"
exec "$PY" - <<'PYEOF'
import sys
try:
    import timm
    import torch
except ImportError as error:
    sys.exit(f"not installed: {error.name}; run: pip install -r requirements.txt")
problems = []
if tuple(int(v) for v in timm.__version__.split(".")[:1]) < (1,):
    problems.append(f"timm {timm.__version__} is too old: this code needs timm 1.x (pip install 'timm>=1,<2')")
if tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < (2, 5):
    problems.append(f"torch {torch.__version__} is too old: this code needs torch >= 2.5 (torch.serialization.safe_globals)")
if problems:
    sys.exit("\n".join(problems))
print(f"torch {torch.__version__} and timm {timm.__version__}: compatible, no patch needed")
PYEOF
