#!/usr/bin/env bash
# Property-based API testing: schemathesis (PyPI) generates valid and invalid requests from
# docs/openapi.yaml and checks a fresh zaqar-server's answers: no 5xx, only documented status
# codes, documented content types, headers and response schemas, required headers enforced,
# 405 with an Allow header for unsupported methods. Bounded by SCHEMATHESIS_MAX_TIME.
#
#   bash scripts/schemathesis.sh
#
# Checks not run, and why: positive_data_acceptance and negative_data_rejection (the schema
# cannot express Zaqar's cross-field rules: delay <= ttl, reserved metadata combinations,
# "ids or pop", ...; those rules have their own black-box tests), use_after_free and
# ensure_resource_availability (Zaqar's lazy semantics: a deleted queue's message listing is
# an empty 200, by the spec's §1.14), ignored_auth (no auth configured here).
#
# Environment:
#   ZAQAR_SCHEMATHESIS_VENV  venv to create or reuse (default $REPO/.venv-schemathesis)
#   ZAQAR_SERVER_BIN         use this server binary instead of building one with cargo
#   SCHEMATHESIS_PROFILE     cargo profile of the server build: debug (default; CI's `cargo
#                            test` has built it already) or release
#   SCHEMATHESIS_PORT        port of the server (default 18990; 8888, 9000 and 18888+ are
#                            other people's)
#   SCHEMATHESIS_MAX_TIME    time budget in seconds (default 90)
#   SCHEMATHESIS_EXAMPLES    examples per operation and phase (default 40)
#   SCHEMATHESIS_SEED        generation seed (default fixed, for reproducible CI runs)
#   PYTHON                   interpreter for the venv (default python3)
# Needs python3 (venv) and, on first use, PyPI. Exits non-zero on any failed check, or if
# the server logged a panic.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ZAQAR_SCHEMATHESIS_VENV:-$REPO/.venv-schemathesis}"
PYTHON="${PYTHON:-python3}"
PKG="schemathesis==4.32.5"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-90}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-40}"
SEED="${SCHEMATHESIS_SEED:-20261127}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,missing_required_header,unsupported_method,allow_header_conformance"

log() { printf 'schemathesis: %s\n' "$*" >&2; }

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "4.32.5"; then
    log "creating venv $VENV and installing $PKG"
    if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
        log "FAIL: $VENV exists and is not a virtualenv"
        exit 1
    fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PKG"
fi

PROFILE="${SCHEMATHESIS_PROFILE:-debug}"
if [[ -z "${ZAQAR_SERVER_BIN:-}" ]]; then
    log "building zaqar-server ($PROFILE)"
    if [[ "$PROFILE" == release ]]; then
        (cd "$REPO" && cargo build --release --quiet --bin zaqar-server)
    else
        # Through an integration test that runs the binary: the same build (and the same
        # feature unification) as `cargo test`, so nothing is compiled again after it.
        (cd "$REPO" && cargo test --quiet --no-run -p zaqar-server --test it)
    fi
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
SERVER="${ZAQAR_SERVER_BIN:-$TARGET_DIR/$PROFILE/zaqar-server}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-schemathesis.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="${SCHEMATHESIS_PORT:-18990}"
if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
    log "FAIL: something already listens on 127.0.0.1:$PORT; set SCHEMATHESIS_PORT"
    exit 1
fi
# Long polls are capped at 1 s so that generated ?wait= values cannot stall the run (larger
# ones are a documented 400). A signing key, so that POST .../share is exercised beyond its 400.
# The notifier stays off (no [storage] message_pipeline): generated subscriber URIs are stored,
# never called. Admin mode serves /v2/quotas (admin only; without pooling, 404 for admins).
ZAQAR_LOG=warn "$SERVER" --bind 127.0.0.1 --port "$PORT" --data-dir "$WORK/data" \
    --set drivers:transport:websocket.port=0 --set transport.max_wait=1 \
    --set DEFAULT.admin_mode=true \
    --set signed_url.secret_key=schemathesis-signing-key \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null -H "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c" \
        -H "X-Project-ID: p" "http://127.0.0.1:$PORT/v2/ping" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; log "FAIL: server exited"; exit 1; }
    sleep 0.1
done

log "running against http://127.0.0.1:$PORT for at most ${MAX_TIME}s"
status=0
# From the scratch directory, so that nothing schemathesis writes lands in the repository.
cd "$WORK"
SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$REPO/scripts" \
    "$VENV/bin/schemathesis" run "$REPO/docs/openapi.yaml" \
    --url "http://127.0.0.1:$PORT" --checks "$CHECKS" --mode all \
    --max-examples "$EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
    --workers 1 --request-timeout 10 --generation-database none \
    --suppress-health-check all --no-color || status=$?

if grep -q "panicked" "$WORK/server.log"; then
    log "FAIL: the server panicked:"
    grep -A5 "panicked" "$WORK/server.log" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    log "FAIL (exit $status)"
else
    log "passed"
fi
exit $status
