#!/usr/bin/env bash
# Benchmarks/navigator.sh: the code index on a 10,000-file tree — full index, incremental re-index after a
# 10-file commit, query p50/p99 on the warm index, and the index's size (SQLite: the file and its WAL;
# PostgreSQL: pg_total_relation_size of the code index tables).
#
# The tree is real code we did not write: the test venv's site-packages and the system's Python library,
# copied under numbered folders until it holds NAV_FILES files (default 10,000), committed to git.
#   MEDIC_BIN [.build/release/medic]   NAV_FILES [10000]   NAV_REPEAT [200] runs per query
#   NAV_STORE [a fresh SQLite file]: postgres://… runs it on PostgreSQL instead — in a database of its own,
#     created on that server for the run and dropped after it (needs psql), e.g.
#     eval "$(scripts/postgres.sh start)"; NAV_STORE=$MEDIC_TEST_POSTGRES_URL Benchmarks/navigator.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
MEDIC=${MEDIC_BIN:-$ROOT/.build/release/medic}
FILES=${NAV_FILES:-10000}
REPEAT=${NAV_REPEAT:-200}
WORK=$(mktemp -d /tmp/medic-nav-bench.XXXXXX)
STORE="sqlite:$WORK/index.sqlite"
PGDB=
cleanup() {
  if [ -n "$PGDB" ]; then psql -q "$NAV_STORE" -c "DROP DATABASE IF EXISTS $PGDB" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
case "${NAV_STORE:-}" in
  "") ;;
  postgres://*|postgresql://*)
    PGDB="medic_nav_bench_$$"
    psql -q "$NAV_STORE" -c "CREATE DATABASE $PGDB" >/dev/null
    # The same URL with the new database as its path (query string kept).
    STORE=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$NAV_STORE" "$PGDB")
    ;;
  *) echo "NAV_STORE must be postgres://… (unset: a fresh SQLite file)" >&2; exit 2 ;;
esac
size() {
  if [ -n "$PGDB" ]; then
    psql -qtA "$STORE" -c "SELECT pg_size_pretty(sum(pg_total_relation_size(t::regclass))) || ' (' || string_agg(t || ' ' || pg_size_pretty(pg_total_relation_size(t::regclass)), ', ') || ')' FROM unnest(array['code_docs', 'code_symbols', 'code_files', 'code_imports', 'code_indexes']) t"
  else
    du -ch "$WORK"/index.sqlite* | tail -1 | cut -f1
  fi
}
TREE="$WORK/tree"
mkdir -p "$TREE"
sources=()
for d in "$ROOT"/.venv/lib/python3*/site-packages /usr/lib/python3/dist-packages /usr/lib/python3.11; do [ -d "$d" ] && sources+=("$d"); done
n=0
copy=0
while [ "$(find "$TREE" -type f | wc -l)" -lt "$FILES" ]; do
  for s in "${sources[@]}"; do
    mkdir -p "$TREE/copy$copy"
    cp -r "$s" "$TREE/copy$copy/$(basename "$s")" 2>/dev/null || true
  done
  find "$TREE" -name '__pycache__' -type d -prune -exec rm -rf {} +
  copy=$((copy + 1))
done
# Exactly FILES files (drop the surplus).
find "$TREE" -type f | sort | sed -n "$((FILES + 1)),\$p" | xargs -r rm -f
count=$(find "$TREE" -type f | wc -l)
git -C "$TREE" init -q && git -C "$TREE" add -A && git -C "$TREE" -c user.name=b -c user.email=b@b commit -qm tree
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "tree: $count files, $(du -sh "$TREE" --exclude=.git | cut -f1); store: $([ -n "$PGDB" ] && echo "PostgreSQL database $PGDB" || echo SQLite)"

echo "== full index"
/usr/bin/time -f "wall %e s, max RSS %M KB" "$MEDIC" index "$TREE" --name bench --store "$STORE"
echo "index size: $(size)"

echo "== incremental after a 10-file commit"
find "$TREE" -name '*.py' -type f | sort | sed -n '1,10p' | while read -r f; do printf '\n# touched by the benchmark\ndef benchmark_marker():\n    return 1\n' >> "$f"; done
git -C "$TREE" -c user.name=b -c user.email=b@b commit -qam ten
/usr/bin/time -f "wall %e s, max RSS %M KB" "$MEDIC" index "$TREE" --name bench --store "$STORE"

echo "== queries on the warm index ($REPEAT runs each)"
for q in "where are redirects followed" "parse a URL into host and port" "retry with backoff" "cookie parsing" "json decoding errors"; do
  printf '%s: ' "$q"
  "$MEDIC" index "$TREE" --name bench --store "$STORE" --query "$q" --repeat "$REPEAT" | grep '^queries:'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
