#!/usr/bin/env bash
# Records what runs on a swarm, for the plan's "does the service run as declared" check
# (crates/corral-core/src/facts/swarm.rs `service_run_probe`, `not_running`): the run probe, `docker node
# inspect` and `docker service inspect` under fixtures/run-state/<fact>/<case>.json, from real dockerd on a 3-host lab.
# Run it after changing either probe; the tests compare each fixture's `command` with the
# probe's script.
#
# LAB_DIR=/tmp/lab-x uses that lab (its hosts in no swarm: the script makes one and leaves
# it at the end); without it the script brings up a lab of its own and takes it down.
# States, in order:
#   converged   n1 manager, n2 and n3 workers; global `web` (host port 18081) on all three,
#               replicated `api` (2 tasks); both, and `stuck` below, carry corral's label of
#               project `default`
#   port-taken  n2's port 18081 taken by a container of its own after web's task there was
#               removed (the task fails again and again); `stuck` (replicated, constrained to
#               a label no node has); `oneshot` (restart condition none, its task completed)
#   drained     n2's port free again, n3 drained (web runs on n1 and n2 only)
#   node-down   n3 active again, then dockerd stopped on n3 (Down)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
out=fixtures/run-state
tmp=$(mktemp -d)
if [[ -n ${LAB_DIR:-} ]]; then
    dir=$LAB_DIR
    trap 'for h in n1 n2 n3; do on $h "docker rm -f squat; docker swarm leave --force" >/dev/null 2>&1 || true; done; rm -rf "$tmp"' EXIT
else
    cargo build --quiet
    corral=target/debug/corral
    name=corral-run-state-fixtures
    dir=target/run-state-fixtures-lab
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
on n1 'docker service create --detach --quiet --name web --mode global --label io.corral.managed=default \
    --publish published=18081,target=8080,mode=host local/busybox:1 \
    sh -c "mkdir -p /w && echo ok >/w/index.html && httpd -f -p 8080 -h /w" &&
    docker service create --detach --quiet --name api --replicas 2 --label io.corral.managed=default local/busybox:1 sleep 86400' >/dev/null
wait_for "web on 3 nodes, api 2/2" n1 \
    '[ "$(docker service ps -q --filter desired-state=running web | wc -l)" = 3 ] &&
     [ -z "$(docker service ps --filter desired-state=running --format "{{.CurrentState}}" web api | grep -v ^Running)" ] &&
     [ "$(docker service ls --filter name=api --format "{{.Replicas}}")" = 2/2 ]'
state="swarm: n1 manager, n2 and n3 workers; web (global, host port 18081) and api (2 replicas) running"
record service-run converged n1 "$state" "$service_run"
record node-inspect converged n1 "$state" "$node_inspect"
record service-inspect converged n1 "$state" "$service_inspect"

on n2 'docker rm -f $(docker ps -q --filter label=com.docker.swarm.service.name=web) >/dev/null &&
    docker run -d --name squat -p 18081:8080 local/busybox:1 sleep 86400 >/dev/null'
on n1 'docker service create --detach --quiet --name stuck --label io.corral.managed=default --constraint node.labels.role==nowhere \
        local/busybox:1 sleep 86400 &&
    docker service create --detach --quiet --name oneshot --restart-condition none local/busybox:1 true' >/dev/null
wait_for "web's task failing on n2, oneshot complete, stuck's error" n1 \
    'docker service ps --no-trunc --format "{{.Node}} {{.Error}}" web | grep -q "^n2 .*port is already allocated" &&
     docker service ps --format "{{.CurrentState}}" oneshot | grep -q ^Complete &&
     [ -n "$(docker service ps --format "{{.Error}}" stuck)" ]'
state="swarm: as converged, n2's port 18081 taken (web's task there fails); stuck (constrained to no node); oneshot (restart none, completed)"
record service-run port-taken n1 "$state" "$service_run"
record node-inspect port-taken n1 "$state" "$node_inspect"
record service-inspect port-taken n1 "$state" "$service_inspect"

on n2 'docker rm -f squat' >/dev/null
on n1 'docker service rm stuck oneshot && docker node update --availability drain n3' >/dev/null
wait_for "web on n1 and n2 only" n1 \
    '[ "$(docker service ps --filter desired-state=running --format "{{.Node}} {{.CurrentState}}" web | grep -c " Running")" = 2 ] &&
     ! docker service ps --filter desired-state=running --format "{{.Node}}" web | grep -q n3'
state="swarm: web (global) and api; n3 drained"
record service-run drained n1 "$state" "$service_run"
record node-inspect drained n1 "$state" "$node_inspect"

on n1 'docker node update --availability active n3' >/dev/null
wait_for "web on 3 nodes" n1 \
    '[ "$(docker service ps --filter desired-state=running --format "{{.CurrentState}}" web | grep -c ^Running)" = 3 ]'
on n3 'systemctl stop docker.socket docker.service'
wait_for "n3 down" n1 '[ "$(docker node inspect --format "{{.Status.State}}" n3)" = down ]'
state="swarm: web (global) and api; dockerd stopped on n3 (Down)"
record service-run node-down n1 "$state" "$service_run"
record node-inspect node-down n1 "$state" "$node_inspect"
on n3 'systemctl start docker.socket docker.service'

echo "recorded $(find "$out" -name '*.json' | wc -l) fixtures in $((SECONDS - started)) s"
