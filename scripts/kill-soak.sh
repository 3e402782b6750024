#!/usr/bin/env bash
# Kill soak: run the load generator with an acknowledgement log and a
# follower of its change feed beside it, SIGKILL both at random moments,
# reopen the store, and check that every acknowledged transaction is there,
# that `pitr verify` finds nothing wrong, and that the follower (resumed from
# its own file) holds exactly the store's state at the seq it has applied
# (the same digest). Repeat.
#
# With mode `disk-loss` (or `disk-loss-s3`), each cycle loses the disk
# instead: the load generator runs with an archive (a directory, or a bucket
# on moto's S3-compatible server started on 127.0.0.1) and an ack log, is
# SIGKILLed, and its store directory deleted; the store restored from the
# archive must hold every transaction acknowledged more than half a second
# (five archive intervals) before the kill, verify, and take new writes.
#
# usage: scripts/kill-soak.sh [cycles] [writers] [crash|disk-loss|disk-loss-s3]
#   CI runs 3 cycles of each; for a long soak run e.g. `scripts/kill-soak.sh 200 32`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

cycles=${1:-20}
writers=${2:-8}
mode=${3:-crash}
if [ "$mode" = disk-loss ] || [ "$mode" = disk-loss-s3 ]; then
  exec bash scripts/disk-loss-soak.sh "$cycles" "$writers" "$mode"
fi
build_examples workload pitr follower
workload=$examples/workload
pitr=$examples/pitr
follower=$examples/follower

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=$work/store
acks=$work/acks
follower_state=$work/follower.state
touch "$acks"

for cycle in $(seq 1 "$cycles"); do
  "$workload" --dir "$store" --writers "$writers" --transactions 10000000 --load-balancers 200 \
    --ack-log "$acks" --json >/dev/null 2>"$work/stderr" &
  pid=$!
  # The follower starts once the store exists, and stops by itself if left idle.
  for _ in $(seq 1 100); do [ -f "$store/IDENTITY" ] && break; sleep 0.02; done
  "$follower" --dir "$store" --state "$follower_state" --idle-exit-ms 20000 --json >/dev/null 2>&1 &
  follower_pid=$!
  # Each killed at its own moment between 0.3 and 1.5 seconds in: sometimes
  # during the fleet build, mostly under load.
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 60) / 100 }')"
  { kill -KILL "$follower_pid" && wait "$follower_pid"; } 2>/dev/null || true
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", (r % 60) / 100 }')"
  { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true

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
  # The follower resumes from its file and catches up with what the log
  # shows durable; its copy must be the store's state at its seq.
  "$follower" --dir "$store" --state "$follower_state" --idle-exit-ms 300 --json >"$work/follower.json"
  followed=$(json_field seq <"$work/follower.json")
  follower_digest=$(json_field state_digest <"$work/follower.json")
  if [ "$followed" -gt 0 ]; then
    store_digest=$("$pitr" show "$store" --at "seq:$followed" --json | json_field state_digest)
  else
    store_digest=$follower_digest
  fi
  if [ "$followed" -gt "$last" ] || [ "$follower_digest" != "$store_digest" ]; then
    echo "cycle $cycle: the follower at seq $followed (digest $follower_digest) differs from the store ($store_digest, log ends at $last)" >&2
    exit 1
  fi
  echo "cycle $cycle: killed; $acked acknowledged so far, highest $highest, log ends at $last, verify ok, follower at $followed with the store's digest"
done
echo "kill soak: $cycles cycles, $(wc -l <"$acks" | tr -d ' ') acknowledged transactions, 0 lost, the follower's digest equal to the store's every cycle"
