#!/usr/bin/env bash
# Static checks, then every test suite. A missing part (binary, package) is a failure with a message, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
status=0
run() { printf '\n==> %s\n' "$*" >&2; "$@" || { echo "FAILED: $*" >&2; status=1; }; }

run "$PYTHON" -m ruff check .
run "$PYTHON" -m mypy
run lint-imports
if [ "${1:-}" = "--lint-only" ]; then exit $status; fi

printf '\n==> pytest\n' >&2
"$PYTHON" -m pytest -p no:cacheprovider tests
rc=$?
if [ $rc -eq 5 ]; then echo "FAILED: pytest collected no tests" >&2; status=1
elif [ $rc -ne 0 ]; then echo "FAILED: pytest exited $rc" >&2; status=1; fi
exit $status
