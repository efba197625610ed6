#!/usr/bin/env bash
# Records what a master connection's log (`ssh -M -f -N -E LOG`, as corral starts it) says
# when it cannot connect, under fixtures/ssh/<case>.log: the transport tries a connection
# again only when sshd was not there to take it (crates/corral-engine/src/transport/ssh.rs,
# `sshd_not_listening`). Cases, on n3 of the lab at LAB_DIR (put back as it was after):
#   refused         sshd stopped (a reload re-executes sshd and rebinds its port)
#   maxstartups     `MaxStartups 1` and one connection left waiting before its key exchange
#   denied          a user the host has not (no key of ours authorized)
#   host-key        a known_hosts without the host's key (StrictHostKeyChecking=yes)
#   timeout         an address of the lab's subnet where no host is, ConnectTimeout=1
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${LAB_DIR:?LAB_DIR names the lab}
ssh_config=$dir/ssh_config
out=fixtures/ssh
tmp=$(mktemp -d)
mkdir -p "$out"
on() {
    ssh -F "$ssh_config" n3 "$@"
}
cleanup() {
    on 'rm -f /etc/ssh/sshd_config.d/00-record.conf && systemctl reload ssh' >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
# Starts a master as corral does, with extra options; its log goes to fixtures/ssh/$1.log.
master() {
    local case=$1
    shift
    if ssh -F "$ssh_config" -E "$tmp/$case.log" -S "$tmp/$case.sock" -M -f -N \
        -o ControlPersist=1s -o BatchMode=yes "$@"; then
        echo "$case: ssh connected, nothing recorded" >&2
        exit 1
    fi
    # The address of the lab, as any other run of this script would have it: 10.0.0.x.
    sed -E 's/[0-9]+\.[0-9]+\.[0-9]+\.([0-9]+)/10.0.0.\1/g' "$tmp/$case.log" > "$out/$case.log"
    echo "$case: $(tr '\n' ' ' < "$out/$case.log")"
}
address=$(ssh -F "$ssh_config" -G n3 | sed -n 's/^hostname //p')

on 'systemd-run --quiet --on-active=2s --timer-property=AccuracySec=100ms systemctl start ssh && systemctl stop ssh'
master refused n3
until on true 2>/dev/null; do sleep 0.5; done

on 'printf "MaxStartups 1\n" > /etc/ssh/sshd_config.d/00-record.conf && systemctl reload ssh'
sleep 1
# A connection that never sends its version: sshd counts it as one starting.
exec 3<>"/dev/tcp/$address/22"
sleep 1
master maxstartups n3
exec 3>&-
on 'rm -f /etc/ssh/sshd_config.d/00-record.conf && systemctl reload ssh'
sleep 1

master denied -o User=corral-nobody n3

master host-key -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=/dev/null \
    -o StrictHostKeyChecking=yes n3

nobody=$(echo "$address" | sed -E 's/\.[0-9]+$/.250/')
master timeout -o ConnectTimeout=1 -o HostName="$nobody" n3
