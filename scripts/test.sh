#!/usr/bin/env bash
# Install what the tests need, check the tree with ruff, and run the tests.
#   bash scripts/test.sh            the whole suite (CI runs this): unit, integration and slow tiers, in
#                                   SOAR_TEST_WORKERS processes (2; pytest-xdist, one test file to a process at a
#                                   time, so a file's fixtures, a Ray cluster among them, stay in one process;
#                                   0: one process, no xdist)
#   bash scripts/test.sh unit       the fast stage: ruff, then tests/unit only (no models, no processes; < 1 min)
# Other arguments go to pytest, e.g. bash scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/install.sh dev,analysis,ray
"$PYTHON" -m ruff check src tests scripts benchmarks
if [ "${1:-}" = unit ]; then
  shift
  exec "$PYTHON" -m pytest tests/unit "$@"
fi
exec "$PYTHON" -m pytest -n "${SOAR_TEST_WORKERS:-2}" --dist loadfile "$@"
