//! Commit throughput: the store's own CPU cost (no fsync) and durable commits
//! with 1, 8 and 64 concurrent writers, beside the machine's raw fdatasync rate.
//!
//! `cargo bench --bench commit`

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use elbstore::{Create, Options, StateMachine, Store, SyncPolicy, TxnMeta};
use serde::{Deserialize, Serialize};

/// A state that costs nothing to clone, so the figures are the store's own
/// cost (framing, encoding, locking, writing, fsync) and not the state's.
/// The store clones the state once per commit group; real states use
/// structurally shared maps to keep that cheap.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Health {
    changes: u64,
    last: (u32, u8),
}

impl StateMachine for Health {
    type Event = (u32, u8);
    fn apply(&mut self, change: &(u32, u8)) {
        self.changes += 1;
        self.last = *change;
    }
}

fn bench_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elbstore-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Commits `total` single-event transactions from `writers` threads; returns the elapsed time.
fn commit_from(store: &Store<Health>, writers: u64, total: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                for i in 0..total / writers {
                    let meta = TxnMeta::new("svc:health-checker", "health changed");
                    store.commit(meta, vec![((w * 1_000_003 + i) as u32 % 10_000, (i % 5) as u8)]).unwrap();
                }
            });
        }
    });
    started.elapsed()
}

fn commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.sample_size(10).measurement_time(Duration::from_secs(5));

    let dir = bench_dir("never");
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Never).snapshot_every_events(None);
    let store: Store<Health> = Store::open(&dir, options).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("never/1_writer", |b| {
        b.iter_custom(|iters| commit_from(&store, 1, iters));
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    for writers in [1u64, 8, 64] {
        let dir = bench_dir(&format!("always-{writers}"));
        let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Always).snapshot_every_events(None);
        let store: Store<Health> = Store::open(&dir, options).unwrap();
        group.bench_function(format!("always/{writers}_writers"), |b| {
            b.iter_custom(|iters| commit_from(&store, writers, iters.max(writers)));
        });
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // The machine's limit for comparison: one small write plus fdatasync per iteration.
    let dir = bench_dir("fdatasync");
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = std::fs::File::create(dir.join("probe")).unwrap();
    group.bench_function("machine/write_128_bytes_and_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&[7u8; 128]).unwrap();
            file.sync_data().unwrap();
        });
    });
    drop(file);
    let _ = std::fs::remove_dir_all(&dir);
    group.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
