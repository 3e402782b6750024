//! Durable commits with 64 writers on a group of three replicas (on
//! loopback, in this process: every replica on the same 2 cores and the same
//! disk), beside the same writers on a single store: commits per second and
//! the 99th-percentile latency. Each transaction is one tag change on a
//! reference target group (the reference mix's tag change; unlike a health
//! change it is never a no-op, so every request is a commit).
//!
//! `cargo bench --bench replication`; BENCHMARKS.md, "Replication", has the
//! figures and what bounds them.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use elbstore::elb::{fleet, Command, ElbStore, Settings, Taggable, TargetGroupId};
use elbstore::replication::node::Lookup;
use elbstore::replication::{GroupClient, Replica, ReplicaConfig, Request};
use elbstore::{Create, Options, SyncPolicy, TxnMeta};

// The feed and archive benches use the rest of it.
#[allow(dead_code)]
mod common;
use common::bench_dir;

const WRITERS: u64 = 64;
const FLEET: u64 = 200;

/// Numbers every transaction of the process, so no tag value repeats.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Writer `w`'s next transaction: a tag change.
fn tag(groups: &[TargetGroupId], w: u64, _: u64) -> (TxnMeta, Command) {
    let n = SERIAL.fetch_add(1, Ordering::Relaxed);
    let i = (w * 7919 + n) % groups.len() as u64;
    let command = Command::AddTags {
        resources: vec![Taggable::TargetGroup(groups[i as usize])],
        // Under the quota of 50 tags a resource, and a new value every time.
        tags: [(format!("k{}", w % 40), format!("{w}-{n}"))].into(),
    };
    (TxnMeta::new(format!("svc:writer-{w}"), "tag"), command)
}

/// Runs `total` commits from 64 threads through `commit`; returns the time
/// taken and every latency in microseconds, sorted.
fn run(total: u64, commit: impl Fn(u64, u64) -> bool + Sync) -> (Duration, Vec<u64>) {
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let mut latencies: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (next, commit) = (&next, &commit);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    let mut n = 0;
                    while next.fetch_add(1, Ordering::Relaxed) < total {
                        let t = Instant::now();
                        if commit(w, n) {
                            mine.push(t.elapsed().as_micros() as u64);
                        }
                        n += 1;
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let took = started.elapsed();
    latencies.sort_unstable();
    (took, latencies)
}

fn p99(sorted: &[u64]) -> u64 {
    sorted.get((sorted.len() as f64 * 0.99) as usize).copied().unwrap_or(0)
}

fn report(name: &str, took: Duration, latencies: &[u64]) {
    println!(
        "latency replication/{name}: {:.1} K commits/s, p50 {} µs, p99 {} µs over {} commits",
        latencies.len() as f64 / took.as_secs_f64() / 1_000.0,
        latencies.get(latencies.len() / 2).copied().unwrap_or(0),
        p99(latencies),
        latencies.len()
    );
}

fn single(c: &mut Criterion, total: u64) {
    let dir = bench_dir("replication", "single");
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Always);
    let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1")).unwrap();
    store.execute_with(TxnMeta::new("svc:build", "fleet"), |_, ctx| fleet::batch_commands(0..FLEET, ctx.seq)).unwrap();
    let groups: Vec<TargetGroupId> = {
        let view = store.read();
        (0..FLEET).map(|i| view.target_group_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id).collect()
    };
    let commit = |w, n| {
        let (meta, command) = tag(&groups, w, n);
        matches!(store.execute(meta, vec![command]), Ok(applied) if applied.committed.is_some())
    };
    let mut group = c.benchmark_group("replication");
    group.sample_size(10).measurement_time(Duration::from_secs(5)).throughput(Throughput::Elements(1));
    group.bench_function("single_store/64_writers", |b| b.iter_custom(|iters| run(iters.max(WRITERS), commit).0));
    group.finish();
    let (took, latencies) = run(total, commit);
    report("single_store/64_writers", took, &latencies);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

fn three(c: &mut Criterion, total: u64) {
    let dir = bench_dir("replication", "group");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addrs: BTreeMap<u64, SocketAddr> =
        (1..=3).map(|id| (id, std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap())).collect();
    let replicas: Vec<Replica> = addrs
        .iter()
        .map(|(id, addr)| {
            let mut config = ReplicaConfig::new(*id, dir.join(format!("r{id}")), *addr, "elb-bench", "bench");
            config.peers = addrs.iter().map(|(id, addr)| (*id, addr.to_string())).collect();
            config.settings = Settings::in_region("us-east-1");
            runtime.block_on(Replica::start(config)).unwrap()
        })
        .collect();
    let client = GroupClient::new(addrs.values().map(|a| a.to_string()), Duration::from_secs(30));
    let build = Request::ReferenceFleet { meta: TxnMeta::new("svc:build", "fleet"), first: 0, end: FLEET };
    assert!(client.write(&build).unwrap().refused.is_none());
    let names: Vec<(String, String)> = (0..FLEET).map(|i| (fleet::account(i), fleet::name(i))).collect();
    let found = client.lookup(&Lookup { linearizable: true, target_groups: names, ..Lookup::default() }).unwrap();
    let groups: Vec<TargetGroupId> = found.target_groups.into_iter().map(Option::unwrap).collect();
    let commit = |w, n| {
        let (meta, command) = tag(&groups, w, n);
        matches!(client.write(&Request::Execute { meta, commands: vec![command] }), Ok(reply) if reply.seq.is_some())
    };
    let mut group = c.benchmark_group("replication");
    group.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Elements(1));
    group.bench_function("three_replicas/64_writers", |b| b.iter_custom(|iters| run(iters.max(WRITERS), commit).0));
    group.finish();
    let (took, latencies) = run(total, commit);
    report("three_replicas/64_writers", took, &latencies);
    snapshot_cost(&runtime, &replicas, &dir);
    for replica in replicas {
        runtime.block_on(replica.shutdown());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// How long a snapshot takes to build on a replica whose store holds the
/// bench's transactions, and its size: a bundle carries the store's
/// snapshot file and its whole log (docs/FORMAT.md, "Replication").
fn snapshot_cost(runtime: &tokio::runtime::Runtime, replicas: &[Replica], dir: &std::path::Path) {
    let replica = &replicas[0];
    let store = replica.store().unwrap();
    let seq = store.read().seq();
    let log_bytes: u64 = store.store().segments().iter().map(|s| std::fs::metadata(&s.path).unwrap().len()).sum();
    let before = replica.raft().metrics().borrow().snapshot;
    let started = Instant::now();
    runtime.block_on(replica.raft().trigger().snapshot()).unwrap();
    while replica.raft().metrics().borrow().snapshot == before {
        assert!(started.elapsed() < Duration::from_secs(120), "no snapshot within 120 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = started.elapsed();
    let bundle = std::fs::metadata(dir.join("r1/machine/snapshot.bin")).unwrap().len();
    println!(
        "snapshot replication/bundle: {seq} transactions, {:.1} MiB of store log, a {:.1} MiB bundle built in {} ms",
        log_bytes as f64 / 1048576.0,
        bundle as f64 / 1048576.0,
        took.as_millis()
    );
}

/// Whether the bench named `name` is asked for: no filter, or one it matches
/// (as `scripts/bench-each.sh` gives, `^replication/...$`).
fn wanted(name: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.trim_start_matches('^').trim_end_matches('$')))
}

fn replication(c: &mut Criterion) {
    // `cargo bench -- --test` only checks that the benches run.
    let total = if std::env::args().any(|a| a == "--test") { 640 } else { 50_000 };
    if wanted("replication/single_store/64_writers") {
        single(c, total);
    }
    if wanted("replication/three_replicas/64_writers") {
        three(c, total);
    }
}

criterion_group!(benches, replication);
criterion_main!(benches);
