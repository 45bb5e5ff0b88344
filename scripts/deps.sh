#!/usr/bin/env bash
# deps.sh: installs the Debian packages Medic builds and tests with, when any is missing (Debian bookworm).
# Usage: scripts/deps.sh [run|test]   — "run" installs what `medic serve` needs, "test" adds the test tools.
set -euo pipefail
mode=${1:-test}
packages=(pkg-config git libssl-dev libpq-dev libcurl4-openssl-dev libsqlite3-dev zlib1g-dev bubblewrap universal-ctags python3 ca-certificates)
if [ "$mode" = test ]; then
  packages+=(postgresql python3-venv chromium chromium-driver procps curl openssl sqlite3 haproxy)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
