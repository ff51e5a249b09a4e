# Source me: create or reuse .venv at the repository root and keep it in step with
# requirements.txt (re-installed only when that file changes). Sets REPO and PY, and the allocator's
# settings (allocator.sh).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "creating $VENV" >&2
    "${PYTHON:-python3}" -m venv "$VENV"
fi
_want="$(sha256sum "$REPO/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$_want" ]; then
    echo "installing requirements.txt into $VENV (once)" >&2
    # recorded only once installed: sourced without `set -e`, a failed install is retried next time
    "$PY" -m pip install --quiet --upgrade pip && "$PY" -m pip install --quiet -r "$REPO/requirements.txt" \
        && echo "$_want" > "$VENV/.requirements.sha256" || { echo "error: installing requirements.txt failed" >&2; return 1 2>/dev/null || exit 1; }
fi
unset _want
source "$REPO/scripts/allocator.sh"
