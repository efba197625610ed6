#!/usr/bin/env bash
# corral beside its peers on the same work, on 3 light lab hosts: benches/warm/site.yaml (a
# file, two sysctls set and persisted, a package absent) as corral plans it, as pyinfra
# writes it (benches/peers/deploy.py, run with `--dry`) and as Ansible writes it
# (benches/peers/playbook.yml, run with `--check`). Each tool first applies its own form
# until the hosts are converged for it; then the medians of its dry run on the converged
# hosts, the tools alternated run by run, against `ssh HOST true` to the three hosts in
# parallel.
#
# Each tool runs as its users run it: corral opens new connections unless told to keep them
# (`--keep-connections`, its warm row); pyinfra connects with paramiko each run; Ansible's
# default `ControlPersist=60s` keeps OpenSSH masters between runs, so its runs after the
# first are warm. pyinfra and Ansible are installed from PyPI into target/peers-venv (once).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10}
. benches/lib.sh
venv=target/peers-venv
if ! [ -x "$venv/bin/pyinfra" ] || ! [ -x "$venv/bin/ansible-playbook" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'pyinfra==3.10.0' 'ansible==12.3.0'
fi
bench_lab corral-bench-peers 10.248.0.0/24 --machines 3 --light

# The same hosts, keys and known hosts for every tool.
pyinfra_inventory=$lab_dir/pyinfra_inventory.py
python3 - "$inventory" "$PWD/$lab_dir" >"$pyinfra_inventory" <<'PY'
import re, sys
text, lab = open(sys.argv[1]).read(), sys.argv[2]
hosts = re.findall(r"name: (\S+)\n.*?ip: (\S+)", text, re.S)
print("hosts = [")
for name, ip in hosts:
    print(f"    ({ip!r}, {{'ssh_user': 'root', 'ssh_key': {lab + '/id_ed25519'!r},"
          f" 'ssh_known_hosts_file': {lab + '/known_hosts'!r},"
          f" 'ssh_strict_host_key_checking': 'yes'}}),")
print("]")
PY
ansible_inventory=$lab_dir/ansible_inventory.ini
{
    echo "[lab]"
    echo "n1"
    echo "n2"
    echo "n3"
    echo "[lab:vars]"
    echo "ansible_user=root"
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "ansible_ssh_common_args=-F $CORRAL_SSH_CONFIG"
} >"$ansible_inventory"
# Ansible's defaults, read from no ansible.cfg of the machine's.
printf '[defaults]\n' >"$lab_dir/ansible.cfg"
export ANSIBLE_CONFIG=$PWD/$lab_dir/ansible.cfg ANSIBLE_NOCOLOR=1 PYTHONWARNINGS=ignore

pyinfra=("$venv/bin/pyinfra" -y "$pyinfra_inventory" benches/peers/deploy.py)
ansible=("$venv/bin/ansible-playbook" -i "$ansible_inventory" benches/peers/playbook.yml)
config=(--project bench benches/warm/ "$inventory")

# Converge with each tool; the dry runs below then find nothing to do.
"$corral" apply --auto-approve "${config[@]}" >target/bench-peers-corral.log
"${pyinfra[@]}" >target/bench-peers-pyinfra.log 2>&1
"${ansible[@]}" >target/bench-peers-ansible.log 2>&1
"$corral" plan --detailed-exitcode "${config[@]}" >/dev/null # converged: exits 0
"${ansible[@]}" --check | tee -a target/bench-peers-ansible.log | grep -q 'n3 .*changed=0' ||
    { echo "Ansible still finds changes" >&2; exit 1; }
"${pyinfra[@]}" 2>&1 | tee -a target/bench-peers-pyinfra.log | grep -Eq 'Grand total +12 +- +- +12' ||
    { echo "pyinfra still finds changes" >&2; exit 1; }

python3 - "$runs" target/bench-peers.json \
    "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
    "corral plan" "$(printf '%q ' "$corral" plan "${config[@]}")" \
    "corral plan --keep-connections (warm)" "$(printf '%q ' "$corral" plan --keep-connections 10m "${config[@]}")" \
    "pyinfra --dry" "$(printf '%q ' "${pyinfra[@]}" --dry)" \
    "ansible-playbook --check (ControlPersist)" "$(printf '%q ' "${ansible[@]}" --check)" <<'PY'
import json, os, statistics, subprocess, sys, time
runs, out, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
commands = list(zip(rest[::2], rest[1::2]))
times = {n: [] for n, _ in commands}
def run(c):
    started = time.monotonic()
    subprocess.run(["bash", "-c", c], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - started
for _ in range(2):
    for _, c in commands:
        run(c)
for i in range(runs):
    order = commands[i % len(commands):] + commands[:i % len(commands)]
    for n, c in order:
        times[n].append(run(c))
json.dump(times, open(out, "w"))
floor = statistics.median(times[commands[0][0]])
corral = statistics.median(times[commands[1][0]])
for n, _ in commands:
    m = statistics.median(times[n])
    print(f"{n:<42} median {m * 1000:8.1f} ms  {m / floor:5.2f}x the floor  {m / corral:5.2f}x corral plan")
print(f"load average {os.getloadavg()[0]:.1f}")
PY
"$corral" connections close >/dev/null
