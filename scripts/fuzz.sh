#!/usr/bin/env bash
# Bounded fuzzing of the hostile-input surfaces, for CI: message POST bodies, JSON-patch
# documents, query strings, pre-signed URL verification, WebSocket frames, zaqar.conf.
#
#   bash scripts/fuzz.sh              # every target, FUZZ_SECONDS each
#   bash scripts/fuzz.sh ws_frame     # some targets
#
# Engine (FUZZ_ENGINE=auto|libfuzzer|generator, default auto):
#   libfuzzer  cargo-fuzz (libFuzzer, coverage-guided) on the targets of fuzz/. It runs on
#              stable Rust with `--sanitizer none` (AddressSanitizer needs nightly's
#              -Zsanitizer; safe Rust does not need it to find panics and broken
#              properties). cargo-fuzz is installed with `cargo install` when missing.
#   generator  the same checks (fuzz/checks.rs) driven by the in-repo mutation generator of
#              crates/zaqar-server/tests/it/fuzz_inputs.rs (`cargo test`), when cargo-fuzz cannot be built or run.
#   auto       libfuzzer if it builds, else generator.
#
# Both replay fuzz/regressions/<target>/ first: every input that once found a bug.
# A crash fails the script and leaves the input in fuzz/artifacts/<target>/ (libFuzzer) or
# target/fuzz-failures/ (generator); fix the bug, then add the input to fuzz/regressions/.
#
# Environment: FUZZ_SECONDS (per target, default 15, i.e. 90 s of fuzzing in all),
# FUZZ_ENGINE, CARGO_FUZZ_VERSION (default 0.13.2).
# Cost in CI: cargo-fuzz install (about a minute, once per machine: ~/.cargo/bin), the
# instrumented release build of the targets (fuzz/target, separate from target/; about 8 CPU
# minutes from scratch), then 6 x FUZZ_SECONDS.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-15}"
ENGINE="${FUZZ_ENGINE:-auto}"
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"
ALL_TARGETS=(message_post json_patch query_string signed_url ws_frame config_ini)
if [[ $# -gt 0 ]]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

log() { printf 'fuzz: %s\n' "$*" >&2; }

for t in "${TARGETS[@]}"; do
    [[ -f "fuzz/fuzz_targets/$t.rs" ]] || { log "unknown target $t (${ALL_TARGETS[*]})"; exit 2; }
done

have_cargo_fuzz() { cargo fuzz --version >/dev/null 2>&1; }

libfuzzer_ready() {
    if ! have_cargo_fuzz; then
        log "installing cargo-fuzz $CARGO_FUZZ_VERSION"
        cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" || return 1
    fi
    log "building the libFuzzer targets (stable, --sanitizer none)"
    # No debug info: the fuzz build is a cold build in CI and linking is most of it. Its own
    # target dir (fuzz/target): its flags differ from the main build's, so sharing one gains
    # nothing, and the binaries are looked for there.
    export CARGO_PROFILE_RELEASE_DEBUG=false
    unset CARGO_TARGET_DIR
    (cd fuzz && cargo fuzz build --sanitizer none -O) || return 1
    for t in "${TARGETS[@]}"; do
        [[ -x "fuzz/target/x86_64-unknown-linux-gnu/release/$t" ]] || return 1
    done
}

run_libfuzzer() {
    local t failed=0 scratch status out
    for t in "${TARGETS[@]}"; do
        # New coverage goes to a scratch corpus: the committed seeds stay hand-written.
        scratch="$(mktemp -d)"
        out="$(mktemp)"
        rm -rf "fuzz/artifacts/$t"
        mkdir -p "fuzz/artifacts/$t"
        log "$t: ${SECONDS_PER_TARGET}s of libFuzzer"
        status=0
        (cd fuzz && cargo fuzz run --sanitizer none -O "$t" "$scratch" "corpus/$t" \
            "regressions/$t" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="artifacts/$t/") >"$out" 2>&1 || status=$?
        grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|thread '|.*panicked)" "$out" >&2 || true
        if [[ $status -ne 0 ]]; then
            tail -40 "$out" >&2
            log "FAIL: $t exited with status $status"
            failed=1
        fi
        if compgen -G "fuzz/artifacts/$t/crash-*" >/dev/null ||
            compgen -G "fuzz/artifacts/$t/timeout-*" >/dev/null ||
            compgen -G "fuzz/artifacts/$t/oom-*" >/dev/null; then
            log "FAIL: $t found a problem: $(ls fuzz/artifacts/"$t"/)"
            failed=1
        fi
        rm -rf "$scratch" "$out"
    done
    return $failed
}

run_generator() {
    local filter=()
    for t in "${TARGETS[@]}"; do filter+=("fuzz_$t"); done
    log "generator: ${SECONDS_PER_TARGET}s per target (crates/zaqar-server/tests/it/fuzz_inputs.rs)"
    # The test profile: CI's `cargo test` has built it already.
    ZAQAR_FUZZ_SECONDS="$SECONDS_PER_TARGET" cargo test -p zaqar-server --test it -- \
        --nocapture --test-threads 1 "${filter[@]}"
}

mkdir -p fuzz/regressions
for t in "${TARGETS[@]}"; do mkdir -p "fuzz/regressions/$t"; done
case "$ENGINE" in
    libfuzzer)
        libfuzzer_ready || { log "FAIL: cargo-fuzz targets could not be built"; exit 1; }
        run_libfuzzer
        ;;
    generator)
        run_generator
        ;;
    auto)
        if libfuzzer_ready; then
            run_libfuzzer
        else
            log "cargo-fuzz unavailable here; falling back to the generator"
            run_generator
        fi
        ;;
    *)
        log "FUZZ_ENGINE must be auto, libfuzzer or generator"
        exit 2
        ;;
esac
log "no failure"
