//! A load generator: builds the reference fleet if the store holds fewer load
//! balancers, then commits transactions of the reference control-plane mix
//! from several threads, one command per transaction.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::cli::{run_tool, ToolError, Verdict};
use super::progress::Bar;
use crate::archive::{Archiver, ArchiverOptions, Target};
use crate::elb::{
    fleet, Command, CreateLoadBalancer, ElbStore, LoadBalancerId, Settings, Taggable, TargetGroupId, TargetSpec,
};
use crate::store::{Create, Options, SyncPolicy, TxnMeta};

/// The load generator's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "workload",
    version,
    about = "Commit the reference control-plane mix against a store from several threads",
    long_about = "Builds the reference fleet if the store holds fewer load balancers, then commits \
                  transactions of the reference control-plane mix (60% target health, 20% registrations, \
                  10% tags, 5% creations, 5% approved deletions) from several threads, one command per \
                  transaction. Creates the store when the directory is new.",
    after_help = "Example:\n  workload --dir /tmp/load --writers 4 --transactions 10000 --sync always"
)]
pub struct Cli {
    /// The store directory (created when missing).
    #[arg(long, required_unless_present = "group")]
    pub dir: Option<PathBuf>,
    /// Load a replicated store instead, through its replicas at ADDR,...
    /// (the leader is found and followed; `--sync` and `--archive` are the
    /// replicas' own business then).
    #[arg(long, value_name = "ADDR,...", conflicts_with_all = ["dir", "archive"], value_delimiter = ',')]
    pub group: Option<Vec<String>>,
    /// Writer threads.
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub writers: u64,
    /// Transactions of the mix to commit.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub transactions: u64,
    /// When commits are made durable.
    #[arg(long, value_enum, default_value_t = Sync::Always)]
    pub sync: Sync,
    /// Reference load balancers to build first, when the store holds fewer.
    #[arg(long, value_name = "M", default_value_t = 1_000)]
    pub load_balancers: u64,
    /// Append the sequence number of every acknowledged transaction to FILE.
    #[arg(long, value_name = "FILE")]
    pub ack_log: Option<PathBuf>,
    /// The store's NAME/ENVIRONMENT.
    #[arg(long, value_name = "NAME/ENV", default_value = "workload/load-test")]
    pub expect_store: String,
    /// Archive the store off the machine while loading it: file:///DIR,
    /// s3://BUCKET/PREFIX[?endpoint=URL&allow_http=true].
    #[arg(long, value_name = "URL")]
    pub archive: Option<String>,
    /// How often the archive ships new records, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1_000, requires = "archive")]
    pub archive_interval_ms: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `--sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Sync {
    /// fsync every commit group.
    Always,
    /// fsync at most 10 ms after a commit.
    Interval,
    /// Never fsync commits.
    Never,
}

#[derive(serde::Serialize)]
struct ReportDoc {
    transactions: u64,
    duration_ms: u64,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
    load_balancers_built: u64,
    refused: u64,
    archived_seq: Option<u64>,
}

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
    /// The last transaction archived when the run ended (with `--archive`).
    pub archived_seq: Option<u64>,
}

/// The command line, for help and documentation tests.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the load generator with `args` (without the program name).
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_tool("workload", args, out, err, |cli: Cli, _out, err| {
        let bar = Bar::on_terminal(cli.json);
        let report = workload(&cli, err, &bar);
        bar.finish();
        let report = report?;
        let per_second = report.transactions as f64 / report.seconds.max(1e-9);
        let doc = ReportDoc {
            transactions: report.transactions,
            duration_ms: (report.seconds * 1000.0).round() as u64,
            per_second: per_second.round(),
            p50_us: report.p50_us,
            p99_us: report.p99_us,
            load_balancers_built: report.built,
            refused: report.refused,
            archived_seq: report.archived_seq,
        };
        let mut text = format!(
            "{} transactions in {:.2} s: {per_second:.0}/s, p50 {} µs, p99 {} µs\n",
            report.transactions, report.seconds, report.p50_us, report.p99_us
        );
        if let Some(seq) = report.archived_seq {
            text += &format!("archived through transaction {seq}\n");
        }
        Ok(Verdict::new(&doc, text))
    })
}

fn workload(args: &Cli, err: &mut dyn Write, bar: &Bar) -> Result<Report, ToolError> {
    #[cfg(feature = "replication")]
    if let Some(addrs) = &args.group {
        return group::workload(args, addrs, err, bar);
    }
    let Some(dir) = &args.dir else { return Err(ToolError::usage("give --dir DIR or --group ADDR,...")) };
    let (writers, total, fleet_size) = (args.writers, args.transactions, args.load_balancers);
    let sync = match args.sync {
        Sync::Always => SyncPolicy::Always,
        Sync::Interval => SyncPolicy::Interval(Duration::from_millis(10)),
        Sync::Never => SyncPolicy::Never,
    };
    let (name, env) =
        args.expect_store.split_once('/').ok_or_else(|| ToolError::usage("--expect-store expects NAME/ENV"))?;
    // The load generator makes its own store, or goes on loading the one it
    // made (the kill soak restarts it on the same directory).
    let options = Options::default().create(Create::IfMissing).identity(name, env).sync(sync);
    let store = ElbStore::open(dir, options, Settings::in_region("us-east-1"))?;
    let archiver = match &args.archive {
        Some(url) => {
            let options = ArchiverOptions::default().interval(Duration::from_millis(args.archive_interval_ms.max(1)));
            Some(Archiver::start(store.store(), Target::open(url)?, options)?)
        }
        None => None,
    };
    let ack_log = open_ack_log(args)?;

    let built = build_fleet(&store, fleet_size, err, bar)?;
    // Reference load balancers lb-0..: one target group each (the mix creates
    // load balancers of its own but no target groups).
    let reference = (store.read().counts().target_groups as u64).max(fleet_size);
    if reference == 0 && total > 0 {
        return Err(ToolError::usage("the store holds no load balancers; give --load-balancers M"));
    }
    let (latencies, seconds, refused) = run_writers(writers, total, bar, |w, share, counters| {
        writer(&store, w, share, reference, counters, ack_log.as_ref())
    })?;
    // The archive takes everything before the store closes.
    let archived_seq = match archiver {
        Some(archiver) => {
            let flushed = archiver.flush();
            archiver.stop();
            Some(flushed?.archived_seq)
        }
        None => None,
    };
    store.close()?;
    Ok(Report { archived_seq, ..report(latencies, seconds, built, refused) })
}

/// Runs `writers` threads, writer `w` committing its share of `total`
/// through `writer(w, share, (done, refused))`, with the progress bar on
/// `done`; returns each writer's latencies, the seconds taken and how many
/// commands were refused.
fn run_writers(
    writers: u64,
    total: u64,
    bar: &Bar,
    writer: impl Fn(u64, u64, (&AtomicU64, &AtomicU64)) -> Result<Vec<u32>, String> + std::marker::Sync,
) -> Result<(Vec<Vec<u32>>, f64, u64), ToolError> {
    let done = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let latencies = std::thread::scope(|scope| -> Result<Vec<Vec<u32>>, String> {
        let progress = scope.spawn(|| progress(&done, &stop, total, bar));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let share = total / writers + u64::from(w < total % writers);
                let (writer, counters) = (&writer, (&done, &refused));
                scope.spawn(move || writer(w, share, counters))
            })
            .collect();
        let results: Vec<Result<Vec<u32>, String>> =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a writer thread panicked".into()))).collect();
        stop.store(true, Ordering::Release);
        let _ = progress.join();
        results.into_iter().collect()
    })
    .map_err(ToolError::failed)?;
    Ok((latencies, started.elapsed().as_secs_f64(), refused.load(Ordering::Relaxed)))
}

/// The ack log, opened for appending.
fn open_ack_log(args: &Cli) -> Result<Option<Mutex<File>>, ToolError> {
    match &args.ack_log {
        Some(path) => Ok(Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| ToolError::failed(format!("{}: {e}", path.display())))?,
        ))),
        None => Ok(None),
    }
}

/// The report of a run from its writers' latencies.
fn report(latencies: Vec<Vec<u32>>, seconds: f64, built: u64, refused: u64) -> Report {
    let mut all: Vec<u32> = latencies.into_iter().flatten().collect();
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Report {
        refused,
        transactions: all.len() as u64,
        seconds,
        p50_us: u64::from(pct(0.50)),
        p99_us: u64::from(pct(0.99)),
        built,
        archived_seq: None,
    }
}

/// Appends an acknowledged seq to the ack log: one write per
/// acknowledgement, so the line is in the operating system before the next
/// commit and a killed process leaves it.
fn log_ack(ack_log: Option<&Mutex<File>>, seq: u64) -> Result<(), String> {
    match ack_log {
        Some(log) => log.lock().write_all(format!("{seq}\n").as_bytes()).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Builds reference load balancers up to `target`, skipping names that exist.
fn build_fleet(store: &ElbStore, target: u64, err: &mut dyn Write, bar: &Bar) -> Result<u64, ToolError> {
    let have = store.read().counts().load_balancers as u64;
    if have >= target {
        return Ok(0);
    }
    if bar.notes() {
        let _ = writeln!(err, "building the fleet: {have} -> {target} load balancers");
    }
    bar.start("building", target);
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
            store.execute_with(meta, |_, ctx| {
                missing
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &j)| {
                        fleet::reference_commands_at(j, ctx.seq, k as u64 * fleet::CREATIONS_PER_LOAD_BALANCER)
                    })
                    .collect()
            })?;
            built += missing.len() as u64;
        }
        i = end;
        bar.set(i);
        if bar.notes() && i % 10_000 == 0 {
            let _ = writeln!(err, "  built {i}/{target}");
        }
    }
    Ok(built)
}

/// Moves the progress bar (drawn only on a terminal) until `stop`.
fn progress(done: &AtomicU64, stop: &AtomicBool, total: u64, bar: &Bar) {
    bar.start("committing", total);
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        bar.set(done.load(Ordering::Relaxed));
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

/// The reference control-plane mix, one command per transaction,
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
        Mix::starting_at(store.read().seq(), w, fleet_size)
    }

    /// The mix of writer `w` of a run that starts at transaction `run` (its
    /// names are unique per run).
    pub fn starting_at(run: u64, w: u64, fleet_size: u64) -> Mix {
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
        self.next_command_in(|i| {
            let view = store.read();
            let lb = view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).map(|lb| lb.id);
            Some((lb?, view.target_group_by_name(&fleet::account(i), &fleet::name(i)).map(|tg| tg.id)?))
        })
    }

    /// Like [`Mix::next_command`], with reference load balancer `i`'s id and
    /// its target group's from `reference(i)` (`None` when gone).
    pub fn next_command_in(
        &mut self,
        reference: impl Fn(u64) -> Option<(LoadBalancerId, TargetGroupId)>,
    ) -> Option<(TxnMeta, Command)> {
        (0..10_000).find_map(|_| self.try_next(&reference))
    }

    /// Remembers what an acknowledged transaction created, for later deletions.
    pub fn record(&mut self, applied: &crate::elb::Applied) {
        if let Some(crate::elb::Outcome::LoadBalancerCreated(id)) = applied.outcomes.first() {
            self.created.push(*id);
        }
    }

    /// Remembers a load balancer an acknowledged transaction created.
    pub fn record_created(&mut self, id: LoadBalancerId) {
        self.created.push(id);
    }

    /// One draw; `None` when it picked a load balancer that is gone or a
    /// deletion with nothing of its own to delete.
    fn try_next(
        &mut self,
        reference: &impl Fn(u64) -> Option<(LoadBalancerId, TargetGroupId)>,
    ) -> Option<(TxnMeta, Command)> {
        self.n += 1;
        let (w, n, run) = (self.w, self.n, self.run);
        let i = self.rng.next() % self.fleet_size;
        let (lb, tg) = reference(i)?;
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
        log_ack(ack_log, committed.seq)?;
        latencies.push(micros);
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(latencies)
}

/// The load generator against a replicated store, through its client.
#[cfg(feature = "replication")]
mod group {
    use super::*;
    use crate::elb::{EntityKey, EntityKind};
    use crate::replication::node::Lookup;
    use crate::replication::{GroupClient, Request};

    /// Reference load balancer `i`'s id and its target group's, by `i`.
    type ReferenceIds = Vec<Option<(LoadBalancerId, TargetGroupId)>>;

    /// Finds the reference load balancers `0..n` and their target groups,
    /// and the seq of the state they were found in.
    fn reference_ids(client: &GroupClient, n: u64) -> Result<(u64, ReferenceIds), ToolError> {
        let mut ids = Vec::with_capacity(n as usize);
        let mut seq = 0;
        for start in (0..n).step_by(1000) {
            let names: Vec<(String, String)> =
                (start..(start + 1000).min(n)).map(|i| (fleet::account(i), fleet::name(i))).collect();
            let lookup = Lookup { linearizable: true, load_balancers: names.clone(), target_groups: names };
            let found = client.lookup(&lookup).map_err(|e| ToolError::failed(e.to_string()))?;
            seq = seq.max(found.seq);
            ids.extend(found.load_balancers.into_iter().zip(found.target_groups).map(|(lb, tg)| lb.zip(tg)));
        }
        Ok((seq, ids))
    }

    pub(super) fn workload(args: &Cli, addrs: &[String], err: &mut dyn Write, bar: &Bar) -> Result<Report, ToolError> {
        let (writers, total, fleet_size) = (args.writers, args.transactions, args.load_balancers);
        let client = GroupClient::new(addrs.iter().cloned(), Duration::from_secs(10));
        let ack_log = open_ack_log(args)?;
        let (_, ids) = reference_ids(&client, fleet_size)?;
        let missing: Vec<u64> = (0..fleet_size).filter(|&i| ids[i as usize].is_none()).collect();
        if !missing.is_empty() && bar.notes() {
            let _ = writeln!(err, "building the fleet: {} load balancers missing of {fleet_size}", missing.len());
        }
        bar.start("building", missing.len() as u64);
        // Runs of consecutive missing load balancers, 100 to a transaction.
        let mut built = 0;
        let mut k = 0;
        while k < missing.len() {
            let first = missing[k];
            let mut end = first + 1;
            while k + 1 < missing.len() && missing[k + 1] == end && end - first < 100 {
                k += 1;
                end += 1;
            }
            k += 1;
            let meta = TxnMeta::new("svc:provisioning", "workload fleet build");
            let reply = client
                .write(&Request::ReferenceFleet { meta, first, end })
                .map_err(|e| ToolError::failed(e.to_string()))?;
            if let Some(refused) = reply.refused {
                return Err(ToolError::failed(format!("building load balancers {first}..{end}: {refused}")));
            }
            built += end - first;
            bar.set(built);
        }
        let (run, ids) = reference_ids(&client, fleet_size)?;
        if total > 0 && ids.iter().all(Option::is_none) {
            return Err(ToolError::usage("the group holds no reference load balancers; give --load-balancers M"));
        }
        let (latencies, seconds, refused) = run_writers(writers, total, bar, |w, share, counters| {
            writer(&client, &ids, run, w, share, counters, ack_log.as_ref())
        })?;
        Ok(report(latencies, seconds, built, refused))
    }

    fn writer(
        client: &GroupClient,
        ids: &[Option<(LoadBalancerId, TargetGroupId)>],
        run: u64,
        w: u64,
        count: u64,
        (done, refused): (&AtomicU64, &AtomicU64),
        ack_log: Option<&Mutex<File>>,
    ) -> Result<Vec<u32>, String> {
        let mut mix = Mix::starting_at(run, w, ids.len() as u64);
        let mut latencies = Vec::with_capacity(count as usize);
        while (latencies.len() as u64) < count {
            let Some((meta, command)) = mix.next_command_in(|i| ids.get(i as usize).copied().flatten()) else {
                return Err(format!("writer {w}: no reference load balancer in the group"));
            };
            let started = Instant::now();
            let reply = client
                .write(&Request::Execute { meta, commands: vec![command] })
                .map_err(|e| format!("writer {w}: {e}"))?;
            let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            if reply.refused.is_some() {
                refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(seq) = reply.seq else { continue };
            for (kind, _, key) in &reply.created {
                if let (EntityKind::LoadBalancer, EntityKey::LoadBalancer(id)) = (kind, key) {
                    mix.record_created(*id);
                }
            }
            log_ack(ack_log, seq)?;
            latencies.push(micros);
            done.fetch_add(1, Ordering::Relaxed);
        }
        Ok(latencies)
    }
}
