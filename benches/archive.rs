//! The off-machine archive: what it costs the writers, and how fast it ships.
//!
//! - `archive/writers/64_writers_{without,with}_archiver`: 64 writers commit
//!   as fast as they can (`SyncPolicy::Always`), with no archiver, or with
//!   one shipping to a directory every 100 ms; criterion's figure is the
//!   time per commit. `paired` lines then run the two in turn (200,000
//!   commits each, the archiver at its default 1 s and at 100 ms) over 16
//!   rounds, each on a fresh store, and print the median rate of each and
//!   the median per-round ratio (drift in the machine's speed cancels),
//!   shipping to a directory on the same disk and to memory (the archive's
//!   own CPU cost, without its writes competing with the store's fsyncs).
//! - `archive/ship/{file,memory}`: a store of 64 MiB of log in 1 MiB
//!   segments shipped whole by a new archiver (`flush`); throughput in
//!   bytes.
//!
//! `cargo bench --bench archive`

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{bench_dir, quartile, Health};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use elbstore::archive::{Archiver, ArchiverOptions, Target};
use elbstore::{Create, Options, Store, SyncPolicy, TxnMeta};

fn open(dir: &Path, segment_bytes: u64) -> Arc<Store<Health>> {
    let options = Options::default()
        .create(Create::IfMissing)
        .sync(SyncPolicy::Always)
        .snapshot_every_events(None)
        .segment_bytes(segment_bytes);
    Arc::new(Store::open(dir, options).unwrap())
}

/// Commits `total` transactions from `writers` threads as fast as they can.
fn commit(store: &Store<Health>, writers: u64, total: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                for i in 0..total / writers {
                    let meta = TxnMeta::new("svc:health-checker", "health changed");
                    store.commit(meta, vec![(w * 1_000_003 + i) as u32]).unwrap();
                }
            });
        }
    });
    started.elapsed()
}

/// An archiver shipping every 100 ms to a directory (`dir`), or to memory
/// when `dir` is `None`.
fn archiver(store: &Store<Health>, dir: Option<&Path>, interval: Duration) -> Archiver {
    let target = match dir {
        Some(dir) => Target::open(&format!("file://{}", dir.display())).unwrap(),
        None => Target::memory(),
    };
    Archiver::start(store, target, ArchiverOptions::default().interval(interval)).unwrap()
}

fn archive(c: &mut Criterion) {
    let mut group = c.benchmark_group("archive");
    group.sample_size(10).measurement_time(Duration::from_secs(6));
    group.throughput(Throughput::Elements(1));
    for with in [false, true] {
        let dir = bench_dir("archive", &format!("writers-{with}"));
        let store = open(&dir.join("store"), 64 << 20);
        let shipping = with.then(|| archiver(&store, Some(&dir.join("archive")), Duration::from_millis(100)));
        let name = if with { "writers/64_writers_with_archiver" } else { "writers/64_writers_without_archiver" };
        group.bench_function(name, |b| b.iter_custom(|iters| commit(&store, 64, iters.max(64))));
        if let Some(archiver) = shipping {
            let status = archiver.flush().unwrap();
            println!(
                "archive {name}: {} transactions archived in {} objects, {} bytes, {} failures",
                status.archived_seq, status.objects, status.bytes, status.failures
            );
            archiver.stop();
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // Shipping a store of 64 MiB of log, in 1 MiB segments.
    let source = bench_dir("archive", "ship-source");
    let store = open(&source, 1 << 20);
    let payload_per_commit = 90; // bytes of frame and payload per commit, about
    commit(&store, 64, (64 << 20) / payload_per_commit);
    let log_bytes: u64 = store.segments().iter().map(|s| std::fs::metadata(&s.path).unwrap().len()).sum();
    group.throughput(Throughput::Bytes(log_bytes));
    for kind in ["file", "memory"] {
        let targets = bench_dir("archive", &format!("ship-{kind}"));
        let mut round = 0;
        group.bench_function(format!("ship/{kind}"), |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let target = match kind {
                        "file" => Target::open(&format!("file://{}/{round}", targets.display())).unwrap(),
                        _ => Target::memory(),
                    };
                    let started = Instant::now();
                    let archiver = Archiver::start(&store, target, ArchiverOptions::default()).unwrap();
                    archiver.flush().unwrap();
                    took += started.elapsed();
                    archiver.stop();
                    let _ = std::fs::remove_dir_all(targets.join(round.to_string()));
                }
                took
            })
        });
        let _ = std::fs::remove_dir_all(&targets);
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&source);
    group.finish();
    // Not in `cargo bench -- --test`, which only checks that the benches run.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    for interval_ms in [1_000, 100] {
        paired(16, 200_000, true, interval_ms);
        paired(16, 200_000, false, interval_ms);
    }
}

/// CPU time (user and system) of this process's archiver threads so far
/// (threads that ended are not counted: read it before stopping),
/// from /proc (Linux), in clock ticks of 10 ms; 0 where /proc is missing.
fn archiver_cpu_ms() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // The archiver's thread, and its runtime's blocking pool (object_store's
        // file system target writes there); nothing else here runs tokio.
        if !comm.starts_with("elbstore-archiv") && !comm.starts_with("tokio-runtime") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        ticks += fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        ticks += fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    }
    ticks * 10
}

/// The writers' rate without and with an archiver, in turn, round after
/// round (the order reversed every other round), each run on a fresh store.
fn paired(rounds: usize, commits: u64, to_file: bool, interval_ms: u64) {
    let mut rates: [Vec<f64>; 2] = Default::default();
    let (mut archiver_ms, mut loaded_ms) = (0u64, 0u64);
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let dir = bench_dir("archive", &format!("paired-{i}"));
            let store = open(&dir.join("store"), 64 << 20);
            let archive_dir = dir.join("archive");
            let shipping = (i == 1).then(|| {
                archiver(&store, to_file.then_some(archive_dir.as_path()), Duration::from_millis(interval_ms))
            });
            let took = commit(&store, 64, commits);
            if let Some(archiver) = shipping {
                // The archiver's CPU while the writers ran (its thread ends at stop).
                archiver_ms += archiver_cpu_ms();
                loaded_ms += took.as_millis() as u64;
                archiver.stop();
            }
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
            rates[i].push(commits as f64 / took.as_secs_f64());
        }
    }
    let ratios: Vec<f64> = rates[1].iter().zip(&rates[0]).map(|(with, without)| with / without).collect();
    let ratio = |q: usize| (quartile(ratios.clone(), q) - 1.0) * 100.0;
    println!(
        "paired archive/writers/64_writers ({}): median {:.1} K/s without, {:.1} K/s with an archiver ({interval_ms} ms), \
         per-round ratio median {:+.1}% (quartiles {:+.1}% {:+.1}%) over {rounds} rounds; the archiver thread \
         used {:.1} ms of CPU per second of load ({:.2}% of 2 cores)",
        if to_file { "to a directory on the same disk" } else { "to memory" },
        quartile(rates[0].clone(), 2) / 1_000.0,
        quartile(rates[1].clone(), 2) / 1_000.0,
        ratio(2),
        ratio(1),
        ratio(3),
        archiver_ms as f64 * 1000.0 / loaded_ms.max(1) as f64,
        archiver_ms as f64 * 100.0 / loaded_ms.max(1) as f64 / 2.0,
    );
}

criterion_group!(benches, archive);
criterion_main!(benches);
