#!/usr/bin/env bash
# run.sh: installs what Medic needs (Debian bookworm), builds it, and runs `medic serve` on its embedded
# defaults: SQLite in .medic/, the bundled example repository, the offline scripted LLM unless
# ANTHROPIC_API_KEY is set. Extra arguments go to `medic serve`.
# `scripts/run.sh --install [DIR]` instead builds and installs `medic` and `medic-echo` into DIR
# (default /usr/local/bin) so that `medic token …` and `medic watch …` work from any directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
if [ "${1:-}" = "--install" ]; then
  prefix=${2:-/usr/local/bin}
  swift build -c release --product medic
  swift build -c release --product medic-echo
  install -d "$prefix"
  install -m 0755 .build/release/medic .build/release/medic-echo "$prefix/"
  echo "installed medic and medic-echo into $prefix"
  exit 0
fi
swift build -c release --product medic
args=("$@")
if [ -n "${ANTHROPIC_API_KEY:-}" ] && [[ " ${args[*]-} " != *" --llm "* ]]; then
  args+=(--llm anthropic)
fi
exec .build/release/medic serve "${args[@]}"
