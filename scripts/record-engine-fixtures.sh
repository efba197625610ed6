#!/usr/bin/env bash
# Records the engine probe (crates/corral-core/src/facts/swarm_engine.rs: `docker info`, a
# manager's node, overlay network and service inspects, secrets and configs, asked of the
# Engine API by one perl) and, at the same moment, the CLI probes it answers for, under
# fixtures/cluster/engine/<case>.json: the tests check that the API's answer, printed as
# the CLI prints it, reads as the same facts as the CLI's own answer. The objects probe is
# project `bench`'s.
#
# LAB_DIR is a lab whose n1..n3 are managers of a swarm with services and overlay networks
# (examples/krill/ and benches/cluster/services.yaml applied). Cases:
#   manager      n1, with a secret and three configs made for the recording (removed after):
#                one labelled as corral labels them, one by hand, project bench's key
#   worker       n3, demoted for the recording (promoted again after)
#   daemon-down  n3 with dockerd stopped (started again after)
#   blank        the host of a one-host lab of its own, in no swarm
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${LAB_DIR:?LAB_DIR names the lab}
out=fixtures/cluster/engine
blank=corral-engine-blank
blank_dir=target/$blank-lab
corral=${CARGO_TARGET_DIR:-target}/debug/corral
ssh_config=$dir/ssh_config
tmp=$(mktemp -d)
on() {
    local host=$1
    shift
    ssh -F "$ssh_config" "$host" "$@"
}
objects='corral-engine-secret corral-engine-labelled corral-engine-hand corral-key.bench'
cleanup() {
    ssh_config=$dir/ssh_config
    on n1 "docker secret rm corral-engine-secret; docker config rm corral-engine-labelled corral-engine-hand corral-key.bench" >/dev/null 2>&1 || true
    on n3 'systemctl start docker' >/dev/null 2>&1 || true
    on n1 'docker node promote n3' >/dev/null 2>&1 || true
    "$corral" lab down --name "$blank" --dir "$blank_dir" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
cargo build --quiet
cargo run --quiet -p corral-core --example engine-probe >"$tmp/probes.json"
mkdir -p "$out"

# probe HOST SCRIPT FILE: runs SCRIPT on HOST as the fact script runs a probe, its output
# into FILE; prints its exit code.
probe() {
    local rc=0
    printf 'export LC_ALL=C\nexec 2>&1\np() {\n%s\n}\np </dev/null\n' "$2" | on "$1" sh -s >"$3" || rc=$?
    echo "$rc"
}

# record CASE HOST STATE: the engine probe, then each CLI probe.
record() {
    local case=$1 host=$2 state=$3 engine rc cli='{}' key script code
    engine=$(jq -r '.engine' "$tmp/probes.json")
    rc=$(probe "$host" "$engine" "$tmp/engine")
    for key in $(jq -r '.cli | keys[]' "$tmp/probes.json"); do
        script=$(jq -r --arg k "$key" '.cli[$k]' "$tmp/probes.json")
        code=$(probe "$host" "$script" "$tmp/cli")
        cli=$(jq --arg k "$key" --arg c "$script" --argjson rc "$code" --rawfile o "$tmp/cli" \
            '. + {($k): {command: $c, rc: $rc, output: $o}}' <<<"$cli")
    done
    jq -n --arg host "$host" --arg state "$state" --arg command "$engine" --argjson rc "$rc" \
        --rawfile output "$tmp/engine" --argjson cli "$cli" \
        '{host: $host, state: $state, command: $command, rc: $rc, output: $output, cli: $cli}' \
        >"$out/$case.json"
    echo "recorded engine/$case (rc $rc)"
}

on n1 'printf s3cret | docker secret create --label tier=db corral-engine-secret - &&
    printf labelled | docker config create --label io.corral.managed=bench corral-engine-labelled - &&
    printf "by hand" | docker config create corral-engine-hand - &&
    printf key | docker config create corral-key.bench -' >/dev/null
record manager n1 "3 managers, overlay networks, ten services, a secret and three configs"
on n1 "docker secret rm corral-engine-secret; docker config rm corral-engine-labelled corral-engine-hand corral-key.bench" >/dev/null
on n1 'docker node demote n3' >/dev/null
sleep 2
record worker n3 "n3 demoted to a worker"
on n1 'docker node promote n3' >/dev/null
on n3 'systemctl stop docker.socket docker.service'
record daemon-down n3 "dockerd stopped on n3"
on n3 'systemctl start docker'
"$corral" lab up --name "$blank" --machines 1 --subnet 10.249.0.0/24 --dir "$blank_dir" >/dev/null
ssh_config=$blank_dir/ssh_config
record blank n1 "a host in no swarm"
