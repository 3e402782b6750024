#!/usr/bin/env bash
# Replication soak: a group of three replica processes on 127.0.0.1 under
# the load generator (64 writers through the group's client, with an ack
# log), put through each failure in turn, every cycle:
#   leader   SIGKILL the leader under load; time until another leads
#   follower SIGKILL a follower under load, restart it
#   majority SIGKILL two replicas: a write fails with a clear error; one back,
#            writes resume; the other back
#   partition cut the leader off from the others (the replicas' fault
#            switch), under load; heal
#   wipe     SIGKILL a follower, delete its directory, restart it: it rejoins
#            from a snapshot
# After each: every replica answers, all at the same seq with the same state
# digest, and every seq in the ack log is at or below it (seqs are gapless,
# so each acknowledged transaction is present on every replica).
#
# usage: scripts/raft-soak.sh [cycles] [writers]
#   CI runs 2 cycles; for a long soak run e.g. `scripts/raft-soak.sh 100 64`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

cycles=${1:-3}
writers=${2:-64}
build_examples replica workload pitr
replica=$examples/replica
workload=$examples/workload
pitr=$examples/pitr

work=$(mktemp -d)
declare -A pids addrs
cleanup() {
  for id in "${!pids[@]}"; do kill -KILL "${pids[$id]}" 2>/dev/null || true; done
  [ -n "${load_pid:-}" ] && kill -KILL "$load_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
acks=$work/acks
touch "$acks"

for id in 1 2 3; do addrs[$id]=127.0.0.1:$(free_port); done
peers="1=${addrs[1]},2=${addrs[2]},3=${addrs[3]}"
group="${addrs[1]},${addrs[2]},${addrs[3]}"

start() {
  local id=$1
  "$replica" --id "$id" --dir "$work/r$id" --listen "${addrs[$id]}" --peers "$peers" --store elb/soak \
    --snapshot-every 2000 --logs-kept 200 --write-timeout-ms 1000 --faults --json \
    >>"$work/r$id.out" 2>>"$work/r$id.err" &
  pids[$id]=$!
  for _ in $(seq 1 200); do
    python3 - "${addrs[$id]}" <<'EOF' 2>/dev/null && return 0
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}/group/identity", timeout=1).read()
EOF
    sleep 0.05
  done
  echo "replica $id did not start; its log:" >&2
  tail -n 20 "$work/r$id.err" >&2
  exit 1
}

kill_replica() {
  kill -KILL "${pids[$1]}" 2>/dev/null || true
  wait "${pids[$1]}" 2>/dev/null || true
  unset "pids[$1]"
}

# Prints the id of the one replica that leads among those asked (all by
# default; empty unless exactly one says it leads).
leader() {
  local asked=${1:-$group}
  "$pitr" cluster status --group "$asked" --timeout-ms 1000 --json 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
leaders = {tuple(r["leader"]) [0] for r in doc["replicas"] if r.get("leader") and r.get("state") == "Leader"}
print(leaders.pop() if len(leaders) == 1 else "")' || true
}

faults() { # faults ID BLOCKED...
  local id=$1
  shift
  python3 - "${addrs[$id]}" "$@" <<'EOF'
import json, sys, urllib.request
body = json.dumps({"blocked": [int(x) for x in sys.argv[2:]]}).encode()
req = urllib.request.Request(f"http://{sys.argv[1]}/group/faults", data=body,
                             headers={"content-type": "application/json"})
urllib.request.urlopen(req, timeout=5).read()
EOF
}

load_start() {
  "$workload" --group "$group" --writers "$writers" --transactions 100000000 --load-balancers 200 \
    --ack-log "$acks" --json >/dev/null 2>"$work/load.err" &
  load_pid=$!
}

load_stop() {
  kill -KILL "$load_pid" 2>/dev/null || true
  wait "$load_pid" 2>/dev/null || true
  load_pid=
}

# Waits until all three replicas hold the same seq and digest, at or past the
# highest acknowledged seq; prints "seq digest".
converged() {
  local what=$1 highest
  highest=$(sort -n "$acks" | tail -n 1)
  for _ in $(seq 1 300); do
    if out=$("$pitr" cluster status --group "$group" --digest --timeout-ms 2000 --json 2>/dev/null | python3 -c '
import json, sys
doc, highest = json.load(sys.stdin), int(sys.argv[1] or 0)
rs = doc["replicas"]
ok = all(r.get("seq") is not None for r in rs) and doc["converged"] and rs[0]["seq"] >= highest
print(rs[0]["seq"], rs[0]["digest"]) if ok else sys.exit(1)' "$highest"); then
      echo "$out"
      return 0
    fi
    sleep 0.1
  done
  echo "FAIL ($what): the replicas did not converge past acknowledged seq $highest:" >&2
  "$pitr" cluster status --group "$group" --digest >&2 || true
  exit 1
}

check() {
  local what=$1 seq digest acked
  read -r seq digest < <(converged "$what")
  acked=$(wc -l <"$acks" | tr -d ' ')
  echo "  $what: 3 replicas at seq $seq, digest ${digest:0:16}, $acked acknowledged in all, none missing"
}

for id in 1 2 3; do start "$id"; done
# The group starts and builds the fleet once.
"$workload" --group "$group" --writers 4 --transactions 10 --load-balancers 200 --json >/dev/null

for cycle in $(seq 1 "$cycles"); do
  echo "cycle $cycle"

  # leader: SIGKILL under load.
  load_start
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 1 + (r % 100) / 100 }')"
  old=$(leader)
  [ -n "$old" ] || { echo "FAIL: no leader before the kill" >&2; exit 1; }
  killed_at=$(date +%s%N)
  kill_replica "$old"
  new=
  for _ in $(seq 1 300); do
    new=$(leader)
    [ -n "$new" ] && [ "$new" != "$old" ] && break
    sleep 0.02
  done
  [ -n "$new" ] && [ "$new" != "$old" ] || { echo "FAIL: no new leader within 6 s" >&2; exit 1; }
  elected_ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
  sleep 1
  start "$old"
  sleep 0.5
  load_stop
  check "leader $old killed, replica $new leading after ${elected_ms} ms"

  # follower: SIGKILL under load, restart.
  load_start
  sleep 1
  leading=$(leader)
  follower=$(( leading % 3 + 1 ))
  kill_replica "$follower"
  sleep 1
  start "$follower"
  sleep 0.5
  load_stop
  check "follower $follower killed and restarted"

  # majority: two of three down; a write fails clearly; one back resumes writes.
  leading=$(leader)
  a=$(( leading % 3 + 1 )); b=$(( a % 3 + 1 ))
  kill_replica "$a"
  kill_replica "$b"
  if "$workload" --group "$group" --writers 1 --transactions 1 --load-balancers 200 --ack-log "$acks" \
    >"$work/minority.out" 2>&1; then
    echo "FAIL: a write committed with two of three replicas down" >&2
    exit 1
  fi
  grep -q "did not commit the request within" "$work/minority.out" \
    || { echo "FAIL: no clear error with a majority down:" >&2; cat "$work/minority.out" >&2; exit 1; }
  start "$a"
  "$workload" --group "$group" --writers 4 --transactions 40 --load-balancers 200 --ack-log "$acks" --json >/dev/null
  start "$b"
  check "replicas $a and $b killed: writes refused ($(grep -o 'did not commit the request within [^;]*' "$work/minority.out" | head -1)), resumed with $a back"

  # partition: the leader cut off from the others, under load; heal.
  load_start
  sleep 1
  cut=$(leader)
  others=()
  for id in 1 2 3; do [ "$id" != "$cut" ] && others+=("$id"); done
  faults "$cut" "${others[@]}"
  for id in "${others[@]}"; do faults "$id" "$cut"; done
  sleep 3
  majority_leader=$(leader "${addrs[${others[0]}]},${addrs[${others[1]}]}")
  [ -n "$majority_leader" ] && [ "$majority_leader" != "$cut" ] \
    || { echo "FAIL: the majority side elected no leader while $cut was cut off" >&2; exit 1; }
  for id in 1 2 3; do faults "$id"; done
  sleep 0.5
  load_stop
  check "leader $cut partitioned away (the other side elected $majority_leader), healed"

  # wipe: a follower loses its disk and rejoins from a snapshot.
  leading=$(leader)
  wiped=$(( leading % 3 + 1 ))
  kill_replica "$wiped"
  rm -rf "${work:?}/r$wiped"
  load_start
  sleep 2
  start "$wiped"
  sleep 1
  load_stop
  check "replica $wiped wiped and rejoined"
  ls "$work/r$wiped/store" | grep -q '\.snap$' \
    || { echo "FAIL: replica $wiped did not start from a snapshot" >&2; exit 1; }
done
for id in 1 2 3; do "$pitr" verify "$work/r$id/store" >/dev/null || { echo "FAIL: replica $id's store does not verify" >&2; exit 1; }; done
echo "raft soak: $cycles cycles, $(wc -l <"$acks" | tr -d ' ') acknowledged transactions, all present on every replica, every store verifies"
