#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for developing against overseer-postgres: a cluster in a new
# temporary directory (or $PGDEV_DIR), on 127.0.0.1 only, at $PGDEV_PORT (default 54329), with
# a database `overseer`. Prints its URL and how to stop it. As root, the server runs as the
# `postgres` user (PostgreSQL refuses to run as root).
#
#   scripts/postgres-dev.sh            # start; prints OVERSEER_PG_URL=...
#   scripts/postgres-dev.sh stop DIR   # stop the server whose cluster is in DIR
set -euo pipefail

bin_dir() {
    if [ -n "${OVERSEER_PG_BIN:-}" ]; then echo "$OVERSEER_PG_BIN"; return; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$newest" ]; then echo "$newest"; return; fi
    echo "PostgreSQL not installed (apt-get install -y postgresql)" >&2
    exit 1
}

BIN=$(bin_dir)
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = stop ]; then
    DIR=${2:?usage: $0 stop DIR}
    as_pg "$BIN/pg_ctl" -D "$DIR/data" stop -m fast
    exit 0
fi

DIR=${PGDEV_DIR:-$(mktemp -d /tmp/overseer-pgdev-XXXXXX)}
PORT=${PGDEV_PORT:-54329}
mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$DIR"; fi
cd "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DIR/data" -U overseer --auth=trust -E UTF8 --no-locale >"$DIR/initdb.log"
fi
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories= -c fsync=on" start >/dev/null
psql -h 127.0.0.1 -p "$PORT" -U overseer -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'overseer'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PORT" -U overseer -d postgres -qc "CREATE DATABASE overseer"
echo "OVERSEER_PG_URL=postgres://overseer@127.0.0.1:$PORT/overseer"
echo "stop it with: $0 stop $DIR"
