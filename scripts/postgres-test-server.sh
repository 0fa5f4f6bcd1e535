#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on 127.0.0.1 for the journal tests (tests/journal/,
# tests/team/) and the journal benchmark.
#
#   scripts/postgres-test-server.sh install      install Debian's postgresql if initdb is missing
#   scripts/postgres-test-server.sh start DIR    initdb + pg_ctl start on a free port; state in DIR
#   scripts/postgres-test-server.sh stop DIR     stop the cluster started in DIR and delete it
#   scripts/postgres-test-server.sh halt DIR     stop it, keeping its data (a database outage)
#   scripts/postgres-test-server.sh restart DIR  start it again after `halt` (same port and data)
#
# PG_FSYNC=off in the environment of `start` runs the cluster without fsync: the tests
# check what the tool does, not the disk (the journal benchmark keeps the default, on).
#
# `start` prints shell assignments (PG_PORT=..., PG_USER=..., PG_PASSWORD=..., PG_DATA=...,
# PG_BIN=...) and writes the same to DIR/server.env.
#
# Who logs in: the role named by PG_USER, over TCP on 127.0.0.1 only, with the random
# password (scram-sha-256) in PG_PASSWORD; there is no Unix socket. PostgreSQL refuses to
# run as root, so as root (CI) the cluster belongs to the `postgres` system user and lives
# in its own temp directory (pytest's are private to root); otherwise it runs as you.
set -euo pipefail
umask 077  # server.env holds the password

LOCK=${TMPDIR:-/tmp}/postgres-test-server.install.lock

die() { echo "postgres-test-server: $*" >&2; exit 1; }

find_bin() {
    local dir
    for dir in ${PG_BIN:-} /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            PG_BIN=$dir
            return 0
        fi
    done
    return 1
}

install() {
    find_bin && return 0
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and only root can install it: run 'apt-get install postgresql' as root."
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is not available; install PostgreSQL 12 or newer."
    # Two pytest workers may both get here: one installs, the other waits for it.
    exec 9>"$LOCK"
    flock 9
    find_bin && return 0
    export DEBIAN_FRONTEND=noninteractive
    # The package's own cluster must not start listening on port 5432: policy-rc.d 101
    # forbids it while we install, unless the machine already has a policy in place.
    local policy=/usr/sbin/policy-rc.d added="" log rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
    fi
    log=$(mktemp)
    { apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 postgresql
    } >"$log" 2>&1 || rc=$?
    if [ -n "$added" ]; then rm -f "$policy"; fi
    if [ "$rc" != 0 ]; then cat "$log" >&2; rm -f "$log"; die "apt-get install postgresql failed."; fi
    rm -f "$log"
    find_bin || die "postgresql was installed but no initdb was found under /usr/lib/postgresql."
}

free_port() {
    python3 - <<'PY'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
PY
}

# Run a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1
    find_bin || install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local data
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' system user (Debian's postgresql package creates it)."
        data=$(mktemp -d "${TMPDIR:-/tmp}/pg-test.XXXXXX")
        chown postgres: "$data"
    else
        data="$dir/cluster"
        mkdir -p "$data"
    fi
    chmod 700 "$data"
    local password user=upgrade
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    printf '%s\n' "$password" >"$data/pwfile"
    chmod 600 "$data/pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$data/pwfile"; fi
    as_owner "$PG_BIN/initdb" -D "$data/pgdata" -U "$user" --pwfile="$data/pwfile" \
        --auth-host=scram-sha-256 --auth-local=reject -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed."; }
    rm -f "$data/pwfile"
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        cat >"$dir/server.env" <<EOF
PG_PORT=$port
PG_USER=$user
PG_PASSWORD=$password
PG_DATA=$data/pgdata
PG_BIN=$PG_BIN
PG_ROOT=$data
PG_FSYNC=${PG_FSYNC:-on}
EOF
        if launch "$dir"; then
            cat "$dir/server.env"
            return 0
        fi
        # Most likely someone took the port between the probe and the bind: try another.
    done
    die "PostgreSQL did not start; see $data/pgdata/server.log"
}

# Start the cluster described by DIR/server.env.
launch() {
    local dir=$1
    # shellcheck disable=SC1091
    . "$dir/server.env"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories='' -c max_connections=60 -c shared_buffers=32MB -c fsync=$PG_FSYNC" \
        start >/dev/null 2>&1
}

stop() {
    local dir=$1
    [ -f "$dir/server.env" ] || return 0
    # shellcheck disable=SC1091
    . "$dir/server.env"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_ROOT"
    rm -f "$dir/server.env"
}

halt() {
    local dir=$1
    [ -f "$dir/server.env" ] || die "no cluster was started in $dir"
    # shellcheck disable=SC1091
    . "$dir/server.env"
    as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1
}

restart() {
    local dir=$1
    [ -f "$dir/server.env" ] || die "no cluster was started in $dir"
    launch "$dir" || die "PostgreSQL did not start again; see $(sed -n 's/^PG_DATA=//p' "$dir/server.env")/server.log"
}

case "${1:-}" in
    install) install ;;
    start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
    stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
    halt) [ $# -eq 2 ] || die "usage: $0 halt DIR"; halt "$2" ;;
    restart) [ $# -eq 2 ] || die "usage: $0 restart DIR"; restart "$2" ;;
    *) die "usage: $0 install | start DIR | stop DIR | halt DIR | restart DIR" ;;
esac
