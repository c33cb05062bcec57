#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need, then lint and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check .  # ail_connector/ and quaid_client/ are checked for Python 3.8 (own pyproject.toml)
.venv/bin/vermin -t=3.8- --violations --no-tips -q ail_connector quaid_client  # AIL's virtualenv: maybe 3.8
.venv/bin/python -m pytest "$@"
