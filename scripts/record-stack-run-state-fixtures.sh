#!/usr/bin/env bash
# Records a `swarm/stack` whose service does not run as declared, for the stack's plan
# (crates/corral-kinds/src/swarm_stack.rs, which compares what runs with swarm/service's own rules):
# the run probe, `docker node inspect`, `docker service inspect` and `docker network
# inspect` under fixtures/stack-run-state/<fact>/<case>.json, from real dockerd on a 3-host
# lab. Run it after changing a probe; the tests compare each fixture's `command` with the
# probe's script. Same pattern as scripts/record-run-state-fixtures.sh.
#
# LAB_DIR=/tmp/lab-x uses that lab (its hosts in no swarm: the script makes one and leaves
# it at the end); without it the script brings up a lab of its own and takes it down.
# States, in order:
#   converged  n1 manager, n2 and n3 workers; stack `app` deployed as corral deploys the
#              Compose file below (corral's labels of project `default`, no pass-through
#              keys): global `app_web` (host port 18082) on all three, replicated `app_api`
#              (2 tasks)
#   short      n2's port 18082 taken by a container of its own after app_web's task there
#              was removed (the task fails again and again); the file unchanged
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
out=fixtures/stack-run-state
tmp=$(mktemp -d)
if [[ -n ${LAB_DIR:-} ]]; then
    dir=$LAB_DIR
    trap 'for h in n1 n2 n3; do on $h "docker rm -f squat; docker swarm leave --force" >/dev/null 2>&1 || true; done; rm -rf "$tmp"' EXIT
else
    cargo build --quiet
    corral=target/debug/corral
    name=corral-stack-run-state-fixtures
    dir=target/stack-run-state-fixtures-lab
    "$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
    trap '"$corral" lab down --name "$name" --dir "$dir"; rm -rf "$tmp"' EXIT
    "$corral" lab up --name "$name" --machines 3 --subnet 10.235.0.0/24 --dir "$dir"
fi
ssh_config=$dir/ssh_config

on() {
    local host=$1
    shift
    ssh -F "$ssh_config" "$host" "$@"
}

# The probes' scripts, byte for byte as crates/corral-core/src/facts/swarm.rs generates them.
service_run='ls=$(docker service ls --format '\''{{.ID}}|{{.Mode}}|{{.Replicas}}|{{.Name}}'\'') && printf '\''%s\n'\'' "$ls" && ids=$(printf '\''%s\n'\'' "$ls" | awk -F'\''|'\'' '\''NF >= 4 { split($3, c, /[\/ ]/); if ($2 == "global" || c[1] + 0 < c[2] + 0) print $1 }'\'') && if [ -n "$ids" ]; then echo corral-tasks; docker service ps --no-trunc --format '\''{{json .}}'\'' $ids 2>/dev/null || true; fi'
node_inspect='ids=$(docker node ls -q) && docker node inspect --format '\''{{json .}}'\'' $ids'
service_inspect='ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service inspect --format '\''{{json .}}'\'' $ids; fi'
network_inspect='ids=$(docker network ls -q --filter driver=overlay) && if [ -n "$ids" ]; then docker network inspect --format '\''{"Name":{{json .Name}},"Id":{{json .Id}},"Scope":{{json .Scope}},"Driver":{{json .Driver}},"EnableIPv6":{{json .EnableIPv6}},"IPAM":{{json .IPAM}},"Internal":{{json .Internal}},"Attachable":{{json .Attachable}},"Ingress":{{json .Ingress}},"Options":{{json .Options}},"Labels":{{json .Labels}}}'\'' $ids; fi'

# The Compose file as corral renders it for project `default`: the test declares the same
# file without the `deploy.labels`, which corral adds (io.corral.opaque: the digest of no
# pass-through keys).
compose='version: "3.8"
services:
  web:
    image: local/busybox:1
    command: ["sh", "-c", "mkdir -p /w && echo ok >/w/index.html && httpd -f -p 8080 -h /w"]
    ports:
      - { target: 8080, published: 18082, mode: host }
    deploy:
      mode: global
      labels: { io.corral.managed: default, io.corral.opaque: e3b0c44298fc1c14 }
  api:
    image: local/busybox:1
    command: ["sleep", "86400"]
    deploy:
      replicas: 2
      labels: { io.corral.managed: default, io.corral.opaque: e3b0c44298fc1c14 }
'

# record FACT CASE HOST STATE SCRIPT: runs SCRIPT on HOST as the fact script runs a probe.
record() {
    local fact=$1 case=$2 host=$3 state=$4 script=$5
    local rc=0
    printf 'export LC_ALL=C\nexec 2>&1\np() {\n%s\n}\np </dev/null\n' "$script" |
        on "$host" sh -s >"$tmp/output" || rc=$?
    mkdir -p "$out/$fact"
    jq -n --arg host "$host" --arg state "$state" --arg command "$script" \
        --argjson rc "$rc" --rawfile output "$tmp/output" \
        '{host: $host, state: $state, command: $command, rc: $rc, output: $output}' \
        >"$out/$fact/$case.json"
    echo "recorded $fact/$case (rc $rc)"
}

# record_all CASE STATE: every fact of the stack's plan, on the manager.
record_all() {
    record service-run "$1" n1 "$2" "$service_run"
    record node-inspect "$1" n1 "$2" "$node_inspect"
    record service-inspect "$1" n1 "$2" "$service_inspect"
    record network-inspect "$1" n1 "$2" "$network_inspect"
}

# wait_for WHAT HOST CONDITION: polls CONDITION on HOST for up to 120 s.
wait_for() {
    local what=$1 host=$2 condition=$3
    for _ in $(seq 120); do
        if on "$host" "$condition" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    echo "timed out waiting for $what on $host" >&2
    return 1
}

rm -rf "$out"
# n1's address on the lab network, as the inventory gives it (not docker0's).
ip=$(awk '$1 == "name:" { host = $2 } $1 == "ip:" && host == "n1" { print $2; exit }' "$dir/inventory.yaml")
on n1 "docker swarm init --advertise-addr $ip" >/dev/null
token=$(on n1 'docker swarm join-token -q worker')
for host in n2 n3; do
    on "$host" "docker swarm join --token $token $ip:2377" >/dev/null
done
printf '%s' "$compose" | on n1 'docker stack deploy --prune --resolve-image changed -c - app' >/dev/null
wait_for "app_web on 3 nodes, app_api 2/2" n1 \
    '[ "$(docker service ps -q --filter desired-state=running app_web | wc -l)" = 3 ] &&
     [ -z "$(docker service ps --filter desired-state=running --format "{{.CurrentState}}" app_web app_api | grep -v ^Running)" ] &&
     [ "$(docker service ls --filter name=app_api --format "{{.Replicas}}")" = 2/2 ]'
record_all converged "swarm: n1 manager, n2 and n3 workers; stack app: app_web (global, host port 18082) and app_api (2 replicas) running"

on n2 'docker rm -f $(docker ps -q --filter label=com.docker.swarm.service.name=app_web) >/dev/null &&
    docker run -d --name squat -p 18082:8080 local/busybox:1 sleep 86400 >/dev/null'
wait_for "app_web's task failing on n2" n1 \
    'docker service ps --no-trunc --format "{{.Node}} {{.Error}}" app_web | grep -q "^n2 .*port is already allocated"'
record_all short "swarm: stack app as converged, n2's port 18082 taken (app_web's task there fails)"

echo "recorded $(find "$out" -name '*.json' | wc -l) fixtures in $((SECONDS - started)) s"
