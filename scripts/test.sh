#!/usr/bin/env bash
# test.sh: the whole test suite from a fresh Debian bookworm clone — installs what is missing, builds once,
# starts a throwaway PostgreSQL on loopback, runs the Swift suites, then the interop and browser suites.
# Usage: scripts/test.sh [--no-browser] [--autobahn] [extra swift test arguments]
# --autobahn also runs Autobahn|Testsuite against medic-echo over ws and wss (~45 minutes; the suite is installed
# outside the repository, see Tests/autobahn/README.md).
# MEDIC_FUZZ_SECONDS (default 15) is how long each libFuzzer target of Fuzz/ runs at the end; 0 skips them.
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
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import websockets, selenium, pytest, urllib3; assert urllib3.__version__ == "2.8.0"' 2>/dev/null; then
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

# Brief fuzzing (Fuzz/README.md): every target for MEDIC_FUZZ_SECONDS, after everything else so a slow build of
# the harnesses never hides a test failure. Six targets × 15 s, building the harnesses from nothing, took
# 2 min 41 s on the shared 2-core machine (20 s each: 3 min 12 s), inside the fuzz step's 3-minute budget.
fuzz_seconds="${MEDIC_FUZZ_SECONDS:-15}"
if [ "$fuzz_seconds" != 0 ]; then
  echo "== fuzz (${fuzz_seconds}s per target)"
  mkdir -p .build-fuzz
  for target in $(scripts/fuzz.sh --list); do
    log=".build-fuzz/$target.log"
    if ! scripts/fuzz.sh "$target" "$fuzz_seconds" >"$log" 2>&1; then
      tail -60 "$log"
      echo "fuzz target $target failed; the input is kept in .build-fuzz/crashes/$target/" >&2
      exit 1
    fi
    grep -E '^stat::number_of_executed_units' "$log" | sed "s/^/  $target: /"
  done
fi

if [ "$autobahn" = 1 ]; then
  echo "== Autobahn|Testsuite (Tests/autobahn/README.md)"
  Tests/autobahn/run.sh ws
  Tests/autobahn/run.sh wss
fi
