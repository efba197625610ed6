#!/usr/bin/env bash
# Records what `corral import` reads (src/import/mod.rs `probes`) from a cluster built by
# hand with the Docker and Gluster CLIs only, under fixtures/import/<fact>/<case>.json, on a
# 3-host lab of its own, so that the writers' and the adoption's unit tests read what the
# real programs print. Run it after changing one of these probes: the tests compare each
# fixture's `command` with the probe's script.
#
# The cluster (as tests/e2e_import.rs builds it): n1 manager, n2 and n3 workers labelled
# zone=a/b; overlay appnet 10.30.0.0/24; config app_conf; secret db_pw (unused); service api (2 replicas, the
# config at /etc/app.conf, env GREETING=hello, port 8080, on appnet, constrained to
# workers); stack web (a global service agent) with a config of its own; volume gv0
# (replica 3, performance.cache-size 64MB) mounted at /mnt/gv0 through /etc/fstab.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
corral=${CARGO_TARGET_DIR:-target}/debug/corral
name=corral-import-fixtures
dir=${CARGO_TARGET_DIR:-target}/import-fixtures-lab
net=10.231.0
out=fixtures/import
"$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
tmp=$(mktemp -d)
trap '"$corral" lab down --name "$name" --dir "$dir"; rm -rf "$tmp"' EXIT
"$corral" lab up --name "$name" --machines 3 --subnet "$net.0/24" --dir "$dir"
on() {
    local host=$1
    shift
    ssh -F "$dir/ssh_config" "$host" "$@"
}

# Probe scripts, byte for byte as crates/corral-core/src/facts/swarm.rs, crates/corral-kinds/src/swarm_secret.rs and
# src/import/mod.rs generate them.
service_inspect='ids=$(docker service ls -q) && if [ -n "$ids" ]; then docker service inspect --format '\''{{json .}}'\'' $ids; fi'
network_inspect='ids=$(docker network ls -q --filter driver=overlay) && if [ -n "$ids" ]; then docker network inspect --format '\''{"Name":{{json .Name}},"Id":{{json .Id}},"Scope":{{json .Scope}},"Driver":{{json .Driver}},"EnableIPv6":{{json .EnableIPv6}},"IPAM":{{json .IPAM}},"Internal":{{json .Internal}},"Attachable":{{json .Attachable}},"Ingress":{{json .Ingress}},"Options":{{json .Options}},"Labels":{{json .Labels}}}'\'' $ids; fi'
node_inspect='ids=$(docker node ls -q) && docker node inspect --format '\''{{json .}}'\'' $ids'
objects='ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format '\''{"Class":"config","Name":{{json .Spec.Name}},"Labels":{{json .Spec.Labels}},"Data":{{json .Spec.Data}}}'\'' $ids; fi && ids=$(docker secret ls -q) && if [ -n "$ids" ]; then docker secret inspect --format '\''{"Class":"secret","Name":{{json .Spec.Name}},"Labels":{{json .Spec.Labels}}}'\'' $ids; fi'
adoptable='ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format '\''{{if not (index .Spec.Labels "io.corral.managed")}}{{json .Spec.Name}} {{json .Spec.Data}}{{end}}'\'' $ids | grep -v '\''^$'\'' | sort; fi; true'
fstab='if [ -e /etc/fstab ]; then awk '\''$1 !~ /^#/ && $3 == "glusterfs"'\'' /etc/fstab; fi'
volume_info='gluster --mode=script --xml volume info'
swarm_objects='ids=$(docker secret ls -q) && if [ -n "$ids" ]; then docker secret inspect --format '\''secret {{json .Spec.Name}} {{json .Spec.Labels}}'\'' $ids | sort; fi && ids=$(docker config ls -q) && if [ -n "$ids" ]; then docker config inspect --format '\''config {{json .Spec.Name}} {{json .Spec.Labels}}'\'' $ids | sort; fi && if docker config inspect corral-key.infra >/dev/null 2>&1; then docker config inspect --format '\''key {{json .Spec.Data}}'\'' corral-key.infra; else echo '\''key absent'\''; fi'

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

on n1 "docker swarm init --advertise-addr $net.11 >/dev/null"
token=$(on n1 docker swarm join-token -q worker)
for n in n2 n3; do on $n "docker swarm join --token $token $net.11:2377 >/dev/null"; done
on n1 'docker node update --label-add zone=a n2 >/dev/null && docker node update --label-add zone=b n3 >/dev/null'
on n1 'docker network create --driver overlay --subnet 10.30.0.0/24 appnet >/dev/null'
on n1 "printf 'listen 80\n' | docker config create app_conf - >/dev/null"
on n1 "printf 'not-a-real-password' | docker secret create db_pw - >/dev/null"
on n1 'docker service create --detach=false --quiet --no-resolve-image --name api --replicas 2 --config source=app_conf,target=/etc/app.conf --env GREETING=hello --publish published=8080,target=80 --network appnet --constraint node.role==worker local/busybox:1 sleep 3600 >/dev/null'
on n1 "mkdir -p /root/web && printf 'hello\n' > /root/web/motd && printf 'version: \"3.8\"\nservices:\n  agent:\n    image: local/busybox:1\n    command: [sleep, \"3600\"]\n    configs: [{source: motd, target: /etc/motd}]\n    deploy:\n      mode: global\nconfigs:\n  motd: {file: ./motd}\n' > /root/web/compose.yaml && cd /root/web && docker stack deploy --resolve-image never -c compose.yaml web >/dev/null"
on n1 'gluster peer probe n2 >/dev/null && gluster peer probe n3 >/dev/null'
on n1 'for i in $(seq 30); do [ "$(gluster pool list | grep -c Connected)" = 3 ] && break; sleep 1; done; gluster --mode=script volume create gv0 replica 3 n1:/data/bricks/gv0 n2:/data/bricks/gv0 n3:/data/bricks/gv0 >/dev/null && gluster volume set gv0 performance.cache-size 64MB >/dev/null && gluster volume start gv0 >/dev/null'
for n in n1 n2 n3; do
    on $n "echo 'n1:/gv0 /mnt/gv0 glusterfs defaults,_netdev 0 0' >> /etc/fstab"
done

state='by hand: swarm (n1 manager, n2 n3 workers), appnet, app_conf, service api, stack web, volume gv0 in fstab'
record service-inspect by-hand n1 "$state" "$service_inspect"
record network-inspect by-hand n1 "$state" "$network_inspect"
record node-inspect by-hand n1 "$state" "$node_inspect"
record objects by-hand n1 "$state" "$objects"
record adoptable by-hand n1 "$state" "$adoptable"
record fstab by-hand n2 "$state" "$fstab"
record volume-info by-hand n1 "$state" "$volume_info"
record swarm-objects by-hand n1 "$state" "$swarm_objects"

# A public stack deployed by hand (fixtures/compose/real/example-voting-app-stack.yml): a
# named volume of its own, two stack networks, published ports. Its hosts tag a local image
# under each image name (the lab has no registry); only the services' specs matter here.
for n in n1 n2 n3; do
    on $n 'for i in redis:alpine postgres:15-alpine dockersamples/examplevotingapp_vote dockersamples/examplevotingapp_result dockersamples/examplevotingapp_worker; do c=$(docker create local/busybox:1) && docker commit --change "CMD [\"sleep\",\"86400\"]" "$c" "$i" >/dev/null && docker rm "$c" >/dev/null; done'
done
on n1 'mkdir -p /root/vote && cat > /root/vote/docker-stack.yml' <fixtures/compose/real/example-voting-app-stack.yml
on n1 'docker stack deploy -c /root/vote/docker-stack.yml vote >/dev/null 2>&1'
state="$state; stack vote deployed by hand from example-voting-app's docker-stack.yml"
record service-inspect voting n1 "$state" "$service_inspect"
record network-inspect voting n1 "$state" "$network_inspect"
record node-inspect voting n1 "$state" "$node_inspect"
record objects voting n1 "$state" "$objects"
record adoptable voting n1 "$state" "$adoptable"
