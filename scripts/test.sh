#!/usr/bin/env bash
# README command 2: every check CI runs — formatting, clippy, and all tests including the
# end-to-end tests, which start their own lab of container hosts and remove it again.
# Extra arguments go to `cargo nextest run` (or `cargo test`), e.g. a test filter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\ntest: %s\n' "$*" >&2; }

scripts/install-deps.sh

log "cargo fmt --check"
cargo fmt --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

export CORRAL_E2E=1
if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run --no-fail-fast (CORRAL_E2E=1)"
    cargo nextest run --no-fail-fast "$@"
else
    log "cargo-nextest is not installed; running cargo test --no-fail-fast (CORRAL_E2E=1)"
    cargo test --no-fail-fast "$@"
fi
