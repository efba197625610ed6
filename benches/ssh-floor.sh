#!/usr/bin/env bash
# Median wall time of `corral plan` on converged lab hosts against the SSH floor: the same
# hosts reached in parallel with `ssh HOST true` over fresh connections, as corral makes.
# Prints both medians and their ratio (target: at most 1.5x on 3 hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
scripts/install-deps.sh >/dev/null
cargo build --release --quiet
corral=$PWD/target/release/corral
name=corral-bench
dir=target/bench-lab
"$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
trap '"$corral" lab down --name "$name" --dir "$dir" >/dev/null' EXIT
"$corral" lab up --name "$name" --machines 3 --subnet 10.243.0.0/24 --dir "$dir" >/dev/null
export CORRAL_SSH_CONFIG=$PWD/$dir/ssh_config
inventory=$dir/inventory.yaml
"$corral" apply --auto-approve examples/ "$inventory" >/dev/null
"$corral" plan --detailed-exitcode examples/ "$inventory" >/dev/null   # converged: exits 0

floor="for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait"
plan="'$corral' plan examples/ '$inventory'"
hyperfine --shell=bash --warmup 3 --runs "$runs" --export-json target/bench-ssh-floor.json \
  -n "ssh floor (3 hosts, parallel)" "$floor" -n "corral plan (3 hosts, converged)" "$plan" >&2
python3 - target/bench-ssh-floor.json <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor, plan = (r["median"] for r in results)
print(f"ssh floor median:   {floor * 1000:7.1f} ms")
print(f"corral plan median: {plan * 1000:7.1f} ms")
print(f"ratio:              {plan / floor:7.2f}x (target <= 1.5x)")
PY
