#!/usr/bin/env bash
# Kill soak: run the load generator with an acknowledgement log, SIGKILL it at
# a random moment, reopen the store, and check that every acknowledged
# transaction is there and that `pitr verify` finds nothing wrong. Repeat.
#
# usage: scripts/kill-soak.sh [cycles] [writers]
#   CI runs 3 cycles; for a long soak run e.g. `scripts/kill-soak.sh 200 32`.
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=${1:-20}
writers=${2:-8}
cargo build --quiet --release --example workload --example pitr
workload=target/release/examples/workload
pitr=target/release/examples/pitr

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
acks=$work/acks
touch "$acks"

for cycle in $(seq 1 "$cycles"); do
  "$workload" --dir "$store" --writers "$writers" --transactions 10000000 --load-balancers 200 \
    --ack-log "$acks" --json >/dev/null 2>"$work/stderr" &
  pid=$!
  # Between 0.3 and 1.5 seconds in: sometimes during the fleet build, mostly under load.
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 120) / 100 }')"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true

  # Reopen for writing (a torn tail is cut and kept aside), commit nothing.
  "$workload" --dir "$store" --writers 1 --transactions 0 --load-balancers 0 --json >/dev/null
  last=$("$pitr" info "$store" --json | grep -o '"last_seq":[0-9]*' | cut -d: -f2)
  acked=$(wc -l <"$acks" | tr -d ' ')
  highest=$(sort -n "$acks" | tail -n 1)
  highest=${highest:-0}
  if [ "$highest" -gt "$last" ]; then
    echo "cycle $cycle: LOST: acknowledged seq $highest but the log ends at $last" >&2
    exit 1
  fi
  if ! "$pitr" verify "$store" --json >"$work/verify" 2>/dev/null; then
    echo "cycle $cycle: verify failed: $(cat "$work/verify")" >&2
    exit 1
  fi
  echo "cycle $cycle: killed; $acked acknowledged so far, highest $highest, log ends at $last, verify ok"
done
echo "kill soak: $cycles cycles, $(wc -l <"$acks" | tr -d ' ') acknowledged transactions, 0 lost"
