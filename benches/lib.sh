# Shared by the lab benchmarks (sourced, not run): a lab of their own and a median
# comparison against the SSH floor.

# bench_lab NAME SUBNET [LAB_UP_FLAGS…]: builds corral (release), starts a lab NAME on
# SUBNET under target/ (3 hosts unless the flags say otherwise), taken down on exit; sets
# `corral`, `inventory`, `lab_dir` and CORRAL_SSH_CONFIG. BENCH_LAB_NAME and
# BENCH_LAB_SUBNET override the name and subnet (a machine shared by several labs).
bench_lab() {
    local name=${BENCH_LAB_NAME:-$1} subnet=${BENCH_LAB_SUBNET:-$2}
    local dir=target/$name-lab
    lab_dir=$dir
    shift 2
    local flags=("$@")
    ((${#flags[@]})) || flags=(--machines 3)
    scripts/install-deps.sh >/dev/null
    cargo build --release --quiet
    corral=${CARGO_TARGET_DIR:-$PWD/target}/release/corral
    "$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
    # shellcheck disable=SC2064 # the lab's name and directory are fixed now
    trap "'$corral' lab down --name '$name' --dir '$dir' >/dev/null" EXIT
    "$corral" lab up --name "$name" "${flags[@]}" --subnet "$subnet" --dir "$dir" >/dev/null
    export CORRAL_SSH_CONFIG=$PWD/$dir/ssh_config
    inventory=$dir/inventory.yaml
}

# compare JSON FLOOR_NAME FLOOR_CMD NAME CMD [TARGET]: both commands alternated run by run
# ($runs each, after a warm-up of two; a machine shared with other work drifts, and
# alternating shares the drift), their medians and the ratio against TARGET (1.5x unless
# given); the times in JSON.
compare() {
    local json=$1
    python3 - "$json" "$runs" "$2" "$3" "$4" "$5" "${6:-1.5}" <<'PY'
import json, os, statistics, subprocess, sys, time
out, runs, floor_name, floor_cmd, name, cmd, target = sys.argv[1:]
commands = [(floor_name, floor_cmd), (name, cmd)]
times = {n: [] for n, _ in commands}
def run(c):
    started = time.monotonic()
    subprocess.run(["bash", "-c", c], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started
for _ in range(2):
    for _, c in commands:
        run(c)
for i in range(int(runs)):
    for n, c in commands if i % 2 == 0 else commands[::-1]:
        times[n].append(run(c))
json.dump(times, open(out, "w"))
floor, plan = (statistics.median(times[n]) for n, _ in commands)
print(f"{floor_name}: median {floor * 1000:7.1f} ms")
print(f"{name}: median {plan * 1000:7.1f} ms")
print(f"ratio: {plan / floor:.2f}x (target <= {target}x); load average {os.getloadavg()[0]:.1f}")
PY
}

# first_apply NAME WHAT CONFIG…: the wall time of the first apply of CONFIG (its log in
# target/bench-NAME-apply.log), then a plan that must find the hosts converged.
first_apply() {
    local name=$1 what=$2
    shift 2
    TIMEFORMAT='%R'
    { time "$corral" apply --auto-approve "$@" >"target/bench-$name-apply.log" 2>&1; } 2>"target/bench-$name-time"
    echo "$what: $(cat "target/bench-$name-time") s wall"
    "$corral" plan --detailed-exitcode "$@" >/dev/null # converged: exits 0
}

# plan_against_floor NAME LABEL CONFIG…: `compare` of a converged `corral plan CONFIG` with
# `ssh HOST true` to the three hosts in parallel (target/bench-NAME-floor.json), against
# the target in BENCH_TARGET (1.5x unless set).
plan_against_floor() {
    local name=$1 label=$2
    shift 2
    compare "target/bench-$name-floor.json" \
        "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
        "$label" "$(printf '%q ' "$corral" plan "$@")" "${BENCH_TARGET:-1.5}"
}
