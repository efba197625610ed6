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

TIMEFORMAT='%R'
{ time "$corral" apply --auto-approve "${config[@]}" >target/bench-hardening-apply.log 2>&1; } 2>target/bench-hardening-time
echo "first apply of the hardening modules: $(cat target/bench-hardening-time) s wall"
"$corral" plan --detailed-exitcode "${config[@]}" >/dev/null # converged: exits 0

compare target/bench-hardening-floor.json \
    "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
    "corral plan (hardening modules, converged)" \
    "'$corral' plan --project bench benches/hardening/ '$inventory'"
