#!/usr/bin/env bash
# Records the answer of `gluster::volume_probe` (crates/corral-core/src/facts/gluster.rs: `volume info`,
# `volume status` and `volume get … all` asked in one `gluster` process) under
# fixtures/cluster/volume/<case>.json, and, in the same moment, the three questions asked
# alone under fixtures/cluster/volume-{info,status,get}/batch-<case>.json: the tests check
# that the batch's answers, once split, read as the questions asked alone do.
#
# LAB_DIR is a lab whose n1..n3 hold a started replica volume VOLUME (default krill-data,
# as examples/krill/ makes it). Cases:
#   started       the volume, asked on n1
#   missing       a volume that does not exist, asked on n1
#   daemon-down   the volume, asked on n3 with its glusterd stopped (started again after)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${LAB_DIR:?LAB_DIR names the lab}
volume=${VOLUME:-krill-data}
out=fixtures/cluster
tmp=$(mktemp -d)
trap 'on n3 "systemctl start glusterd" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
on() {
    local host=$1
    shift
    ssh -F "$dir/ssh_config" "$host" "$@"
}

# The probes' scripts, byte for byte as crates/corral-core/src/facts/gluster.rs generates them (the names
# here need no quoting).
batch_of() { printf "printf '%%s\\\\n' 'volume info %s' 'volume status %s' 'volume get %s all' | gluster --mode=script --xml" "$1" "$1" "$1"; }
info_of() { echo "gluster --mode=script --xml volume info $1"; }
status_of() { echo "gluster --mode=script --xml volume status $1"; }
get_of() { echo "gluster --mode=script --xml volume get $1 all"; }

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

# record_case CASE HOST VOLUME STATE: the batch, then each question alone.
record_case() {
    local case=$1 host=$2 name=$3 state=$4
    record volume "$case" "$host" "$state" "$(batch_of "$name")"
    record volume-info "batch-$case" "$host" "$state" "$(info_of "$name")"
    record volume-status "batch-$case" "$host" "$state" "$(status_of "$name")"
    record volume-get "batch-$case" "$host" "$state" "$(get_of "$name")"
}

record_case started n1 "$volume" "volume $volume started, replica 3 on n1..n3"
record_case missing n1 nosuch "no volume nosuch"
on n3 'systemctl stop glusterd'
record_case daemon-down n3 "$volume" "glusterd stopped on n3"
