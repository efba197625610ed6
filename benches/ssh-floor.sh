#!/usr/bin/env bash
# Median wall time of `corral plan` on converged lab hosts against the SSH floor: the same
# hosts reached in parallel with `ssh HOST true` over fresh connections, as corral makes.
# Prints both medians and their ratio (target: at most 1.5x on 3 hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
. benches/lib.sh
bench_lab corral-bench 10.243.0.0/24
"$corral" apply --auto-approve examples/ "$inventory" >/dev/null
"$corral" plan --detailed-exitcode examples/ "$inventory" >/dev/null   # converged: exits 0

compare target/bench-ssh-floor.json \
    "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
    "corral plan (3 hosts, converged)" "'$corral' plan examples/ '$inventory'"
