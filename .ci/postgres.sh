#!/usr/bin/env bash
# A throwaway PostgreSQL server for the production-instance test (deploy/dagster/dagster.yaml):
# Debian's package, installed when missing; a cluster of its own in a temporary folder, listening
# on 127.0.0.1 only, on a port free when it was first started; a `dagster` user allowed to create
# databases, with a random password kept in that folder (mode 0600).
#
#   bash .ci/postgres.sh [start]   start (or find running) and print DAGSTER_PG_* settings
#   bash .ci/postgres.sh stop      stop the server
#
# Idempotent and quick when the server already runs. The last line of `start` says `started` or
# `running`, so a caller can stop only a server it started. Nothing here touches the package's
# own cluster (port 5432) or any other database.
set -euo pipefail

dir="${PHONE_COMPLIANCE_PG_DIR:-${TMPDIR:-/tmp}/phone-compliance-pg-$(id -u)}"
action="${1:-start}"

say() { printf '%s\n' "$*" >&2; }
bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

if [ -z "$(bindir)" ]; then
  if [ "$(id -u)" != 0 ]; then
    say "postgresql is not installed, and only root may apt-get install it"
    exit 3
  fi
  say "installing Debian's postgresql package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin="$(bindir)"

# initdb and postgres refuse to run as root: as root, run them as the package's postgres user.
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  owner="$(id -un)"
  as_owner() { "$@"; }
fi

pg_running() { [ -f "$dir/data/PG_VERSION" ] && as_owner "$bin/pg_ctl" status -D "$dir/data" >/dev/null 2>&1; }

if [ "$action" = stop ]; then
  if pg_running; then as_owner "$bin/pg_ctl" stop -D "$dir/data" -m fast -w >/dev/null; fi
  exit 0
fi

mkdir -p "$dir"
chown "$owner" "$dir"
chmod 0700 "$dir"

if [ ! -f "$dir/data/PG_VERSION" ]; then
  python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/password"
  chown "$owner" "$dir/password"
  chmod 0600 "$dir/password"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi

state=running
if ! pg_running; then
  if [ ! -s "$dir/port" ]; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
  fi
  mkdir -p "$dir/socket"
  chown "$owner" "$dir/socket"
  as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$(cat "$dir/port") -c unix_socket_directories=$dir/socket" \
    >/dev/null
  state=started
fi

port="$(cat "$dir/port")"
password="$(cat "$dir/password")"
psql_admin() { as_owner "$bin/psql" -h "$dir/socket" -p "$port" -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1 "$@"; }
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'dagster'")" ]; then
  psql_admin -c "CREATE ROLE dagster LOGIN CREATEDB PASSWORD '$password'"
fi
if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'dagster'")" ]; then
  psql_admin -c "CREATE DATABASE dagster OWNER dagster"
fi

printf 'DAGSTER_PG_HOST=127.0.0.1\nDAGSTER_PG_PORT=%s\nDAGSTER_PG_USERNAME=dagster\n' "$port"
printf 'DAGSTER_PG_PASSWORD=%s\nDAGSTER_PG_DB=dagster\n' "$password"
printf '%s\n' "$state"
