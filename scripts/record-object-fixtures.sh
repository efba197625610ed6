#!/usr/bin/env bash
# Records the output of the secrets-and-configs probe (crates/corral-kinds/src/swarm_secret.rs, `probe`)
# under fixtures/cluster/objects/rotated.json, from a real swarm on a lab of its own: the
# configuration in fixtures/record/objects/try12/ is applied (which creates the swarm's key,
# a secret and a config), its secret given a new value and applied again (a rotation), then
# the probe is run on n1 as the facts script runs it. The unit tests check that the names
# the swarm holds are those corral gives the same values under the recorded key, and that
# the fixture's `command` is the probe's script.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
corral=$PWD/target/debug/corral
name=corral-object-fixtures
dir=$PWD/target/object-fixtures-lab
tmp=$(mktemp -d)
"$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
trap '"$corral" lab down --name "$name" --dir "$dir"; rm -rf "$tmp"' EXIT
"$corral" lab up --name "$name" --machines 3 --subnet 10.236.0.0/24 --dir "$dir"
export CORRAL_SSH_CONFIG=$dir/ssh_config
cp -r fixtures/record/objects/try12 "$tmp/try12"
"$corral" apply --auto-approve "$tmp/try12" "$dir/inventory.yaml"
printf 'rotated-canary-5521' >"$tmp/try12/db_pw.txt"
"$corral" apply --auto-approve "$tmp/try12" "$dir/inventory.yaml"
script='ids=$(docker secret ls -q) && if [ -n "$ids" ]; then docker secret inspect --format '"'"'secret {{json .Spec.Name}} {{json .Spec.Labels}}'"'"' $ids | sort; fi && ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format '"'"'config {{json .Spec.Name}} {{json .Spec.Labels}}'"'"' $ids | sort; fi && if docker config inspect corral-key.try12 >/dev/null 2>&1; then docker config inspect --format '"'"'key {{json .Spec.Data}}'"'"' corral-key.try12; else echo '"'"'key absent'"'"'; fi'
rc=0
printf 'export LC_ALL=C\nexec 2>&1\np() {\n%s\n}\np </dev/null\n' "$script" |
    ssh -F "$CORRAL_SSH_CONFIG" n1 sh -s >"$tmp/output" || rc=$?
mkdir -p fixtures/cluster/objects
jq -n --arg host n1 \
    --arg state "swarm n1-n3 managers; project try12: secret db_pw rotated once (one version), config app_conf, the key" \
    --arg command "$script" --argjson rc "$rc" --rawfile output "$tmp/output" \
    '{host: $host, state: $state, command: $command, rc: $rc, output: $output}' \
    >fixtures/cluster/objects/rotated.json
echo "recorded objects/rotated (rc $rc)"
