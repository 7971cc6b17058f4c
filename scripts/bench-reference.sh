#!/usr/bin/env bash
# Side-by-side benchmark: the Python reference Zaqar, zaqar-server (embedded store and Redis
# driver) and a hello-world hyper server, driven by the same zaqar-bench scenarios, runs
# alternated between the targets; prints a ratio table and writes a JSON summary.
#
#   bash scripts/bench-reference.sh
#
# Targets (BENCH_TARGETS, any subset, in this order of alternation):
#   reference  zaqar==23.0.1 from PyPI under gunicorn (BENCH_REF_WORKERS sync workers, default
#              2), [drivers] message_store = redis, management_store = sqlalchemy (SQLite),
#              pooling off, no auth; installed into $REPO/.venv-reference.
#   embedded   zaqar-server with the embedded store (a fresh data directory).
#   redis      zaqar-server with the Redis driver (a unique key prefix).
#   hello      crates/zaqar-bench/examples/hello.rs: reads the body, answers a fixed small JSON document; the
#              ceiling for any HTTP API on this machine.
#
# Scenarios (BENCH_SCENARIOS): post (single-message POST), claim (claim up to 10, then
# delete each claimed message; the queue is prefilled), list (GET messages?echo=true&limit=10
# paging through 1,000 messages), batch (POST of 10 messages). Each is zaqar-bench with
# BENCH_CONNECTIONS (64) connections for BENCH_DURATION (10) seconds after BENCH_WARMUP (2)
# seconds, repeated BENCH_RUNS (3) times; in each run every scenario visits every target
# before the next scenario starts, and the order of the targets rotates from run to run.
# Figures are the medians over the runs.
#
# Redis: the Redis of the development machines, BENCH_REDIS_URL (default
# redis://127.0.0.1:6379), shared with others, so nothing here touches their data: every
# writer gets a database of its own and a unique key prefix or project, and nothing is ever
# flushed:
#   - our Redis driver: database BENCH_OURS_REDIS_DB (14), key prefix bench-PID-RAND (its
#     keys are deleted afterwards by that prefix);
#   - the reference (which cannot prefix its keys): database BENCH_REF_REDIS_DB (15), a unique
#     project id; its queues are deleted through its own API afterwards, then its keys that
#     name the project; its message keys (bare UUIDs) expire with the messages (one hour);
#   - redis-benchmark: database BENCH_RB_REDIS_DB (13), keys under the same unique prefix
#     (deleted afterwards).
# When that Redis does not answer, or with BENCH_REDIS_PRIVATE=1, a private redis-server (no
# persistence) is started on a free loopback port instead and shut down at the end.
#
# redis-benchmark (Debian package redis-tools, installed with apt-get when missing and
# possible): after the runs, the same Redis is driven with BENCH_CONNECTIONS connections by
# redis-benchmark running, per scenario, one EVAL doing the Redis work that scenario's API
# request needs (the data structures of our driver: counter, message hash, ordered sets;
# see docs/performance.md), so "redis / redis-benchmark" says how much of Redis's own rate
# for that work our driver's HTTP API delivers. BENCH_REDIS_BENCHMARK=0 skips it;
# BENCH_RB_REQUESTS (50000) is the number of calls per redis-benchmark run.
#
# Other environment:
#   BENCH_OUT          output directory (default $REPO/target/bench-reference): raw/ has one
#                      zaqar-bench JSON report per run, logs/ the servers' logs,
#                      summary.json and summary.txt the result.
#   ZAQAR_SERVER_BIN, ZAQAR_BENCH_BIN, ZAQAR_HELLO_BIN
#                      use these binaries instead of building them with cargo --release.
#   BENCH_PREFILL_OURS messages prefilled for the claim scenario on our servers (300000)
#   BENCH_PREFILL_REF  same for the reference (10000: it claims a few hundred per second)
#   BENCH_MIXED_SECONDS  after the table, a memory check: --scenario mixed for this long
#                      against each of BENCH_MIXED_TARGETS (default embedded; redis is the
#                      other choice) with the server's RSS
#                      sampled every second; writes mixed-<target>.json and .svg (throughput,
#                      latency percentiles and RSS over time) and says whether the memory was
#                      flat (default 0: skipped; the issue's check is 600).
#   BENCH_MIX          proportions for the memory check (default 4:5:1: consumers a little
#                      ahead of producers, so the queue does not grow without bound)
#   BENCH_KEEP=1       keep the data directories and the private Redis's state.
#   BENCH_REPORT_ONLY=1  make the tables again from the reports already in $OUT/raw (and
#                      $OUT/redis-benchmark.csv) without running anything (set BENCH_TARGETS
#                      to the targets that are there, and BENCH_OUT).
#   PYTHON             interpreter for the reference's venv (default python3).
#
# Output: summary.txt (plain table), summary.md (the markdown ratio table) and summary.json.
#
# Needs python3 (venv), curl, redis-cli, a Redis (or redis-server for a private one) and, on
# first use, PyPI.
# Exit status: 0 when every run completed (a run with errors is reported, not fatal), 1 when
# a target cannot be installed or started.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-$REPO/target/bench-reference}"
DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
RUNS="${BENCH_RUNS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
SCENARIOS="${BENCH_SCENARIOS:-post claim list batch}"
TARGETS="${BENCH_TARGETS:-reference embedded redis hello}"
REF_WORKERS="${BENCH_REF_WORKERS:-2}"
PREFILL_OURS="${BENCH_PREFILL_OURS:-300000}"
PREFILL_REF="${BENCH_PREFILL_REF:-10000}"
LIST_PREFILL=1000
VENV="${ZAQAR_REF_VENV:-$REPO/.venv-reference}"
PYTHON="${PYTHON:-python3}"
REF_PKGS=(zaqar==23.0.1 gunicorn==27.0.1 redis==8.1.0)
STARTUP_TIMEOUT=60
TAG="bench-$$-$RANDOM"

log() { printf 'bench-reference: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

REPORT_ONLY="${BENCH_REPORT_ONLY:-0}"
mkdir -p "$OUT/raw" "$OUT/logs"
[[ "$REPORT_ONLY" == 1 ]] || rm -f "$OUT"/raw/*.json "$OUT"/redis-benchmark.csv "$OUT"/uptime-*.txt
WORK="$(mktemp -d "${TMPDIR:-/tmp}/zaqar-bench-ref.XXXXXX")"

# ---------------------------------------------------------------- cleanup (by PID only)
PIDS=()
REDIS_PORT=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [[ -n "$REDIS_PORT" ]]; then
        redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    elif [[ -n "${REDIS_URL:-}" ]]; then
        # Our driver's and redis-benchmark's keys under the unique prefix, and nothing else.
        # (The reference's keys that name its project; its message keys are bare UUIDs and
        # expire with the messages.)
        local db
        for db in "$OURS_DB" "$RB_DB" "$REF_DB"; do
            redis-cli -u "$REDIS_URL" -n "$db" --scan --pattern "*$TAG*" 2>/dev/null |
                xargs -r -n 500 redis-cli -u "$REDIS_URL" -n "$db" unlink >/dev/null 2>&1 || true
        done
    fi
    if [[ "${BENCH_KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until GET $1 answers 2xx, or the process $2 dies, or STARTUP_TIMEOUT passes.
wait_http() {
    local url="$1" pid="$2" name="$3" i
    for i in $(seq $((STARTUP_TIMEOUT * 10))); do
        if curl -sf -o /dev/null -H "Client-ID: 3381af92-2b9e-11e3-b191-71861300734c" \
            -H "X-Project-ID: ping" "$url"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (see $OUT/logs/$name.log)"
        sleep 0.1
    done
    die "$name did not answer $url within ${STARTUP_TIMEOUT}s (see $OUT/logs/$name.log)"
}

wants() { [[ " $TARGETS " == *" $1 "* ]]; }

if [[ "$REPORT_ONLY" == 1 ]]; then
    log "BENCH_REPORT_ONLY=1: nothing is run; the tables are made from $OUT/raw"
else
# ---------------------------------------------------------------- binaries
if [[ -z "${ZAQAR_SERVER_BIN:-}" || -z "${ZAQAR_BENCH_BIN:-}" || -z "${ZAQAR_HELLO_BIN:-}" ]]; then
    log "building zaqar-server, zaqar-bench and examples/hello (release)"
    (cd "$REPO" && cargo build --release --quiet --bin zaqar-server --bin zaqar-bench --example hello)
fi
SERVER="${ZAQAR_SERVER_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/zaqar-server}"
BENCH="${ZAQAR_BENCH_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/zaqar-bench}"
HELLO="${ZAQAR_HELLO_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/examples/hello}"
for b in "$SERVER" "$BENCH" "$HELLO"; do [[ -x "$b" ]] || die "$b is not executable"; done

# ---------------------------------------------------------------- the reference's venv
ref_ok() {
    [[ -x "$VENV/bin/gunicorn" ]] || return 1
    "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1
from importlib.metadata import version
assert version("zaqar") == "23.0.1"
import redis, zaqar.storage.redis.driver, zaqar.storage.sqlalchemy.tables  # noqa: F401
EOF
}
if wants reference; then
    if ref_ok; then
        log "reusing venv $VENV (zaqar 23.0.1)"
    else
        log "creating venv $VENV and installing ${REF_PKGS[*]}"
        if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
            die "$VENV exists and is not a virtualenv; set ZAQAR_REF_VENV elsewhere"
        fi
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REF_PKGS[@]}"
        ref_ok || die "zaqar 23.0.1 is not importable from $VENV"
    fi
fi

# ---------------------------------------------------------------- Redis
OURS_DB="${BENCH_OURS_REDIS_DB:-14}"
REF_DB="${BENCH_REF_REDIS_DB:-15}"
RB_DB="${BENCH_RB_REDIS_DB:-13}"
SHARED_REDIS="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
if wants reference || wants redis; then
    command -v redis-cli >/dev/null || die "redis-cli not found (Debian package redis-tools)"
    if [[ "${BENCH_REDIS_PRIVATE:-0}" != 1 ]] && redis-cli -u "$SHARED_REDIS" ping >/dev/null 2>&1; then
        REDIS_URL="${SHARED_REDIS%/}"
        REF_REDIS_URI="$REDIS_URL?dbid=$REF_DB"
        log "using the Redis at $REDIS_URL: ours in db $OURS_DB (prefix $TAG), reference in db $REF_DB, redis-benchmark in db $RB_DB"
    else
        command -v redis-server >/dev/null || die "redis-server not found (or set BENCH_REDIS_URL)"
        REDIS_PORT="$(free_port)"
        mkdir -p "$WORK/redis"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$WORK/redis" --logfile "$OUT/logs/redis.log" --daemonize no \
            >/dev/null 2>&1 &
        PIDS+=($!)
        for _ in $(seq 100); do
            redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "private redis-server did not start"
        REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
        REF_REDIS_URI="$REDIS_URL?dbid=$REF_DB"
        log "private redis-server on port $REDIS_PORT"
    fi
fi

# ---------------------------------------------------------------- start the targets
declare -A URL PID
start_reference() {
    local port dir
    port="$(free_port)"
    dir="$WORK/reference"
    mkdir -p "$dir"
    cat >"$dir/zaqar.conf" <<EOF
[DEFAULT]
auth_strategy =
pooling = False
debug = False

[drivers]
transport = wsgi
message_store = redis
management_store = sqlalchemy

[drivers:message_store:redis]
uri = $REF_REDIS_URI

[drivers:management_store:sqlalchemy]
uri = sqlite:///$dir/zaqar.sqlite
EOF
    # zaqar's own WSGI module reads only the default config paths, and its SQL migrations
    # are MySQL-only: create the SQLite tables from the models, and load the config from a
    # module of ours. gunicorn's arguments must not reach oslo.config.
    "$VENV/bin/python" - "$dir/zaqar.sqlite" <<'EOF'
import sys
import sqlalchemy as sa
from zaqar.storage.sqlalchemy import tables
tables.metadata.create_all(sa.create_engine("sqlite:///" + sys.argv[1]))
EOF
    cat >"$dir/zaqar_ref_wsgi.py" <<'EOF'
import os
import sys

sys.argv = sys.argv[:1]

from oslo_config import cfg  # noqa: E402
from oslo_log import log  # noqa: E402
from zaqar import bootstrap  # noqa: E402

CONF = cfg.CONF
log.register_options(CONF)
CONF(project="zaqar", prog="zaqar-queues",
     args=["--config-file", os.environ["ZAQAR_REF_CONFIG"]])
log.setup(CONF, "zaqar")
boot = bootstrap.Bootstrap(CONF)
CONF.drivers.transport = "wsgi"
application = boot.transport.app
EOF
    ZAQAR_REF_CONFIG="$dir/zaqar.conf" "$VENV/bin/gunicorn" --workers "$REF_WORKERS" \
        --bind "127.0.0.1:$port" --chdir "$dir" --no-control-socket --pid "$dir/gunicorn.pid" \
        zaqar_ref_wsgi:application >"$OUT/logs/reference.log" 2>&1 &
    PIDS+=($!)
    URL[reference]="http://127.0.0.1:$port"
    PID[reference]=$!
    wait_http "${URL[reference]}/v2/ping" "${PID[reference]}" reference
}

start_ours() {
    local name="$1" port
    shift
    port="$(free_port)"
    mkdir -p "$WORK/$name"
    ZAQAR_LOG=warn "$SERVER" --bind 127.0.0.1 --port "$port" --data-dir "$WORK/$name/data" \
        --set drivers:transport:websocket.port=0 "$@" >"$OUT/logs/$name.log" 2>&1 &
    PIDS+=($!)
    URL[$name]="http://127.0.0.1:$port"
    PID[$name]=$!
    wait_http "${URL[$name]}/v2/ping" "${PID[$name]}" "$name"
}

start_hello() {
    local port
    port="$(free_port)"
    "$HELLO" "127.0.0.1:$port" >"$OUT/logs/hello.log" 2>&1 &
    PIDS+=($!)
    URL[hello]="http://127.0.0.1:$port"
    PID[hello]=$!
    wait_http "${URL[hello]}/" "${PID[hello]}" hello
}

ACTIVE=()
for t in $TARGETS; do
    case "$t" in
        reference) start_reference ;;
        embedded) start_ours embedded ;;
        redis)
            start_ours redis --set drivers.message_store=redis \
                --set "drivers:message_store:redis.uri=$REDIS_URL/$OURS_DB" \
                --set "drivers:message_store:redis.key_prefix=$TAG"
            ;;
        hello) start_hello ;;
        *) die "unknown target $t (reference, embedded, redis, hello)" ;;
    esac
    ACTIVE+=("$t")
    log "$t: ${URL[$t]} (pid ${PID[$t]})"
done

# ---------------------------------------------------------------- the runs
PROJECT="bench-$TAG"
scenario_args() { # scenario target
    local prefill=$PREFILL_OURS
    [[ "$2" == reference ]] && prefill=$PREFILL_REF
    [[ "$2" == hello ]] && prefill=0
    case "$1" in
        post) echo "--scenario post --batch 1" ;;
        batch) echo "--scenario post --batch 10" ;;
        claim) echo "--scenario claim --claim-limit 10 --prefill $prefill" ;;
        list) echo "--scenario list --list-limit 10 --prefill $LIST_PREFILL" ;;
        *) die "unknown scenario $1 (post, claim, list, batch)" ;;
    esac
}

uptime >"$OUT/uptime-start.txt"
log "load before the runs: $(cat "$OUT/uptime-start.txt")"
n=${#ACTIVE[@]}
for run in $(seq "$RUNS"); do
    for scenario in $SCENARIOS; do
        for k in $(seq 0 $((n - 1))); do
            t="${ACTIVE[$(((k + run - 1) % n))]}"
            json="$OUT/raw/run$run-$scenario-$t.json"
            # The server's memory along the run (gunicorn's master says nothing of its workers).
            rss=(--rss-pid "${PID[$t]}")
            [[ "$t" == reference ]] && rss=()
            set +e
            # shellcheck disable=SC2046 # scenario_args is a list of words
            "$BENCH" --url "${URL[$t]}" --connections "$CONNECTIONS" --duration "$DURATION" \
                --warmup "$WARMUP" --project "$PROJECT" --queue-prefix "r$run-$scenario" \
                --max-error-pct 100 --quiet --json "$json" "${rss[@]}" \
                $(scenario_args "$scenario" "$t") >"$OUT/logs/run$run-$scenario-$t.txt" 2>&1
            status=$?
            set -e
            summary="$(grep '^SUMMARY' "$OUT/logs/run$run-$scenario-$t.txt" || true)"
            log "run $run $scenario $t (exit $status): ${summary:-no result, see $OUT/logs/run$run-$scenario-$t.txt}"
        done
    done
done
uptime >"$OUT/uptime-end.txt"
log "load after the runs: $(cat "$OUT/uptime-end.txt")"

# ---------------------------------------------------------------- redis-benchmark
# One EVAL per API request, doing the Redis work of that request with our driver's data
# structures (KEYS: counter, message hash, all/expiry/free ordered sets, claimed set, claim
# hash; message bodies of 100 bytes). Claims and deletes leave the sets as they found them
# so that every repetition does the same work.
RB_POST='local n = redis.call("INCRBY", KEYS[1], tonumber(ARGV[1])) - tonumber(ARGV[1])
local hs, zs = {}, {}
for i = 1, tonumber(ARGV[1]) do
  hs[#hs + 1] = n + i; hs[#hs + 1] = ARGV[2]; zs[#zs + 1] = n + i; zs[#zs + 1] = n + i
end
redis.call("HSET", KEYS[2], unpack(hs))
redis.call("ZADD", KEYS[3], unpack(zs))
redis.call("ZADD", KEYS[4], unpack(zs))
redis.call("ZADD", KEYS[5], unpack(zs))
return n'
RB_CLAIM='local ms = redis.call("ZRANGE", KEYS[5], 0, 9)
if #ms == 0 then return 0 end
local recs = redis.call("HMGET", KEYS[2], unpack(ms))
local hs, zs = {}, {}
for i, m in ipairs(ms) do hs[#hs + 1] = m; hs[#hs + 1] = recs[i]; zs[#zs + 1] = 1; zs[#zs + 1] = m end
redis.call("HSET", KEYS[2], unpack(hs))
redis.call("ZADD", KEYS[6], unpack(zs))
redis.call("HSET", KEYS[7], "t", 60, "e", 1, "m", table.concat(ms, ","))
return #ms'
RB_DELETE='local m = redis.call("ZRANGE", KEYS[5], 0, 0)[1]
local raw = redis.call("HGET", KEYS[2], m)
redis.call("HGET", KEYS[7], "e")
redis.call("HDEL", KEYS[2], m)
for i = 3, 6 do redis.call("ZREM", KEYS[i], m) end
redis.call("HSET", KEYS[2], m, raw)
redis.call("ZADD", KEYS[3], m, m)
redis.call("ZADD", KEYS[5], m, m)
return 1'
RB_LIST='local ms = redis.call("ZRANGEBYSCORE", KEYS[3], "(0", "+inf", "LIMIT", 0, 10)
return redis.call("HMGET", KEYS[2], unpack(ms))'

RB_STATUS="skipped"
if [[ "${BENCH_REDIS_BENCHMARK:-1}" != 0 && -n "${REDIS_URL:-}" ]] && ! command -v redis-benchmark >/dev/null; then
    log "redis-benchmark not found: installing redis-tools with apt-get"
    sudo_cmd=()
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null && sudo_cmd=(sudo -n)
    "${sudo_cmd[@]}" apt-get install -y -qq redis-tools >/dev/null 2>&1 ||
        { "${sudo_cmd[@]}" apt-get update -qq >/dev/null 2>&1 &&
            "${sudo_cmd[@]}" apt-get install -y -qq redis-tools >/dev/null 2>&1; } ||
        log "could not install redis-tools; the redis-benchmark column stays empty"
fi
if [[ "${BENCH_REDIS_BENCHMARK:-1}" != 0 && -n "${REDIS_URL:-}" ]] && command -v redis-benchmark >/dev/null; then
    hostport="${REDIS_URL#redis://}"
    hostport="${hostport%%/*}"
    rb_host="${hostport%%:*}"
    rb_port="${hostport##*:}"
    P="$TAG:rb:"
    RB_KEYS=(7 "${P}ctr" "${P}msgs" "${P}all" "${P}exp" "${P}free" "${P}clm" "${P}c")
    rb_body="{\"data\":\"$(printf 'x%.0s' $(seq 81))\",\"seq\":1}"
    rcli() { redis-cli -h "$rb_host" -p "$rb_port" -n "$RB_DB" "$@"; }
    # The data that claims, deletes and listings work on: 1,000 messages.
    rcli eval "$RB_POST" "${RB_KEYS[@]}" 1000 "$rb_body" >/dev/null
    RB_REQUESTS="${BENCH_RB_REQUESTS:-50000}"
    uptime >"$OUT/uptime-redis-benchmark.txt"
    : >"$OUT/redis-benchmark.csv"
    for run in $(seq "$RUNS"); do
        for name in post batch claim delete list; do
            case "$name" in
                post) script="$RB_POST"; extra=(1 "$rb_body") ;;
                batch) script="$RB_POST"; extra=(10 "$rb_body") ;;
                claim) script="$RB_CLAIM"; extra=() ;;
                delete) script="$RB_DELETE"; extra=() ;;
                list) script="$RB_LIST"; extra=() ;;
            esac
            # Like our driver: the script is loaded once and called by its SHA1.
            sha="$(rcli script load "$script")"
            # The CSV's last seven fields are rps, avg, min, p50, p95, p99, max.
            rate="$(redis-benchmark -h "$rb_host" -p "$rb_port" --dbnum "$RB_DB" -c "$CONNECTIONS" \
                -n "$RB_REQUESTS" --csv evalsha "$sha" "${RB_KEYS[@]}" "${extra[@]}" 2>/dev/null |
                tail -n 1 | awk -F, '{print $(NF-6)}' | tr -d '"' || true)"
            echo "$name,$run,$rate" >>"$OUT/redis-benchmark.csv"
            log "redis-benchmark $name run $run: ${rate:-failed} EVAL/s"
        done
    done
    rcli unlink "${RB_KEYS[@]:1}" >/dev/null 2>&1 || true
    RB_STATUS="ok"
fi
echo "$RB_STATUS" >"$OUT/redis-benchmark.status"

# The reference's queues, through its own API (its keys cannot be found by a prefix).
if wants reference; then
    "$PYTHON" - "${URL[reference]}" "$PROJECT" <<'EOF' || log "could not delete the reference's queues"
import json, sys, urllib.request
base, project = sys.argv[1], sys.argv[2]
hdr = {"Client-ID": "3381af92-2b9e-11e3-b191-71861300734c", "X-Project-ID": project}
for _ in range(100):
    req = urllib.request.Request(base + "/v2/queues?limit=20", headers=hdr)
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    names = [q["name"] for q in json.loads(raw).get("queues", [])] if raw else []
    if not names:
        break
    for n in names:
        urllib.request.urlopen(urllib.request.Request(
            f"{base}/v2/queues/{n}", headers=hdr, method="DELETE"), timeout=60).read()
EOF
fi

fi # REPORT_ONLY

# ---------------------------------------------------------------- the table
"$PYTHON" - "$OUT" "$TARGETS" "$SCENARIOS" <<'EOF'
import glob, json, os, statistics, sys

out, targets, scenarios = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
runs = {}
for path in sorted(glob.glob(os.path.join(out, "raw", "run*-*-*.json"))):
    name = os.path.basename(path)[:-5]
    run, scenario, target = name.split("-", 2)
    with open(path) as f:
        doc = json.load(f)
    doc["_run"] = run
    runs.setdefault((scenario, target), []).append(doc)

# What each scenario is judged by: (label, function of one report) pairs; the first is the
# headline figure the ratios are computed on.
def op(doc, name, key):
    o = doc["operations"].get(name)
    return None if o is None else o[key]

def lat(doc, name, p):
    o = doc["operations"].get(name)
    return None if o is None else o["latency_ms"][p]

METRICS = {
    "post": [("req/s", lambda d: op(d, "post", "rps")),
             ("p50 ms", lambda d: lat(d, "post", "p50")),
             ("p99 ms", lambda d: lat(d, "post", "p99"))],
    "batch": [("msg/s", lambda d: op(d, "post", "mps")),
              ("req/s", lambda d: op(d, "post", "rps")),
              ("p50 ms", lambda d: lat(d, "post", "p50")),
              ("p99 ms", lambda d: lat(d, "post", "p99"))],
    "claim": [("msg/s", lambda d: op(d, "delete", "mps") if op(d, "delete", "mps") else op(d, "claim", "mps")),
              ("req/s", lambda d: d["totals"]["rps"]),
              ("claim p99 ms", lambda d: lat(d, "claim", "p99")),
              ("delete p99 ms", lambda d: lat(d, "delete", "p99"))],
    "list": [("req/s", lambda d: op(d, "list", "rps")),
             ("msg/s", lambda d: op(d, "list", "mps")),
             ("p50 ms", lambda d: lat(d, "list", "p50")),
             ("p99 ms", lambda d: lat(d, "list", "p99"))],
}
TITLES = {"post": "single-message POST", "batch": "batch POST of 10",
          "claim": "claim (10) + delete", "list": "list (10 per page)"}

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None

# redis-benchmark: EVAL/s per script, median over the runs; then the rate of the same
# Redis work in each scenario's headline unit.
rb = {}
try:
    for line in open(os.path.join(out, "redis-benchmark.csv")):
        name, _run, rate = (line.strip().split(",") + ["", ""])[:3]
        try:
            rb.setdefault(name, []).append(float(rate))
        except ValueError:
            pass
except OSError:
    pass
rb = {k: statistics.median(v) for k, v in rb.items() if v}
RB_EQUIV = {
    "post": lambda r: r["post"],
    "batch": lambda r: 10 * r["batch"],
    # One claim of 10 and ten deletes per cycle, all on the one Redis.
    "claim": lambda r: 10 / (1 / r["claim"] + 10 / r["delete"]),
    "list": lambda r: r["list"],
}

summary = {"targets": targets, "scenarios": {}, "uptime": {}, "redis_benchmark": rb}
for which in ("start", "end", "redis-benchmark"):
    try:
        summary["uptime"][which] = open(os.path.join(out, f"uptime-{which}.txt")).read().strip()
    except OSError:
        pass
for scenario in scenarios:
    entry = {}
    for target in targets:
        docs = runs.get((scenario, target), [])
        entry[target] = {
            "runs": len(docs),
            "errors": sum(d["totals"]["errors"] for d in docs),
            "requests": sum(d["totals"]["requests"] for d in docs),
            "empty_claims": sum((d["operations"].get("claim") or {}).get("empty", 0) for d in docs),
            "metrics": {label: median([f(d) for d in docs]) for label, f in METRICS[scenario]},
            "per_run": [{label: f(d) for label, f in METRICS[scenario]} for d in docs],
        }
    head = METRICS[scenario][0][0]
    ratios = {}
    # A ratio is the median of the per-run ratios: within a run the two targets were measured
    # a minute apart at most, under about the same load of the machine.
    head_f = METRICS[scenario][0][1]
    for ours in ("embedded", "redis"):
        for base in ("reference", "hello"):
            by_run = {d["_run"]: head_f(d) for d in runs.get((scenario, base), [])}
            per_run = [head_f(d) / by_run[d["_run"]] for d in runs.get((scenario, ours), [])
                       if head_f(d) and by_run.get(d["_run"])]
            if per_run:
                ratios[f"{ours}/{base}"] = round(statistics.median(per_run), 3)
    try:
        equiv = RB_EQUIV[scenario](rb)
    except (KeyError, ZeroDivisionError):
        equiv = None
    a = entry.get("redis", {}).get("metrics", {}).get(head)
    if equiv and a:
        ratios["redis/redis-benchmark"] = round(a / equiv, 3)
    summary["scenarios"][scenario] = {"headline": head, "targets": entry, "ratios": ratios,
                                      "redis_benchmark": equiv}

with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)

def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"

lines = []
cols = [t for t in targets]
header = f"{'scenario':<22} {'figure':<14}" + "".join(f"{c:>12}" for c in cols)
ratio_names = ["embedded/reference", "redis/reference", "embedded/hello", "redis/hello"]
lines.append(header + "".join(f"{r.replace('reference', 'ref'):>16}" for r in ratio_names))
for scenario in scenarios:
    s = summary["scenarios"][scenario]
    for i, (label, _) in enumerate(METRICS[scenario]):
        row = f"{TITLES[scenario] if i == 0 else '':<22} {label:<14}"
        row += "".join(f"{fmt(s['targets'][t]['metrics'].get(label)):>12}" for t in cols)
        if i == 0:
            row += "".join(
                f"{(str(s['ratios'][r]) + 'x') if r in s['ratios'] else '-':>16}" for r in ratio_names)
        lines.append(row)
    notes = []
    for t in cols:
        e = s["targets"][t]
        if e["errors"]:
            notes.append(f"{t}: {e['errors']} of {e['requests']} requests failed")
        if scenario == "claim" and e["empty_claims"] and t != "hello":
            notes.append(f"{t}: {e['empty_claims']} claims found the queue empty")
    for n in notes:
        lines.append(f"{'':<22} note: {n}")
lines.append("")
lines.append("medians over %s; load: %s -> %s" % (
    ", ".join(f"{t} {len(runs.get((scenarios[0], t), []))} runs" for t in targets),
    summary["uptime"].get("start", "?"), summary["uptime"].get("end", "?")))
text = "\n".join(lines)
with open(os.path.join(out, "summary.txt"), "w") as f:
    f.write(text + "\n")
print(text)

# The markdown ratio table: every figure of every target, and the ratios of the headline.
ratio_cols = [r for r in ratio_names + ["redis/redis-benchmark"]
              if any(r in summary["scenarios"][sc]["ratios"] for sc in scenarios)]
md = ["| scenario | figure | " + " | ".join(cols) + " | redis-benchmark equiv. | "
      + " | ".join(r.replace("/", " ÷ ").replace("reference", "ref") for r in ratio_cols) + " |",
      "|---|---|" + "---:|" * (len(cols) + 1 + len(ratio_cols))]
for scenario in scenarios:
    s = summary["scenarios"][scenario]
    for i, (label, _) in enumerate(METRICS[scenario]):
        row = [TITLES[scenario] if i == 0 else "", label]
        row += [fmt(s["targets"][t]["metrics"].get(label)) for t in cols]
        if i == 0:
            row.append(fmt(s["redis_benchmark"]))
            row += [f"{s['ratios'][r]:.2f}×" if r in s["ratios"] else "-" for r in ratio_cols]
        else:
            row += [""] * (1 + len(ratio_cols))
        md.append("| " + " | ".join(row) + " |")
md.append("")
md.append("Medians over %s. Load (uptime) before: `%s`; after: `%s`; during redis-benchmark: `%s`." % (
    ", ".join(f"{t} {len(runs.get((scenarios[0], t), []))} runs" for t in targets),
    summary["uptime"].get("start", "?"), summary["uptime"].get("end", "?"),
    summary["uptime"].get("redis-benchmark", "-")))
for scenario in scenarios:
    for t in cols:
        e = summary["scenarios"][scenario]["targets"][t]
        if e["errors"]:
            md.append(f"- {TITLES[scenario]}, {t}: {e['errors']} of {e['requests']} requests failed.")
        if scenario == "claim" and e["empty_claims"] and t != "hello":
            md.append(f"- {TITLES[scenario]}, {t}: {e['empty_claims']} claims found the queue empty.")
with open(os.path.join(out, "summary.md"), "w") as f:
    f.write("\n".join(md) + "\n")
print()
print("\n".join(md))
EOF
log "summary: $OUT/summary.txt, $OUT/summary.json"

# ---------------------------------------------------------------- memory check (optional)
MIXED_SECONDS="${BENCH_MIXED_SECONDS:-0}"
if [[ "$MIXED_SECONDS" != 0 && "$REPORT_ONLY" != 1 ]]; then
    for t in ${BENCH_MIXED_TARGETS:-embedded}; do
        wants "$t" || continue
        log "memory check: mixed ${BENCH_MIX:-4:5:1} for ${MIXED_SECONDS}s against $t (pid ${PID[$t]})"
        uptime >"$OUT/uptime-mixed-$t.txt"
        set +e
        "$BENCH" --url "${URL[$t]}" --scenario mixed --mix "${BENCH_MIX:-4:5:1}" \
            --connections "$CONNECTIONS" --duration "$MIXED_SECONDS" --warmup 5 \
            --prefill 20000 --project "$PROJECT" --queue-prefix "mixed" --quiet \
            --rss-pid "${PID[$t]}" --json "$OUT/mixed-$t.json" --svg "$OUT/mixed-$t.svg" \
            >"$OUT/logs/mixed-$t.txt" 2>&1
        set -e
        grep -E '^(SUMMARY|MEMORY)' "$OUT/logs/mixed-$t.txt" >&2 || true
    done
fi
