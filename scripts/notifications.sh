#!/usr/bin/env bash
# End-to-end notification test with real parts: the zaqar-server binary, a webhook receiver
# process (scripts/webhook_receiver.py) and an SMTP server (aiosmtpd from PyPI, in a venv).
# Covers webhook delivery with retries, e-mail over SMTP, topic fan-out, and a kill -9 between
# a POST and its delivery (the notification still arrives after the restart). Run by CI.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${ZAQAR_NOTIFY_VENV:-$REPO/.venv-notify}"
WORK="$(mktemp -d /tmp/zaqar-notify.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$VENV/bin/aiosmtpd" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
if [ -z "${ZAQAR_SERVER_BIN:-}" ]; then
  (cd "$REPO" && cargo test -q --no-run -p zaqar-server --test it)
  ZAQAR_SERVER_BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/zaqar-server"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP=$(free_port); HOOK=$(free_port); API=$(free_port)
mkdir -p "$WORK/mail/tmp" "$WORK/mail/new" "$WORK/mail/cur"

"$VENV/bin/aiosmtpd" -n -l "127.0.0.1:$SMTP" -c aiosmtpd.handlers.Mailbox "$WORK/mail" \
  > "$WORK/smtp.log" 2>&1 &
PIDS+=($!)
python3 "$REPO/scripts/webhook_receiver.py" "$HOOK" "$WORK/hooks.jsonl" 2 "$WORK/down" \
  > "$WORK/receiver.log" 2>&1 &
PIDS+=($!)

start_server() {
  ZAQAR_LOG=warn "$ZAQAR_SERVER_BIN" --port "$API" --data-dir "$WORK/data" \
    --set drivers:transport:websocket.port=0 \
    --set notification.smtp_mode=self_local --set notification.smtp_host=127.0.0.1 \
    --set notification.smtp_port="$SMTP" --set notification.smtp_tls=none \
    >> "$WORK/server.log" 2>&1 &
  SERVER=$!
  PIDS+=($SERVER)
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$API/" && return 0
    curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$API/" 2>/dev/null | grep -q 300 && return 0
    sleep 0.1
  done
  echo "server did not start"; tail -20 "$WORK/server.log"; return 1
}
start_server
export ZAQAR_API="http://127.0.0.1:$API" HOOK_URL="http://127.0.0.1:$HOOK" HOOK_LOG="$WORK/hooks.jsonl" \
  MAILDIR="$WORK/mail" DOWN_FILE="$WORK/down" SERVER_PID="$SERVER" WORK
# The Python driver asks us (through a FIFO-free handshake: files) to restart the server.
python3 "$REPO/scripts/notifications_e2e.py" phase1
kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true
rm -f "$WORK/down"
start_server
python3 "$REPO/scripts/notifications_e2e.py" phase2
echo "notifications: PASS"
