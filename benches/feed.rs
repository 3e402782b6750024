//! The change feed: how long a durable commit takes to reach its
//! subscribers, and what subscribers cost the writers.
//!
//! - `feed/latency/{1,64}_subscribers`: writers commit at 10,000
//!   transactions per second in all (8 threads, paced), `SyncPolicy::Always`;
//!   each subscriber notes when each transaction reaches it. Criterion's
//!   figure is the mean time from the commit's acknowledgement to its
//!   arrival, over every (transaction, subscriber) pair; a `latency` line
//!   gives p50 and p99.
//! - `feed/writers/64_writers_{0,1,64}_subscribers`: 64 writers commit as
//!   fast as they can; criterion's figure is the time per commit.
//! - `paired`: the same three counts again, in turn over 8 rounds, each on
//!   a fresh store, printing the median rate and the median per-round ratio
//!   to the run without subscribers (drift in the machine's speed cancels).
//!
//! `cargo bench --bench feed`

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{bench_dir, quartile, Health};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use elbstore::{Create, Options, Store, SyncPolicy, TxnMeta};
use parking_lot::Mutex;

fn open(dir: &PathBuf) -> Arc<Store<Health>> {
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Always).snapshot_every_events(None);
    Arc::new(Store::open(dir, options).unwrap())
}

/// When each seq was acknowledged, as nanoseconds since `epoch` (0: not yet).
struct Acks {
    epoch: Instant,
    at: Vec<AtomicU64>,
}

impl Acks {
    fn new(capacity: usize) -> Acks {
        Acks { epoch: Instant::now(), at: (0..capacity).map(|_| AtomicU64::new(0)).collect() }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// When subscribers stop: once `stop` is set and they have received up to `until`.
#[derive(Default)]
struct Stop {
    stop: AtomicBool,
    until: AtomicU64,
}

impl Stop {
    fn after(&self, seq: u64) {
        self.until.store(seq, Ordering::Release);
        self.stop.store(true, Ordering::Release);
    }

    fn reached(&self, next_seq: u64) -> bool {
        self.stop.load(Ordering::Acquire) && next_seq > self.until.load(Ordering::Acquire)
    }
}

/// Subscribers from `from` on, each recording the delay from each
/// transaction's acknowledgement to its arrival.
fn subscribers(
    store: &Arc<Store<Health>>,
    count: usize,
    from: u64,
    acks: &Arc<Acks>,
    stop: &Arc<Stop>,
    delays: &Arc<Mutex<Vec<u64>>>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let mut feed = store.subscribe(from).unwrap();
            let (acks, stop, delays) = (acks.clone(), stop.clone(), delays.clone());
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                while !stop.reached(feed.next_seq()) {
                    let Ok(Some(txn)) = feed.recv_timeout(Duration::from_millis(20)) else { continue };
                    let arrived = acks.now();
                    if let Some(acked) = acks.at.get(txn.seq as usize) {
                        // The writer notes its acknowledgement just after the
                        // commit returns; a subscriber woken first waited 0.
                        let acked = acked.load(Ordering::Acquire);
                        if acked > 0 {
                            mine.push(arrived.saturating_sub(acked));
                        }
                    }
                }
                delays.lock().append(&mut mine);
            })
        })
        .collect()
}

/// Commits `total` transactions from `writers` threads, paced to `rate` per
/// second in all (unpaced when `None`), noting each acknowledgement.
fn commit(store: &Store<Health>, writers: u64, total: u64, rate: Option<u64>, acks: &Acks) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                let per_writer = total / writers;
                for i in 0..per_writer {
                    if let Some(rate) = rate {
                        // Writer w's i-th commit is due at (i * writers + w) / rate.
                        let due = started + Duration::from_secs_f64((i * writers + w) as f64 / rate as f64);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let meta = TxnMeta::new("svc:health-checker", "health changed");
                    let seq = store.commit(meta, vec![(w * 1_000_003 + i) as u32]).unwrap().seq;
                    if let Some(slot) = acks.at.get(seq as usize) {
                        slot.store(acks.now().max(1), Ordering::Release);
                    }
                }
            });
        }
    });
    started.elapsed()
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

fn feed(c: &mut Criterion) {
    let mut group = c.benchmark_group("feed");
    group.sample_size(10).measurement_time(Duration::from_secs(6));

    for subscriber_count in [1usize, 64] {
        let name = format!("latency/{subscriber_count}_subscribers");
        let dir = bench_dir("feed", &format!("latency-{subscriber_count}"));
        let store = open(&dir);
        let delays: Arc<Mutex<Vec<u64>>> = Arc::default();
        let mut all = Vec::new();
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let total = iters.max(800);
                let acks = Arc::new(Acks::new((store.read().seq() + total + 1) as usize));
                let stop = Arc::new(Stop::default());
                let from = store.read().seq() + 1;
                let handles = subscribers(&store, subscriber_count, from, &acks, &stop, &delays);
                commit(&store, 8, total, Some(10_000), &acks);
                stop.after(store.read().seq());
                handles.into_iter().for_each(|h| h.join().unwrap());
                let mut batch = std::mem::take(&mut *delays.lock());
                let sum: u64 = batch.iter().sum();
                let mean = sum / batch.len().max(1) as u64;
                all.append(&mut batch);
                // Criterion's figure: the mean delay, per commit.
                Duration::from_nanos(mean * iters)
            })
        });
        all.sort_unstable();
        if !all.is_empty() {
            println!(
                "latency feed/{name}: p50 {} µs, p99 {} µs over {} arrivals",
                percentile(&all, 0.50) / 1_000,
                percentile(&all, 0.99) / 1_000,
                all.len()
            );
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    group.throughput(Throughput::Elements(1));
    for subscriber_count in [0usize, 1, 64] {
        let dir = bench_dir("feed", &format!("writers-{subscriber_count}"));
        let store = open(&dir);
        let acks = Arc::new(Acks::new(0));
        let stop = Arc::new(Stop::default());
        let delays: Arc<Mutex<Vec<u64>>> = Arc::default();
        let handles = subscribers(&store, subscriber_count, 1, &acks, &stop, &delays);
        group.bench_function(format!("writers/64_writers_{subscriber_count}_subscribers"), |b| {
            b.iter_custom(|iters| commit(&store, 64, iters.max(64), None, &acks))
        });
        stop.after(store.read().seq());
        handles.into_iter().for_each(|h| h.join().unwrap());
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
    // Not in `cargo bench -- --test`, which only checks that the benches run.
    if !std::env::args().any(|a| a == "--test") {
        paired(8, 100_000);
    }
}

/// The writers' rate with 0, 1 and 64 subscribers measured in turn, round
/// after round (the order reversed every other round), each run on a fresh
/// store: a drift in the machine's speed over the run falls on every count
/// alike. Prints the median rate of each count and the median of each
/// round's ratio to the run without subscribers.
fn paired(rounds: usize, commits: u64) {
    const COUNTS: [usize; 3] = [0, 1, 64];
    let mut rates: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..COUNTS.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let dir = bench_dir("feed", &format!("paired-{}", COUNTS[i]));
            let store = open(&dir);
            let (acks, stop) = (Arc::new(Acks::new(0)), Arc::new(Stop::default()));
            let handles = subscribers(&store, COUNTS[i], 1, &acks, &stop, &Arc::default());
            let took = commit(&store, 64, commits, None, &acks);
            stop.after(store.read().seq());
            handles.into_iter().for_each(|h| h.join().unwrap());
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
            rates[i].push(commits as f64 / took.as_secs_f64());
        }
    }
    for (i, count) in COUNTS.iter().enumerate() {
        let ratios: Vec<f64> = rates[i].iter().zip(&rates[0]).map(|(r, base)| r / base).collect();
        println!(
            "paired feed/writers/64_writers_{count}_subscribers: median {:.1} K/s, median ratio to 0 subscribers {:+.1}% over {rounds} rounds",
            quartile(rates[i].clone(), 2) / 1_000.0,
            (quartile(ratios, 2) - 1.0) * 100.0
        );
    }
}

criterion_group!(benches, feed);
criterion_main!(benches);
