//! The performance targets on the ELB reference workload.
//!
//! `cargo bench --bench elb`. Stores are built once and kept under
//! `target/bench-stores/`. Set `ELBSTORE_BENCH_LOAD_BALANCERS` for another
//! fleet size (default 100,000).

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod model;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use elbstore::elb::{
    fleet, Command, ElbState, ElbStore, EntityKey, HealthState, Outcome, Settings, Taggable, TargetKey, TargetSpec,
};
use elbstore::{Create, OpenMode, Options, SyncPolicy, TxnMeta};

/// Numbers every health update the commit benches make.
static UPDATES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Events in the log tail after the fleet's snapshot.
const TAIL_EVENTS: u64 = 1_000_000;
/// Events per tail transaction.
const TAIL_BATCH: u64 = 100;

fn fleet_size() -> u64 {
    std::env::var("ELBSTORE_BENCH_LOAD_BALANCERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn stores() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-stores")
}

/// A health change that always changes something: the target's state in
/// `state` (the head, which `execute_with` plans against) flipped between
/// healthy and unhealthy, so no update is a no-op that writes nothing.
fn health(state: &ElbState, i: u64, j: u64, tg: elbstore::elb::TargetGroupId) -> Command {
    let id = fleet::target_id(i, j % fleet::TARGETS_PER_GROUP);
    let key = TargetKey { target_group: tg, id: id.as_str().into(), port: 8080 };
    let healthy = state.target(&key).is_some_and(|t| t.health.state == HealthState::Healthy);
    Command::UpdateTargetHealth {
        target_group: tg,
        target: TargetSpec::new(id),
        health: fleet::check_result(!healthy, j),
    }
}

/// One batch writer's half of the groups: each group's target ids, each
/// target's health as this writer last set it (it alone changes them), and
/// the next batch's round.
struct Half {
    groups: Vec<(elbstore::elb::TargetGroupId, Vec<String>, Vec<bool>)>,
    round: u64,
}

impl Half {
    /// The groups `tgs`, the fleet's from index `first` on, as `state` has them.
    fn new(state: &ElbState, first: usize, tgs: &[elbstore::elb::TargetGroupId]) -> Half {
        let groups = tgs
            .iter()
            .enumerate()
            .map(|(k, &tg)| {
                let ids: Vec<String> =
                    (0..fleet::TARGETS_PER_GROUP).map(|j| fleet::target_id((first + k) as u64, j)).collect();
                let healthy = ids
                    .iter()
                    .map(|id| {
                        let key = TargetKey { target_group: tg, id: id.as_str().into(), port: 8080 };
                        state.target(&key).is_some_and(|t| t.health.state == HealthState::Healthy)
                    })
                    .collect();
                (tg, ids, healthy)
            })
            .collect();
        Half { groups, round: 0 }
    }

    /// One health change in each group, each flipping its target between
    /// healthy and unhealthy: built as a health checker would, from what it
    /// knows, not by reading the state.
    fn next_batch(&mut self) -> Vec<Command> {
        let j = (self.round % fleet::TARGETS_PER_GROUP) as usize;
        let round = self.round;
        self.round += 1;
        self.groups
            .iter_mut()
            .map(|(tg, ids, healthy)| {
                healthy[j] = !healthy[j];
                Command::UpdateTargetHealth {
                    target_group: *tg,
                    target: TargetSpec::new(ids[j].as_str()),
                    health: fleet::check_result(healthy[j], round),
                }
            })
            .collect()
    }
}

/// The 100,000-load-balancer store with a snapshot after the fleet and a
/// 1,000,000-event tail after it.
fn big_store() -> (PathBuf, bool) {
    let n = fleet_size();
    let dir = stores().join(format!(
        "fleet-{n}-tail-{TAIL_EVENTS}-schema{}",
        <elbstore::elb::ElbState as elbstore::StateMachine>::SCHEMA_VERSION
    ));
    if dir.join("READY").exists() {
        return (dir, false);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Never).snapshot_every_events(None);
    let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1")).unwrap();
    let mut i = 0;
    while i < n {
        let end = (i + 100).min(n);
        store.execute_with(TxnMeta::new("bench", "fleet"), |_, ctx| fleet::batch_commands(i..end, ctx.seq)).unwrap();
        i = end;
    }
    store.store().snapshot().unwrap();
    let groups: Vec<_> = store.read().target_groups().map(|tg| tg.id).collect();
    for t in 0..TAIL_EVENTS / TAIL_BATCH {
        // The multiplier is prime to n, so a batch names each group once and
        // every command flips a different target.
        let commands = |state: &ElbState, _: &_| {
            (0..TAIL_BATCH)
                .map(|k| {
                    let g = ((t * TAIL_BATCH + k).wrapping_mul(2_654_435_761) % n) as usize;
                    health(state, g as u64, t + k, groups[g])
                })
                .collect()
        };
        store.execute_with(TxnMeta::new("svc:health", "health"), commands).unwrap();
    }
    store.close().unwrap();
    std::fs::write(dir.join("READY"), b"").unwrap();
    eprintln!("built {} in {:.1} s", dir.display(), started.elapsed().as_secs_f64());
    (dir, true)
}

fn resident_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// The time `iters` read-only opens of `dir` take; dropping each store (freeing
/// its 1.6 million resources) happens outside the timer.
fn timed_opens(dir: &std::path::Path, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        let store =
            ElbStore::open(dir, Options::default().mode(OpenMode::ReadOnly), Settings::in_region("us-east-1")).unwrap();
        total += started.elapsed();
        drop(store);
    }
    total
}

fn open_and_snapshots(c: &mut Criterion) {
    let (dir, built) = big_store();
    let mut group = c.benchmark_group("elb");
    group.sample_size(10).measurement_time(Duration::from_secs(30)).warm_up_time(Duration::from_secs(1));
    // Memory first, before any other store has come and gone in this process
    // (freed memory the allocator keeps would count as resident).
    let store =
        ElbStore::open(&dir, Options::default().mode(OpenMode::ReadOnly), Settings::in_region("us-east-1")).unwrap();
    eprintln!(
        "memory: 100k-load-balancer state open: VmRSS {} MiB, VmHWM {} MiB{}",
        resident_mib("VmRSS:"),
        resident_mib("VmHWM:"),
        if built { " (this process also built the store: rerun for the figure)" } else { "" }
    );
    // A name lookup builds the state's indexes (they wait for first use).
    assert!(store.read().load_balancer_by_name(&fleet::account(0), &fleet::name(0)).is_some());
    eprintln!(
        "memory: the same, indexes built: VmRSS {} MiB, VmHWM {} MiB",
        resident_mib("VmRSS:"),
        resident_mib("VmHWM:")
    );
    group.bench_function("open/100k_load_balancers_with_1m_event_tail", |b| {
        b.iter_custom(|iters| timed_opens(&dir, iters))
    });
    let writable = stores().join("snapshot-write");
    let _ = std::fs::remove_dir_all(&writable);
    std::fs::create_dir_all(&writable).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "IDENTITY" || name.ends_with(".log") || name.ends_with(".snap") {
            std::fs::copy(&path, writable.join(&name)).unwrap();
        }
    }
    let writer = ElbStore::open(
        &writable,
        Options::default().create(Create::IfMissing).snapshot_every_events(None),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    let mut round = 0u64;
    let snapshot_bytes = writer.store().snapshot().unwrap().bytes;
    group.throughput(Throughput::Bytes(snapshot_bytes));
    group.bench_function("snapshot/write_mb_per_s", |b| {
        b.iter(|| {
            // A new point each time, so every iteration writes a whole snapshot.
            round += 1;
            let tg = writer.read().target_groups().next().unwrap().id;
            writer.execute_with(TxnMeta::new("bench", "tick"), |state, _| vec![health(state, 0, round, tg)]).unwrap();
            writer.store().snapshot().unwrap()
        })
    });
    drop(writer);
    // The store now has a snapshot at its head: a clean reopen is a snapshot load.
    group.bench_function("open/clean_reopen_snapshot_at_head_mb_per_s", |b| {
        b.iter_custom(|iters| timed_opens(&writable, iters))
    });
    group.throughput(Throughput::Elements(1));
    let lb = store
        .read()
        .load_balancer_by_name(&fleet::account(99_999 % fleet_size()), &fleet::name(99_999 % fleet_size()))
        .unwrap()
        .id;
    group.bench_function("entity_history/one_load_balancer", |b| {
        b.iter(|| store.entity_history(&EntityKey::LoadBalancer(lb)).unwrap())
    });
    // The target is for about 10 versions: the creation (inside a
    // 100-load-balancer build transaction) and ten tag changes, one per transaction.
    let writer = ElbStore::open(
        &writable,
        Options::default().create(Create::IfMissing).snapshot_every_events(None),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    for k in 0..10 {
        let tags = [(format!("k{k}"), format!("v{k}"))].into();
        let command = Command::AddTags { resources: vec![Taggable::LoadBalancer(lb)], tags };
        writer.execute(TxnMeta::new("bench", format!("tag {k}")), vec![command]).unwrap();
    }
    assert_eq!(writer.entity_history(&EntityKey::LoadBalancer(lb)).unwrap().len(), 11);
    group.bench_function("entity_history/one_load_balancer_11_versions", |b| {
        b.iter(|| writer.entity_history(&EntityKey::LoadBalancer(lb)).unwrap())
    });
    drop(writer);
    group.finish();
    let _ = std::fs::remove_dir_all(&writable);
}

/// A store with a small fleet for commit benches.
fn commit_store(tag: &str, sync: SyncPolicy) -> (ElbStore, Vec<elbstore::elb::TargetGroupId>, PathBuf) {
    let dir = stores().join(format!("commit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = ElbStore::open(
        &dir,
        Options::default().create(Create::IfMissing).sync(sync).snapshot_every_events(None),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    for start in (0..2000).step_by(100) {
        store
            .execute_with(TxnMeta::new("bench", "fleet"), |_, ctx| fleet::batch_commands(start..start + 100, ctx.seq))
            .unwrap();
    }
    let groups = store.read().target_groups().map(|tg| tg.id).collect();
    (store, groups, dir)
}

/// `total` single-command health transactions from `writers` threads.
fn commit_from(store: &ElbStore, groups: &[elbstore::elb::TargetGroupId], writers: u64, total: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                for k in 0..total / writers {
                    let g = ((w * 7919 + k * 104_729) % groups.len() as u64) as usize;
                    let meta = TxnMeta::new("svc:health-checker", "health");
                    // Unique across iterations too, so no update repeats an earlier one.
                    let j = UPDATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let applied =
                        store.execute_with(meta, |state, _| vec![health(state, g as u64, j, groups[g])]).unwrap();
                    assert!(applied.committed.is_some(), "every bench transaction writes");
                }
            });
        }
    });
    started.elapsed()
}

/// `total` transactions of the reference control-plane mix from `writers`
/// threads, over the first 2,000 load balancers of the reference fleet.
fn mix_from(store: &ElbStore, writers: u64, total: u64) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            scope.spawn(move || {
                let mut mix = elbstore::tools::workload::Mix::new(store, w, 2000);
                let mut committed = 0;
                while committed < total / writers {
                    let (meta, command) = mix.next_command(store).expect("the fleet is there");
                    // A refusal (a quota, a target gone with its group) is part of the mix: draw again.
                    if let Ok(applied) = store.execute(meta, vec![command]) {
                        mix.record(&applied);
                        committed += u64::from(applied.committed.is_some());
                    }
                }
            });
        }
    });
    started.elapsed()
}

fn commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("elb");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let (store, groups, dir) = commit_store("never", SyncPolicy::Never);
    group.bench_function("commit/never/1_writer", |b| b.iter_custom(|iters| commit_from(&store, &groups, 1, iters)));
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    for writers in [1u64, 8, 64] {
        let (store, groups, dir) = commit_store(&format!("always-{writers}"), SyncPolicy::Always);
        group.bench_function(format!("commit/always/{writers}_writers"), |b| {
            b.iter_custom(|iters| commit_from(&store, &groups, writers, iters.max(writers)))
        });
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
    // The mix's CPU cost without fsync: one writer (no contention), then 64
    // (the head lock and scheduling, no disk); and what drawing the commands
    // costs the writers alone (the workload's own reads of the state).
    let (store, _, dir) = commit_store("mix-never", SyncPolicy::Never);
    group.bench_function("commit/never/1_writer_reference_mix", |b| b.iter_custom(|iters| mix_from(&store, 1, iters)));
    group.bench_function("commit/never/64_writers_reference_mix", |b| {
        b.iter_custom(|iters| mix_from(&store, 64, iters.max(64)))
    });
    let mut mix = elbstore::tools::workload::Mix::new(&store, 0, 2000);
    group.bench_function("reference_mix/draw_a_command_only", |b| {
        b.iter(|| mix.next_command(&store).expect("the fleet is there"))
    });
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    let (store, _, dir) = commit_store("mix-64", SyncPolicy::Always);
    group.bench_function("commit/always/64_writers_reference_mix", |b| {
        b.iter_custom(|iters| mix_from(&store, 64, iters.max(64)))
    });
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    // The same without fsync: the store's CPU per event alone.
    for (sync, name) in [(SyncPolicy::Always, "always"), (SyncPolicy::Never, "never")] {
        let (store, groups, dir) = commit_store(&format!("batched-{name}"), sync);
        group.throughput(Throughput::Elements(1000));
        let mut round = 0u64;
        // The commands are built before the timer starts, as a health checker
        // sends them: the figure is the store's (planning, validating,
        // applying, writing, fsync), not the bench's formatting of ids and
        // reading of the state to choose each target's new health.
        group.bench_function(format!("commit/{name}/batched_1000_events"), |b| {
            b.iter_batched(
                || {
                    round += 1;
                    // 1000 consecutive groups of 2000: each once per batch.
                    // One writer: the published state is the head.
                    let view = store.read();
                    (0..1000u64)
                        .map(|k| {
                            let g = ((round * 1000 + k) % groups.len() as u64) as usize;
                            health(&view, g as u64, round + k, groups[g])
                        })
                        .collect::<Vec<Command>>()
                },
                |commands| {
                    let applied = store.execute(TxnMeta::new("svc:health-checker", "batch"), commands).unwrap();
                    assert!(applied.outcomes.iter().all(|o| *o == Outcome::Changed(1)), "every command writes");
                    applied
                },
                BatchSize::PerIteration,
            )
        });
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
    // Two writers, each sending batches for its own half of the groups (two
    // health checkers, or one with two sending threads): one plans its batch
    // under the head lock while the other's is written and synced, so the
    // figure is the larger of the CPU and the disk per batch, not their sum.
    let (store, groups, dir) = commit_store("batched-2-writers", SyncPolicy::Always);
    group.throughput(Throughput::Elements(1000));
    let view = store.read();
    let mut halves: Vec<Half> =
        groups.chunks(groups.len() / 2).enumerate().map(|(h, tgs)| Half::new(&view, h * tgs.len(), tgs)).collect();
    drop(view);
    group.bench_function("commit/always/batched_1000_events_2_writers", |b| {
        b.iter_custom(|iters| {
            let per_writer = iters.div_ceil(2);
            let started = Instant::now();
            std::thread::scope(|scope| {
                for half in halves.iter_mut() {
                    let store = &store;
                    scope.spawn(move || {
                        for _ in 0..per_writer {
                            let applied =
                                store.execute(TxnMeta::new("svc:health-checker", "batch"), half.next_batch()).unwrap();
                            assert!(applied.outcomes.iter().all(|o| *o == Outcome::Changed(1)), "every command writes");
                        }
                    });
                }
            });
            // Per batch of 1,000, when `iters` is odd as when it is even.
            started.elapsed().mul_f64(iters as f64 / (2 * per_writer) as f64)
        })
    });
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
    // The machine's sequential write bandwidth, for comparison.
    let probe = stores().join(format!("bandwidth-{}", std::process::id()));
    std::fs::create_dir_all(&probe).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    group.throughput(Throughput::Bytes(64 << 20));
    group.bench_function("machine/sequential_write_64_mib_and_fdatasync", |b| {
        b.iter(|| {
            use std::io::Write;
            let mut file = std::fs::File::create(probe.join("probe")).unwrap();
            for _ in 0..64 {
                file.write_all(&chunk).unwrap();
            }
            file.sync_data().unwrap();
        })
    });
    let _ = std::fs::remove_dir_all(&probe);
    group.finish();
}

/// The machine's memory latency: one load whose address comes from the load
/// before it, each to a cache line chosen at random among 512 MiB (larger
/// than any cache, as the 100,000-load-balancer state is). Replaying a
/// health change into that state is a handful of such loads (BENCHMARKS.md,
/// "What bounds the replay of the tail"), so this is measured beside it.
fn machine(c: &mut Criterion) {
    const LINES: usize = (512 << 20) / 64;
    const WORDS_PER_LINE: usize = 8;
    // Built on first use, so a filtered run of another bench does not pay
    // for it: line i holds the index of the next line of one cycle through
    // every line, i -> (A i + C) mod LINES: a full cycle, since LINES is a
    // power of two, A is 1 mod 4 and C is odd; a large A puts each next line
    // far from the last, where no prefetcher looks.
    const A: usize = 0x9E37_79B9_7F4A_7C15 & !3 | 1;
    const C: usize = 0x2545_F491;
    let build = || {
        let step = |i: usize| i.wrapping_mul(A).wrapping_add(C) % LINES;
        let mut words = vec![0usize; LINES * WORDS_PER_LINE];
        for line in 0..LINES {
            words[line * WORDS_PER_LINE] = step(line) * WORDS_PER_LINE;
        }
        words
    };
    let chain = std::cell::OnceCell::new();
    let mut group = c.benchmark_group("elb");
    group.throughput(Throughput::Elements(1));
    group.bench_function("machine/dependent_random_load_512_mib", |b| {
        let chain = chain.get_or_init(build);
        let mut at = 0usize;
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                at = chain[at];
            }
            let elapsed = started.elapsed();
            std::hint::black_box(at);
            elapsed
        })
    });
    // The same cycle walked from eight places at once: each iteration loads
    // one line of each walk, and no load waits for another walk's. The ratio
    // to the dependent load above is how many misses the machine keeps in
    // flight, what a replay that interleaved its lookups could use.
    group.throughput(Throughput::Elements(8));
    group.bench_function("machine/eight_independent_random_loads_512_mib", |b| {
        let chain = chain.get_or_init(build);
        // Eight points of the one cycle never meet: they walk it in step.
        let mut at: [usize; 8] = std::array::from_fn(|k| k * (LINES / 8) * WORDS_PER_LINE);
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                for walk in &mut at {
                    *walk = chain[*walk];
                }
            }
            let elapsed = started.elapsed();
            std::hint::black_box(at);
            elapsed
        })
    });
    group.finish();
}

/// The replay model's shapes (`benches/model`): each iteration applies its
/// 1,000,000 changes (or 100,000 single-change commits) to a fresh state;
/// the figure is per change.
fn replay_model(c: &mut Criterion) {
    let changes = std::cell::OnceCell::new();
    let mut group = c.benchmark_group("elb");
    // Flat: ten samples of about equal count, not 1 + 2 + ... + 10 runs of
    // a second or more each.
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    type Apply = fn(&model::Changes) -> Duration;
    let shapes: [(&str, Apply, usize); 5] = [
        ("model/replay_today_shape", model::today, model::CHANGES),
        ("model/replay_lean", |changes| model::lean(changes, false), model::CHANGES),
        ("model/replay_lean_interleaved", |changes| model::lean(changes, true), model::CHANGES),
        ("model/commits_today_shape", model::commits_today, model::COMMITS),
        ("model/commits_lean", model::commits_lean, model::COMMITS),
    ];
    for (name, apply, changed) in shapes {
        group.throughput(Throughput::Elements(changed as u64));
        group.bench_function(name, |b| {
            let changes = changes.get_or_init(model::Changes::new);
            b.iter_custom(|iters| (0..iters).map(|_| apply(changes)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, commits, open_and_snapshots, machine, replay_model);
criterion_main!(benches);
