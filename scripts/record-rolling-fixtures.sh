#!/usr/bin/env bash
# Records what the rolling-change health checks (crates/corral-core/src/rolling.rs) read, from real dockerd and
# glusterd on a 3-host lab, under fixtures/rolling/<fact>/<case>.json, healthy and not:
#   healthy     n1, n2, n3 managers; a global service `web` on host port 8080 and a
#               replicated `api` (2); replica 3 arbiter 1 volume gv, mounted on every host
#   node-down   dockerd stopped on n3: n3 Down, its manager Unreachable
#   back        dockerd started again on n3: n3 Ready, its `web` task not running yet
#   failing     a service whose task exits 1 (Failed) and one no node can take (Pending)
#   heal-queue  n3's brick killed, files written on n1: entries to heal, n3 not connected
#   healing     n3's brick started again: connected, entries not healed yet (when caught)
#   (and, healthy, the heal info of a volume that does not exist: not created yet)
# Each record holds the probe's exact script (the tests compare it with the probe's), its
# exit code and output (stderr joined, LC_ALL=C, stdin from /dev/null).
# LAB_NAME / LAB_DIR / LAB_SUBNET choose the lab; one is brought up when not running, and
# taken down at the end only when this script brought it up.
set -euo pipefail
cd "$(dirname "$0")/.."
corral=${CORRAL:-target/debug/corral}
name=${LAB_NAME:-corral-rolling-fixtures}
dir=${LAB_DIR:-target/rolling-fixtures-lab}
subnet=${LAB_SUBNET:-10.235.0.0/24}
out=fixtures/rolling
tmp=$(mktemp -d)
if [[ -f $dir/ssh_config ]] && ssh -F "$dir/ssh_config" n1 true 2>/dev/null; then
    trap 'rm -rf "$tmp"' EXIT
else
    "$corral" lab up --name "$name" --machines 3 --subnet "$subnet" --dir "$dir"
    trap '"$corral" lab down --name "$name" --dir "$dir"; rm -rf "$tmp"' EXIT
fi
on() { local host=$1; shift; ssh -F "$dir/ssh_config" "$host" "$@"; }

# Byte for byte as crates/corral-core/src/facts/swarm.rs and crates/corral-core/src/rolling.rs generate them.
node_ls='docker node ls --format '\''{{json .}}'\'''
service_ls='docker service ls --format '\''{{json .}}'\'''
service_ps='ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service ps --no-trunc --format '\''{{json .}}'\'' $ids; fi'
heal_info='gluster --mode=script volume heal gv info'

record() {
    local fact=$1 case=$2 host=$3 state=$4 script=$5 rc=0
    printf 'export LC_ALL=C\nexec 2>&1\np() {\n%s\n}\np </dev/null\n' "$script" |
        on "$host" sh -s >"$tmp/output" || rc=$?
    mkdir -p "$out/$fact"
    jq -n --arg host "$host" --arg state "$state" --arg command "$script" \
        --argjson rc "$rc" --rawfile output "$tmp/output" \
        '{host: $host, state: $state, command: $command, rc: $rc, output: $output}' \
        >"$out/$fact/$case.json"
    echo "recorded $fact/$case (rc $rc)"
}
wait_for() {
    local what=$1 host=$2 condition=$3 i
    for i in $(seq 90); do
        if on "$host" "$condition" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    echo "timed out waiting for $what" >&2
    exit 1
}

# The swarm: three managers.
if ! on n1 'docker node ls' >/dev/null 2>&1; then
    on n1 'docker swarm init --advertise-addr $(hostname -i | cut -d" " -f1)' >/dev/null
    token=$(on n1 'docker swarm join-token -q manager')
    addr=$(on n1 'hostname -i | cut -d" " -f1')
    for h in n2 n3; do
        printf '%s\n' "$token" | on "$h" "read t; docker swarm join --token \"\$t\" $addr:2377" >/dev/null
    done
fi
on n1 'docker service inspect web >/dev/null 2>&1 || docker service create -d --name web --mode global --publish mode=host,target=8080,published=8080 local/busybox:1 busybox sh -c "mkdir -p /www && hostname > /www/index.html && exec busybox httpd -f -p 8080 -h /www"' >/dev/null
on n1 'docker service inspect api >/dev/null 2>&1 || docker service create -d --name api --replicas 2 local/busybox:1 busybox sleep 1d' >/dev/null
# The volume.
if ! on n1 'gluster --mode=script volume info gv' >/dev/null 2>&1; then
    on n1 'gluster --mode=script peer probe n2 && gluster --mode=script peer probe n3' >/dev/null
    wait_for "peers" n1 '[ "$(gluster --mode=script pool list | grep -c Connected)" = 3 ]'
    on n1 'gluster --mode=script volume create gv replica 3 arbiter 1 n1:/data/bricks/gv n2:/data/bricks/gv n3:/data/bricks/gv && gluster --mode=script volume start gv' >/dev/null
fi
for h in n1 n2 n3; do
    on "$h" 'mkdir -p /mnt/gv && (mountpoint -q /mnt/gv || mount -t glusterfs localhost:/gv /mnt/gv)'
done
wait_for "services" n1 '[ "$(docker service ls --format "{{.Replicas}}" | sort | tr "\n" " ")" = "2/2 3/3 " ]'

state="healthy: n1 n2 n3 managers; web global on host port 8080, api replicated 2; volume gv replica 3 arbiter 1"
record node-ls healthy n1 "$state" "$node_ls"
record service-ls healthy n1 "$state" "$service_ls"
record service-ps healthy n1 "$state" "$service_ps"
record heal-info healthy n1 "$state" "$heal_info"
record heal-info no-such-volume n1 "$state" 'gluster --mode=script volume heal absent info'

on n3 'systemctl stop docker.socket docker.service'
wait_for "n3 down" n1 'docker node ls --format "{{.Hostname}} {{.Status}}" | grep -qx "n3 Down"'
state="node-down: dockerd stopped on n3 (a manager)"
record node-ls node-down n1 "$state" "$node_ls"
record service-ls node-down n1 "$state" "$service_ls"
record service-ps node-down n1 "$state" "$service_ps"

on n3 'systemctl start docker.service'
# The moment n3 is Ready again while its web task is not running yet: recorded until caught.
caught=
for i in $(seq 100); do
    state="back: dockerd started again on n3, n3 Ready, its web task not running yet"
    record node-ls back n1 "$state" "$node_ls" >/dev/null
    record service-ps back n1 "$state" "$service_ps" >/dev/null
    if jq -r .output "$out/node-ls/back.json" | jq -e 'select(.Hostname == "n3" and .Status == "Ready")' >/dev/null &&
        jq -r .output "$out/service-ps/back.json" | jq -se 'map(select(.Node == "n3" and (.Name | startswith("web.")) and .DesiredState == "Running" and (.CurrentState | startswith("Running") | not))) | length > 0' >/dev/null; then
        echo "recorded node-ls/back, service-ps/back"
        caught=1
        break
    fi
done
[[ -n $caught ]] || echo "did not catch n3 back before its task ran" >&2
wait_for "services" n1 '[ "$(docker service ls --format "{{.Replicas}}" | sort | tr "\n" " ")" = "2/2 3/3 " ]'

on n1 'docker service create -d --name crash --restart-max-attempts 2 --restart-delay 1s local/busybox:1 busybox false && docker service create -d --name stuck --constraint node.labels.none==1 local/busybox:1 busybox sleep 1d' >/dev/null
wait_for "a failed task" n1 'docker service ps crash --format "{{.CurrentState}}" | grep -q ^Failed'
state="failing: crash's task exits 1 (Failed), stuck is constrained to a label no node has (Pending)"
record service-ls failing n1 "$state" "$service_ls"
record service-ps failing n1 "$state" "$service_ps"
on n1 'docker service rm crash stuck' >/dev/null

brick=$(on n3 "gluster --mode=script volume status gv n3:/data/bricks/gv --xml | sed -n 's:.*<pid>\([0-9]*\)</pid>.*:\1:p' | head -1")
on n3 "kill $brick"
on n1 'for i in 1 2 3 4 5; do echo "file $i" > /mnt/gv/f$i; done'
wait_for "entries to heal" n1 'gluster --mode=script volume heal gv info | grep -q "^Number of entries: [1-9]"'
state="heal-queue: n3's brick process killed, five files written through n1's mount"
record heal-info heal-queue n1 "$state" "$heal_info"
on n1 'gluster --mode=script volume start gv force' >/dev/null
state="healing: n3's brick started again (volume start force), entries not healed yet"
record heal-info healing n1 "$state" "$heal_info"
wait_for "heal" n1 '! gluster --mode=script volume heal gv info | grep -q "^Number of entries: [1-9]"'
echo "recorded in $((SECONDS)) s"
