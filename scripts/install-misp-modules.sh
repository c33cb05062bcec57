#!/usr/bin/env bash
# Install MISP's misp-modules server (3.x, PyPI "misp-modules", no extras) into its own
# virtual environment, .venv-misp at the repository root.
#
# Why a separate venv: misp-modules pins many dependencies (click, tornado, urllib3,
# certifi...) that must not leak into quaid's own environment, and a real deployment runs
# misp-modules beside MISP anyway. quaid's modules are loaded from the custom root with
#     .venv-misp/bin/misp-modules -l 127.0.0.1 -p 6666 -c misp_modules
# and only need requests + pymisp, which misp-modules already depends on.
#
# Idempotent: does nothing when the venv already has a misp-modules 3.x that starts.
# Environment: PYTHON (default python3.11), MISP_MODULES_SPEC (default "misp-modules>=3,<4").
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-misp"
PYTHON="${PYTHON:-python3.11}"
SPEC="${MISP_MODULES_SPEC:-misp-modules>=3,<4}"

installed_ok() {
    [ -x "$VENV/bin/misp-modules" ] || return 1
    "$VENV/bin/python" - <<'EOF' || return 1
import importlib.metadata, sys
version = importlib.metadata.version("misp-modules")
sys.exit(0 if version.split(".")[0] == "3" else 1)
EOF
    # --test loads every module and exits: proves the server can start.
    "$VENV/bin/misp-modules" --test -l 127.0.0.1 -p 0 -c "$ROOT/misp_modules" >/dev/null 2>&1
}

if installed_ok; then
    echo "misp-modules already installed in $VENV"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# requests is what quaid's modules use; misp-modules depends on it already, listed for clarity.
"$VENV/bin/python" -m pip install --quiet "$SPEC" requests

if ! installed_ok; then
    echo "misp-modules installed in $VENV but does not start; run:" >&2
    echo "  $VENV/bin/misp-modules --test -l 127.0.0.1 -p 0 -c $ROOT/misp_modules" >&2
    exit 1
fi
echo "misp-modules $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("misp-modules"))') installed in $VENV"
