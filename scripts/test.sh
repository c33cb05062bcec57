#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then lint and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .  # ail_connector/ is checked for Python 3.8 (its own pyproject.toml)
.venv/bin/vermin -t=3.8- --violations --no-tips -q ail_connector  # AIL's virtualenv may be Python 3.8
.venv/bin/python -m pytest "$@"
