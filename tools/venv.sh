#!/usr/bin/env bash
# Creates (once) the Python venv the reference tools run in, outside the package build, and
# prints its python path. Override the location with DECI_VENV.
set -euo pipefail
venv="${DECI_VENV:-$HOME/.cache/decidiffusion/venv}"
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --upgrade pip >&2
fi
stamp="$venv/.requirements.sha"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/pip" install -q -r "$here/requirements.txt" >&2
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
