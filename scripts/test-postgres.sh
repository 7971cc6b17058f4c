#!/usr/bin/env bash
# Runs the PostgreSQL driver's tests against a real database: the conformance suite and the
# PostgreSQL-only checks, the two-node test (two zaqar-server processes on one schema) and the
# outage test. Every test works in its own schema (zaqar_test_<random>) and drops it at the end.
#
#   bash scripts/test-postgres.sh [extra cargo test arguments]
#
# Environment:
#   ZAQAR_TEST_POSTGRES_URL  database to use (default: postgresql://postgres@127.0.0.1:5432/test,
#                            the trust-auth server of the development machines and CI)
#
# ZAQAR_TEST_REQUIRE_BACKENDS=1 is exported: a missing or unreachable database fails the run
# instead of skipping the tests.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export ZAQAR_TEST_POSTGRES_URL="${ZAQAR_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}"
export ZAQAR_TEST_REQUIRE_BACKENDS=1

# Fail early, with a clear message, when the database is not there.
if command -v psql >/dev/null 2>&1; then
    if ! psql "$ZAQAR_TEST_POSTGRES_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
        echo "test-postgres: cannot connect to the database at ZAQAR_TEST_POSTGRES_URL" >&2
        exit 1
    fi
fi

cargo test -p zaqar-storage --lib "$@" -- postgres::
cargo test -p zaqar-storage --test it "$@" -- conformance_postgres:: postgres_faults::
cargo test -p zaqar-server --test it "$@" -- postgres_multinode::
