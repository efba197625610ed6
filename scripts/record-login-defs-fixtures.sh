#!/usr/bin/env bash
# Records what `os/login-defs` reads (crates/corral-kinds/src/login_defs.rs) from real hosts:
#   fixtures/facts/lab-login-defs-fresh.json      /etc/login.defs as `lab up` makes it
#   fixtures/facts/lab-login-defs-converged.json  after modules/hardening/baseline's
#                                                 login.defs document is applied
# With LAB_DIR set, it uses that lab (its ssh_config and inventory) instead of its own; its
# hosts' login.defs must then still be Debian's.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
corral=${CARGO_TARGET_DIR:-target}/debug/corral
if [[ -n ${LAB_DIR:-} ]]; then
    dir=$LAB_DIR
else
    name=corral-login-defs-fixtures
    dir=target/login-defs-fixtures-lab
    "$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
    trap '"$corral" lab down --name "$name" --dir "$dir"' EXIT
    "$corral" lab up --light --name "$name" --machines 1 --subnet 10.236.0.0/24 --dir "$dir"
fi
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
export CORRAL_SSH_CONFIG="$dir/ssh_config"
config=(fixtures/record/login-defs.yaml "$dir/inventory.yaml")
"$corral" facts --project login-defs "${config[@]}" -o fixtures/facts/lab-login-defs-fresh.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -n ${LAB_DIR:-} ]] || "$corral" lab down --name "$name" --dir "$dir"' EXIT
# The baseline's login.defs document alone, as the module's instance `base` writes it.
cat >"$tmp/baseline.yaml" <<'YAML'
kind: module
name: base
specification:
  source: hardening/baseline
  inputs:
    machines: []
    kernel_machines: []
    debian_kernel_machines: []
    kernel_modules_machines: []
    core_dumps_machines: []
    password_quality_machines: []
    banner_machines: []
    security_repository_machines: []
    audit_machines: []
YAML
"$corral" apply --auto-approve --module-path "$PWD/modules" --project login-defs-baseline "$tmp/baseline.yaml" "$dir/inventory.yaml"
"$corral" facts --project login-defs "${config[@]}" -o fixtures/facts/lab-login-defs-converged.json
