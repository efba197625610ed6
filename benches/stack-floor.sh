#!/usr/bin/env bash
# The 3-layer example (secret, stack from a Compose file, encrypted overlays, a global
# agent) against the SSH floor, on a 3-host lab: the wall time of a blank-to-converged
# apply, then the median of `corral plan` on the converged swarm (facts from every host and
# the swarm's manager questions, asked in the first round trip) against `ssh HOST true` to
# the three hosts in parallel over fresh connections.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-20}
. benches/lib.sh
bench_lab corral-bench-stack 10.245.0.0/24
config=(examples/three-layer/ "$inventory")

first_apply stack "blank-to-converged apply of examples/three-layer" "${config[@]}"
plan_against_floor stack "corral plan (examples/three-layer, converged)" "${config[@]}"
