#!/usr/bin/env bash
# Records the probe outputs under fixtures/facts/ from real lab hosts, so that unit tests
# parse what the real programs print. Run it after changing a probe:
#   lab-fresh.json      hosts as `lab up` makes them
#   lab-converged.json  after `apply examples/`
#   lab-converged-reduced.json  the same, read by tests/inputs/e2e/reduced.yaml
#   lab-drift.json      then a sysctl and a file changed by hand on n2, and n3's heartbeat
#                       configuration touched after the service started
#   lab-cluster.json    then examples/krill/ applied (a swarm, services, a volume)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
corral=target/debug/corral
name=corral-fixtures
dir=target/fixtures-lab
"$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
trap '"$corral" lab down --name "$name" --dir "$dir"' EXIT
"$corral" lab up --name "$name" --machines 3 --subnet 10.233.0.0/24 --dir "$dir"
export CORRAL_SSH_CONFIG="$PWD/$dir/ssh_config"
config=(examples/ fixtures/record/ "$dir/inventory.yaml")
# Edge cases the probes must report as they are (fixtures/record/edge-cases.yaml).
for host in n1 n2 n3; do
    ssh -F "$CORRAL_SSH_CONFIG" "$host" 'ln -sfn /etc/shadow /etc/corral-fixture-link && : > /etc/corral-fixture-empty'
done
"$corral" facts --project examples "${config[@]}" -o fixtures/facts/lab-fresh.json
"$corral" apply --auto-approve examples/ "$dir/inventory.yaml"
"$corral" facts --project examples "${config[@]}" -o fixtures/facts/lab-converged.json
# The same hosts as the reduced configuration reads them: originals of the files it no
# longer declares are read whole, for the diff of their restore.
"$corral" facts --project examples tests/inputs/e2e/reduced.yaml "$dir/inventory.yaml" -o fixtures/facts/lab-converged-reduced.json
ssh -F "$CORRAL_SSH_CONFIG" n2 'sysctl -q -w net.ipv4.conf.all.send_redirects=1 && echo "edited by hand" >> /etc/issue.net'
# A service whose configuration changed after it started (a missed restart): the touch is
# at least a second after the apply started the service.
sleep 1
ssh -F "$CORRAL_SSH_CONFIG" n3 'touch /etc/default/corral-heartbeat'
"$corral" facts --project examples "${config[@]}" -o fixtures/facts/lab-drift.json
# The Krill-like cluster (swarm, network, services, volume), converged: tests/cli.rs plans
# it from these facts (`plan --facts` of a cluster, without a lab).
"$corral" apply --auto-approve examples/krill/ "$dir/inventory.yaml"
"$corral" facts examples/krill/ "$dir/inventory.yaml" -o fixtures/facts/lab-cluster.json
# The three-layer example (secrets, a stack) on blank hosts of its own.
"$corral" lab down --name "$name" --dir "$dir"
"$corral" lab up --name "$name" --machines 3 --subnet 10.233.0.0/24 --dir "$dir"
"$corral" apply --auto-approve examples/three-layer/ "$dir/inventory.yaml"
"$corral" facts examples/three-layer/ "$dir/inventory.yaml" -o fixtures/facts/lab-stack.json
# A reload owed (tests/cli.rs plans it): the service's file changed by hand on n2, then
# applied with `--target` of the file alone, which records on n2 that the service owes a
# reload.
owed=(--project e2e-owed tests/inputs/e2e/owed.yaml "$dir/inventory.yaml")
"$corral" apply --auto-approve "${owed[@]}"
ssh -F "$CORRAL_SSH_CONFIG" n2 'echo RATE=1 > /etc/default/corral-owed'
"$corral" apply --auto-approve --target os/file.owed-config "${owed[@]}"
"$corral" facts "${owed[@]}" -o fixtures/facts/lab-owed.json
