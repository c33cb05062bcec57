#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then lint and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
