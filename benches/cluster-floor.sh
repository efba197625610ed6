#!/usr/bin/env bash
# The cluster layer against the SSH floor, on a 3-host lab:
# 1. a blank-to-converged apply of examples/krill/ with seven more services (ten in all),
#    and how its wall time splits between the steps on the hosts (Docker and Gluster work,
#    as corral's per-resource `done (Ns)` lines report it), reading facts, and corral itself
#    (its own CPU time);
# 2. the median of `corral plan` on that converged cluster (facts from every host, then one
#    manager round trip for the swarm and one for the volume) against `ssh HOST true` to the
#    three hosts in parallel over fresh connections. Target: at most 1.5x;
# 3. the same with ninety more services (100 in all, generated under target/). Target: at
#    most 2x.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
. benches/lib.sh
bench_lab corral-bench-cluster 10.244.0.0/24
config=(--project bench examples/krill/ benches/cluster/services.yaml "$inventory")

plan_start=$(date +%s.%N)
"$corral" plan "${config[@]}" >/dev/null
plan_end=$(date +%s.%N)
log=target/bench-cluster-apply.log
TIMEFORMAT='%R %U %S'
{ time "$corral" apply --auto-approve "${config[@]}" >"$log" 2>&1; } 2>target/bench-cluster-time
read -r wall user sys <target/bench-cluster-time
"$corral" plan --detailed-exitcode "${config[@]}" >/dev/null   # converged: exits 0
python3 - "$log" "$wall" "$user" "$sys" "$plan_start" "$plan_end" <<'PY'
import re, sys
log, wall, user, sys_, p0, p1 = sys.argv[1], *map(float, sys.argv[2:])
steps = {}
for line in open(log):
    m = re.match(r"(\S+): (\S+): done \(([\d.]+)s\)", line)
    if m:
        steps[m.group(2)] = max(steps.get(m.group(2), 0.0), float(m.group(3)))
cluster = sum(v for k, v in steps.items() if k.startswith(("swarm/", "gluster/")))
other = sum(v for k, v in steps.items() if not k.startswith(("swarm/", "gluster/")))
print(f"blank-to-converged apply: {wall:.1f} s wall")
print(f"  swarm and gluster steps, summed (services run at the same time): {cluster:.1f} s")
print(f"  per-machine steps (daemon restarts one at a time, ...): {other:.1f} s")
print(f"  reading facts (a plan of the blank hosts): {p1 - p0:.2f} s")
print(f"  corral's own CPU: {user + sys_:.2f} s")
PY

compare target/bench-cluster-floor.json \
    "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
    "corral plan (3-node cluster, 10 services, a volume, converged)" \
    "'$corral' plan --project bench examples/krill/ benches/cluster/services.yaml '$inventory'"

# One host alone: its own facts and the swarm's and the volume's manager questions (n1 is
# the first manager and the first brick machine), without the other hosts sharing the CPUs.
compare target/bench-cluster-one.json \
    "ssh floor (n1)" "ssh -F '$CORRAL_SSH_CONFIG' n1 true" \
    "corral plan --limit n1" \
    "'$corral' plan --limit n1 --project bench examples/krill/ benches/cluster/services.yaml '$inventory' || true"

# 100 services: ninety more, one task each. Applied until converged: a manager's sshd
# refuses sessions beyond its MaxSessions (10) while many services are created at once,
# and the next apply creates what was refused.
more=target/bench-cluster-more.yaml
{
    echo "# Ninety more services for benches/cluster-floor.sh (generated)."
    for i in $(seq 8 97); do
        printf -- '---\nkind: swarm/service\nname: worker%s\nspecification:\n  image: local/busybox:1\n  command: [sleep, "86400"]\n  replicas: 1\n  networks: [krill]\n  env: { WORKER: "%s" }\n  labels: { bench: "true" }\n' "$i" "$i"
    done
} >"$more"
config100=(--project bench examples/krill/ benches/cluster/services.yaml "$more" "$inventory")
for _ in 1 2 3; do
    "$corral" apply --auto-approve "${config100[@]}" >target/bench-cluster-100-apply.log 2>&1 || true
    if "$corral" plan --detailed-exitcode "${config100[@]}" >/dev/null; then break; fi
done
"$corral" plan --detailed-exitcode "${config100[@]}" >/dev/null # converged: exits 0
compare target/bench-cluster-100.json \
    "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
    "corral plan (3-node cluster, 100 services, a volume, converged)" \
    "$(printf '%q ' "$corral" plan "${config100[@]}")" 2
