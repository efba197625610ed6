#!/usr/bin/env bash
# Records what `os/sshd` reads (crates/corral-kinds/src/sshd.rs) when a file sshd reads before corral's
# drop-in sets a managed keyword otherwise, under fixtures/sshd/<case>.json ({host, state,
# command, rc, output}, as fixtures/cluster/ records are): `sshd -T` and the setting lines
# of sshd's files in its read order. The tests compare each fixture's `command` with the
# probe's script. With LAB_DIR set, it uses that lab (its ssh_config) instead of its own.
#   hand-override        sshd -T with 0-hand.conf (MaxAuthTries 9) read before corral's
#                        00-corral-hardening.conf (MaxAuthTries 3, X11Forwarding no)
#   files-hand-override  the setting lines of sshd_config and sshd_config.d/*.conf then
set -euo pipefail
cd "$(dirname "$0")/.."
out=fixtures/sshd
if [[ -n ${LAB_DIR:-} ]]; then
    dir=$LAB_DIR
else
    cargo build --quiet
    corral=target/debug/corral
    name=corral-sshd-fixtures
    dir=target/sshd-fixtures-lab
    "$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
    trap '"$corral" lab down --name "$name" --dir "$dir"' EXIT
    "$corral" lab up --light --name "$name" --machines 1 --subnet 10.235.0.0/24 --dir "$dir"
fi
tmp=$(mktemp -d)
on() { ssh -F "$dir/ssh_config" n1 "$@"; }

# record CASE STATE SCRIPT: runs SCRIPT on n1 as the fact script runs a probe.
record() {
    local case=$1 state=$2 script=$3 rc=0
    printf 'export LC_ALL=C\nexec 2>&1\np() {\n%s\n}\np </dev/null\n' "$script" | on sh -s >"$tmp/output" || rc=$?
    jq -n --arg state "$state" --arg command "$script" --argjson rc "$rc" --rawfile output "$tmp/output" \
        '{host: "n1", state: $state, command: $command, rc: $rc, output: $output}' >"$out/$case.json"
    echo "recorded sshd/$case (rc $rc)"
}

# The probes' scripts, byte for byte as crates/corral-kinds/src/sshd.rs generates them.
effective='sshd -T 2>&1'
files='(m=/etc/ssh/sshd_config; n=$(grep -Ein '\''^[[:space:]]*include[[:space:]]+/etc/ssh/sshd_config'\''"\\.d/\\*\\.conf" "$m" 2>/dev/null | head -n 1 | cut -d: -f1)
set -- /etc/ssh/sshd_config.d/*.conf; [ -e "$1" ] || set --
[ -r "$m" ] || m=/dev/null
awk -v n="${n:-0}" '\''FNR == 1 { inmatch = 0 } phase == 1 && FNR >= n { next } phase == 3 && FNR <= n { next } { sub(/^[ \t]+/, "") } /^#/ || /^$/ { next } tolower($1) == "match" { inmatch = 1 } !inmatch { print phase "\t" FILENAME "\t" FNR "\t" $0 }'\'' phase=1 "$m" phase=2 "$@" phase=3 "$m")'

on 'printf "MaxAuthTries 9\n" > /etc/ssh/sshd_config.d/0-hand.conf &&
    printf "# Managed by corral (os/sshd.hardening); local changes are overwritten.\nMaxAuthTries 3\nX11Forwarding no\n" > /etc/ssh/sshd_config.d/00-corral-hardening.conf'
state="0-hand.conf (MaxAuthTries 9) read before corral's 00-corral-hardening.conf (MaxAuthTries 3, X11Forwarding no)"
record hand-override "$state" "$effective"
record files-hand-override "$state" "$files"
on 'rm -f /etc/ssh/sshd_config.d/0-hand.conf /etc/ssh/sshd_config.d/00-corral-hardening.conf'
rm -rf "$tmp"
