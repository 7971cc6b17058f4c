#!/usr/bin/env bash
# Starts or stops a throw-away 3-master Redis Cluster on loopback for the Redis store tests.
#
#   scripts/redis-cluster.sh start   # idempotent: does nothing if the cluster is already up
#   scripts/redis-cluster.sh stop    # idempotent: stops the nodes and removes their directory
#   scripts/redis-cluster.sh url     # prints redis+cluster://127.0.0.1:7000,...
#
# Environment: ZAQAR_REDIS_CLUSTER_PORT (first port, default 7000; the nodes use PORT..PORT+2),
# ZAQAR_REDIS_CLUSTER_DIR (default ${TMPDIR:-/tmp}/zaqar-redis-cluster-PORT).
# Needs redis-server and redis-cli (Debian: apt-get install redis-server / redis-tools).
set -euo pipefail

BASE=${ZAQAR_REDIS_CLUSTER_PORT:-7000}
PORTS=("$BASE" "$((BASE + 1))" "$((BASE + 2))")
DIR=${ZAQAR_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/zaqar-redis-cluster-$BASE}

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

cluster_ok() {
    cli "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

url() {
    local hosts=()
    for p in "${PORTS[@]}"; do hosts+=("127.0.0.1:$p"); done
    (IFS=,; echo "redis+cluster://${hosts[*]}")
}

start() {
    command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
    if cluster_ok; then
        echo "redis cluster already up: $(url)"
        return 0
    fi
    # A half-started cluster from an earlier run is discarded.
    stop >/dev/null 2>&1 || true
    mkdir -p "$DIR"
    for p in "${PORTS[@]}"; do
        mkdir -p "$DIR/$p"
        redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$DIR/$p/nodes.conf" --cluster-node-timeout 5000 \
            --dir "$DIR/$p" --appendonly no --save '' --daemonize yes \
            --pidfile "$DIR/$p/redis.pid" --logfile "$DIR/$p/redis.log"
    done
    for p in "${PORTS[@]}"; do
        for _ in $(seq 1 100); do
            cli "$p" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        cli "$p" ping >/dev/null || { echo "node $p did not start" >&2; exit 1; }
    done
    local nodes=()
    for p in "${PORTS[@]}"; do nodes+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 || {
        cat "$DIR/create.log" >&2
        exit 1
    }
    for _ in $(seq 1 150); do
        if cluster_ok; then
            # Every node must agree before clients connect.
            local all=1
            for p in "${PORTS[@]}"; do
                cli "$p" cluster info | grep -q '^cluster_state:ok' || all=0
            done
            if [ "$all" = 1 ]; then
                echo "redis cluster up: $(url)"
                return 0
            fi
        fi
        sleep 0.2
    done
    echo "redis cluster did not reach cluster_state:ok" >&2
    exit 1
}

stop() {
    for p in "${PORTS[@]}"; do
        if [ -f "$DIR/$p/redis.pid" ]; then
            local pid
            pid=$(cat "$DIR/$p/redis.pid" 2>/dev/null || true)
            cli "$p" shutdown nosave >/dev/null 2>&1 || true
            if [ -n "$pid" ]; then
                for _ in $(seq 1 50); do
                    kill -0 "$pid" 2>/dev/null || break
                    sleep 0.1
                done
                kill -9 "$pid" 2>/dev/null || true
            fi
        fi
    done
    rm -rf "$DIR"
    echo "redis cluster stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
