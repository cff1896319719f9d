#!/usr/bin/env bash
# Runs the test suite (not the browser tests) with DATABASE_URL pointing at a throwaway
# PostgreSQL cluster on loopback, started here and stopped on exit:
#
#   bash scripts/test-postgres.sh [pytest args...]     e.g.  -k conversations -x
#
# pytest-django creates its test database (test_chat) on that server; the real-process
# tests give each stack a database of their own there too. Needs PostgreSQL's initdb and
# pg_ctl (scripts/install-system-deps.sh); as root they run as the `postgres` user.
# Environment: PYTHON (default .venv/bin/python), PG_PORT (default: a free port).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}

pg_bin() {
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1)
    [ -n "$found" ] || { echo "test-postgres: $1 not found (install postgresql)" >&2; exit 2; }
    echo "$found"
}
INITDB=$(pg_bin initdb)
PG_CTL=$(pg_bin pg_ctl)

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PG_PORT=${PG_PORT:-$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
PG_DIR=$(mktemp -d /tmp/e2ee-test-pg-XXXXXX)
chmod 755 "$PG_DIR"
mkdir -m 700 "$PG_DIR/data" "$PG_DIR/sock"
touch "$PG_DIR/postgres.log"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_DIR/data" "$PG_DIR/sock" "$PG_DIR/postgres.log"; fi

stop_pg() {
    as_pg "$PG_CTL" -D "$PG_DIR/data" -m fast -w -t 20 stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_pg EXIT

as_pg "$INITDB" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-locale --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; exit 2; }
as_pg "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DIR/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$PG_DIR/postgres.log" >&2; exit 2; }

export DATABASE_URL="postgresql://postgres@127.0.0.1:$PG_PORT/chat"
echo "test-postgres: PostgreSQL on 127.0.0.1:$PG_PORT; DATABASE_URL=$DATABASE_URL"
set +e
"$PY" -m pytest -m "not browser" -rfEs tests/ "$@"
rc=$?
set -e
exit $rc
