//! What schema evolution costs: today's build (schema 2) reading the v1
//! fixture (`tests/fixtures/v1`, every record and snapshot upcast through
//! `upcast_v1` / `upcast_state_v1`) and the v2 fixture (`tests/fixtures/v2`,
//! the current schema, decoded as it is). The fixtures' histories are alike
//! but not the same (v2 adds the schema-2 resources), so the bench prints how
//! many events each replays and BENCHMARKS.md compares per event.
//!
//! `cargo bench --bench schema`

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use elbstore::elb::ElbState;
use elbstore::{OpenMode, Options, Point, StateMachine, Store};

/// A copy of fixture `version` under `target/bench-stores/`, with or without its snapshots.
fn fixture_copy(version: u32, snapshots: bool) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v{version}/store"));
    let name = format!("schema-v{version}-fixture{}", if snapshots { "" } else { "-log-only" });
    let to = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-stores").join(name);
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if snapshots || path.extension().is_none_or(|e| e != "snap") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
    to
}

fn read_only() -> Options {
    Options::default().mode(OpenMode::ReadOnly)
}

/// Opens `dir` as `S` `iters` times; only the opens are timed.
fn timed_opens<S: StateMachine>(dir: &Path, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let store = Store::<S>::open(dir, read_only()).unwrap();
        total += started.elapsed();
        drop(store);
    }
    total
}

/// On a fresh open each time (no checkpoint in memory), `state_at` a point
/// before the first snapshot: a replay from the empty state.
fn timed_state_at<S: StateMachine>(dir: &Path, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let store = Store::<S>::open(dir, read_only()).unwrap();
        let started = Instant::now();
        let view = store.state_at(Point::Seq(150)).unwrap();
        total += started.elapsed();
        assert_eq!(view.seq(), 150);
    }
    total
}

/// The events of the first `through` transactions, for figures per event.
fn events_through(dir: &Path, through: u64) -> usize {
    let store = Store::<ElbState>::open(dir, read_only()).unwrap();
    store.transactions(1..=through).map(|t| t.unwrap().events.len()).sum()
}

fn schema(c: &mut Criterion) {
    let (v1, v2) = (fixture_copy(1, true), fixture_copy(2, true));
    let (v1_log, v2_log) = (fixture_copy(1, false), fixture_copy(2, false));
    for (name, dir) in [("v1", &v1), ("v2", &v2)] {
        let store = Store::<ElbState>::open(dir, read_only()).unwrap();
        println!(
            "fixture {name}: {} transactions, {} events; {} events in the first 150",
            store.read().seq(),
            events_through(dir, store.read().seq()),
            events_through(dir, 150)
        );
    }
    let mut group = c.benchmark_group("schema");
    group.sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    group.bench_function("open_full_replay/current", |b| b.iter_custom(|n| timed_opens::<ElbState>(&v2_log, n)));
    group.bench_function("open_full_replay/upcast_from_v1", |b| b.iter_custom(|n| timed_opens::<ElbState>(&v1_log, n)));
    group.bench_function("open_from_snapshot/current", |b| b.iter_custom(|n| timed_opens::<ElbState>(&v2, n)));
    group.bench_function("open_from_snapshot/upcast_from_v1", |b| b.iter_custom(|n| timed_opens::<ElbState>(&v1, n)));
    group.bench_function("state_at_first_point_after_open/current", |b| {
        b.iter_custom(|n| timed_state_at::<ElbState>(&v2, n))
    });
    group.bench_function("state_at_first_point_after_open/upcast_from_v1", |b| {
        b.iter_custom(|n| timed_state_at::<ElbState>(&v1, n))
    });
    group.finish();
}

criterion_group!(benches, schema);
criterion_main!(benches);
