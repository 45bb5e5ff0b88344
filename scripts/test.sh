#!/usr/bin/env bash
# test.sh: the whole test suite from a fresh Debian bookworm clone — installs what is missing, builds once,
# starts a throwaway PostgreSQL on loopback, runs the Swift suites, then the interop and browser suites.
# Usage: scripts/test.sh [--no-browser] [--autobahn] [extra swift test arguments]
# --autobahn also runs Autobahn|Testsuite against medic-echo over ws and wss (~45 minutes; the suite is installed
# outside the repository, see Tests/autobahn/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
browser=1
autobahn=0
while [ $# -gt 0 ]; do
  case "$1" in
    --no-browser) browser=0; shift ;;
    --autobahn) autobahn=1; shift ;;
    *) break ;;
  esac
done

scripts/deps.sh test

# Python venv for the third-party WebSocket client and the browser tests.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import websockets, selenium, pytest' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r Tests/requirements.txt
fi

# The tests open thousands of sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Throwaway PostgreSQL for the store's contract suite; removed on exit.
eval "$(scripts/postgres.sh start)"
cleanup() { scripts/postgres.sh stop "${MEDIC_TEST_POSTGRES_DIR:-}" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== build (once)"
swift build --build-tests
swift build --product medic
swift build --product medic-echo

export MEDIC_BIN="$PWD/.build/debug/medic"
export MEDIC_ECHO_BIN="$PWD/.build/debug/medic-echo"

echo "== swift test"
swift test --skip-build "$@"

echo "== interop and browser tests (pytest)"
pytest_args=(Tests/interop)
[ "$browser" = 1 ] && pytest_args+=(Tests/browser)
.venv/bin/python -m pytest -q "${pytest_args[@]}"

if [ "$autobahn" = 1 ]; then
  echo "== Autobahn|Testsuite (Tests/autobahn/README.md)"
  Tests/autobahn/run.sh ws
  Tests/autobahn/run.sh wss
fi
