#!/usr/bin/env bash
# README command 1: from a fresh Debian 12 machine (as root) to a converged lab.
#
# Installs what is missing (scripts/install-deps.sh), builds corral, starts a local lab of three
# container hosts (`corral lab up`, see TESTBED.md), applies examples/ to it, and checks that a
# second plan finds nothing left to change. The lab stays up; remove it with
# `target/release/corral lab down`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '\nquickstart: %s\n' "$*" >&2; }
die() { printf '\nquickstart: error: %s\n' "$*" >&2; exit 1; }

scripts/install-deps.sh

command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: install Rust 1.85 or newer (https://rustup.rs), then run this again"

log "building corral (release)"
cargo build --release
corral=target/release/corral
inventory=.corral-lab/inventory.yaml

log "starting the lab"
lab_out=$("$corral" lab up --machines 3)
printf '%s\n' "$lab_out"
export_line=$(grep -m1 '^export CORRAL_SSH_CONFIG=' <<<"$lab_out") ||
    die "\`corral lab up\` printed no 'export CORRAL_SSH_CONFIG=' line"
eval "$export_line"
export CORRAL_SSH_CONFIG

log "plan"
"$corral" plan examples/ "$inventory"

log "apply"
"$corral" apply --auto-approve examples/ "$inventory"

log "plan again: after apply nothing may be left to change"
status=0
"$corral" plan --detailed-exitcode examples/ "$inventory" || status=$?
case $status in
0) log "converged: the second plan has no changes. The lab is still up (ssh -F $CORRAL_SSH_CONFIG n1)." ;;
2) die "the plan after apply still has changes, so apply did not converge (see the plan above)" ;;
*) die "the plan after apply failed (exit status $status)" ;;
esac
