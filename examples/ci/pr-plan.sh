#!/usr/bin/env bash
# The pull-request job: plans the branch's configuration from the nightly facts snapshot,
# with no SSH access, and writes the comment to post.
#
#   pr-plan.sh FACTS.json OUTDIR CONFIG_PATH…
#
# Writes OUTDIR/comment.md: a hidden marker (so that one comment is updated on each push),
# then the Markdown plan, and the errors if the configuration does not plan, or does not
# plan in full (a resource new since the snapshot has no facts in it). Exits 0 when there
# is a whole plan (changes or none), 1 otherwise (the comment then says why).
# CORRAL names the corral binary (default: `corral` on PATH).
set -uo pipefail
corral=${CORRAL:-corral}
facts=${1:?usage: pr-plan.sh FACTS.json OUTDIR CONFIG_PATH…}
out=${2:?usage: pr-plan.sh FACTS.json OUTDIR CONFIG_PATH…}
shift 2
(($#)) || { echo "usage: pr-plan.sh FACTS.json OUTDIR CONFIG_PATH…" >&2; exit 1; }
mkdir -p "$out"
marker='<!-- corral-plan -->'

NO_COLOR=1 "$corral" plan --facts "$facts" --format markdown --detailed-exitcode "$@" \
    >"$out/plan.md" 2>"$out/plan.err"
rc=$?

# A comment holds at most 65,536 characters. corral's Markdown plan stays under 60,000 by
# itself; the errors get what is left (all of it when there is no plan).
if [[ -s $out/plan.md ]]; then room=4000; else room=60000; fi

# plan.err in a fence no line of it can close (the errors quote the configuration's lines).
fenced_errors() {
    local longest
    longest=$(grep -o '`*' "$out/plan.err" | awk '{ if (length > n) n = length } END { print n + 0 }')
    local fence='```'
    while ((${#fence} <= longest)); do fence+='`'; done
    echo "$fence"
    head -c "$room" "$out/plan.err"
    echo
    echo "$fence"
}

{
    echo "$marker"
    if [[ -s $out/plan.md ]]; then
        # Also when the plan is incomplete (exit 1): what could be planned, and why not
        # the rest. A resource new since the snapshot has no facts in it.
        cat "$out/plan.md"
    fi
    if ((rc != 0 && rc != 2)); then
        echo
        if [[ -s $out/plan.md ]]; then
            echo "### corral could not plan everything"
            echo
            echo "A resource added since the facts were read has no facts in the snapshot: it is planned by the next nightly run, or by \`corral plan\` with access to the hosts."
        else
            echo "### corral plan failed"
        fi
        echo
        fenced_errors
    fi
    if [[ -n ${FACTS_TAKEN:-} ]]; then
        echo
        echo "<sub>Planned from the facts read on $FACTS_TAKEN.</sub>"
    fi
} >"$out/comment.md"
cat "$out/plan.md"
cat "$out/plan.err" >&2
((rc == 0 || rc == 2))
