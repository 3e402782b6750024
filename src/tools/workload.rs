//! A load generator: builds the reference fleet if the store holds fewer load
//! balancers, then commits transactions of the reference control-plane mix
//! (DESIGN.md) from several threads, one command per transaction.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::args::Args;
use super::json::Json;
use crate::elb::{
    fleet, Command, CreateLoadBalancer, ElbStore, LoadBalancerId, Settings, Taggable, TargetGroupId, TargetSpec,
};
use crate::store::{Create, Options, SyncPolicy, TxnMeta};

/// How to use the load generator.
pub const USAGE: &str = "usage: workload --dir DIR [--writers K] [--transactions N] [--sync always|interval|never] \
[--load-balancers M] [--ack-log FILE] [--expect-store NAME/ENV] [--json]";

/// What a run measured.
#[derive(Debug, Default)]
pub struct Report {
    /// Transactions committed by the mix (not counting the fleet build).
    pub transactions: u64,
    /// Wall-clock seconds of the mix.
    pub seconds: f64,
    /// Median commit latency, microseconds.
    pub p50_us: u64,
    /// 99th-percentile commit latency, microseconds.
    pub p99_us: u64,
    /// Load balancers built before the mix.
    pub built: u64,
    /// Commands the store refused (validation), not counted as transactions.
    pub refused: u64,
}

/// Runs the load generator with `args` (without the program name).
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let allowed =
        ["--dir", "--writers", "--transactions", "--sync", "--load-balancers", "--ack-log", "--expect-store", "--json"];
    let args = match Args::parse_or_usage(args, &allowed, USAGE, err) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let result = workload(&args, err).map(|report| (report, args));
    match result {
        Ok((report, args)) => {
            let per_second = report.transactions as f64 / report.seconds.max(1e-9);
            if args.has("--json") {
                let json = Json::object([
                    ("transactions", Json::from(report.transactions)),
                    ("seconds", Json::Float((report.seconds * 1000.0).round() / 1000.0)),
                    ("per_second", Json::Float(per_second.round())),
                    ("p50_us", Json::from(report.p50_us)),
                    ("p99_us", Json::from(report.p99_us)),
                    ("load_balancers_built", Json::from(report.built)),
                    ("refused", Json::from(report.refused)),
                ]);
                let _ = writeln!(out, "{}", json.render());
            } else {
                let _ = writeln!(
                    out,
                    "{} transactions in {:.2} s: {per_second:.0}/s, p50 {} µs, p99 {} µs",
                    report.transactions, report.seconds, report.p50_us, report.p99_us
                );
            }
            0
        }
        Err(message) => {
            let _ = writeln!(err, "error: {}", message.replace('\n', " "));
            1
        }
    }
}

fn workload(args: &Args, err: &mut dyn Write) -> Result<Report, String> {
    let dir = PathBuf::from(args.required("--dir")?);
    let writers: u64 = args.number("--writers", 4)?;
    let total: u64 = args.number("--transactions", 10_000)?;
    let fleet_size: u64 = args.number("--load-balancers", 1_000)?;
    if writers == 0 {
        return Err("--writers must be at least 1".into());
    }
    let sync = match args.get("--sync").unwrap_or("always") {
        "always" => SyncPolicy::Always,
        "interval" => SyncPolicy::Interval(Duration::from_millis(10)),
        "never" => SyncPolicy::Never,
        other => return Err(format!("--sync expects always, interval or never, got {other:?}")),
    };
    let (name, env) = args
        .get("--expect-store")
        .unwrap_or("workload/load-test")
        .split_once('/')
        .ok_or("--expect-store expects NAME/ENV")?;
    // The load generator makes its own store, or goes on loading the one it
    // made (the kill soak restarts it on the same directory).
    let options = Options::default().create(Create::IfMissing).identity(name, env).sync(sync);
    let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1")).map_err(|e| e.to_string())?;
    let ack_log = match args.get("--ack-log") {
        Some(path) => Some(Mutex::new(
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|e| format!("{path}: {e}"))?,
        )),
        None => None,
    };

    let built = build_fleet(&store, fleet_size, err)?;
    // Reference load balancers lb-0..: one target group each (the mix creates
    // load balancers of its own but no target groups).
    let reference = (store.read().counts().target_groups as u64).max(fleet_size);
    if reference == 0 && total > 0 {
        return Err("the store holds no load balancers; give --load-balancers M".into());
    }
    let done = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let latencies: Vec<Vec<u32>> = std::thread::scope(|scope| -> Result<Vec<Vec<u32>>, String> {
        let progress = scope.spawn(|| progress(&done, &stop, total));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let share = total / writers + u64::from(w < total % writers);
                let (store, counters, ack_log) = (&store, (&done, &refused), ack_log.as_ref());
                scope.spawn(move || writer(store, w, share, reference, counters, ack_log))
            })
            .collect();
        let results: Vec<Result<Vec<u32>, String>> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a writer thread panicked".into()))).collect();
        stop.store(true, Ordering::Release);
        let _ = progress.join();
        results.into_iter().collect()
    })?;
    let seconds = started.elapsed().as_secs_f64();
    store.close().map_err(|e| e.to_string())?;
    let mut all: Vec<u32> = latencies.into_iter().flatten().collect();
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Ok(Report {
        refused: refused.load(Ordering::Relaxed),
        transactions: all.len() as u64,
        seconds,
        p50_us: u64::from(pct(0.50)),
        p99_us: u64::from(pct(0.99)),
        built,
    })
}

/// Builds reference load balancers up to `target`, skipping names that exist.
fn build_fleet(store: &ElbStore, target: u64, err: &mut dyn Write) -> Result<u64, String> {
    let have = store.read().counts().load_balancers as u64;
    if have >= target {
        return Ok(0);
    }
    let _ = writeln!(err, "building the fleet: {have} -> {target} load balancers");
    let mut built = 0;
    let mut i = 0;
    while i < target {
        let end = (i + 100).min(target);
        let missing: Vec<u64> = {
            let view = store.read();
            (i..end).filter(|&j| view.load_balancer_by_name(&fleet::account(j), &fleet::name(j)).is_none()).collect()
        };
        if !missing.is_empty() {
            let meta = TxnMeta::new("svc:provisioning", "workload fleet build");
            store
                .execute_with(meta, |_, ctx| {
                    missing
                        .iter()
                        .enumerate()
                        .flat_map(|(k, &j)| {
                            fleet::reference_commands_at(j, ctx.seq, k as u64 * fleet::CREATIONS_PER_LOAD_BALANCER)
                        })
                        .collect()
                })
                .map_err(|e| e.to_string())?;
            built += missing.len() as u64;
        }
        i = end;
        if i % 10_000 == 0 {
            let _ = writeln!(err, "  built {i}/{target}");
        }
    }
    Ok(built)
}

/// Prints a progress bar on standard error about once a second.
fn progress(done: &AtomicU64, stop: &AtomicBool, total: u64) {
    let started = Instant::now();
    let mut next = Duration::from_secs(1);
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() >= next {
            next += Duration::from_secs(1);
            let n = done.load(Ordering::Relaxed);
            let bar = "#".repeat((n * 30 / total.max(1)) as usize);
            eprintln!("[{bar:<30}] {n}/{total} ({:.0}/s)", n as f64 / started.elapsed().as_secs_f64());
        }
    }
}

/// A small deterministic generator per writer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The reference control-plane mix of DESIGN.md, one command per transaction,
/// over a reference fleet: 60% target health changes, 20% target
/// registrations and deregistrations, 10% tag changes, 5% load balancer
/// creations and 5% (approved) deletions of load balancers this mix created.
/// Deterministic for a given writer number and store position.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("elbstore-doc-mix-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// use elbstore::elb::{fleet, ElbStore, Settings};
/// use elbstore::tools::workload::Mix;
/// use elbstore::{Create, Options, SyncPolicy, TxnMeta};
/// let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Never);
/// let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1")).unwrap();
/// for i in 0..10 {
///     store.execute_with(TxnMeta::new("svc:build", "fleet"), |_, ctx| fleet::reference_commands(i, ctx.seq)).unwrap();
/// }
/// let mut mix = Mix::new(&store, 0, 10);
/// for _ in 0..20 {
///     let (meta, command) = mix.next_command(&store).expect("the fleet is there");
///     if let Ok(applied) = store.execute(meta, vec![command]) {
///         mix.record(&applied);
///     }
/// }
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Mix {
    rng: Rng,
    w: u64,
    run: u64,
    fleet_size: u64,
    actor: String,
    extra_targets: Vec<(TargetGroupId, String)>,
    created: Vec<LoadBalancerId>,
    creations: u64,
    n: u64,
}

impl Mix {
    /// The mix of writer `w` over load balancers `0..fleet_size` of the
    /// reference fleet in `store`.
    pub fn new(store: &ElbStore, w: u64, fleet_size: u64) -> Mix {
        let run = store.read().seq();
        Mix {
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ run),
            w,
            run,
            fleet_size: fleet_size.max(1),
            actor: format!("svc:writer-{w}"),
            extra_targets: Vec::new(),
            created: Vec::new(),
            creations: 0,
            n: 0,
        }
    }

    /// The next transaction of the mix, against the store's current state;
    /// `None` if 10,000 draws in a row found none of the reference load
    /// balancers `0..fleet_size` in the store.
    pub fn next_command(&mut self, store: &ElbStore) -> Option<(TxnMeta, Command)> {
        (0..10_000).find_map(|_| self.try_next(store))
    }

    /// Remembers what an acknowledged transaction created, for later deletions.
    pub fn record(&mut self, applied: &crate::elb::Applied) {
        if let Some(crate::elb::Outcome::LoadBalancerCreated(id)) = applied.outcomes.first() {
            self.created.push(*id);
        }
    }

    /// One draw; `None` when it picked a load balancer that is gone or a
    /// deletion with nothing of its own to delete.
    fn try_next(&mut self, store: &ElbStore) -> Option<(TxnMeta, Command)> {
        self.n += 1;
        let (w, n, run) = (self.w, self.n, self.run);
        let i = self.rng.next() % self.fleet_size;
        let (lb, tg) = {
            let view = store.read();
            let lb = view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).map(|lb| lb.id);
            (lb, view.target_group_by_name(&fleet::account(i), &fleet::name(i)).map(|tg| tg.id))
        };
        let (lb, tg) = (lb?, tg?);
        let roll = self.rng.next() % 100;
        let mut meta = TxnMeta::new(self.actor.clone(), "workload");
        let command = match roll {
            0..=59 => Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(i, self.rng.next() % fleet::TARGETS_PER_GROUP)),
                health: fleet::check_result(self.rng.next().is_multiple_of(2), roll),
            },
            60..=79 => match self.extra_targets.pop() {
                Some((group, id)) if roll % 2 == 1 => {
                    Command::DeregisterTargets { target_group: group, targets: vec![TargetSpec::new(id)] }
                }
                other => {
                    self.extra_targets.extend(other);
                    let id = format!("i-f{w:06x}{n:010x}");
                    self.extra_targets.push((tg, id.clone()));
                    Command::RegisterTargets { target_group: tg, targets: vec![TargetSpec::new(id)] }
                }
            },
            80..=89 => Command::AddTags {
                resources: vec![Taggable::LoadBalancer(lb)],
                tags: [(format!("k{}", roll % 5), format!("v{n}"))].into(),
            },
            90..=94 => {
                let mut spec: CreateLoadBalancer = fleet::load_balancer_spec(i);
                // Unique across runs on the same store (a run is named by the
                // sequence number it started at), in the generator's own
                // accounts, well under the per-account quota.
                spec.name = format!("wl-{run}-{w}-{n}");
                spec.account =
                    format!("{:012}", 900_000_000_000 + (run % 1000) * 1_000_000 + w * 10_000 + self.creations / 40);
                self.creations += 1;
                Command::CreateLoadBalancer(spec)
            }
            _ => {
                // A decommission, approved, like the control plane's own.
                let id = self.created.pop()?;
                meta = meta.with_approval("LOAD-TEST", "svc:workload-approver");
                Command::DeleteLoadBalancer { load_balancer: id }
            }
        };
        Some((meta, command))
    }
}

/// One writer thread: `count` transactions of the mix; returns latencies in µs.
fn writer(
    store: &ElbStore,
    w: u64,
    count: u64,
    fleet_size: u64,
    (done, refused): (&AtomicU64, &AtomicU64),
    ack_log: Option<&Mutex<File>>,
) -> Result<Vec<u32>, String> {
    let mut mix = Mix::new(store, w, fleet_size);
    let mut latencies = Vec::with_capacity(count as usize);
    while (latencies.len() as u64) < count {
        let Some((meta, command)) = mix.next_command(store) else {
            return Err(format!("writer {w}: no reference load balancer 0..{fleet_size} left in the store"));
        };
        let started = Instant::now();
        let applied = match store.execute(meta, vec![command]) {
            Ok(applied) => applied,
            // The store failed: stop, and say so.
            Err(crate::elb::ElbError::Store(e)) => return Err(format!("writer {w}: {e}")),
            // A refusal (a target deleted with its group, a quota reached on a
            // long-lived store) is the control plane working: count it, go on.
            Err(_) => {
                refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        let Some(committed) = applied.committed else { continue };
        mix.record(&applied);
        if let Some(log) = ack_log {
            // One write per acknowledgement: the line is in the operating
            // system before the next commit, so a killed process leaves it.
            log.lock().write_all(format!("{}\n", committed.seq).as_bytes()).map_err(|e| e.to_string())?;
        }
        latencies.push(micros);
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(latencies)
}
