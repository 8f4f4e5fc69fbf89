#!/usr/bin/env bash
# pytest over tests/ against the installed package. Exit 5 (no tests collected) is a failure.
set -uo pipefail
cd "$ENIGMA_EDGE_ROOT"
"$VENV/bin/pytest" tests -q ${PYTEST_ARGS:-}
rc=$?
[ $rc -eq 5 ] && echo "pytest collected no tests: failing" >&2
exit $rc
