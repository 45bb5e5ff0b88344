#!/usr/bin/env bash
# postgres.sh: a throwaway PostgreSQL cluster for tests (start prints the URL to export; stop DIR removes it).
#
#   eval "$(scripts/postgres.sh start)"    # sets MEDIC_TEST_POSTGRES_URL and MEDIC_TEST_POSTGRES_DIR
#   scripts/postgres.sh stop "$MEDIC_TEST_POSTGRES_DIR"
#
# The cluster lives in a fresh temp dir, listens only on 127.0.0.1 (a free port) plus a unix socket inside
# the temp dir, and trusts loopback connections. PostgreSQL refuses to run as root, so when run as root the
# server runs as the unprivileged `postgres` OS user via runuser.
set -euo pipefail

PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"

# run CMD...: run as the postgres OS user when we are root, else as ourselves.
run() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# free_port: ask the kernel for an unused loopback port (bind to port 0, read it back).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
        || echo $(( 20000 + RANDOM % 20000 ))
}

start() {
    local dir port
    dir="$(mktemp -d /tmp/medic-pg.XXXXXX)"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    run "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port="$(free_port)"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
CONF
    # Trust only loopback and the private socket dir (the dir is the only way in besides 127.0.0.1).
    cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 trust
HBA
    run "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "export MEDIC_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export MEDIC_TEST_POSTGRES_DIR=$dir"
}

stop() {
    local dir="${1:?usage: postgres.sh stop DIR}"
    case "$dir" in /tmp/medic-pg.*) ;; *) echo "refusing to remove $dir (not a postgres.sh dir)" >&2; exit 2;; esac
    if [ -d "$dir/data" ]; then run "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null || true; fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
