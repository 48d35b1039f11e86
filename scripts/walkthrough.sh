#!/usr/bin/env bash
# A short local walk-through of Catchment on a fresh, temporary data directory: one member
# creates a topic, posts a question, answers it, opens an ask, and reads the feed, a thread,
# the leaderboard and a profile. Nothing outside the temporary directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p catchment-cli
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/catchment"
home=$(mktemp -d "${TMPDIR:-/tmp}/catchment-walkthrough.XXXXXX")
export CATCHMENT_HOME="$home"

run() {
    printf '\n$ catchment %s\n' "$*"
    "$bin" "$@"
}

id_of() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}

run init --name "Ada"
run topic create "Platform team ideas"
printf '\n$ catchment post question --title "How do we cut CI time?" ...\n'
question=$("$bin" --json post question --title "How do we cut CI time?" \
    --body "Our pipeline takes 40 minutes on every push." --tags ci,build | id_of)
echo "Posted question $question"
printf '\n$ catchment post answer --parent %s ...\n' "${question:0:6}"
answer=$("$bin" --json post answer --parent "${question:0:6}" \
    --body "Cache the \`target/\` directory between runs: it went down to 12 minutes for us." | id_of)
echo "Posted answer $answer"
run post comment --parent "$answer" --body "Worth trying sccache as well."
run ask create --title "Ideas to cut build time" --body "Anything goes until Friday." --deadline 4d
run post idea --title "Nightly full builds, quick checks on push" --tags ci
run feed
run show "${question:0:8}"
run leaderboard
run profile

printf '\nThe data directory of this walk-through is %s (remove it when done).\n' "$home"
