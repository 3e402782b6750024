//! `pitr`: point-in-time restore and forensics for an ELB store.
//!
//! Every verb opens the store read-only except `revert` (which writes only to
//! the store it names with `--expect-store`) and `restore` (which writes only
//! into a new directory).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::args::Args;
use super::json::Json;
use super::{entity_json, kind_counts_json, open_read, summary_json, Exit};
use crate::clock::Timestamp;
use crate::elb::{
    ConflictReason, ElbEvent, ElbState, ElbStore, Entity, EntityKind, HistoryFilter, OnConflict, RevertMode,
    RevertSelection, Settings, Summary,
};
use crate::store::{verify, OpenMode, Options, Point, StateMachine, TxnMeta};

/// How to use the tool.
pub const USAGE: &str = "usage: pitr <verb> <store-dir> [options] [--json]
verbs:
  info                                   identity, history span, counts
  log     [--from P] [--to P] [--actor A] [--entity NAME_OR_ID]
  show    [--at P] [--load-balancer NAME]
  diff    --from P --to P
  restore --at P --out NEW_DIR [--actor A] [--reason R] [--ticket T]
  revert  (--txn N [--txn M ...] | --actor A --from P --to P --as WHO)
          --expect-store NAME[/ENV] --reason R [--actor WHO] [--ticket T] [--approver WHO]
          [--dry-run] [--skip-conflicts]
  verify
points P: seq:N, before:N, after:N or an RFC 3339 time";

/// Runs `pitr` with `args` (without the program name); returns the exit code.
pub fn run(args: Vec<String>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let exit = Args::parse(args).and_then(|args| {
        let [verb, dir] = args.positional.as_slice() else {
            return Err("expected a verb and a store directory (run without arguments for usage)".to_owned());
        };
        let json = args.has("--json");
        let dir = Path::new(dir);
        let result = match verb.as_str() {
            "info" => args.only(&["--json"]).and_then(|()| info(dir)),
            "log" => args.only(&["--json", "--from", "--to", "--actor", "--entity"]).and_then(|()| log(dir, &args)),
            "show" => args.only(&["--json", "--at", "--load-balancer"]).and_then(|()| show(dir, &args)),
            "diff" => args.only(&["--json", "--from", "--to"]).and_then(|()| diff(dir, &args)),
            "restore" => args
                .only(&["--json", "--at", "--out", "--actor", "--reason", "--ticket"])
                .and_then(|()| restore(dir, &args, err)),
            "revert" => args
                .only(&[
                    "--json",
                    "--txn",
                    "--actor",
                    "--from",
                    "--to",
                    "--as",
                    "--expect-store",
                    "--reason",
                    "--ticket",
                    "--approver",
                    "--dry-run",
                    "--skip-conflicts",
                ])
                .and_then(|()| revert(dir, &args)),
            "verify" => args.only(&["--json"]).and_then(|()| check(dir, err)),
            other => Err(format!("unknown verb {other:?} (run without arguments for usage)")),
        }?;
        Ok((result, json))
    });
    match exit {
        Ok((Exit { json, text, code }, as_json)) => {
            let printed = if as_json { writeln!(out, "{}", json.render()) } else { write!(out, "{text}") };
            if printed.is_err() {
                return 1;
            }
            code
        }
        Err(message) => {
            // One line, whatever the cause.
            let _ = writeln!(err, "error: {}", message.replace('\n', " "));
            1
        }
    }
}

fn time_json(time: Timestamp) -> Json {
    if time.as_nanos() == 0 {
        Json::Null
    } else {
        Json::str(time.to_string())
    }
}

/// Counts by schema version, as an object keyed by the version.
fn schemas_json<V: ToString>(counts: &BTreeMap<V, u64>) -> Json {
    Json::object(counts.iter().map(|(version, n)| (version.to_string(), Json::from(*n))))
}

/// "1 x 201, 2 x 40": how many of each schema version; "none" for none.
fn schema_counts<V: std::fmt::Display>(counts: &BTreeMap<V, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(version, n)| format!("{version} x {n}")).collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// "records 1 x 201, 2 x 40; snapshots 2 x 2 (this build writes 2)".
fn schemas_text(records: &BTreeMap<u8, u64>, snapshots: &BTreeMap<u32, u64>) -> String {
    format!(
        "records {}; snapshots {} (this build writes {})",
        schema_counts(records),
        schema_counts(snapshots),
        <ElbState as StateMachine>::SCHEMA_VERSION
    )
}

fn info(dir: &Path) -> Result<Exit, String> {
    let store = open_read(dir)?;
    let view = store.read();
    let identity = store.store().identity().clone();
    let first = if view.seq() > 0 { Some(store.store().transaction(1).map_err(|e| e.to_string())?) } else { None };
    let counts = view.counts();
    let (segments, snapshots) = (store.store().segments().len(), store.store().snapshots().len());
    let record_schemas = store.store().record_schemas().map_err(|e| e.to_string())?;
    let mut snapshot_schemas = BTreeMap::<u32, u64>::new();
    for snapshot in store.store().snapshots() {
        *snapshot_schemas.entry(snapshot.schema).or_default() += 1;
    }
    let schemas = schemas_text(&record_schemas, &snapshot_schemas);
    let json = Json::object([
        ("name", Json::str(&identity.name)),
        ("environment", Json::str(&identity.environment)),
        ("id", Json::str(identity.id.to_string())),
        ("created", time_json(identity.created)),
        ("first_seq", first.as_ref().map_or(Json::Null, |t| Json::from(t.seq))),
        ("first_time", first.as_ref().map_or(Json::Null, |t| time_json(t.time))),
        ("last_seq", Json::from(view.seq())),
        ("last_time", time_json(view.time())),
        ("transactions", Json::from(view.seq())),
        ("segments", Json::from(segments)),
        ("snapshots", Json::from(snapshots)),
        ("counts", super::counts_json(&counts)),
        ("schema", Json::from(u64::from(<ElbState as StateMachine>::SCHEMA_VERSION))),
        ("record_schemas", schemas_json(&record_schemas)),
        ("snapshot_schemas", schemas_json(&snapshot_schemas)),
    ]);
    let text = format!(
        "store {}/{} (id {})\nhistory: {} transactions, {} to {}\nfiles: {segments} segments, {snapshots} snapshots\n\
         schemas: {schemas}\n\
         now: {} load balancers, {} listeners, {} rules, {} target groups, {} targets\n",
        identity.name,
        identity.environment,
        identity.id,
        view.seq(),
        first.map_or("-".to_owned(), |t| t.time.to_string()),
        if view.seq() > 0 { view.time().to_string() } else { "-".to_owned() },
        counts.load_balancers,
        counts.listeners,
        counts.rules,
        counts.target_groups,
        counts.targets
    );
    Ok(Exit { json, text, code: 0 })
}

/// Whether an event concerns the resource named `needle` (a name or an id).
fn touches(event: &ElbEvent, needle: &str) -> bool {
    let matches = |e: &Entity| {
        e.key().to_string() == needle
            || match e {
                Entity::LoadBalancer(lb) => lb.name == needle,
                Entity::TargetGroup(tg) => tg.name == needle,
                Entity::Target(t) => &*t.key.id == needle,
                _ => false,
            }
    };
    event.before().is_some_and(matches) || event.after().is_some_and(matches)
}

fn log(dir: &Path, args: &Args) -> Result<Exit, String> {
    let store = open_read(dir)?;
    let filter = HistoryFilter {
        from: args.point("--from")?,
        to: args.point("--to")?,
        actor: args.get("--actor").map(str::to_owned),
        entity: None,
    };
    let needle = args.get("--entity");
    let mut rows = Vec::new();
    let mut text = String::new();
    for txn in store.history(filter).map_err(|e| e.to_string())? {
        let txn = txn.map_err(|e| e.to_string())?;
        if needle.is_some_and(|n| !txn.events.iter().any(|e| touches(e, n))) {
            continue;
        }
        let summary = Summary::of(&txn.events);
        text.push_str(&format!(
            "{:>8}  {}  {:<20} +{} ~{} -{}  {}{}\n",
            txn.seq,
            txn.time,
            txn.meta.actor,
            summary.created_total(),
            summary.changed_total(),
            summary.deleted_total(),
            txn.meta.reason,
            txn.meta.ticket.as_ref().map_or(String::new(), |t| format!(" [{t}]"))
        ));
        rows.push(Json::object([
            ("seq", Json::from(txn.seq)),
            ("time", Json::str(txn.time.to_string())),
            ("actor", Json::str(&txn.meta.actor)),
            ("reason", Json::str(&txn.meta.reason)),
            ("ticket", Json::opt_str(txn.meta.ticket.as_deref())),
            ("approved_by", Json::opt_str(txn.meta.approved_by.as_deref())),
            ("created", Json::from(summary.created_total())),
            ("changed", Json::from(summary.changed_total())),
            ("deleted", Json::from(summary.deleted_total())),
            ("summary", summary_json(&summary)),
        ]));
    }
    Ok(Exit { json: Json::Array(rows), text, code: 0 })
}

fn show(dir: &Path, args: &Args) -> Result<Exit, String> {
    let store = open_read(dir)?;
    let point = args.point("--at")?.unwrap_or(Point::Seq(store.read().seq()));
    let view = store.store().state_at(point).map_err(|e| e.to_string())?;
    let header = [("seq", Json::from(view.seq())), ("time", time_json(view.time()))];
    let Some(name) = args.get("--load-balancer") else {
        let counts = view.counts();
        let text = format!(
            "state at seq {} ({}): {} load balancers, {} listeners, {} rules, {} target groups, {} targets\n",
            view.seq(),
            view.time(),
            counts.load_balancers,
            counts.listeners,
            counts.rules,
            counts.target_groups,
            counts.targets
        );
        let json = Json::object(header.into_iter().chain([("counts", super::counts_json(&counts))]));
        return Ok(Exit { json, text, code: 0 });
    };
    let matches: Vec<_> = view.load_balancers().filter(|lb| lb.name == name).cloned().collect();
    if matches.is_empty() {
        return explain_missing(&store, name, view.seq(), &header);
    }
    let mut shown = Vec::new();
    let mut text = String::new();
    for lb in matches {
        let listeners: Vec<_> = view.listeners_of(lb.id).cloned().collect();
        let rules: Vec<_> = listeners.iter().flat_map(|l| view.rules_of(l.id).cloned().collect::<Vec<_>>()).collect();
        let mut groups: Vec<_> = listeners
            .iter()
            .flat_map(|l| l.default_actions.iter().flat_map(|a| a.target_groups()).collect::<Vec<_>>())
            .chain(rules.iter().flat_map(|r| r.actions.iter().flat_map(|a| a.target_groups()).collect::<Vec<_>>()))
            .collect();
        groups.sort();
        groups.dedup();
        text.push_str(&format!(
            "{} ({}) account {} {} {} state {}\n  dns {}\n",
            lb.name, lb.id, lb.account, lb.load_balancer_type, lb.scheme, lb.state, lb.dns_name
        ));
        for l in &listeners {
            text.push_str(&format!("  listener {} {}:{}\n", l.id, l.protocol, l.port));
            for r in rules.iter().filter(|r| r.listener == l.id) {
                text.push_str(&format!("    rule {} priority {}\n", r.id, r.priority));
            }
        }
        let mut group_json = Vec::new();
        for id in groups {
            if let Some(tg) = view.target_group(id) {
                let targets = view.targets_of(id).count();
                text.push_str(&format!("  target group {} ({}) {targets} targets\n", tg.name, tg.id));
                group_json.push(Json::object([
                    ("target_group", entity_json(&Entity::TargetGroup(tg.clone()))),
                    (
                        "targets",
                        Json::Array(view.targets_of(id).map(|t| entity_json(&Entity::Target(t.clone()))).collect()),
                    ),
                ]));
            }
        }
        shown.push(Json::object([
            ("load_balancer", entity_json(&Entity::LoadBalancer(lb.clone()))),
            ("listeners", Json::Array(listeners.into_iter().map(|l| entity_json(&Entity::Listener(l))).collect())),
            ("rules", Json::Array(rules.into_iter().map(|r| entity_json(&Entity::Rule(r))).collect())),
            ("target_groups", Json::Array(group_json)),
        ]));
    }
    let json = Json::object(header.into_iter().chain([("load_balancers", Json::Array(shown))]));
    Ok(Exit { json, text, code: 0 })
}

/// A name that is not there: who deleted it, when and why, if anyone did.
fn explain_missing(store: &ElbStore, name: &str, at: u64, header: &[(&str, Json); 2]) -> Result<Exit, String> {
    let mut found = None;
    for txn in store.store().transactions(1..=at) {
        let txn = txn.map_err(|e| e.to_string())?;
        for event in &txn.events {
            if let ElbEvent::Deleted(Entity::LoadBalancer(lb)) = event {
                if lb.name == name {
                    found = Some((txn.seq, txn.time, txn.meta.clone(), lb.clone()));
                }
            }
        }
    }
    let Some((seq, time, meta, lb)) = found else {
        return Err(format!("no load balancer named {name:?} at seq {at}, and none was deleted before it"));
    };
    let text = format!(
        "load balancer {name:?} ({}) does not exist at seq {at}: deleted by {} at {time} in transaction {seq}: {}{}\n",
        lb.id,
        meta.actor,
        meta.reason,
        meta.ticket.as_ref().map_or(String::new(), |t| format!(" [{t}]"))
    );
    let json = Json::object(header.iter().cloned().chain([(
        "deleted",
        Json::object([
            ("name", Json::str(name)),
            ("id", Json::str(lb.id.to_string())),
            ("seq", Json::from(seq)),
            ("time", Json::str(time.to_string())),
            ("actor", Json::str(&meta.actor)),
            ("reason", Json::str(&meta.reason)),
            ("ticket", Json::opt_str(meta.ticket.as_deref())),
            ("last_value", entity_json(&Entity::LoadBalancer(lb))),
        ]),
    )]));
    Ok(Exit { json, text, code: 0 })
}

fn diff(dir: &Path, args: &Args) -> Result<Exit, String> {
    let store = open_read(dir)?;
    let from = args.point("--from")?.ok_or("--from is required")?;
    let to = args.point("--to")?.ok_or("--to is required")?;
    let diff = store.diff(from, to).map_err(|e| e.to_string())?;
    let counts = diff.counts();
    let per = |pick: fn(&crate::elb::DiffCounts) -> usize| {
        kind_counts_json(EntityKind::ALL.iter().map(|k| (*k, counts.get(k).map_or(0, pick))))
    };
    let mut entities = Vec::new();
    let mut text = format!("diff seq {} -> seq {}\n", diff.from_seq, diff.to_seq);
    for kind in EntityKind::ALL {
        let c = counts.get(&kind).copied().unwrap_or_default();
        text.push_str(&format!("  {:<15} +{} ~{} -{}\n", kind.plural(), c.created, c.modified, c.deleted));
    }
    for (change, entity) in
        diff.created.iter().map(|e| ("created", e)).chain(diff.deleted.iter().map(|e| ("deleted", e)))
    {
        entities.push(Json::object([
            ("change", Json::str(change)),
            ("kind", Json::str(entity.key().kind().plural())),
            ("key", Json::str(entity.key().to_string())),
            ("label", Json::str(entity.label())),
        ]));
    }
    for m in &diff.modified {
        let fields = m.fields.iter().map(|f| {
            Json::object([
                ("field", Json::str(f.field)),
                ("before", Json::str(&f.before)),
                ("after", Json::str(&f.after)),
            ])
        });
        entities.push(Json::object([
            ("change", Json::str("modified")),
            ("kind", Json::str(m.after.key().kind().plural())),
            ("key", Json::str(m.after.key().to_string())),
            ("label", Json::str(m.after.label())),
            ("fields", Json::Array(fields.collect())),
        ]));
    }
    let json = Json::object([
        ("from_seq", Json::from(diff.from_seq)),
        ("to_seq", Json::from(diff.to_seq)),
        ("created", per(|c| c.created)),
        ("modified", per(|c| c.modified)),
        ("deleted", per(|c| c.deleted)),
        ("entities", Json::Array(entities)),
    ]);
    Ok(Exit { json, text, code: 0 })
}

fn operator() -> String {
    format!("pitr:{}", std::env::var("USER").unwrap_or_else(|_| "operator".into()))
}

fn restore(dir: &Path, args: &Args, err: &mut dyn Write) -> Result<Exit, String> {
    let store = open_read(dir)?;
    let point = args.point("--at")?.ok_or("--at is required")?;
    let out_dir = Path::new(args.required("--out")?);
    let mut meta = TxnMeta::new(
        args.get("--actor").map_or_else(operator, str::to_owned),
        args.get("--reason").map_or_else(|| format!("point-in-time restore to {point}"), str::to_owned),
    );
    meta.ticket = args.get("--ticket").map(str::to_owned);
    let (seq, _) = store.store().resolve(point).map_err(|e| e.to_string())?;
    if std::fs::read_dir(out_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(format!("{} is not empty; a restore writes only into a new or empty directory", out_dir.display()));
    }
    let _ = writeln!(err, "restoring {seq} transactions into {} ...", out_dir.display());
    let started = Instant::now();
    let identity = store.store().identity();
    let options = Options::default().identity(identity.name.clone(), identity.environment.clone());
    let report = store.store().restore_to(point, out_dir, options, &meta).map_err(|e| e.to_string())?;
    let _ = writeln!(err, "restored and verified in {:.1} s", started.elapsed().as_secs_f64());
    // The restored state against today's rules: a state of an older schema
    // or under other quotas may break some; the operator is told, the copy
    // is kept (it is what the store held).
    let restored = store.store().state_at(Point::Seq(report.seq)).map_err(|e| e.to_string())?;
    let violations = restored.state().violations(&store.settings().quotas);
    let json = Json::object([
        ("dir", Json::str(out_dir.display().to_string())),
        ("seq", Json::from(report.seq)),
        ("time", time_json(report.time)),
        ("transactions", Json::from(report.verified.transactions)),
        ("verified", Json::Bool(report.verified.ok())),
        (
            "violations",
            Json::Array(
                violations
                    .iter()
                    .map(|(key, e)| {
                        Json::object([
                            ("key", Json::str(key.to_string())),
                            ("code", Json::str(e.code())),
                            ("message", Json::str(e.to_string())),
                        ])
                    })
                    .collect(),
            ),
        ),
    ]);
    let mut text = format!("restored seq {} ({}) into {}, verified\n", report.seq, report.time, out_dir.display());
    for (key, e) in violations.iter().take(20) {
        text += &format!("  warning: {key} breaks a rule of today's API: {} ({e})\n", e.code());
    }
    if violations.len() > 20 {
        text += &format!("  warning: and {} more\n", violations.len() - 20);
    }
    Ok(Exit { json, text, code: 0 })
}

/// Conflicts a revert lists one per line; the rest are counted by reason.
const CONFLICTS_LISTED: usize = 20;

/// A conflict reason's kind in a few words, for counting.
fn reason_kind(reason: &ConflictReason) -> &'static str {
    match reason {
        ConflictReason::ChangedSince { .. } => "changed since",
        ConflictReason::NameTaken { .. } => "name taken",
        ConflictReason::PortTaken { .. } => "port taken",
        ConflictReason::PriorityTaken { .. } => "priority taken",
        ConflictReason::ParentMissing { .. } => "parent gone",
        ConflictReason::ReferenceMissing { .. } => "target group gone",
        ConflictReason::StillUsed { .. } => "still used",
        ConflictReason::DeletionProtected => "deletion protected",
        ConflictReason::Refused { .. } => "refused by a rule",
    }
}

fn revert(dir: &Path, args: &Args) -> Result<Exit, String> {
    let expected = args.required("--expect-store")?;
    let reason = args.required("--reason")?;
    // The two forms name the reverting actor differently (--actor with --txn,
    // --as with --actor): a mix of them would record the wrong actor for good.
    if args.has("--txn") {
        if let Some(flag) = ["--from", "--to", "--as"].into_iter().find(|f| args.has(f)) {
            return Err(format!(
                "{flag} belongs to the --actor A --from P --to P --as WHO form, not to --txn: give one form \
                 (with --txn, --actor names who reverts)"
            ));
        }
    } else if args.has("--actor") && !args.has("--as") && (args.has("--from") || args.has("--to")) {
        return Err("with --actor A --from P --to P, name who reverts with --as WHO".to_owned());
    }
    let selection = if args.has("--txn") {
        let seqs = args
            .all("--txn")
            .iter()
            .map(|t| t.parse::<u64>().map_err(|_| format!("--txn expects a number, got {t:?}")));
        RevertSelection::Transactions(seqs.collect::<Result<_, _>>()?)
    } else {
        RevertSelection::Actor {
            actor: args
                .required("--actor")
                .map_err(|_| "give --txn N, or --actor A --from P --to P".to_owned())?
                .to_owned(),
            from: args.point("--from")?.ok_or("--from is required with --actor")?,
            to: args.point("--to")?.ok_or("--to is required with --actor")?,
        }
    };
    // With --txn, --actor names who reverts; selecting by actor, --as does.
    let who = if args.has("--txn") { args.get("--actor") } else { args.get("--as") };
    let who = who.ok_or("name who reverts: --actor with --txn, or --as with --actor")?;
    let mut meta = TxnMeta::new(who, reason);
    meta.ticket = args.get("--ticket").map(str::to_owned);
    meta.approved_by = args.get("--approver").map(str::to_owned);
    let dry_run = args.has("--dry-run");
    let options = match expected.split_once('/') {
        Some((name, env)) => Options::default().identity(name, env),
        None => {
            // Only the name was given: the environment is the store's own.
            let found = open_read(dir)?.store().identity().environment.clone();
            Options::default().identity(expected, found)
        }
    };
    let options = if dry_run { options.mode(OpenMode::ReadOnly) } else { options };
    let store = ElbStore::open(dir, options, Settings::default()).map_err(|e| e.to_string())?;
    let mode = if dry_run { RevertMode::DryRun } else { RevertMode::Apply };
    let on_conflict = if args.has("--skip-conflicts") { OnConflict::SkipConflicting } else { OnConflict::Abort };
    let plan = store.revert(selection, meta, mode, on_conflict).map_err(|e| e.to_string())?;
    let conflicts: Vec<Json> = plan
        .conflicts
        .iter()
        .map(|c| {
            Json::object([
                ("key", Json::str(c.key.to_string())),
                ("label", Json::str(&c.label)),
                ("reason", Json::str(format!("{:?}", c.reason))),
            ])
        })
        .collect();
    let mut text = format!(
        "{} {} transactions: {} resources back, {} events, {} conflicts\n",
        if dry_run { "would revert" } else { "reverted" },
        plan.reverted_transactions.len(),
        plan.restored.len(),
        plan.events.len(),
        plan.conflicts.len()
    );
    for c in plan.conflicts.iter().take(CONFLICTS_LISTED) {
        text.push_str(&format!("  conflict: {} ({}): {}\n", c.key, c.label, c.reason));
    }
    if plan.conflicts.len() > CONFLICTS_LISTED {
        // The rest in one line per reason, most common first.
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for c in &plan.conflicts[CONFLICTS_LISTED..] {
            *reasons.entry(reason_kind(&c.reason).to_owned()).or_default() += 1;
        }
        let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
        reasons.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let rest: Vec<String> = reasons.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        text.push_str(&format!(
            "  and {} more conflicts: {} (--json lists them all)\n",
            plan.conflicts.len() - CONFLICTS_LISTED,
            rest.join(", ")
        ));
    }
    if let Some(committed) = plan.committed {
        text.push_str(&format!("written as transaction {}\n", committed.seq));
    } else if !dry_run && !plan.conflicts.is_empty() {
        text.push_str("nothing written: resolve the conflicts or pass --skip-conflicts\n");
    }
    let json = Json::object([
        ("reverted_transactions", Json::Array(plan.reverted_transactions.iter().map(|s| Json::from(*s)).collect())),
        ("restored", Json::from(plan.restored.len())),
        ("events", Json::from(plan.events.len())),
        ("conflicts", Json::Array(conflicts)),
        ("new_seq", plan.committed.map_or(Json::Null, |c| Json::from(c.seq))),
        ("dry_run", Json::Bool(dry_run)),
    ]);
    let code = if plan.committed.is_none() && !dry_run && !plan.conflicts.is_empty() { 1 } else { 0 };
    Ok(Exit { json, text, code })
}

fn check(dir: &Path, err: &mut dyn Write) -> Result<Exit, String> {
    let _ = writeln!(err, "verifying {} ...", dir.display());
    let started = Instant::now();
    let report = verify::<ElbState>(dir, Options::default()).map_err(|e| e.to_string())?;
    let _ = writeln!(err, "verified in {:.1} s", started.elapsed().as_secs_f64());
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let json = Json::object([
        ("ok", Json::Bool(report.ok())),
        ("problems", Json::Array(problems.iter().map(Json::str).collect())),
        ("transactions", Json::from(report.transactions)),
        ("segments", Json::from(report.segments)),
        ("snapshots_checked", Json::from(report.snapshots_checked)),
        ("record_schemas", schemas_json(&report.record_schemas)),
        ("older_schema_snapshots", Json::from(report.older_schema_snapshots)),
        (
            "tail_being_written",
            match &report.tail_being_written {
                Some((path, offset)) => {
                    Json::object([("segment", Json::str(path.display().to_string())), ("offset", Json::from(*offset))])
                }
                None => Json::Null,
            },
        ),
    ]);
    let mut text = format!(
        "{}: {} transactions in {} segments, {} snapshots checked\n",
        if report.ok() { "sound" } else { "PROBLEMS" },
        report.transactions,
        report.segments,
        report.snapshots_checked
    );
    if !report.record_schemas.is_empty() {
        let schemas = schema_counts(&report.record_schemas);
        text.push_str(&format!("  every record decoded and upcast; schemas: {schemas}\n"));
    }
    if report.older_schema_snapshots > 0 {
        text.push_str(&format!(
            "  {} snapshots of an older schema are passed over by opens, which rebuild from the log\n",
            report.older_schema_snapshots
        ));
    }
    if let Some((path, offset)) = &report.tail_being_written {
        text.push_str(&format!(
            "  a writer is appending to {} at byte offset {offset}: checked up to there\n",
            path.display()
        ));
    }
    for problem in &problems {
        text.push_str(&format!("  {problem}\n"));
    }
    Ok(Exit { json, text, code: if report.ok() { 0 } else { 1 } })
}
