#!/usr/bin/env bash
# README command 2: every check CI runs — formatting, clippy, the book, and all tests
# including the end-to-end tests, which start their own lab of container hosts and remove
# it again.
# Extra arguments go to `cargo nextest run` (or `cargo test`), e.g. a test filter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\ntest: %s\n' "$*" >&2; }

scripts/install-deps.sh --book

log "cargo fmt --check"
cargo fmt --check

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The manual; its links and generated kind pages are checked by tests/docs.rs and
# tests/schemas.rs.
log "mdbook build docs"
mdbook build docs --dest-dir "$PWD/target/book"

# The end-to-end tests on a lab are `#[ignore]`d for a plain `cargo test`; here they run.
if cargo nextest --version >/dev/null 2>&1; then
    log "cargo nextest run --workspace --no-fail-fast --run-ignored all"
    cargo nextest run --workspace --no-fail-fast --run-ignored all "$@"
else
    log "cargo-nextest is not installed; running cargo test --workspace --no-fail-fast -- --include-ignored"
    cargo test --workspace --no-fail-fast "$@" -- --include-ignored
fi
