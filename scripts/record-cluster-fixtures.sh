#!/usr/bin/env bash
# Records the outputs of the Swarm and Gluster fact probes (crates/corral-core/src/facts/swarm.rs,
# crates/corral-core/src/facts/gluster.rs) under fixtures/cluster/<fact>/<case>.json, from real dockerd and
# glusterd on a 3-host lab of its own, so that the parsers' unit tests read what the real
# programs print. Run it after changing a probe; the tests compare each fixture's `command`
# with the probe's script, so a changed probe cannot keep passing on stale output.
#
# Each record holds the host, the lab state it was taken in, the probe's exact script, its
# exit code and its output (stderr joined to stdout, LC_ALL=C, stdin from /dev/null: as the
# fact script runs probes). States, in order:
#   blank     hosts as `lab up` makes them: no swarm, no peers, no volumes
#   swarm     n1 initialised, n2 joined as manager, n3 as worker; node labels; two overlay
#             networks (one encrypted, one attachable and labelled); a global service with a
#             host-mode port and a replicated one with constraint, env, mounts, networks,
#             secret, config, update policy and labels, updated once
#   gluster   n2 and n3 probed from n1; replica 3 arbiter 1 volume gv0, options set, started,
#             mounted on n1 through /etc/fstab
#   failures  a task that cannot be scheduled, a failed update (paused), a killed brick, a
#             stopped glusterd, a stopped leader, then a swarm without quorum
# A join token is recorded only as its shape: the script replaces it before it is written.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
cargo build --quiet
corral=target/debug/corral
name=corral-cluster-fixtures
dir=target/cluster-fixtures-lab
net=10.234.0
out=fixtures/cluster
"$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
tmp=$(mktemp -d)
trap '"$corral" lab down --name "$name" --dir "$dir"; rm -rf "$tmp"' EXIT
"$corral" lab up --name "$name" --machines 3 --subnet "$net.0/24" --dir "$dir"
ssh_config=$dir/ssh_config

on() {
    local host=$1
    shift
    ssh -F "$ssh_config" "$host" "$@"
}

# Probe scripts, byte for byte as crates/corral-core/src/facts/{swarm,gluster}.rs generate them (paths and
# names below need no quoting, so the scripts' quoted values are written bare).
swarm_info='docker info --format '\''{{if .ServerErrors}}{{range .ServerErrors}}{{println .}}{{end}}{{else}}{"NodeID":{{json .Swarm.NodeID}},"NodeAddr":{{json .Swarm.NodeAddr}},"LocalNodeState":{{json .Swarm.LocalNodeState}},"ControlAvailable":{{json .Swarm.ControlAvailable}},"Error":{{json .Swarm.Error}},"Nodes":{{json .Swarm.Nodes}},"Managers":{{json .Swarm.Managers}}{{if .Swarm.Cluster}},"Cluster":{"ID":{{json .Swarm.Cluster.ID}},"DefaultAddrPool":{{json .Swarm.Cluster.DefaultAddrPool}},"SubnetSize":{{json .Swarm.Cluster.SubnetSize}},"DataPathPort":{{json .Swarm.Cluster.DataPathPort}}}{{end}}}{{end}}'\'''
node_ls='docker node ls --format '\''{{json .}}'\'''
node_inspect='ids=$(docker node ls -q) && docker node inspect --format '\''{{json .}}'\'' $ids'
network_ls='docker network ls --filter driver=overlay --format '\''{{json .}}'\'''
network_inspect='ids=$(docker network ls -q --filter driver=overlay) && if [ -n "$ids" ]; then docker network inspect --format '\''{"Name":{{json .Name}},"Id":{{json .Id}},"Scope":{{json .Scope}},"Driver":{{json .Driver}},"EnableIPv6":{{json .EnableIPv6}},"IPAM":{{json .IPAM}},"Internal":{{json .Internal}},"Attachable":{{json .Attachable}},"Ingress":{{json .Ingress}},"Options":{{json .Options}},"Labels":{{json .Labels}}}'\'' $ids; fi'
kernel_features='pattern='\''^(# )?CONFIG_(INET_ESP|IP_VS)( |=)'\''
if [ -r /proc/config.gz ]; then zcat /proc/config.gz 2>/dev/null | grep -E "$pattern"
elif [ -r "/boot/config-$(uname -r)" ]; then grep -E "$pattern" "/boot/config-$(uname -r)"
fi
[ -d /sys/module/esp4 ] && echo '\''module=esp4'\''
[ -e /proc/net/ip_vs ] && echo '\''module=ip_vs'\''
true'
service_ls='docker service ls --format '\''{{json .}}'\'''
service_inspect='ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service inspect --format '\''{{json .}}'\'' $ids; fi'
service_ps='ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service ps --no-trunc --format '\''{{json .}}'\'' $ids; fi'
join_token_worker='docker swarm join-token -q worker'
peer_status='gluster --mode=script --xml peer status'
pool_list='gluster --mode=script --xml pool list'
volume_info='gluster --mode=script --xml volume info'
volume_info_of() { echo "gluster --mode=script --xml volume info $1"; }
volume_status_of() { echo "gluster --mode=script --xml volume status $1"; }
volume_get_of() { echo "gluster --mode=script --xml volume get $1 $2"; }
# The brick probe as `gluster::brick_probe_walking` writes it (the plan's `brick_probe` lists
# a plain path's parents instead and prints the same: lab_end_to_end compares them).
brick_body='if [ -d "$p" ]; then echo exists; elif [ -e "$p" ]; then echo not-a-directory; fi
d=$(dirname -- "$p"); while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
echo "filesystem $(findmnt -n -r -o TARGET -T "$d")"
if findmnt -M "$p" >/dev/null 2>&1; then echo mount-point; fi
if command -v getfattr >/dev/null; then
  d=$p; while [ ! -e "$d" ]; do d=$(dirname -- "$d"); done
  while :; do
    for a in trusted.glusterfs.volume-id trusted.gfid; do
      if getfattr --absolute-names -n "$a" -- "$d" >/dev/null 2>&1; then echo "in-use $a $d"; fi
    done
    [ "$d" = / ] && break
    d=$(dirname -- "$d")
  done
else echo no-getfattr; fi)'
brick_of() { printf '(p=%s\n%s' "$1" "$brick_body"; }
mount_of() { echo "findmnt -J -M $1 -o SOURCE,TARGET,FSTYPE,OPTIONS"; }
fstab_of() { echo "if [ -e /etc/fstab ]; then awk '\$1 !~ /^#/ && \$2 == p' p=$1 /etc/fstab; fi"; }

# record FACT CASE HOST STATE SCRIPT [FILTER]: runs SCRIPT on HOST as the fact script runs a
# probe and writes fixtures/cluster/FACT/CASE.json; FILTER (a sed program) rewrites the output
# before anything is written.
record() {
    local fact=$1 case=$2 host=$3 state=$4 script=$5 filter=${6:-}
    local rc=0
    printf 'export LC_ALL=C\nexec 2>&1\np() {\n%s\n}\np </dev/null\n' "$script" |
        on "$host" sh -s >"$tmp/output" || rc=$?
    if [[ -n $filter ]]; then
        sed -E "$filter" "$tmp/output" >"$tmp/filtered"
        mv "$tmp/filtered" "$tmp/output"
    fi
    mkdir -p "$out/$fact"
    jq -n --arg host "$host" --arg state "$state" --arg command "$script" \
        --argjson rc "$rc" --rawfile output "$tmp/output" \
        '{host: $host, state: $state, command: $command, rc: $rc, output: $output}' \
        >"$out/$fact/$case.json"
    rm -f "$tmp/output"
    echo "recorded $fact/$case (rc $rc)"
}

# wait_for WHAT HOST CONDITION: polls CONDITION (a shell snippet) on HOST for up to 90 s.
wait_for() {
    local what=$1 host=$2 condition=$3
    for _ in $(seq 90); do
        if on "$host" "$condition" >/dev/null 2>&1; then
            return 0
        fi
        sleep 1
    done
    echo "timed out waiting for $what on $host" >&2
    return 1
}

rm -rf "$out"

# --- blank ------------------------------------------------------------------------------
state="blank: hosts as lab up makes them"
record swarm-info blank n1 "$state" "$swarm_info"
record kernel-features lab n1 "$state" "$kernel_features"
record node-ls not-in-swarm n1 "$state" "$node_ls"
record network-inspect blank n1 "$state" "$network_inspect"
record service-inspect not-in-swarm n1 "$state" "$service_inspect"
record peer-status blank n1 "$state" "$peer_status"
record pool-list blank n1 "$state" "$pool_list"
record volume-info blank n1 "$state" "$volume_info"
record volume-info missing n1 "$state" "$(volume_info_of gv0)"
record volume-get missing n1 "$state" "$(volume_get_of gv0 all)"
record volume-status missing n1 "$state" "$(volume_status_of gv0)"
record peer-status blank-n2 n2 "$state" "$peer_status"
record peer-status blank-n3 n3 "$state" "$peer_status"
# Brick directories: missing below the lab's brick file system (/data/bricks, a tmpfs),
# on the root file system, and the brick file system's mount point itself.
record brick blank n1 "$state" "$(brick_of /data/bricks/gv0)"
record brick root-partition n1 "$state" "$(brick_of /srv/bricks/gv0)"
record brick mount-point n1 "$state" "$(brick_of /data/bricks)"
record mount not-mounted n1 "$state" "$(mount_of /mnt/gv0)"
record mount other-fs n1 "$state" "$(mount_of /data/bricks)"
record fstab blank n1 "$state" "$(fstab_of /mnt/gv0)"

# --- swarm ------------------------------------------------------------------------------
on n1 "docker swarm init --advertise-addr $net.11" >/dev/null
manager_token=$(on n1 'docker swarm join-token -q manager')
worker_token=$(on n1 'docker swarm join-token -q worker')
on n2 "docker swarm join --token $manager_token --advertise-addr $net.12 $net.11:2377"
on n3 "docker swarm join --token $worker_token --advertise-addr $net.13 $net.11:2377"
unset manager_token worker_token
wait_for "n2 reachable, 3 nodes ready" n1 \
    '[ "$(docker node ls --format "{{.Hostname}} {{.Status}} {{.ManagerStatus}}" | sort | tr "\n" ";")" = "n1 Ready Leader;n2 Ready Reachable;n3 Ready ;" ]'
on n1 'docker node update --label-add zone=a --label-add role=edge n1 >/dev/null &&
    docker node update --label-add zone=b --label-add role=edge n2 >/dev/null &&
    docker node update --label-add zone=c --label-add role=db n3 >/dev/null'
on n1 "docker network create --driver overlay --opt encrypted --subnet 10.235.1.0/24 --gateway 10.235.1.1 dbnet >/dev/null &&
    docker network create --driver overlay --attachable --subnet 10.235.2.0/24 --label io.corral.managed=default --label tier=app appnet >/dev/null"
for host in n1 n2; do on "$host" 'mkdir -p /srv/api'; done
on n1 'printf s3cret | docker secret create api_token_v1 - >/dev/null &&
    printf "level=info\n" | docker config create api_conf_v1 - >/dev/null'
# "could not be accessed on a registry to record its digest" is expected (TESTBED.md §4).
on n1 'docker service create --detach --quiet --name agent --mode global \
        --publish published=8080,target=8080,mode=host --label io.corral.managed=default \
        local/busybox:1 httpd -f -p 8080' >/dev/null 2>&1
on n1 'docker service create --detach --quiet --name api --replicas 2 \
        --constraint node.labels.role==edge --placement-pref spread=node.labels.zone \
        --env APP_ENV=prod --env "GREETING=hello world" \
        --mount type=bind,source=/srv/api,target=/srv/api,readonly \
        --mount type=volume,source=api-cache,target=/var/cache/api \
        --network appnet --network dbnet \
        --secret source=api_token_v1,target=api_token,mode=0400 \
        --config source=api_conf_v1,target=/etc/api.conf \
        --update-parallelism 2 --update-delay 10s --update-monitor 2s \
        --update-order start-first --update-failure-action rollback \
        --label io.corral.managed=default --label tier=app \
        local/busybox:1 sleep 86400' >/dev/null 2>&1
wait_for "agent 3/3 and api 2/2" n1 \
    '[ "$(docker service ls --format "{{.Name}} {{.Replicas}}" | tr "\n" ";")" = "agent 3/3;api 2/2;" ]'
# One completed update, so that the inspect shows UpdateStatus and PreviousSpec.
on n1 'docker service update --detach --quiet --env-add RELEASE=2 api' >/dev/null 2>&1
wait_for "api's update to complete" n1 \
    '[ "$(docker service inspect --format "{{.UpdateStatus.State}}" api)" = completed ]'
wait_for "api 2/2" n1 '[ "$(docker service ls --filter name=api --format "{{.Replicas}}")" = 2/2 ]'
state="swarm: n1 leader, n2 manager, n3 worker; dbnet, appnet; services agent (global) and api (replicated, updated once)"
record swarm-info leader n1 "$state" "$swarm_info"
record swarm-info manager n2 "$state" "$swarm_info"
record swarm-info worker n3 "$state" "$swarm_info"
record node-ls cluster n1 "$state" "$node_ls"
record node-ls from-worker n3 "$state" "$node_ls"
record node-inspect cluster n1 "$state" "$node_inspect"
record network-ls cluster n1 "$state" "$network_ls"
record network-inspect cluster n1 "$state" "$network_inspect"
record network-inspect from-worker n3 "$state" "$network_inspect"
record service-ls cluster n1 "$state" "$service_ls"
record service-inspect cluster n1 "$state" "$service_inspect"
record service-ps cluster n1 "$state" "$service_ps"
# The same tasks a minute apart: `service ps` says how long ago each one changed state,
# and a facts digest must not see time pass.
record service-ps a-minute-apart-1 n1 "$state" "$service_ps"
sleep 61
record service-ps a-minute-apart-2 n1 "$state" "$service_ps"
record service-inspect from-worker n3 "$state" "$service_inspect"
# Only the token's shape: both of its parts become x's of the same length.
record join-token worker n1 "$state" "$join_token_worker" \
    's/SWMTKN-1-[0-9a-z]+-[0-9a-z]+/SWMTKN-1-'"$(printf 'x%.0s' $(seq 50))"'-'"$(printf 'x%.0s' $(seq 25))"'/'
if grep -Eq 'SWMTKN-1-[0-9a-z-]*[0-9a-wyz]' "$out/join-token/worker.json" ||
    ! grep -q 'SWMTKN-1-x\{50\}-x\{25\}' "$out/join-token/worker.json"; then
    rm -f "$out/join-token/worker.json"
    echo "join-token/worker.json did not hold only the placeholder; removed it" >&2
    exit 1
fi
record join-token from-worker n3 "$state" "$join_token_worker"

# --- gluster ----------------------------------------------------------------------------
on n1 'gluster --mode=script peer probe n2 && gluster --mode=script peer probe n3' >/dev/null
for host in n1 n2 n3; do
    wait_for "two peers in cluster" "$host" \
        '[ "$(gluster --mode=script peer status | grep -c "State: Peer in Cluster (Connected)")" = 2 ]'
done
state="gluster: n2 and n3 probed from n1"
record peer-status cluster n1 "$state" "$peer_status"
record peer-status from-n2 n2 "$state" "$peer_status"
record peer-status from-n3 n3 "$state" "$peer_status"
record pool-list cluster n1 "$state" "$pool_list"
on n1 'gluster --mode=script volume create gv0 replica 3 arbiter 1 n1:/data/bricks/gv0 n2:/data/bricks/gv0 n3:/data/bricks/gv0 &&
    gluster --mode=script volume set gv0 user.corral.project default &&
    gluster --mode=script volume set gv0 performance.cache-size 64MB' >/dev/null
state="gluster: gv0 (replica 3 arbiter 1) created and options set, not started"
record volume-info created n1 "$state" "$volume_info"
record volume-status not-started n1 "$state" "$(volume_status_of gv0)"
record volume-info created-named n1 "$state" "$(volume_info_of gv0)"
record volume-get created n1 "$state" "$(volume_get_of gv0 all)"
on n1 'gluster --mode=script volume start gv0' >/dev/null
wait_for "gv0's bricks online" n1 \
    '[ "$(gluster --mode=script --xml volume status gv0 | grep -c "<status>1</status>")" = 6 ]'
state="gluster: gv0 (replica 3 arbiter 1) started"
record volume-info started n1 "$state" "$volume_info"
record volume-info named n1 "$state" "$(volume_info_of gv0)"
record volume-status started n1 "$state" "$(volume_status_of gv0)"
# Two readings of one state: glusterd lists the other peers' self-heal daemons in the order
# their answers arrive, and a facts digest must not tell the two apart.
shd_order() { jq -r .output "$1" | grep -A1 '<hostname>Self-heal Daemon</hostname>' | grep -o '<path>[^<]*</path>' | tr -d '\n'; }
record volume-status daemons-in-order n1 "$state" "$(volume_status_of gv0)"
for try in $(seq 100); do
    record volume-status daemons-reordered n1 "$state" "$(volume_status_of gv0)"
    [[ $(shd_order "$out/volume-status/daemons-reordered.json") != $(shd_order "$out/volume-status/daemons-in-order.json") ]] && break
    if [[ $try = 100 ]]; then
        echo "gluster listed the self-heal daemons in one order 100 times" >&2
        exit 1
    fi
done
record volume-get all n1 "$state" "$(volume_get_of gv0 all)"
record volume-get one n1 "$state" "$(volume_get_of gv0 performance.cache-size)"
record volume-get user-option n1 "$state" "$(volume_get_of gv0 user.corral.project)"
record volume-get unknown-option n1 "$state" "$(volume_get_of gv0 no.such.option)"
record brick in-use n1 "$state" "$(brick_of /data/bricks/gv0)"
# Mounted on n1 (a brick machine) through fstab, as gluster/volume writes it.
on n1 'mkdir -p /mnt/gv0 &&
    echo "n1:/gv0 /mnt/gv0 glusterfs defaults,_netdev,backup-volfile-servers=n2:n3,x-systemd.requires=glusterd.service 0 0" >>/etc/fstab &&
    mount /mnt/gv0'
state="gluster: gv0 (replica 3 arbiter 1) started, mounted on n1 through /etc/fstab"
record mount mounted n1 "$state" "$(mount_of /mnt/gv0)"
record fstab gv0 n1 "$state" "$(fstab_of /mnt/gv0)"

# --- failures ---------------------------------------------------------------------------
# A brick process dies on n2 (glusterd stays up).
on n2 'pid=$(gluster --mode=script --xml volume status gv0 n2:/data/bricks/gv0 | sed -n "s:.*<pid>\([0-9]*\)</pid>.*:\1:p") && kill "$pid"'
wait_for "n2's brick offline" n1 \
    '[ "$(gluster --mode=script --xml volume status gv0 | grep -c "<status>0</status>")" -ge 1 ]'
record volume-status brick-down n1 "gluster: gv0 started, n2's brick process killed" "$(volume_status_of gv0)"
# glusterd stops on n3.
on n3 'systemctl stop glusterd'
wait_for "n3 disconnected" n1 \
    '[ "$(gluster --mode=script peer status | grep -c "(Disconnected)")" = 1 ]'
state="gluster: gv0 started, n2's brick process killed, glusterd stopped on n3"
record peer-status peer-down n1 "$state" "$peer_status"
record peer-status daemon-down n3 "$state" "$peer_status"
record volume-status peer-down n1 "$state" "$(volume_status_of gv0)"
record volume-info peer-down n1 "$state" "$volume_info"

# A service no node can run, and an update whose new tasks fail (failure action: pause).
on n1 'docker service create --detach --quiet --name stuck --constraint node.labels.role==nowhere \
        --label io.corral.managed=default local/busybox:1 sleep 86400' >/dev/null 2>&1
on n1 'docker service update --detach --quiet --args false agent' >/dev/null 2>&1
wait_for "stuck's scheduling error" n1 \
    '[ -n "$(docker service ps --format "{{.Error}}" stuck)" ]'
wait_for "agent's update to pause" n1 \
    '[ "$(docker service inspect --format "{{.UpdateStatus.State}}" agent)" = paused ]'
state="swarm: service stuck constrained to a label no node has; agent updated to tasks that exit 1 (update paused)"
record service-ls failures n1 "$state" "$service_ls"
record service-inspect failures n1 "$state" "$service_inspect"
record service-ps failures n1 "$state" "$service_ps"

# The leader stops while quorum holds: n3 is promoted first (3 managers), then dockerd stops
# on n1 (its socket too, so the CLI cannot start it again) and n2 or n3 takes over. A new
# leader may report its Status.Addr as 0.0.0.0 (moby#35437).
on n1 'docker node promote n3' >/dev/null
wait_for "n3 reachable" n1 \
    '[ "$(docker node inspect --format "{{.ManagerStatus.Reachability}}" n3)" = reachable ]'
on n1 'systemctl stop docker.socket docker.service'
wait_for "n1 down, another leader" n2 \
    'nodes=$(docker node ls --format "{{.Hostname}} {{.Status}} {{.ManagerStatus}}") &&
        echo "$nodes" | grep -qx "n1 Down Unreachable" && echo "$nodes" | grep -Eqx "n[23] Ready Leader"'
state="swarm: 3 managers (n3 promoted), dockerd stopped on n1 (the leader before)"
record swarm-info daemon-down n1 "$state" "$swarm_info"
record swarm-info manager-down n2 "$state" "$swarm_info"
record node-ls manager-down n2 "$state" "$node_ls"
record node-inspect manager-down n2 "$state" "$node_inspect"
# Then n3 too: one manager of three left, no quorum.
on n3 'systemctl stop docker.socket docker.service'
wait_for "no leader" n2 '! docker node ls >/dev/null 2>&1'
state="swarm: 3 managers, dockerd stopped on n1 and n3 (no quorum)"
record swarm-info no-quorum n2 "$state" "$swarm_info"
record node-ls no-quorum n2 "$state" "$node_ls"
record service-inspect no-quorum n2 "$state" "$service_inspect"

echo "recorded $(find "$out" -name '*.json' | wc -l) fixtures in $((SECONDS - started)) s"
