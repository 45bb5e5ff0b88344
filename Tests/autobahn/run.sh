#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzing client (wstest -m fuzzingclient) against medic-echo, over ws:// or wss://,
# and prints the count of each outcome. Nothing is downloaded here: install the suite once, outside the repo,
# into a Python 2.7 virtualenv (it does not run on Python 3):
#
#   ~/.pyenv/versions/2.7.18/bin/pip install 'virtualenv<20.22'
#   ~/.pyenv/versions/2.7.18/bin/python -m virtualenv /work/autobahn-venv
#   /work/autobahn-venv/bin/pip install autobahntestsuite
#
# Usage: Tests/autobahn/run.sh ws|wss [CASES]       e.g.  Tests/autobahn/run.sh wss '12.*,13.*'
# Environment: WSTEST (default /work/autobahn-venv/bin/wstest), MEDIC_ECHO_BIN (default .build/debug/medic-echo),
# ECHO_ARGS (extra medic-echo flags, e.g. "--deflate off"). Reports go to a temporary directory (never committed);
# KEEP_REPORTS=DIR copies them there. Exit status: 0 when no case failed and none was non-strict.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mode="${1:?usage: run.sh ws|wss [CASES]}"
cases="${2:-*}"
wstest="${WSTEST:-/work/autobahn-venv/bin/wstest}"
echo_bin="${MEDIC_ECHO_BIN:-$root/.build/debug/medic-echo}"
work="$(mktemp -d)"
trap 'kill "$echo_pid" 2>/dev/null || true; wait "$echo_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

case "$mode" in
  ws) port=9001; tls_args=() ;;
  wss)
    port=9002
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" \
      -out "$work/cert.pem" -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null
    tls_args=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem") ;;
  *) echo "mode must be ws or wss" >&2; exit 2 ;;
esac

# The committed spec, with the cases to run substituted (a comma-separated list of patterns).
python3 - "$here/fuzzingclient-$mode.json" "$work/spec.json" "$cases" <<'PY'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["cases"] = [c.strip() for c in sys.argv[3].split(",") if c.strip()]
spec["outdir"] = "./reports"
json.dump(spec, open(sys.argv[2], "w"), indent=2)
PY

# shellcheck disable=SC2086
"$echo_bin" --listen "127.0.0.1:$port" "${tls_args[@]}" ${ECHO_ARGS:-} --log-level warning &
echo_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

(cd "$work" && timeout "${AUTOBAHN_TIMEOUT:-3600}" "$wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1) || {
  echo "wstest failed; its log:" >&2; tail -20 "$work/wstest.log" >&2; exit 1; }
[ -n "${KEEP_REPORTS:-}" ] && mkdir -p "$KEEP_REPORTS" && cp -r "$work/reports/." "$KEEP_REPORTS/"

python3 - "$work/reports/index.json" <<'PY'
import collections, json, sys
index = json.load(open(sys.argv[1]))
counts = collections.Counter()
bad = []
for agent, results in index.items():
    for case, result in results.items():
        counts[result["behavior"]] += 1
        if result["behavior"] in ("FAILED", "NON-STRICT", "WRONG CODE", "UNCLEAN"):
            bad.append((case, result["behavior"], result.get("behaviorClose")))
print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())), f"total={sum(counts.values())}")
def key(c): return [int(p) for p in c[0].split(".")]
for case, behavior, close in sorted(bad, key=key):
    print(f"  {case}: {behavior} (close {close})")
sys.exit(1 if bad else 0)
PY
