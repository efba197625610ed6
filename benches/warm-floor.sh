#!/usr/bin/env bash
# Warm connections (`--keep-connections`) against the SSH floor, on 30 light lab hosts:
# the median of `corral plan` on converged hosts, cold (a new connection to each host, as
# by default) and warm (the masters kept by the previous run), at 3 and at 30 hosts, each
# against `ssh HOST true` to the same hosts in parallel over fresh connections, with
# OpenSSH's default key exchange and with the lab's curve25519.
# Goal: a warm converged plan of 30 hosts at most 0.2x the cold floor.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10}
. benches/lib.sh
bench_lab corral-bench-warm 10.247.0.0/24 --machines 30 --light
config=(--project bench benches/warm/ "$inventory")
"$corral" apply --auto-approve "${config[@]}" >/dev/null
"$corral" plan --detailed-exitcode "${config[@]}" >/dev/null # converged: exits 0
"$corral" connections close >/dev/null

# The lab's ssh_config forces curve25519; OpenSSH's default post-quantum exchange costs
# about three times as much, and is what hosts and operators use unless told otherwise.
default_kex=$lab_dir/ssh_config.default-kex
sed '/KexAlgorithms/d' "$CORRAL_SSH_CONFIG" >"$default_kex"

for hosts in 3 30; do
    limit=() names=()
    for i in $(seq 1 "$hosts"); do limit+=(--limit "n$i"); names+=("n$i"); done
    json=target/bench-warm-$hosts.json
    hyperfine --shell=bash --warmup 2 --runs "$runs" --export-json "$json" \
        -n "ssh floor, default kex ($hosts hosts)" \
        "for h in ${names[*]}; do ssh -F '$default_kex' \$h true & done; wait" \
        -n "corral plan, cold, default kex" \
        "CORRAL_SSH_CONFIG='$default_kex' '$corral' plan ${limit[*]} ${config[*]}" \
        -n "ssh floor, curve25519 ($hosts hosts)" \
        "for h in ${names[*]}; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
        -n "corral plan, cold, curve25519" \
        "'$corral' plan ${limit[*]} ${config[*]}" \
        -n "corral plan, warm" \
        "'$corral' plan --keep-connections 10m ${limit[*]} ${config[*]}" >&2
    "$corral" connections close >/dev/null
    python3 - "$json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
floor = results[0]["median"]
for r in results:
    print(f"{r['command']:<38} median {r['median'] * 1000:7.1f} ms  {r['median'] / floor:.2f}x the default-kex floor")
PY
done
echo "goal: a warm plan of 30 hosts at most 0.20x the cold (default kex) floor"
