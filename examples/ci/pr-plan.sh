#!/usr/bin/env bash
# The pull-request job: plans the branch's configuration from the nightly facts snapshot,
# with no SSH access, and writes the comment to post.
#
#   pr-plan.sh FACTS.json OUTDIR CONFIG_PATH…
#
# Writes OUTDIR/comment.md: a hidden marker (so that one comment is updated on each push),
# then the Markdown plan, or the error if the configuration does not plan. Exits 0 when
# there is a plan (changes or none), 1 on an error (the comment then says what it is).
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
{
    echo "$marker"
    case $rc in
    0 | 2)
        # A comment holds at most 65,536 characters.
        head -c 60000 "$out/plan.md"
        if (($(wc -c <"$out/plan.md") > 60000)); then
            echo
            echo "*(The plan is cut here: it is longer than a comment can be. The whole plan is in the job's log.)*"
        fi
        ;;
    *)
        echo "### corral plan failed"
        echo
        echo '```'
        # Errors name files and lines; corral never prints a secret's value.
        tail -c 60000 "$out/plan.err"
        echo '```'
        ;;
    esac
    if [[ -n ${FACTS_TAKEN:-} ]]; then
        echo
        echo "<sub>Planned from the facts read on $FACTS_TAKEN.</sub>"
    fi
} >"$out/comment.md"
cat "$out/plan.md"
cat "$out/plan.err" >&2
((rc == 0 || rc == 2))
