#!/usr/bin/env bash
# Interop test: the `openstack` CLI (python-openstackclient + python-zaqarclient's plugin) against
# zaqar-server behind a real Keystone, the way operators use it: the messaging endpoint comes
# from Keystone's catalog and every request carries a Keystone token.
#
#   eval "$(bash scripts/keystone.sh start)"; bash scripts/interop_openstack.sh
#
# Environment:
#   ZAQAR_TEST_KEYSTONE_URL       Keystone's v3 URL (required; printed by scripts/keystone.sh)
#   ZAQAR_TEST_KEYSTONE_PASSWORD  password of the test users (default: secret)
#   ZAQAR_OSC_VENV                virtualenv to create or reuse (default: $REPO/.venv-osc)
#   ZAQAR_SERVER_BIN              use this server binary instead of building one with cargo
#
# It registers (or moves) the `messaging` service's endpoints in that Keystone to the server it
# starts, so run it against a test Keystone only.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ZAQAR_OSC_VENV:-$REPO/.venv-osc}"
KEYSTONE="${ZAQAR_TEST_KEYSTONE_URL:?set ZAQAR_TEST_KEYSTONE_URL (scripts/keystone.sh start prints it)}"
PASSWORD="${ZAQAR_TEST_KEYSTONE_PASSWORD:-secret}"
OSC_VERSION="10.5.0"
CLIENT_VERSION="4.7.0"

log() { printf 'interop-openstack: %s\n' "$*" >&2; }

venv_ok() {
    "$VENV/bin/python" - "$OSC_VERSION" "$CLIENT_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("python-openstackclient") == sys.argv[1]
assert version("python-zaqarclient") == sys.argv[2]
PY
}
if ! venv_ok; then
    log "installing python-openstackclient==$OSC_VERSION python-zaqarclient==$CLIENT_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "python-openstackclient==$OSC_VERSION" "python-zaqarclient==$CLIENT_VERSION"
    venv_ok || { log "FAIL: the clients are not importable from $VENV"; exit 1; }
fi

if [[ -n "${ZAQAR_SERVER_BIN:-}" && -x "${ZAQAR_SERVER_BIN}" ]]; then
    SERVER_BIN="$ZAQAR_SERVER_BIN"
else
    log "building zaqar-server"
    (cd "$REPO" && cargo test --quiet --no-run -p zaqar-server --test it)
    SERVER_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/zaqar-server"
    [[ "$SERVER_BIN" = /* ]] || SERVER_BIN="$REPO/$SERVER_BIN"
fi

TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-osc.XXXXXX")"
SERVER_PID=""
STATUS=1
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ "$STATUS" -ne 0 && -f "$TMP_DIR/server.log" ]]; then
        log "server log (last 30 lines):"
        tail -n 30 "$TMP_DIR/server.log" >&2 || true
    fi
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP_DIR"
    if [[ "$rc" -eq 0 && "$STATUS" -ne 0 ]]; then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
log "starting $SERVER_BIN on $URL with Keystone $KEYSTONE"
NO_COLOR=1 ZAQAR_LOG="${ZAQAR_LOG:-info,zaqar=debug}" "$SERVER_BIN" \
    --bind 127.0.0.1 --port "$PORT" --data-dir "$TMP_DIR/data" \
    --set "drivers:transport:websocket.port=0" \
    --set "DEFAULT.auth_strategy=keystone" \
    --set "DEFAULT.admin_mode=true" \
    --set "keystone_authtoken.auth_url=$KEYSTONE" \
    --set "keystone_authtoken.username=zaqar" \
    --set "keystone_authtoken.password=$PASSWORD" \
    --set "keystone_authtoken.project_name=service" \
    --set "signed_url.secret_key=interop-openstack-signing-key" \
    >"$TMP_DIR/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$URL/" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "FAIL: the server exited"; exit 1; }
    sleep 0.2
done

set +e
"$VENV/bin/python" "$REPO/scripts/interop_openstack.py" "$KEYSTONE" "$PASSWORD" "$URL"
STATUS=$?
set -e
if [[ "$STATUS" -eq 0 ]]; then log "PASS"; else log "FAIL (exit status $STATUS)"; fi
exit "$STATUS"
