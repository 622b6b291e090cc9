#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the job-queue tests: Debian's postgresql (installed when
# missing), a fresh cluster in DIR owned by an unprivileged user (postgres refuses to run as
# root), trust authentication, listening on 127.0.0.1:PORT only (and a Unix socket in DIR).
# Usage:
#   tools/pg/throwaway.sh start DIR [PORT]  # prints the database URL (postgresql://deci@127.0.0.1:PORT/deci)
#   tools/pg/throwaway.sh down DIR          # stops the server, keeps the data (outage tests)
#   tools/pg/throwaway.sh up DIR            # starts it again on the same port
#   tools/pg/throwaway.sh stop DIR          # stops it and removes DIR
set -euo pipefail
cmd="${1:?usage: $0 start|down|up|stop DIR [PORT]}"
dir="${2:?usage: $0 start|down|up|stop DIR [PORT]}"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
run_as() {  # the cluster's owner runs every server command
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$(cat "$dir/owner")" -- "$@"; else "$@"; fi
}
server() {  # args: pg_ctl action
    run_as "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $(cat "$dir/port") -k $dir -c fsync=off -c synchronous_commit=off -c max_connections=100" "$@" >/dev/null
}

case "$cmd" in
start)
    port="${3:-55432}"
    bin="$(bindir)"
    if [ -z "$bin" ]; then
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq >&2
        $sudo apt-get install -y -qq postgresql >/dev/null
        bin="$(bindir)"
    fi
    [ -n "$bin" ] || { echo "error: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }
    mkdir -p "$dir"
    owner="$(id -un)"
    if [ "$(id -u)" -eq 0 ]; then
        owner=postgres
        id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
        chown "$owner" "$dir"
    fi
    chmod 700 "$dir"
    echo "$owner" >"$dir/owner"; echo "$port" >"$dir/port"; echo "$bin" >"$dir/bindir"
    run_as "$bin/initdb" -D "$dir/data" -U deci --auth=trust -E UTF8 --no-instructions >/dev/null
    server start
    run_as "$bin/createdb" -h 127.0.0.1 -p "$port" -U deci deci
    echo "postgresql://deci@127.0.0.1:$port/deci"
    ;;
down) server stop -m fast ;;
up) server start ;;
stop)
    [ -d "$dir/data" ] && { server stop -m immediate 2>/dev/null || true; }
    rm -rf "$dir"
    ;;
*) echo "usage: $0 start|down|up|stop DIR [PORT]" >&2; exit 2 ;;
esac
