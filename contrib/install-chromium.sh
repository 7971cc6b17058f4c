#!/usr/bin/env bash
# Installs Debian's Chromium for the web console's end-to-end test (crates/zaqar-server/tests/it/metrics.rs,
# `console_end_to_end_in_headless_chromium`), which skips without it unless
# ZAQAR_TEST_REQUIRE_BROWSER=1. Run as root (CI runs as root). Idempotent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(chromium --version 2>/dev/null || echo installed)"
