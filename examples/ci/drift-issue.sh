#!/usr/bin/env bash
# Keeps one GitHub issue (label `corral-drift`) in step with the nightly drift report:
#
#   drift-issue.sh EXIT_CODE REPORT.md
#
# EXIT_CODE is nightly.sh's: 2 opens the issue with the report, or updates the open one;
# 0 closes the open one with a comment; anything else leaves the issue alone and exits 1, so
# that the job fails and says why. Needs the GitHub CLI (`gh`) with GH_TOKEN, in the
# repository's checkout (or GH_REPO set).
set -euo pipefail
rc=${1:?usage: drift-issue.sh EXIT_CODE REPORT.md}
report=${2:?usage: drift-issue.sh EXIT_CODE REPORT.md}
label=corral-drift
title="corral: the hosts drifted from the configuration"

open_issue() {
    gh issue list --label "$label" --state open --limit 1 --json number --jq '.[0].number // empty'
}

# An issue's body holds at most 65,536 characters.
body=$(mktemp)
trap 'rm -f "$body"' EXIT
head -c 60000 "$report" >"$body"
if (($(wc -c <"$report") > 60000)); then
    printf '\n*(The report is cut here; the whole report is in the job'"'"'s log.)*\n' >>"$body"
fi

case $rc in
2)
    gh label create "$label" --color d93f0b \
        --description "Hosts differ from the corral configuration" --force >/dev/null
    number=$(open_issue)
    if [[ -n $number ]]; then
        gh issue edit "$number" --body-file "$body" >/dev/null
        echo "drift: updated issue #$number"
    else
        gh issue create --title "$title" --label "$label" --body-file "$body"
    fi
    ;;
0)
    number=$(open_issue)
    if [[ -n $number ]]; then
        gh issue close "$number" --comment "No drift in the nightly run of $(date -u +%F): the hosts match the configuration again." >/dev/null
        echo "no drift: closed issue #$number"
    else
        echo "no drift"
    fi
    ;;
*)
    echo "corral drift failed (exit $rc); the drift issue is left as it is" >&2
    exit 1
    ;;
esac
