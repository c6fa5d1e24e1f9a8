#!/usr/bin/env bash
# Install what the tests need and run the whole test suite.  Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
bash scripts/install.sh dev,analysis,ray
exec "$PYTHON" -m pytest "$@"
