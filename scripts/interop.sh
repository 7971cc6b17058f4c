#!/usr/bin/env bash
# Interop test: drives zaqar-server through the official Python client (python-zaqarclient),
# then its WebSocket transport through PyPI websocket-client and zaqarclient's WebSocket
# transport (scripts/interop_ws.py).
#
#   bash scripts/interop.sh
#
# Environment:
#   ZAQAR_VENV        virtualenv to create or reuse (default: $REPO/.venv-interop)
#   ZAQAR_SERVER_BIN  use this server binary instead of building one with cargo
#   PYTHON            interpreter to create the venv with (default: python3)
#   ZAQAR_INTEROP_KEEP_GOING=1  run every check even after a failure (still exits 1)
#   ZAQAR_LOG         server log filter (default: info,zaqar=debug, i.e. one line per request)
#
# Needs python3 (with the venv module) and access to PyPI for the first run.
# Exits non-zero if the server cannot be built or started or if any check fails.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ZAQAR_VENV:-$REPO/.venv-interop}"
PYTHON="${PYTHON:-python3}"
CLIENT_PKG="python-zaqarclient"
CLIENT_VERSION="4.7.0"
WS_CLIENT_PKG="websocket-client"
WS_CLIENT_VERSION="1.9.2"
STARTUP_TIMEOUT=20

log() { printf 'interop: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- venv with the official client
venv_ok() {
    [[ -x "$VENV/bin/python" ]] || return 1
    "$VENV/bin/python" - "$CLIENT_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("python-zaqarclient") == sys.argv[1]
import zaqarclient.queues.v2.client  # noqa: F401
EOF
}

if venv_ok; then
    log "reusing venv $VENV ($CLIENT_PKG $CLIENT_VERSION)"
else
    log "creating venv $VENV and installing $CLIENT_PKG==$CLIENT_VERSION"
    if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
        log "FAIL: $VENV exists and is not a virtualenv; set ZAQAR_VENV elsewhere"
        exit 1
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$CLIENT_PKG==$CLIENT_VERSION"
    if ! venv_ok; then
        log "FAIL: $CLIENT_PKG $CLIENT_VERSION is not importable from $VENV"
        exit 1
    fi
fi

# websocket-client (and msgpack, which the venv normally has already) for interop_ws.py
ws_deps_ok() {
    "$VENV/bin/python" - "$WS_CLIENT_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("websocket-client") == sys.argv[1]
import websocket, msgpack  # noqa: F401
EOF
}
if ! ws_deps_ok; then
    log "installing $WS_CLIENT_PKG==$WS_CLIENT_VERSION and msgpack into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "$WS_CLIENT_PKG==$WS_CLIENT_VERSION" msgpack
    if ! ws_deps_ok; then
        log "FAIL: $WS_CLIENT_PKG $WS_CLIENT_VERSION or msgpack is not importable from $VENV"
        exit 1
    fi
fi

# ---------------------------------------------------------------- server binary
if [[ -n "${ZAQAR_SERVER_BIN:-}" && -x "${ZAQAR_SERVER_BIN}" ]]; then
    SERVER_BIN="$ZAQAR_SERVER_BIN"
    log "using server binary $SERVER_BIN"
else
    if [[ -n "${ZAQAR_SERVER_BIN:-}" ]]; then
        log "ZAQAR_SERVER_BIN=$ZAQAR_SERVER_BIN is not an executable file; building instead"
    fi
    log "building zaqar-server"
    (cd "$REPO" && cargo test --quiet --no-run -p zaqar-server --test it)
    SERVER_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/zaqar-server"
    [[ "$SERVER_BIN" = /* ]] || SERVER_BIN="$REPO/$SERVER_BIN"
fi

# ---------------------------------------------------------------- start the server
TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-interop.XXXXXX")"
DATA_DIR="$TMP_DIR/data"
SERVER_LOG="$TMP_DIR/server.log"
mkdir -p "$DATA_DIR"
SERVER_PID=""
STATUS=1

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ "$STATUS" -ne 0 && -f "$SERVER_LOG" ]]; then
        log "server log (last 40 lines of $SERVER_LOG):"
        tail -n 40 "$SERVER_LOG" >&2 || true
    fi
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP_DIR"
    if [[ "$rc" -eq 0 && "$STATUS" -ne 0 ]]; then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}
PORT="$(free_port)"
WS_PORT="$(free_port)"
URL="http://127.0.0.1:$PORT"
WS_URL="ws://127.0.0.1:$WS_PORT/"

log "starting $SERVER_BIN on $URL (data dir $DATA_DIR)"
# request completion lines are logged at debug level: keep them, so a failure shows the last requests
NO_COLOR=1 ZAQAR_LOG="${ZAQAR_LOG:-info,zaqar=debug}" \
    "$SERVER_BIN" --bind 127.0.0.1 --port "$PORT" --data-dir "$DATA_DIR" \
    --set "drivers:transport:websocket.port=$WS_PORT" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

if ! "$PYTHON" - "$URL" "$SERVER_PID" "$STARTUP_TIMEOUT" <<'EOF'
import os, sys, time, urllib.error, urllib.request
url, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("server process exited during startup")
    try:
        urllib.request.urlopen(url + "/", timeout=2)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # any HTTP answer (GET / is 300 Multiple Choices) means it is up
    except OSError:
        time.sleep(0.2)
sys.exit(f"server did not answer GET / within {timeout:.0f}s")
EOF
then
    log "FAIL: server did not come up on $URL"
    exit 1
fi
log "server is up (pid $SERVER_PID)"

# ---------------------------------------------------------------- run the client checks
set +e
"$VENV/bin/python" "$REPO/scripts/interop_zaqarclient.py" "$URL"
STATUS=$?
if [[ "$STATUS" -eq 0 || -n "${ZAQAR_INTEROP_KEEP_GOING:-}" ]]; then
    log "WebSocket transport ($WS_URL): websocket-client and zaqarclient's WebsocketTransport"
    "$VENV/bin/python" "$REPO/scripts/interop_ws.py" "$WS_URL" "$URL"
    WS_STATUS=$?
    if [[ "$WS_STATUS" -ne 0 ]]; then STATUS=$WS_STATUS; fi
fi
set -e

if [[ "$STATUS" -eq 0 ]]; then
    log "PASS"
else
    log "FAIL (exit status $STATUS)"
fi
exit "$STATUS"
