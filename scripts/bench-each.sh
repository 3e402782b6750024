#!/usr/bin/env bash
# Runs every criterion bench of elbstore in a process of its own and prints
# each median line. One process per figure: the system allocator keeps freed
# memory per thread, so a figure measured after other benches in the same
# process (64 writer threads, stores opened and dropped) reflects their
# leftovers as well as its own work.
#
#   bash scripts/bench-each.sh [filter-regex]
#   ELBSTORE_BENCH_FEATURES=mimalloc bash scripts/bench-each.sh [filter-regex]
#
# ELBSTORE_BENCH_FEATURES: cargo features for the bench binaries (mimalloc:
# that global allocator instead of the system's; BENCHMARKS.md, "The allocator").
set -euo pipefail
cd "$(dirname "$0")/.."
only="${1:-.}"
features=()
if [[ -n "${ELBSTORE_BENCH_FEATURES:-}" ]]; then
    features=(--features "$ELBSTORE_BENCH_FEATURES")
    echo "== features: $ELBSTORE_BENCH_FEATURES"
fi
cargo bench "${features[@]}" --no-run --bench commit --bench elb --bench history --bench schema --bench api --bench feed --bench replication >/dev/null
run() {
    local bench="$1" name="$2"
    [[ "$bench/$name" =~ $only ]] || return 0
    echo "== cargo bench --bench $bench -- '^$name\$'"
    cargo bench "${features[@]}" --bench "$bench" -- "^$name\$" 2>&1 | grep -E '^(memory|resident|one pass|latency|snapshot)|time:|thrpt:' | grep -v 'change' || true
}
for name in commit/never/1_writer commit/always/1_writers commit/always/8_writers commit/always/64_writers \
    commit/machine/write_128_bytes_and_fdatasync; do
    run commit "$name"
done
for name in elb/commit/never/1_writer elb/commit/never/1_writer_reference_mix elb/commit/never/64_writers_reference_mix \
    elb/reference_mix/draw_a_command_only elb/commit/always/1_writers elb/commit/always/8_writers \
    elb/commit/always/64_writers elb/commit/always/64_writers_reference_mix elb/commit/always/batched_1000_events \
    elb/commit/never/batched_1000_events elb/commit/always/batched_1000_events_2_writers \
    elb/machine/sequential_write_64_mib_and_fdatasync elb/open/100k_load_balancers_with_1m_event_tail \
    elb/snapshot/write_mb_per_s elb/open/clean_reopen_snapshot_at_head_mb_per_s \
    elb/entity_history/one_load_balancer elb/entity_history/one_load_balancer_11_versions \
    elb/machine/dependent_random_load_512_mib elb/machine/eight_independent_random_loads_512_mib \
    elb/model/replay_today_shape elb/model/replay_lean elb/model/replay_lean_interleaved \
    elb/model/commits_today_shape elb/model/commits_lean; do
    run elb "$name"
done
for name in history/state_at/random_point history/state_at/within_the_last_10000_transactions \
    history/diff/10000_transactions history/state_at/first_point_after_open; do
    run history "$name"
done
for name in schema/open_full_replay/current schema/open_full_replay/upcast_from_v1 \
    schema/open_from_snapshot/current schema/open_from_snapshot/upcast_from_v1 \
    schema/state_at_first_point_after_open/current schema/state_at_first_point_after_open/upcast_from_v1; do
    run schema "$name"
done
for name in api/store/add_tags/64_threads api/service/add_tags/64_threads api/http/add_tags/64_clients \
    api/store/describe/64_threads api/service/describe/64_threads api/http/describe/64_clients; do
    run api "$name"
done
for name in feed/latency/1_subscribers feed/latency/64_subscribers feed/writers/64_writers_0_subscribers \
    feed/writers/64_writers_1_subscribers feed/writers/64_writers_64_subscribers; do
    run feed "$name"
done
for name in replication/single_store/64_writers replication/three_replicas/64_writers; do
  run replication "$name"
done
