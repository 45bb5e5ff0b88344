#!/usr/bin/env bash
# run.sh: installs what Medic needs (Debian bookworm), builds it, and runs `medic serve` on its embedded
# defaults: SQLite in .medic/, the bundled example repository, the offline scripted LLM unless
# ANTHROPIC_API_KEY is set. Extra arguments go to `medic serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
swift build -c release --product medic
args=("$@")
if [ -n "${ANTHROPIC_API_KEY:-}" ] && [[ " ${args[*]-} " != *" --llm "* ]]; then
  args+=(--llm anthropic)
fi
exec .build/release/medic serve "${args[@]}"
