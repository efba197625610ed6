#!/usr/bin/env bash
# The hardening modules (sysctls, sshd, the firewall with the Swarm and Gluster ports,
# packages) against the SSH floor, on a 3-host lab: the wall time of the first apply
# (every guarded change proves a new login), then the median of `corral plan` on the
# converged hosts against `ssh HOST true` to the three hosts in parallel over fresh
# connections.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
. benches/lib.sh
bench_lab corral-bench-hardening 10.246.0.0/24
config=(--project bench benches/hardening/ "$inventory")

first_apply hardening "first apply of the hardening modules" "${config[@]}"
plan_against_floor hardening "corral plan (hardening modules, converged)" "${config[@]}"
