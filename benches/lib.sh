# Shared by the lab benchmarks (sourced, not run): a lab of their own and a median
# comparison against the SSH floor.

# bench_lab NAME SUBNET [LAB_UP_FLAGS…]: builds corral (release), starts a lab NAME on
# SUBNET under target/ (3 hosts unless the flags say otherwise), taken down on exit; sets
# `corral`, `inventory` and CORRAL_SSH_CONFIG.
bench_lab() {
    local name=$1 subnet=$2 dir=target/$1-lab
    shift 2
    local flags=("$@")
    ((${#flags[@]})) || flags=(--machines 3)
    scripts/install-deps.sh >/dev/null
    cargo build --release --quiet
    corral=$PWD/target/release/corral
    "$corral" lab down --name "$name" --dir "$dir" >/dev/null 2>&1 || true
    # shellcheck disable=SC2064 # the lab's name and directory are fixed now
    trap "'$corral' lab down --name '$name' --dir '$dir' >/dev/null" EXIT
    "$corral" lab up --name "$name" "${flags[@]}" --subnet "$subnet" --dir "$dir" >/dev/null
    export CORRAL_SSH_CONFIG=$PWD/$dir/ssh_config
    inventory=$dir/inventory.yaml
}

# compare JSON FLOOR_NAME FLOOR_CMD NAME CMD: hyperfine medians of both (runs: $runs),
# printed with their ratio against the target of 1.5x.
compare() {
    local json=$1
    hyperfine --shell=bash --warmup 3 --runs "$runs" --export-json "$json" \
        -n "$2" "$3" -n "$4" "$5" >&2
    python3 - "$json" "$2" "$4" <<'PY'
import json, sys
floor, plan = (r["median"] for r in json.load(open(sys.argv[1]))["results"])
print(f"{sys.argv[2]}: median {floor * 1000:7.1f} ms")
print(f"{sys.argv[3]}: median {plan * 1000:7.1f} ms")
print(f"ratio: {plan / floor:.2f}x (target <= 1.5x)")
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
# `ssh HOST true` to the three hosts in parallel (target/bench-NAME-floor.json).
plan_against_floor() {
    local name=$1 label=$2
    shift 2
    compare "target/bench-$name-floor.json" \
        "ssh floor (3 hosts, parallel)" "for h in n1 n2 n3; do ssh -F '$CORRAL_SSH_CONFIG' \$h true & done; wait" \
        "$label" "$(printf '%q ' "$corral" plan "$@")"
}
