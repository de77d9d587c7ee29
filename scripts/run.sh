#!/usr/bin/env bash
# `make run`: the whole site on this machine, for development, with one command:
#   Redis        the one already answering on 127.0.0.1:$REDIS_PORT, or a local redis-server started
#                here (Debian's package installed when absent)
#   migrations   manage.py migrate (SQLite db.sqlite3 by default; PostgreSQL when DATABASE_URL is set)
#   worker       Celery, one process, with beat inside it (-B) for the sweep that re-queues
#                predictions left pending
#   web          manage.py runserver on http://127.0.0.1:$SANSUHA_PORT (default 8000)
# Ctrl-C stops what this script started, and only that: a Redis that was already running stays up.
#
#   SANSUHA_PORT       web port, default 8000
#   REDIS_PORT         default 6379
#   CELERY_BROKER_URL  default redis://127.0.0.1:$REDIS_PORT/0; when set, no Redis is started here
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV_PY="${VENV_PY:-.venv/bin/python}"
VENV_BIN="$(dirname "$VENV_PY")"
WEB_HOST=127.0.0.1
WEB_PORT="${SANSUHA_PORT:-8000}"
REDIS_PORT="${REDIS_PORT:-6379}"
URL="http://$WEB_HOST:$WEB_PORT/"

say() { echo "==> $*"; }
die() {
    echo "run: ERROR: $*" >&2
    exit 1
}

listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Every child gets its own process group (job control), so that stopping one stops all it forked
# (runserver's reloader, Celery's pool) and a Ctrl-C reaches this script first, which then stops
# them in order.
set -m
WEB_PIDS=()   # stopped first: web server and worker
REDIS_PID=""  # stopped last, and only when started here
REDIS_NOTE=""
BEAT_DIR=""

stop_groups() { # pids...
    local pid
    # First the leaders only: Celery's main process then does a warm shutdown, letting its pool child
    # finish the batch at hand (a TERM to the whole group would kill the child mid-batch and leave
    # those paintings "running" until the worker's next start takes them back).
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait_gone 120 "" "$@"
    # Then whatever the leaders left behind (runserver's child), politely, then not.
    for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    wait_gone 20 - "$@" && return 0
    for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

wait_gone() { # quarter-seconds ""|- pids...: true once every process ("") or group (-) is gone
    local tries=$1 group=$2 pid alive
    shift 2
    for _ in $(seq "$tries"); do
        alive=0
        for pid in "$@"; do kill -0 -- "$group$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.25
    done
    return 1
}

cleanup() {
    local status=$?
    trap - INT TERM EXIT
    # Keep stopping even when the terminal or a `| tee` has gone away.
    set +e
    trap '' PIPE
    if ((${#WEB_PIDS[@]})) || [[ -n "$REDIS_PID" ]]; then
        echo
        say "Stopping what was started here"
        ((${#WEB_PIDS[@]})) && stop_groups "${WEB_PIDS[@]}"
        [[ -n "$REDIS_PID" ]] && stop_groups "$REDIS_PID"
        say "Stopped.${REDIS_NOTE}"
    fi
    [[ -n "$BEAT_DIR" ]] && rm -rf "$BEAT_DIR"
    exit "$status"
}
trap 'exit 130' INT
trap 'exit 143' TERM
trap cleanup EXIT

# --- before starting anything -------------------------------------------------------------------

[[ -x "$VENV_PY" ]] || die "$VENV_PY not found; run \`make run\` (it creates .venv) or set VENV_PY"
if listening "$WEB_HOST" "$WEB_PORT"; then
    holder="$(ss -Hltnp "sport = :$WEB_PORT" 2>/dev/null | grep -o 'users:(([^)]*' | head -n 1 || true)"
    die "port $WEB_PORT on $WEB_HOST is taken${holder:+ (${holder#users:((})}. Stop what uses it, or choose
another port: SANSUHA_PORT=8001 make run"
fi

# --- Redis --------------------------------------------------------------------------------------

if [[ -n "${CELERY_BROKER_URL:-}" ]]; then
    say "Broker: $CELERY_BROKER_URL (from the environment; not starting Redis)"
elif [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
    say "Redis: using the one already running on 127.0.0.1:$REDIS_PORT"
    REDIS_NOTE=" Redis was already running and stays up."
else
    if ! command -v redis-server >/dev/null; then
        say "Redis: not installed; installing Debian's redis-server package"
        sudo_=()
        [[ "$(id -u)" == 0 ]] || sudo_=(sudo)
        if ! "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            || ! "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; then
            die "could not install redis-server; install it (apt-get install redis-server) and retry"
        fi
    fi
    # Debian's package may have started its own just now.
    if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" != PONG ]]; then
        say "Redis: starting redis-server on 127.0.0.1:$REDIS_PORT (in memory: the database is the record)"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no --loglevel warning &
        REDIS_PID=$!
        for _ in $(seq 40); do
            [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
            kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited; see its messages above"
            sleep 0.25
        done
    fi
fi
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:$REDIS_PORT/0}"

# --- database -----------------------------------------------------------------------------------

say "Database: ${DATABASE_URL:-SQLite db.sqlite3 (set DATABASE_URL for PostgreSQL)}; applying migrations"
"$VENV_PY" manage.py migrate --noinput

# --- worker and web -----------------------------------------------------------------------------

BEAT_DIR="$(mktemp -d "${TMPDIR:-/tmp}/sansuha-beat.XXXXXX")"
say "Workers: Celery for classification (queue celery, with the sweep inside) and for training (queue training)"
# Two workers, so that uploads keep being classified while the admin's training runs. Neither
# imports torch until its first task.
"$VENV_BIN/celery" -A sansuha_site worker --loglevel=info --concurrency=1 --queues celery \
    -n "sansuha-classify@%h" -B --schedule "$BEAT_DIR/celerybeat-schedule" &
WEB_PIDS+=($!)
"$VENV_BIN/celery" -A sansuha_site worker --loglevel=info --concurrency=1 --queues training \
    -n "sansuha-train@%h" &
WEB_PIDS+=($!)

say "Web: manage.py runserver $WEB_HOST:$WEB_PORT"
"$VENV_PY" manage.py runserver "$WEB_HOST:$WEB_PORT" &
WEB_PID=$!
WEB_PIDS+=("$WEB_PID")

for _ in $(seq 120); do
    listening "$WEB_HOST" "$WEB_PORT" && break
    kill -0 "$WEB_PID" 2>/dev/null || die "the web server exited; see its messages above"
    sleep 0.5
done
listening "$WEB_HOST" "$WEB_PORT" || die "the web server did not answer on $URL within 60 s"

# What the site still needs, read from the database (no torch here).
state="$("$VENV_PY" manage.py shell -v 0 -c '
from django.contrib.auth import get_user_model
from classifier.models import ModelVersion
active = ModelVersion.objects.active()
print(active or "")
print(get_user_model().objects.filter(is_superuser=True).count())
' 2>/dev/null || printf '\n?\n')"
active_model="$(sed -n 1p <<<"$state")"
admins="$(sed -n 2p <<<"$state")"

stopping="the web server and the worker"
[[ -n "$REDIS_PID" ]] && stopping="the web server, the worker and Redis"
cat <<TXT

==> Sansuha is running at $URL   (API docs: ${URL}api/docs/, admin: ${URL}admin/)
    Press Ctrl-C to stop $stopping.

TXT
if [[ -n "$active_model" ]]; then
    echo "    Active model: $active_model"
else
    cat <<'TXT'
    No model is active yet: uploads wait until one is. Train one (below), then register it
    (in another terminal, with the virtualenv active):
        python manage.py import_model runs/resnet18/best.pt --activate
TXT
fi
if [[ "$admins" == 0 ]]; then
    echo "    No administrator yet. Create one with:  python manage.py createsuperuser"
else
    echo "    Create a user with:  python manage.py createsuperuser  (or in ${URL}admin/)"
fi
cat <<'TXT'

    Training with ml/ (virtualenv active: . .venv/bin/activate):
      1. python -m ml split ../shared/datasets/sansuha-v1 data --val 0.15 --test 0.15 --seed 0 --merge-duplicates
         (sansuha-v1 holds near-duplicates; --merge-duplicates keeps each set inside one split)
      2. python -m ml train --data data --out runs/resnet18
      3. python -m ml evaluate --checkpoint runs/resnet18/best.pt --data data --out runs/resnet18/eval
      4. python manage.py import_model runs/resnet18/best.pt --activate

TXT

# Until Ctrl-C, or until one of them stops by itself (then everything stops).
status=0
wait -n -p ended "${WEB_PIDS[@]}" ${REDIS_PID:+"$REDIS_PID"} || status=$?
case "${ended:-}" in
    "${WEB_PIDS[0]}") what="the worker" ;;
    "$WEB_PID") what="the web server" ;;
    "$REDIS_PID") what="redis-server" ;;
    *) what="a process" ;;
esac
die "$what stopped (exit status $status); stopping the rest"
