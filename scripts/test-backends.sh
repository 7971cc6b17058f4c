#!/usr/bin/env bash
# Runs the backend test suites against real services, failing (not skipping) when a service is
# missing: ZAQAR_TEST_REQUIRE_BACKENDS=1. Used by CI; runnable by hand.
#
# Structure: one function per backend (setup, run, teardown), called from main. To add a
# backend, write its function and add it to BACKENDS.
#
# Environment:
#   ZAQAR_TEST_REDIS_URL  standalone Redis (default redis://127.0.0.1:6379, the machine's Redis;
#                         every test uses its own key prefix and deletes it, never FLUSHALL)
#   ZAQAR_REDIS_CLUSTER_PORT  first port of the throw-away cluster (default 7000)
#   ZAQAR_TEST_MYSQL_URL  MySQL/MariaDB server for the management store (default
#                         mysql://root@127.0.0.1:3306/test; each test makes and drops a database)
#   BACKENDS              space-separated subset to run (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

export ZAQAR_TEST_REQUIRE_BACKENDS=1
CARGO_TEST_FLAGS=${CARGO_TEST_FLAGS:-}

# Commands that undo what the backends started, run on any exit (also on Ctrl-C).
CLEANUP=()
cleanup() {
    local c
    for c in "${CLEANUP[@]}"; do $c >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

# ---- Redis (standalone + 3-master cluster) -------------------------------------------------
redis_backend() {
    export ZAQAR_TEST_REDIS_URL=${ZAQAR_TEST_REDIS_URL:-redis://127.0.0.1:6379}
    if ! redis-cli -u "$ZAQAR_TEST_REDIS_URL" ping >/dev/null 2>&1; then
        echo "Redis at $ZAQAR_TEST_REDIS_URL is not answering" >&2
        return 1
    fi
    scripts/redis-cluster.sh start || return 1
    CLEANUP+=("scripts/redis-cluster.sh stop")
    ZAQAR_TEST_REDIS_CLUSTER_URL=$(scripts/redis-cluster.sh url)
    export ZAQAR_TEST_REDIS_CLUSTER_URL
    local rc=0
    # shellcheck disable=SC2086
    cargo test $CARGO_TEST_FLAGS -p zaqar-storage --test it -- conformance_redis:: redis_sentinel:: || rc=$?
    # shellcheck disable=SC2086
    cargo test $CARGO_TEST_FLAGS -p zaqar-server --test it -- redis_fault:: redis_multinode:: || rc=$?
    scripts/redis-cluster.sh stop || true
    return $rc
}

# ---- PostgreSQL ------------------------------------------------------------------------------
postgres_backend() {
    bash scripts/test-postgres.sh $CARGO_TEST_FLAGS
}

# ---- MySQL / MariaDB (the management store) ---------------------------------------------------
mysql_backend() {
    export ZAQAR_TEST_MYSQL_URL=${ZAQAR_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}
    if ! mysql --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e 'SELECT 1' >/dev/null 2>&1 \
        && ! mysqladmin ping >/dev/null 2>&1; then
        echo "MySQL/MariaDB at $ZAQAR_TEST_MYSQL_URL is not answering" >&2
        return 1
    fi
    # shellcheck disable=SC2086
    cargo test $CARGO_TEST_FLAGS -p zaqar-storage --test it -- conformance_mysql::
}

# ---- Keystone (real keystone from PyPI, started and stopped here) ----------------------------
keystone_backend() {
    export ZAQAR_KEYSTONE_PORT=${ZAQAR_KEYSTONE_PORT:-5055}
    local env_lines
    env_lines=$(bash scripts/keystone.sh start) || return 1
    CLEANUP+=("bash scripts/keystone.sh stop")
    eval "$env_lines"
    local rc=0
    # shellcheck disable=SC2086
    cargo test $CARGO_TEST_FLAGS -p zaqar-server --test it -- keystone_auth:: || rc=$?
    # The `openstack` CLI (python-openstackclient + zaqarclient) through Keystone's catalog.
    bash scripts/interop_openstack.sh || rc=$?
    bash scripts/keystone.sh stop || true
    return $rc
}

# ---- Scale-out: pools across Redis and PostgreSQL, catalog in PostgreSQL ---------------------
# Three zaqar-server processes on 127.0.0.1:18801-18803 (the server's scale_out tests), plus
# the conformance suite through a PooledStore (the storage crate's conformance_pooled). Prints 1-node vs
# 3-node throughput. ZAQAR_SCALE_OUT_MESSAGES sets the messages per phase (default 3000).
scaleout_backend() {
    export ZAQAR_TEST_REDIS_URL=${ZAQAR_TEST_REDIS_URL:-redis://127.0.0.1:6379}
    export ZAQAR_TEST_POSTGRES_URL="${ZAQAR_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
    if ! redis-cli -u "$ZAQAR_TEST_REDIS_URL" ping >/dev/null 2>&1; then
        echo "Redis at $ZAQAR_TEST_REDIS_URL is not answering" >&2
        return 1
    fi
    local rc=0
    # shellcheck disable=SC2086
    cargo test $CARGO_TEST_FLAGS -p zaqar-storage --test it -- conformance_pooled:: || rc=$?
    # shellcheck disable=SC2086
    cargo test $CARGO_TEST_FLAGS -p zaqar-server --test it -- --nocapture scale_out:: || rc=$?
    return $rc
}

# ---- main ----------------------------------------------------------------------------------
ALL_BACKENDS="redis postgres mysql keystone scaleout"
BACKENDS=${BACKENDS:-$ALL_BACKENDS}

status=0
for b in $BACKENDS; do
    echo "==== backend: $b"
    if ! "${b}_backend"; then
        echo "==== backend $b FAILED" >&2
        status=1
    fi
done
exit $status
