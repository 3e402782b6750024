//! Time travel on the reference store: 100,000 load balancers
//! (1.6 million resources) followed by a tail of control-plane traffic.
//!
//! `cargo bench --bench history` (set `ELBSTORE_BENCH_LOAD_BALANCERS` for
//! another fleet size). The store is built once and kept under
//! `target/bench-stores/`, so later runs only open it.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use elbstore::elb::{fleet, Command, ElbStore, Settings, TargetSpec};
use elbstore::{Create, Options, Point, SyncPolicy, TxnMeta};

/// Transactions of health changes after the fleet is built.
const TAIL_TRANSACTIONS: u64 = 50_000;

fn fleet_size() -> u64 {
    std::env::var("ELBSTORE_BENCH_LOAD_BALANCERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn options() -> Options {
    Options::default().create(Create::IfMissing).sync(SyncPolicy::Never).snapshot_every_events(Some(250_000))
}

/// Opens the bench store, building it first if it is not there yet.
fn bench_store() -> ElbStore {
    let n = fleet_size();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/bench-stores/fleet-{n}-schema{}",
        <elbstore::elb::ElbState as elbstore::StateMachine>::SCHEMA_VERSION
    ));
    let ready = dir.join("READY");
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let store = ElbStore::open(&dir, options(), Settings::in_region("us-east-1")).unwrap();
        for i in 0..n {
            store
                .execute_with(TxnMeta::new("bench:build", "build the fleet"), |_, ctx| {
                    fleet::reference_commands(i, ctx.seq)
                })
                .unwrap();
            if i % 10_000 == 0 {
                eprintln!("building the bench store: {i}/{n} load balancers");
            }
        }
        // Control-plane tail: target health flapping across the fleet.
        let view = store.read();
        let groups: Vec<_> = view.target_groups().map(|tg| (tg.id, tg.name.clone())).collect();
        drop(view);
        for t in 0..TAIL_TRANSACTIONS {
            let (tg, name) = &groups[(t.wrapping_mul(2_654_435_761) % groups.len() as u64) as usize];
            let i: u64 = name.trim_start_matches("lb-").parse().unwrap();
            let command = Command::UpdateTargetHealth {
                target_group: *tg,
                target: TargetSpec::new(fleet::target_id(i, t % fleet::TARGETS_PER_GROUP)),
                health: fleet::check_result(t.is_multiple_of(2), t),
            };
            store.execute(TxnMeta::new("svc:health", "health check"), vec![command]).unwrap();
        }
        store.close().unwrap();
        std::fs::write(&ready, b"").unwrap();
        eprintln!("built the bench store in {:.1} s", started.elapsed().as_secs_f64());
    }
    ElbStore::open(&dir, options().mode(elbstore::OpenMode::ReadOnly), Settings::in_region("us-east-1")).unwrap()
}

fn resident_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1));
    kb.and_then(|kb| kb.parse::<u64>().ok()).map_or(0, |kb| kb / 1024)
}

fn history(c: &mut Criterion) {
    let store = bench_store();
    let last = store.read().seq();
    let mut group = c.benchmark_group("history");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // One pass over the history, oldest first, as a forensic reader makes:
    // it leaves a checkpoint every 4,096 transactions in memory.
    let before = resident_mib();
    let started = Instant::now();
    for seq in (0..=last).step_by(4096) {
        store.store().state_at(Point::Seq(seq)).unwrap();
    }
    eprintln!(
        "one pass over {last} transactions: {:.2} s; resident memory {before} MiB before, {} MiB after",
        started.elapsed().as_secs_f64(),
        resident_mib()
    );
    group.bench_function("state_at/random_point", |b| {
        b.iter(|| store.store().state_at(Point::Seq(1 + next() % last)).unwrap())
    });
    eprintln!("resident memory after the random points: {} MiB", resident_mib());
    group.bench_function("state_at/within_the_last_10000_transactions", |b| {
        b.iter(|| store.store().state_at(Point::Seq(last - next() % 10_000)).unwrap())
    });
    group.bench_function("diff/10000_transactions", |b| {
        b.iter(|| {
            let from = next() % (last - 10_000);
            store.diff(Point::Seq(from), Point::Seq(from + 10_000)).unwrap()
        })
    });
    // The first point after an open: no checkpoint is in memory yet, so it is
    // a snapshot load and a replay (the open itself is not timed).
    let dir = store.store().dir().to_path_buf();
    group.bench_function("state_at/first_point_after_open", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fresh = ElbStore::open(
                    &dir,
                    options().mode(elbstore::OpenMode::ReadOnly),
                    Settings::in_region("us-east-1"),
                )
                .unwrap();
                let point = Point::Seq(1 + next() % last);
                let started = Instant::now();
                fresh.store().state_at(point).unwrap();
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, history);
criterion_main!(benches);
