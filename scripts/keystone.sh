#!/usr/bin/env bash
# Starts (or stops) a real Keystone for the authentication tests: keystone 30 from PyPI in a
# venv, SQLite, fernet tokens, served by gunicorn on 127.0.0.1:${ZAQAR_KEYSTONE_PORT:-5000}.
# It creates two projects (alpha, beta), users alice (admin on alpha), bob (member on alpha),
# carol (member on beta), and the service user zaqar (service + admin on project service),
# all with password "secret". Prints the environment the tests read.
#
#   scripts/keystone.sh start   # idempotent; waits until Keystone answers
#   scripts/keystone.sh stop
#   scripts/keystone.sh env     # the variables to export
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${ZAQAR_KEYSTONE_VENV:-$REPO/.venv-keystone}"
DIR="${ZAQAR_KEYSTONE_DIR:-/tmp/zaqar-keystone}"
PORT="${ZAQAR_KEYSTONE_PORT:-5000}"
URL="http://127.0.0.1:$PORT"

say() { echo "keystone: $*" >&2; }

env_lines() {
  cat <<ENV
export ZAQAR_TEST_KEYSTONE_URL=$URL/v3
export ZAQAR_TEST_KEYSTONE_PASSWORD=secret
ENV
}

answering() { curl -sf -o /dev/null "$URL/v3" 2>/dev/null; }

start() {
  if answering; then say "already running at $URL"; env_lines; return 0; fi
  if [ ! -x "$VENV/bin/keystone-manage" ]; then
    say "installing keystone==30.0.0 into $VENV (about a minute)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'keystone==30.0.0' gunicorn
  fi
  rm -rf "$DIR"; mkdir -p "$DIR"/fernet-keys "$DIR"/credential-keys
  cat > "$DIR/keystone.conf" <<CONF
[DEFAULT]
log_file = $DIR/keystone.log
[database]
connection = sqlite:///$DIR/keystone.db?timeout=30
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $DIR/fernet-keys
[credential]
key_repository = $DIR/credential-keys
CONF
  local km=("$VENV/bin/keystone-manage" --config-file "$DIR/keystone.conf")
  "${km[@]}" db_sync >/dev/null 2>&1
  "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >/dev/null 2>&1
  "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >/dev/null 2>&1
  "${km[@]}" bootstrap --bootstrap-password secret --bootstrap-admin-url "$URL/v3/" \
    --bootstrap-public-url "$URL/v3/" --bootstrap-internal-url "$URL/v3/" \
    --bootstrap-region-id RegionOne >/dev/null 2>&1
  # Keystone reads its configuration from the command line unless argv is cleared first.
  cat > "$DIR/keystone_wsgi.py" <<'PY'
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
PY
  local extra=()
  if "$VENV/bin/gunicorn" --help 2>/dev/null | grep -q -- --no-control-socket; then extra+=(--no-control-socket); fi
  OS_KEYSTONE_CONFIG_DIR="$DIR" PYTHONPATH="$DIR" nohup "$VENV/bin/gunicorn" "${extra[@]}" \
    --bind "127.0.0.1:$PORT" --workers 2 --pid "$DIR/gunicorn.pid" keystone_wsgi:application \
    > "$DIR/gunicorn.log" 2>&1 &
  for _ in $(seq 1 120); do
    answering && break
    sleep 0.5
  done
  if ! answering; then say "did not start:"; tail -30 "$DIR/gunicorn.log" >&2; exit 1; fi
  "$VENV/bin/python" "$REPO/scripts/keystone_setup.py" "$URL/v3" secret
  say "running at $URL"
  env_lines
}

stop() {
  if [ -f "$DIR/gunicorn.pid" ]; then kill "$(cat "$DIR/gunicorn.pid")" 2>/dev/null || true; fi
  rm -f "$DIR/gunicorn.pid"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) env_lines ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
