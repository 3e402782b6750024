//! The 2012 incident, replayed end to end against a real store: a fleet, its
//! traffic, a maintenance process that deletes a tenth of the fleet, the
//! guard and the alarms, customers carrying on, and an operator who finds the
//! deletion in the log and reverts it while keeping every later change.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::cli::{run_tool, Status, ToolError, Verdict};
use super::progress::Bar;
use crate::elb::{
    fleet, load_balancer_changes, Alarm, AlarmKind, Command, ElbError, ElbEvent, ElbStore, Entity, EntityKey, Ledger,
    Observer, OnConflict, RevertMode, RevertSelection, Settings, Taggable, TargetSpec, WatchFilter,
};
use crate::store::{Create, Options, TxnMeta};

/// The December 2012 incident, replayed against a real store.
#[derive(Debug, clap::Parser)]
#[command(
    name = "incident",
    version,
    about = "The December 2012 incident, replayed end to end against a real store",
    long_about = "The December 2012 incident, replayed end to end against a real store: a fleet, its \
                  traffic, a maintenance process that deletes a tenth of the fleet, the guard and the \
                  alarms, customers carrying on, and an operator who finds the deletion in the log and \
                  reverts it while keeping every later change.",
    after_help = "Examples:\n  incident\n  incident --dir /tmp/incident --stop-before-repair\n\n\
                  Exit codes: 0 nothing lost, 1 something lost or a failure, 2 usage."
)]
pub struct Cli {
    /// Where the store goes (default: a temporary directory, removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Load balancers in the fleet (at least 100).
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = fleet_size)]
    pub load_balancers: u64,
    /// Stop once the deletion is found and leave the damaged store in --dir
    /// for practice with pitr.
    #[arg(long, requires = "dir")]
    pub stop_before_repair: bool,
    /// Print the summary as one JSON object (the story goes to standard error).
    #[arg(long)]
    pub json: bool,
}

/// Load balancers per transaction while building the fleet.
const BUILD_BATCH: u64 = 100;

/// What the demo measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Load balancers in the fleet before the incident.
    pub load_balancers: u64,
    /// Load balancers the maintenance process deleted.
    pub deleted: u64,
    /// Whether the guard refused the unapproved run.
    pub guard_refused: bool,
    /// Whether an alarm fired when the approved run deleted.
    pub alarm_fired: bool,
    /// Resources the revert brought back exactly as they were.
    pub restored: u64,
    /// Later changes (after the deletion) still in place after the revert.
    pub later_changes_kept: u64,
    /// Deleted resources not restored exactly plus later changes lost.
    pub lost: u64,
    /// Milliseconds to find the deleting transaction in the log.
    pub detect_ms: f64,
    /// Milliseconds to revert it.
    pub revert_ms: f64,
    /// The transaction that deleted them.
    pub deletion_seq: u64,
    /// Whether the demo stopped before the repair (`--stop-before-repair`).
    pub stopped_before_repair: bool,
    /// Whether the follower beside the fleet ended at the store's last
    /// transaction with the store's state digest.
    pub follower_converged: bool,
}

fn fleet_size(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n >= 100 => Ok(n),
        Ok(_) => Err("the fleet needs at least 100 load balancers".to_owned()),
        Err(_) => Err("expected a whole number of load balancers".to_owned()),
    }
}

/// The command line, for help and documentation tests.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs the demo with `args` (without the program name); returns the exit code.
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_tool("incident", args, out, err, |cli: Cli, out, err| {
        let (dir, temporary) = match &cli.dir {
            Some(dir) => (dir.clone(), false),
            None => (std::env::temp_dir().join(format!("elbstore-incident-{}", std::process::id())), true),
        };
        let narrate: &mut dyn Write = if cli.json { err } else { out };
        let bar = Bar::on_terminal(cli.json);
        let outcome = replay_with(&dir, cli.load_balancers, cli.stop_before_repair, narrate, &bar);
        bar.finish();
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let outcome = outcome.map_err(|message| {
            if message.contains("is not empty") {
                ToolError::usage(message)
            } else {
                ToolError::failed(message)
            }
        })?;
        let status = if outcome.lost == 0 { Status::Ok } else { Status::Failed };
        // The story went out as it happened.
        Ok(Verdict::new(&Summary::of(&outcome), String::new()).with_status(status))
    })
}

/// The demo's summary, as printed under `--json`.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    /// Load balancers in the fleet before the incident.
    pub load_balancers: u64,
    /// Load balancers the maintenance process deleted.
    pub deleted: u64,
    /// Whether the guard refused the unapproved run.
    pub guard_refused: bool,
    /// Whether an alarm fired when the approved run deleted.
    pub alarm_fired: bool,
    /// Resources the revert brought back exactly as they were.
    pub restored: u64,
    /// Later changes still in place after the revert.
    pub later_changes_kept: u64,
    /// Deleted resources not restored exactly plus later changes lost.
    pub lost: u64,
    /// Whether the demo stopped before the repair.
    pub stopped_before_repair: bool,
    /// The transaction that deleted them.
    pub deletion_seq: u64,
    /// Milliseconds to find the deleting transaction.
    pub detect_ms: u64,
    /// Milliseconds to revert it.
    pub revert_ms: u64,
    /// Whether the follower on the change feed ended with the store's digest.
    pub follower_converged: bool,
}

impl Summary {
    /// The summary of an outcome.
    pub fn of(o: &Outcome) -> Summary {
        Summary {
            load_balancers: o.load_balancers,
            deleted: o.deleted,
            guard_refused: o.guard_refused,
            alarm_fired: o.alarm_fired,
            restored: o.restored,
            later_changes_kept: o.later_changes_kept,
            lost: o.lost,
            stopped_before_repair: o.stopped_before_repair,
            deletion_seq: o.deletion_seq,
            detect_ms: o.detect_ms.round() as u64,
            revert_ms: o.revert_ms.round() as u64,
            follower_converged: o.follower_converged,
        }
    }
}

struct Clock(Instant);

impl Clock {
    fn line(&self, out: &mut dyn Write, text: &str) {
        let _ = writeln!(out, "[{:>8.3} s] {text}", self.0.elapsed().as_secs_f64());
    }
}

fn elb(err: ElbError) -> String {
    err.to_string()
}

/// Replays the incident in `dir` with a fleet of `n`, narrating to `say`;
/// with `stop_before_repair`, up to finding the deletion, leaving the damaged
/// store in `dir`.
pub fn replay(dir: &std::path::Path, n: u64, stop_before_repair: bool, say: &mut dyn Write) -> Result<Outcome, String> {
    replay_with(dir, n, stop_before_repair, say, &Bar::hidden())
}

/// [`replay`], showing the fleet build on `bar`.
pub fn replay_with(
    dir: &std::path::Path,
    n: u64,
    stop_before_repair: bool,
    say: &mut dyn Write,
    bar: &Bar,
) -> Result<Outcome, String> {
    if dir.exists() && std::fs::read_dir(dir).map_err(|e| e.to_string())?.next().is_some() {
        return Err(format!("{} is not empty; the demo needs a new directory", dir.display()));
    }
    let clock = Clock(Instant::now());
    let alarms: Arc<Mutex<Vec<Alarm>>> = Arc::default();
    let sink = alarms.clone();
    let observer: Observer = Arc::new(move |alarm: &Alarm| sink.lock().push(alarm.clone()));
    let options = Options::default().create(Create::New).identity("us-east-1", "production");
    let store = ElbStore::open_observed(dir, options, Settings::in_region("us-east-1"), Some(observer))
        .map_err(|e| e.to_string())?;
    let mut outcome = Outcome { load_balancers: n, ..Outcome::default() };
    let follower = Follower::start(&store)?;

    clock.line(say, &format!("building a fleet of {n} load balancers (16 resources each) in us-east-1/production"));
    let mut built = 0;
    bar.start("building", n);
    while built < n {
        let end = (built + BUILD_BATCH).min(n);
        let meta = TxnMeta::new("svc:provisioning", format!("provision load balancers {built}..{end}"));
        store.execute_with(meta, |_, ctx| fleet::batch_commands(built..end, ctx.seq)).map_err(elb)?;
        built = end;
        bar.set(built);
    }
    bar.finish();
    let counts = store.read().counts();
    clock.line(
        say,
        &format!(
            "fleet ready: {} load balancers, {} listeners, {} rules, {} target groups, {} targets",
            counts.load_balancers, counts.listeners, counts.rules, counts.target_groups, counts.targets
        ),
    );

    clock.line(say, "control-plane traffic: health checks, tags, registrations");
    traffic(&store, n, 0, 1_000)?;

    let victims: Vec<u64> = (0..n).filter(|i| i % 10 == 3).collect();
    let ids: Vec<Command> = {
        let view = store.read();
        victims
            .iter()
            .map(|&i| Command::DeleteLoadBalancer {
                load_balancer: view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).expect("built").id,
            })
            .collect()
    };
    clock.line(
        say,
        &format!(
            "the mistake: a maintenance process, run against production by mistake, tries to delete {} load balancers",
            victims.len()
        ),
    );
    let maintenance = TxnMeta::new("maint:state-cleanup", "remove load balancers with stale state");
    let applied = match store.execute(maintenance.clone(), ids.clone()) {
        Err(err @ ElbError::BulkDeletionRefused { .. }) => {
            outcome.guard_refused = true;
            clock.line(say, &err.to_string());
            clock.line(say, "the operator re-runs it with a change ticket and a (mistaken) approval");
            let approved = maintenance.with_approval("CHG-2012-1224", "ops:night-shift");
            store.execute(approved, ids).map_err(elb)?
        }
        Err(other) => return Err(other.to_string()),
        Ok(applied) => {
            clock.line(say, "the guard lets it through: a tenth of this small fleet is under its limit");
            applied
        }
    };
    let deletion_seq = applied.committed.ok_or("the deletion wrote nothing")?.seq;
    outcome.deletion_seq = deletion_seq;
    outcome.deleted = victims.len() as u64;
    let deleted_state = store.read();
    clock.line(
        say,
        &format!(
            "transaction {deletion_seq} deleted {} load balancers with their listeners and rules; {} remain",
            outcome.deleted,
            deleted_state.counts().load_balancers
        ),
    );
    for alarm in alarms.lock().iter() {
        outcome.alarm_fired = true;
        let what = match &alarm.kind {
            AlarmKind::Deletions { count, threshold } => {
                format!("{count} deletions in the window (threshold {threshold})")
            }
            AlarmKind::FleetDrop { peak, now, .. } => format!("fleet dropped from {peak} to {now}"),
            AlarmKind::WrongStore { expected, found } => format!("wrong store: expected {expected}, found {found}"),
        };
        let transactions: Vec<String> = alarm.transactions.iter().map(u64::to_string).collect();
        clock.line(
            say,
            &format!("ALARM: {what}; actors {}; transactions {}", alarm.actors.join(", "), transactions.join(", ")),
        );
    }

    clock.line(say, "customers carry on: new load balancers, changes to surviving ones");
    let later_from = store.read().seq() + 1;
    for i in n..n + 20 {
        let meta = TxnMeta::new(format!("customer:{}", fleet::account(i)), "CreateLoadBalancer");
        store.execute_with(meta, |_, ctx| fleet::reference_commands(i, ctx.seq)).map_err(elb)?;
    }
    traffic(&store, n, 1, 500)?;
    let later_to = store.read().seq();

    clock.line(say, "the operator looks at the log for deletions");
    let started = Instant::now();
    let mut deleting = Vec::new();
    for txn in store.store().transactions(1..=later_to) {
        let txn = txn.map_err(|e| e.to_string())?;
        let lbs = txn.events.iter().filter(|e| matches!(e, ElbEvent::Deleted(Entity::LoadBalancer(_)))).count();
        if lbs > 0 {
            deleting.push((txn.seq, lbs, txn.meta));
        }
    }
    outcome.detect_ms = started.elapsed().as_secs_f64() * 1e3;
    for (seq, lbs, meta) in &deleting {
        clock.line(
            say,
            &format!(
                "found transaction {seq}: {lbs} load balancers deleted by {} ({}), ticket {}, approved by {}",
                meta.actor,
                meta.reason,
                meta.ticket.as_deref().unwrap_or("none"),
                meta.approved_by.as_deref().unwrap_or("nobody")
            ),
        );
    }
    if stop_before_repair {
        outcome.stopped_before_repair = true;
        let seqs: Vec<String> = deleting.iter().map(|d| d.0.to_string()).collect();
        clock.line(
            say,
            &format!(
                "stopped before the repair: the damaged store is in {}; practice with \
                 `pitr revert {} --txn {} --expect-store us-east-1/production --actor YOU --reason WHY --dry-run`",
                dir.display(),
                dir.display(),
                seqs.join(" --txn ")
            ),
        );
        outcome.follower_converged = follower.finish(store, &clock, say)?;
        return Ok(outcome);
    }
    let started = Instant::now();
    let plan = store
        .revert(
            RevertSelection::Transactions(deleting.iter().map(|d| d.0).collect()),
            TxnMeta::new("ops:incident-response", "revert mistaken state cleanup").with_ticket("INC-2012-1224"),
            RevertMode::Apply,
            OnConflict::Abort,
        )
        .map_err(elb)?;
    outcome.revert_ms = started.elapsed().as_secs_f64() * 1e3;
    if !plan.conflicts.is_empty() {
        let first: Vec<String> =
            plan.conflicts.iter().take(20).map(|c| format!("{} ({}): {}", c.key, c.label, c.reason)).collect();
        return Err(format!("the revert found {} conflicts, first: {}", plan.conflicts.len(), first.join("; ")));
    }
    clock.line(
        say,
        &format!(
            "reverted in {:.0} ms as transaction {}: {} resources restored",
            outcome.revert_ms,
            plan.committed.map_or(0, |c| c.seq),
            plan.restored.len()
        ),
    );

    // Check: every deleted resource is back exactly; every later change is in place.
    let now = store.read();
    let deletion = store.store().transaction(deletion_seq).map_err(|e| e.to_string())?;
    for event in &deletion.events {
        if let ElbEvent::Deleted(old) = event {
            if now.entity(&old.key()).as_ref() == Some(old) {
                outcome.restored += 1;
            } else {
                outcome.lost += 1;
            }
        }
    }
    let mut latest: BTreeMap<EntityKey, Option<Entity>> = BTreeMap::new();
    for txn in store.store().transactions(later_from..=later_to) {
        for event in txn.map_err(|e| e.to_string())?.events {
            latest.insert(event.key(), event.after().cloned());
        }
    }
    for (key, value) in latest {
        if now.entity(&key) == value {
            outcome.later_changes_kept += 1;
        } else {
            outcome.lost += 1;
        }
    }
    clock.line(
        say,
        &format!(
            "checked: {} deleted resources back exactly, {} later changes kept, {} lost; {} load balancers now",
            outcome.restored,
            outcome.later_changes_kept,
            outcome.lost,
            now.counts().load_balancers
        ),
    );
    drop(now);
    outcome.follower_converged = follower.finish(store, &clock, say)?;
    Ok(outcome)
}

/// A data-plane configurator beside the fleet: it follows the change feed
/// from the first transaction, folds every change into its own state, and
/// notes the mass deletions and the restorations it sees go by.
struct Follower {
    handle: std::thread::JoinHandle<Followed>,
    applied: Arc<std::sync::atomic::AtomicU64>,
}

struct Followed {
    seq: u64,
    digest: crate::elb::StateDigest,
    /// (seq, load balancers deleted) of transactions deleting more than one.
    mass_deletions: Vec<(u64, usize)>,
    /// (seq, load balancers brought back, transactions reverted) of the
    /// transactions marked as reverts.
    restorations: Vec<(u64, usize, Vec<u64>)>,
    /// (seq, kind) of the alarms the follower raised itself: the guard's
    /// ledger run over the changes as they arrive, with the store's
    /// thresholds (alarms are not in the log; they follow from it).
    alarms: Vec<(u64, &'static str)>,
}

impl Follower {
    fn start(store: &ElbStore) -> Result<Follower, String> {
        let mut watch = store.watch(1, WatchFilter::all()).map_err(elb)?;
        let applied = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let progress = applied.clone();
        let (thresholds, guard_window) = (store.settings().alarms.clone(), store.settings().guard.window);
        let handle = std::thread::spawn(move || {
            let (mut mass_deletions, mut restorations, mut alarms) = (Vec::new(), Vec::new(), Vec::new());
            // From the first transaction: an empty fleet, nothing in the window.
            let mut ledger = Ledger::rebuild(0, Vec::new(), &thresholds);
            // Until the store closes.
            while let Ok(change) = watch.recv() {
                let changes = load_balancer_changes(&change.events);
                for alarm in ledger.record(change.seq, change.time, &change.meta, changes, &thresholds, guard_window) {
                    let kind = match alarm.kind {
                        AlarmKind::Deletions { .. } => "deletions",
                        AlarmKind::FleetDrop { .. } => "fleet drop",
                        AlarmKind::WrongStore { .. } => "wrong store",
                    };
                    alarms.push((change.seq, kind));
                }
                let deleted =
                    change.events.iter().filter(|e| matches!(e, ElbEvent::Deleted(Entity::LoadBalancer(_)))).count();
                let back = change
                    .events
                    .iter()
                    .filter(|e| matches!(e, ElbEvent::Created(Entity::LoadBalancer(lb)) if lb.id.created_seq() < change.seq))
                    .count();
                if deleted > 1 {
                    mass_deletions.push((change.seq, deleted));
                }
                if !change.meta.reverts.is_empty() {
                    restorations.push((change.seq, back, change.meta.reverts.clone()));
                }
                progress.store(change.seq, std::sync::atomic::Ordering::Release);
            }
            Followed { seq: watch.next_seq() - 1, digest: watch.state().digest(), mass_deletions, restorations, alarms }
        });
        Ok(Follower { handle, applied })
    }

    /// Lets the follower catch up with the store's last transaction, closes
    /// the store, and says what the follower saw; whether it converged.
    fn finish(self, store: ElbStore, clock: &Clock, say: &mut dyn Write) -> Result<bool, String> {
        let (head, digest) = {
            let view = store.read();
            (view.seq(), view.state().digest())
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while self.applied.load(std::sync::atomic::Ordering::Acquire) < head && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        store.close().map_err(|e| e.to_string())?;
        let followed = self.handle.join().map_err(|_| "the follower failed".to_owned())?;
        let seen = |parts: Vec<String>, what: &str| -> String {
            if parts.is_empty() {
                format!("no {what}")
            } else {
                parts.join(", ")
            }
        };
        let deletions =
            followed.mass_deletions.iter().map(|(seq, n)| format!("{n} load balancers deleted in transaction {seq}"));
        let alarms = followed.alarms.iter().map(|(seq, kind)| format!("a {kind} alarm at transaction {seq}"));
        let reverts = followed.restorations.iter().map(|(seq, n, of)| {
            let of: Vec<String> = of.iter().map(u64::to_string).collect();
            format!("transaction {seq}, a revert of {}, bringing back {n} load balancers", of.join(", "))
        });
        let converged = followed.seq == head && followed.digest == digest;
        clock.line(
            say,
            &format!(
                "follower (a data-plane configurator on the change feed): saw {}; raised {}; saw {}; at \
                 transaction {} its state digest {} the store's ({})",
                seen(deletions.collect(), "mass deletion"),
                seen(alarms.collect(), "alarm"),
                seen(reverts.collect(), "revert"),
                followed.seq,
                if converged { "equals" } else { "DIFFERS from" },
                &digest.to_hex()[..16]
            ),
        );
        Ok(converged)
    }
}

/// Control-plane traffic: target health flapping, tags, registrations.
fn traffic(store: &ElbStore, n: u64, round: u64, transactions: u64) -> Result<(), String> {
    for t in 0..transactions {
        // Surviving load balancers only (those not ending in 3), spread over the fleet.
        let mut i = (t.wrapping_mul(7919) + round * 13) % n;
        if i % 10 == 3 {
            i += 1;
        }
        let i = i.min(n - 1);
        let (lb, tg) = {
            let view = store.read();
            let lb = view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).map(|lb| lb.id);
            let tg = view.target_group_by_name(&fleet::account(i), &fleet::name(i)).map(|tg| tg.id);
            (lb, tg)
        };
        let (Some(lb), Some(tg)) = (lb, tg) else { continue };
        let (actor, command) = match t % 10 {
            0..=5 => (
                "svc:health-checker".to_owned(),
                Command::UpdateTargetHealth {
                    target_group: tg,
                    target: TargetSpec::new(fleet::target_id(i, t % fleet::TARGETS_PER_GROUP)),
                    health: fleet::check_result((t + round).is_multiple_of(2), t),
                },
            ),
            6 | 7 => (
                "svc:workflow".to_owned(),
                Command::RegisterTargets {
                    target_group: tg,
                    targets: vec![TargetSpec::new(format!("i-e{:016x}", (round << 32) | t))],
                },
            ),
            _ => (
                format!("customer:{}", fleet::account(i)),
                Command::AddTags {
                    resources: vec![Taggable::LoadBalancer(lb)],
                    tags: [("change".to_owned(), format!("{round}-{t}"))].into(),
                },
            ),
        };
        store.execute(TxnMeta::new(actor, "control-plane traffic"), vec![command]).map_err(elb)?;
    }
    Ok(())
}
