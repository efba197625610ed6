#!/usr/bin/env bash
# Posts COMMENT.md on pull request NUMBER, or updates the comment posted before (found by
# the marker on its first line), so that a pull request carries one plan, the latest.
#
#   post-comment.sh NUMBER COMMENT.md
#
# Needs the GitHub CLI (`gh`) with GH_TOKEN, and GITHUB_REPOSITORY (owner/name; set in
# GitHub Actions). COMMENT_AUTHOR is the login the token comments as (default
# `github-actions[bot]`, the workflow token's).
set -euo pipefail
number=${1:?usage: post-comment.sh NUMBER COMMENT.md}
comment=${2:?usage: post-comment.sh NUMBER COMMENT.md}
repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY must name the repository (owner/name)}
marker=$(head -n 1 "$comment")
[[ $marker =~ ^'<!-- '[a-z0-9-]+' -->'$ ]] || { echo "post-comment: $comment does not start with a marker (<!-- name -->)" >&2; exit 1; }

# Only a comment of the workflow's own (its token's bot), never one someone else wrote
# with the marker.
ids=$(gh api --paginate "repos/$repo/issues/$number/comments" \
    --jq ".[] | select(.user.login == \"${COMMENT_AUTHOR:-github-actions[bot]}\" and (.body | startswith(\"$marker\"))) | .id")
existing=${ids%%$'\n'*}
if [[ -n $existing ]]; then
    gh api --method PATCH "repos/$repo/issues/comments/$existing" -F "body=@$comment" >/dev/null
    echo "updated comment $existing on #$number"
else
    gh api --method POST "repos/$repo/issues/$number/comments" -F "body=@$comment" >/dev/null
    echo "commented on #$number"
fi
