//! What schema evolution costs: the v1 fixture (`tests/fixtures/v1`, 201
//! transactions, 5,060 events, two snapshots) read as the current schema, and
//! the same files read by a build one schema later whose upcaster for schema 1
//! is the identity. The difference is the mechanism's own cost: the per-event
//! path through the upcaster instead of one decode of the whole payload, and a
//! snapshot decoded through `OldBytes`.
//!
//! `cargo bench --bench schema`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use elbstore::elb::{ElbEvent, ElbState};
use elbstore::{CodecError, OldBytes, OpenMode, Options, Point, StateMachine, Store};
use serde::{Deserialize, Serialize};

/// The ELB state as a build one schema later would have it: same events,
/// same state, schema 2, and an upcaster from schema 1 that changes nothing.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct NextElb(ElbState);

impl StateMachine for NextElb {
    type Event = ElbEvent;
    const SCHEMA_VERSION: u8 = 2;

    fn apply(&mut self, event: &ElbEvent) {
        self.0.apply(event);
    }

    fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<ElbEvent>, CodecError> {
        match version {
            1 => Ok(vec![old.decode()?]),
            _ => Err(CodecError::no_upcaster(version.into(), Self::SCHEMA_VERSION)),
        }
    }

    fn upcast_state(version: u8, old: &mut OldBytes<'_>) -> Result<Option<NextElb>, CodecError> {
        match version {
            1 => Ok(Some(NextElb(old.decode()?))),
            _ => Ok(None),
        }
    }
}

/// A copy of the fixture under `target/bench-stores/`, with or without its snapshots.
fn fixture_copy(snapshots: bool) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1/store");
    let to = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-stores").join(if snapshots {
        "schema-v1-fixture"
    } else {
        "schema-v1-fixture-log-only"
    });
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

fn schema(c: &mut Criterion) {
    let with_snapshots = fixture_copy(true);
    let log_only = fixture_copy(false);
    let mut group = c.benchmark_group("schema");
    group.sample_size(20).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    group.bench_function("open_full_replay/current", |b| b.iter_custom(|n| timed_opens::<ElbState>(&log_only, n)));
    group
        .bench_function("open_full_replay/upcast_from_v1", |b| b.iter_custom(|n| timed_opens::<NextElb>(&log_only, n)));
    group.bench_function("open_from_snapshot/current", |b| {
        b.iter_custom(|n| timed_opens::<ElbState>(&with_snapshots, n))
    });
    group.bench_function("open_from_snapshot/upcast_from_v1", |b| {
        b.iter_custom(|n| timed_opens::<NextElb>(&with_snapshots, n))
    });
    group.bench_function("state_at_first_point_after_open/current", |b| {
        b.iter_custom(|n| timed_state_at::<ElbState>(&with_snapshots, n))
    });
    group.bench_function("state_at_first_point_after_open/upcast_from_v1", |b| {
        b.iter_custom(|n| timed_state_at::<NextElb>(&with_snapshots, n))
    });
    group.finish();
}

criterion_group!(benches, schema);
criterion_main!(benches);
