#!/usr/bin/env bash
# The cluster layer against the SSH floor, on a 3-host lab:
# 1. a blank-to-converged apply of examples/krill/ with seven more services (ten in all),
#    and how its wall time splits between the steps on the hosts (Docker and Gluster work,
#    as corral's per-resource `done (Ns)` lines report it), reading facts, and corral itself
#    (its own CPU time);
# 2. the median of `corral plan` on that converged cluster (facts from every host, then one
#    manager round trip for the swarm and one for the volume) against `ssh HOST true` to the
#    three hosts in parallel over fresh connections. Target: at most 1.5x.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
scripts/install-deps.sh >/dev/null
cargo build --release --quiet
corral=$PWD/target/release/corral
name=corral-bench-cluster
dir=target/bench-cluster-lab
"$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
trap '"$corral" lab down --name "$name" --dir "$dir" >/dev/null' EXIT
"$corral" lab up --name "$name" --machines 3 --subnet 10.244.0.0/24 --dir "$dir" >/dev/null
export CORRAL_SSH_CONFIG=$PWD/$dir/ssh_config
inventory=$dir/inventory.yaml
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

floor="for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait"
plan="'$corral' plan --project bench examples/krill/ benches/cluster/services.yaml '$inventory'"
hyperfine --shell=bash --warmup 3 --runs "$runs" --export-json target/bench-cluster-floor.json \
  -n "ssh floor (3 hosts, parallel)" "$floor" -n "corral plan (3-node cluster, 10 services, converged)" "$plan" >&2
python3 - target/bench-cluster-floor.json <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor, plan = (r["median"] for r in results)
print(f"ssh floor median:   {floor * 1000:7.1f} ms")
print(f"corral plan median: {plan * 1000:7.1f} ms (3-node cluster, 10 services, a volume)")
print(f"ratio:              {plan / floor:7.2f}x (target <= 1.5x)")
PY

# One host alone: its own facts and the swarm's and the volume's manager questions (n1 is
# the first manager and the first brick machine), without the other hosts sharing the CPUs.
one_floor="ssh -F '$CORRAL_SSH_CONFIG' n1 true"
one_plan="'$corral' plan --limit n1 --project bench examples/krill/ benches/cluster/services.yaml '$inventory' || true"
hyperfine --shell=bash --warmup 3 --runs "$runs" --export-json target/bench-cluster-one.json \
  -n "ssh floor (n1)" "$one_floor" -n "corral plan --limit n1" "$one_plan" >&2
python3 - target/bench-cluster-one.json <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor, plan = (r["median"] for r in results)
print(f"one host: ssh floor {floor * 1000:.1f} ms, corral plan --limit n1 {plan * 1000:.1f} ms, ratio {plan / floor:.2f}x")
PY
