#!/usr/bin/env bash
# Set up (if needed), lint, and run the test suite. Extra arguments go to pytest.
# Recordings replay offline (tests/conftest.py); with CI=true a skipped requirement is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LIFTDSPY_VENV:-.venv}
bash scripts/setup.sh
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/python" -m pytest "$@"
