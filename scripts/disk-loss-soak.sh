#!/usr/bin/env bash
# Disk-loss soak (run by scripts/kill-soak.sh in mode disk-loss or
# disk-loss-s3): per cycle, a fresh store loaded by the load generator with
# an archive and an ack log; the ack log is copied, half a second (five
# archive intervals) later the generator is SIGKILLed and its directory
# deleted; `pitr restore --from-archive` must bring back every transaction
# in the copied ack log, the restored store must verify and take new writes.
#
# usage: scripts/disk-loss-soak.sh CYCLES WRITERS disk-loss|disk-loss-s3
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

cycles=$1
writers=$2
mode=$3
build_examples workload pitr
workload=$examples/workload
pitr=$examples/pitr
interval_ms=100

work=$(mktemp -d)
s3_pid=""
trap '[ -n "$s3_pid" ] && { kill "$s3_pid" 2>/dev/null; wait "$s3_pid" 2>/dev/null; }; rm -rf "$work"' EXIT

if [ "$mode" = disk-loss-s3 ]; then
  # moto's server (from the package registry) as the S3-compatible endpoint.
  export PATH="$HOME/.local/bin:$PATH"
  if ! command -v moto_server >/dev/null 2>&1; then
    python3 -m pip install --quiet --user 'moto[server]'
    hash -r
  fi
  s3_port=$(free_port)
  moto_server -H 127.0.0.1 -p "$s3_port" >"$work/s3.log" 2>&1 &
  s3_pid=$!
  export AWS_ACCESS_KEY_ID=soak AWS_SECRET_ACCESS_KEY=soak AWS_REGION=us-east-1
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$s3_port/')" 2>/dev/null && break
    sleep 0.2
  done
fi

for cycle in $(seq 1 "$cycles"); do
  store=$work/store-$cycle
  acks=$work/acks-$cycle
  : >"$acks"
  if [ "$mode" = disk-loss-s3 ]; then
    bucket=soak-$cycle
    python3 -c "import urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$s3_port/$bucket', method='PUT'))"
    url="s3://$bucket/elb?endpoint=http://127.0.0.1:$s3_port&allow_http=true"
  else
    url="file://$work/archive-$cycle"
  fi
  "$workload" --dir "$store" --writers "$writers" --transactions 10000000 --load-balancers 200 \
    --ack-log "$acks" --archive "$url" --archive-interval-ms "$interval_ms" --json >/dev/null 2>"$work/stderr" &
  pid=$!
  # Under load for 0.5 to 1.5 seconds, then what has been acknowledged so far
  # must survive a disk lost half a second later.
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.5 + (r % 100) / 100 }')"
  cp "$acks" "$acks.before"
  sleep 0.5
  { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
  rm -rf "$store"

  restored=$work/restored-$cycle
  "$pitr" restore --from-archive "$url" --at now --out "$restored" --actor soak:oncall \
    --reason "disk lost in cycle $cycle" --json >"$work/restore.json"
  restored_seq=$(json_field seq <"$work/restore.json")
  required=$(sort -n "$acks.before" | tail -n 1)
  required=${required:-0}
  acked=$(sort -n "$acks" | tail -n 1)
  acked=${acked:-0}
  if [ "$required" -gt "$restored_seq" ]; then
    echo "cycle $cycle: LOST: seq $required was acknowledged 0.5 s before the disk went, the archive ends at $restored_seq" >&2
    exit 1
  fi
  if ! "$pitr" verify "$restored" --json >"$work/verify" 2>/dev/null; then
    echo "cycle $cycle: the restored store does not verify: $(cat "$work/verify")" >&2
    exit 1
  fi
  took=$("$workload" --dir "$restored" --writers 1 --transactions 50 --load-balancers 0 --json | json_field transactions)
  if [ "$took" != 50 ]; then
    echo "cycle $cycle: the restored store took $took of 50 new transactions" >&2
    exit 1
  fi
  rm -rf "$restored"
  echo "cycle $cycle: disk lost; $required acknowledged 0.5 s before, $acked in all, the archive restored $restored_seq, verify ok, new writes taken"
done
echo "disk-loss soak ($mode): $cycles cycles, every transaction acknowledged 0.5 s before the loss restored from the archive"
