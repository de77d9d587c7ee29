#!/usr/bin/env bash
# Make sure the services the site's tests talk to are up: PostgreSQL on 127.0.0.1:$PGPORT (user
# postgres, trust auth) and Redis on 127.0.0.1:$REDIS_PORT. `make test` (and so CI, on a clean
# clone with nothing running) calls this before pytest.
#
# Uses what is already running; otherwise starts the installed server; otherwise installs Debian's
# package first. Idempotent: when both answer it only says so. Fails loudly when it cannot get one.
#
#   PGPORT      default 5432 (the port the cluster is configured for when it has to be started)
#   REDIS_PORT  default 6379
set -euo pipefail

PGHOST=127.0.0.1
PGPORT="${PGPORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"

say() { echo "test-services: $*"; }
die() {
    echo "test-services: ERROR: $*" >&2
    exit 1
}

# Root runs commands as they are; anyone else through sudo (non-interactive: no password prompts in CI).
as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -n "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null || die "cannot install $* here: no apt-get. Install it by hand."
    if [[ "$apt_updated" == 0 ]]; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    say "installing Debian package(s): $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}

wait_for() { # seconds, description, command...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$((seconds * 4))"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    die "$what did not come up within ${seconds} s"
}

# --- PostgreSQL ---------------------------------------------------------------------------------

pg_ready() { pg_isready -q -h "$PGHOST" -p "$PGPORT"; }

pg_version() { # the newest installed cluster version, e.g. 15
    ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1
}

# A fresh Debian install only trusts local socket peers; the tests connect over TCP as postgres.
pg_trust_localhost() {
    local hba="/etc/postgresql/$1/main/pg_hba.conf"
    if ! as_root grep -qE '^host[[:space:]]+all[[:space:]]+postgres[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
        say "allowing user postgres from 127.0.0.1 without a password ($hba)"
        as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    fi
}

ensure_postgres() {
    if pg_ready; then
        say "PostgreSQL: already running on $PGHOST:$PGPORT"
        return
    fi
    local installed=0 version
    if ! command -v pg_ctlcluster >/dev/null || [[ -z "$(pg_version)" ]]; then
        apt_install postgresql
        [[ -n "$(pg_version)" ]] || die "postgresql installed but no cluster under /etc/postgresql"
        pg_trust_localhost "$(pg_version)"
        installed=1
    fi
    command -v pg_isready >/dev/null || die "pg_isready not found (Debian package postgresql-client)"
    version="$(pg_version)"
    say "PostgreSQL: starting cluster $version/main"
    local rc=0 conf="/etc/postgresql/$version/main/postgresql.conf"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || rc=$?
    if [[ "$rc" == 2 ]]; then
        # "Cluster is already running", yet it did not answer on our port: most likely another port.
        wait_for 5 "PostgreSQL on $PGHOST:$PGPORT: cluster $version/main is running but not there (see 'port' and 'listen_addresses' in $conf)" pg_ready
    elif [[ "$rc" != 0 ]]; then
        die "pg_ctlcluster $version main start failed; see /var/log/postgresql/postgresql-$version-main.log"
    fi
    wait_for 30 "PostgreSQL on $PGHOST:$PGPORT (cluster $version/main; see 'port' in $conf)" pg_ready
    if [[ "$installed" == 1 ]]; then
        # The package's own start may have read pg_hba.conf before our line was added.
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
    fi
    say "PostgreSQL: started on $PGHOST:$PGPORT"
}

check_postgres_login() {
    if command -v psql >/dev/null; then
        psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -w -tAc 'select 1' >/dev/null 2>&1 \
            || die "PostgreSQL on $PGHOST:$PGPORT refuses user postgres without a password; add
    host all postgres 127.0.0.1/32 trust
to the top of pg_hba.conf and reload the cluster"
    fi
}

# --- Redis --------------------------------------------------------------------------------------

redis_ready() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

ensure_redis() {
    if command -v redis-cli >/dev/null && redis_ready; then
        say "Redis: already running on 127.0.0.1:$REDIS_PORT"
        return
    fi
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    # Debian's package may have started its own on 6379 just now.
    if redis_ready; then
        say "Redis: running on 127.0.0.1:$REDIS_PORT"
        return
    fi
    say "Redis: starting redis-server on 127.0.0.1:$REDIS_PORT (in memory only)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        >/dev/null || die "redis-server failed to start on 127.0.0.1:$REDIS_PORT"
    wait_for 10 "Redis on 127.0.0.1:$REDIS_PORT" redis_ready
    say "Redis: started on 127.0.0.1:$REDIS_PORT"
}

ensure_postgres
check_postgres_login
ensure_redis
