#!/usr/bin/env bash
# Median wall time of `corral plan` on converged lab hosts against the SSH floor: the same
# hosts reached in parallel with `ssh HOST true` over fresh connections, as corral makes.
# Prints both medians and their ratio (target: at most 1.1x on 3 hosts, issue 24's goal).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
. benches/lib.sh
bench_lab corral-bench 10.243.0.0/24
first_apply ssh "first apply of examples/" examples/ "$inventory"
BENCH_TARGET=1.1 plan_against_floor ssh "corral plan (3 hosts, converged)" examples/ "$inventory"
