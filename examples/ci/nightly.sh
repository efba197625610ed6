#!/usr/bin/env bash
# The nightly drift job: reads the hosts once, saving their facts (the snapshot pull-request
# plans use), and reports drift from that same reading as Markdown.
#
#   nightly.sh OUTDIR CONFIG_PATH…
#
# Writes OUTDIR/facts.json (mode 0600) and OUTDIR/drift.md. Exits as `corral drift` does:
# 0 when the hosts match, 2 when they drifted, 1 on an error (a host that could not be read
# included: a drift report that left a host out is no all-clear).
# CORRAL names the corral binary (default: `corral` on PATH); SSH settings come from the
# environment as for any corral command (CORRAL_SSH_CONFIG, ~/.ssh/config).
set -uo pipefail
corral=${CORRAL:-corral}
out=${1:?usage: nightly.sh OUTDIR CONFIG_PATH…}
shift
(($#)) || { echo "usage: nightly.sh OUTDIR CONFIG_PATH…" >&2; exit 1; }
mkdir -p "$out"

"$corral" facts --output "$out/facts.json" "$@"
facts_rc=$?
if [[ ! -s $out/facts.json ]]; then
    echo "nightly: corral facts saved nothing (exit $facts_rc)" >&2
    exit 1
fi
"$corral" drift --facts "$out/facts.json" --format markdown "$@" >"$out/drift.md"
rc=$?
cat "$out/drift.md"
if ((facts_rc != 0 && rc != 1)); then
    # Some hosts could not be read: the report covers only the others.
    rc=1
fi
exit "$rc"
