#!/usr/bin/env bash
# WebSocket transport measurements (release build):
#   1. memory per idle WebSocket connection: CONNECTIONS idle connections held on one server;
#   2. message_post throughput over 1 and 64 WebSocket connections, next to HTTP.
#
#   bash scripts/ws_bench.sh [CONNECTIONS] [SECS]      (defaults: 10000 10)
#
# Everything runs on 127.0.0.1 against a server started here on a fresh data directory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONNECTIONS="${1:-10000}"
SECS="${2:-10}"
log() { printf 'ws_bench: %s\n' "$*" >&2; }

# Each process (the server, the load tool) holds one socket per connection.
need=$((CONNECTIONS + 1024))
if [[ "$(ulimit -Hn)" != unlimited && "$(ulimit -Hn)" -lt "$need" ]]; then
    ulimit -Hn "$need" 2>/dev/null || true   # root may raise the hard limit
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt "$need" ]]; then
    log "cannot raise ulimit -n to $need (hard limit $(ulimit -Hn))"; exit 1
fi
log "ulimit -n $(ulimit -n)"

(cd "$REPO" && cargo build --release --quiet --bin zaqar-server --example ws_load)
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
[[ "$TARGET" = /* ]] || TARGET="$REPO/$TARGET"
SERVER="$TARGET/release/zaqar-server"
LOAD="$TARGET/release/examples/ws_load"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-ws-bench.XXXXXX")"
PID=""
cleanup() {
    if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_server() {
    local port ws_port
    port="$(free_port)"
    ws_port="$(free_port)"
    rm -rf "$TMP/data"
    ZAQAR_LOG=warn "$SERVER" --port "$port" --data-dir "$TMP/data" \
        --set "drivers:transport:websocket.port=$ws_port" \
        --set "drivers:transport:websocket.max_connections=$((CONNECTIONS + 100))" \
        --set "drivers:transport:wsgi.max_connections=$((CONNECTIONS + 100))" \
        >"$TMP/server.log" 2>&1 &
    PID=$!
    HTTP_URL="http://127.0.0.1:$port"
    WS_URL="ws://127.0.0.1:$ws_port/"
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request,sys
try: urllib.request.urlopen('$HTTP_URL/v2/ping')
except Exception as e: sys.exit(0 if getattr(e,'code',0) else 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    log "server did not start"; cat "$TMP/server.log" >&2; exit 1
}

stop_server() {
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}

log "1. $CONNECTIONS idle WebSocket connections"
start_server
"$LOAD" idle "$WS_URL" "$CONNECTIONS" 10 "$PID"
stop_server

log "2. message_post throughput, ${SECS}s each (1 message of 100 B per request)"
start_server
"$LOAD" post "$WS_URL" 1 "$SECS" 1
"$LOAD" http-post "$HTTP_URL" 1 "$SECS"
"$LOAD" post "$WS_URL" 1 "$SECS" 32
"$LOAD" post "$WS_URL" 64 "$SECS" 1
"$LOAD" http-post "$HTTP_URL" 64 "$SECS"
"$LOAD" post "$WS_URL" 64 "$SECS" 8
stop_server
