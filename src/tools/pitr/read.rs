//! The verbs that only read: info, log, show, diff, verify, timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::{open_read, DiffArgs, LogArgs, ShowArgs, TimelineArgs};
use crate::elb::{ElbEvent, ElbState, ElbStore, Entity, EntityKey, EntityKind, HistoryFilter, Summary};
use crate::store::{verify as verify_store, Options, Point, StateMachine, RESTORED_FROM_FILE};
use crate::tools::cli::{Status, ToolError, Verdict};
use crate::tools::progress::Bar;
use crate::tools::report::{
    field_changes, kind_name, plural, time_short, time_text, value_words, Changes, FieldChange, KindCounts, Resource,
    ResourceRef, TxnRef,
};
use crate::tools::timeline::Timeline;

/// Rows a text listing shows before it counts the rest.
pub(super) const LISTED: usize = 20;

#[derive(Serialize)]
struct Info {
    name: String,
    environment: String,
    id: String,
    created: Option<String>,
    restored_from: Option<BTreeMap<String, Option<String>>>,
    first_seq: Option<u64>,
    first_time: Option<String>,
    last_seq: u64,
    last_time: Option<String>,
    transactions: u64,
    segments: usize,
    snapshots: usize,
    counts: KindCounts,
    schema: u32,
    record_schemas: BTreeMap<String, u64>,
    snapshot_schemas: BTreeMap<String, u64>,
    /// `ElbState::digest` of the state at `last_seq`.
    state_digest: String,
}

/// "201 of schema 1, 40 of schema 2", or "none".
fn schema_words(counts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = counts.iter().map(|(version, n)| format!("{n} of schema {version}")).collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

fn by_version<V: ToString>(counts: &BTreeMap<V, u64>) -> BTreeMap<String, u64> {
    counts.iter().map(|(v, n)| (v.to_string(), *n)).collect()
}

/// The `RESTORED_FROM` file of a restored or salvaged copy, as key/value
/// pairs; an empty value is null.
fn provenance(dir: &Path) -> Option<BTreeMap<String, Option<String>>> {
    let text = std::fs::read_to_string(dir.join(RESTORED_FROM_FILE)).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.split_once(": ").or_else(|| line.strip_suffix(':').map(|k| (k, ""))))
            .map(|(k, v)| (k.trim().to_owned(), Some(v.trim().to_owned()).filter(|v| !v.is_empty())))
            .collect(),
    )
}

pub(super) fn info(dir: &Path, bar: &Bar) -> Result<Verdict, ToolError> {
    let store = open_read(dir, bar)?;
    let view = store.read();
    let identity = store.store().identity().clone();
    let first = if view.seq() > 0 { Some(store.store().transaction(1)?) } else { None };
    let mut snapshot_schemas = BTreeMap::<u32, u64>::new();
    for snapshot in store.store().snapshots() {
        *snapshot_schemas.entry(snapshot.schema).or_default() += 1;
    }
    let doc = Info {
        name: identity.name.clone(),
        environment: identity.environment.clone(),
        id: identity.id.to_string(),
        created: time_text(identity.created),
        restored_from: provenance(dir),
        first_seq: first.as_ref().map(|t| t.seq),
        first_time: first.as_ref().and_then(|t| time_text(t.time)),
        last_seq: view.seq(),
        last_time: time_text(view.time()),
        transactions: view.seq(),
        segments: store.store().segments().len(),
        snapshots: store.store().snapshots().len(),
        counts: KindCounts::of(&view.counts()),
        schema: u32::from(<ElbState as StateMachine>::SCHEMA_VERSION),
        record_schemas: by_version(&store.store().record_schemas()?),
        snapshot_schemas: by_version(&snapshot_schemas),
        state_digest: view.state().digest().to_hex(),
    };
    let mut text = format!(
        "store {}/{} (id {})\nhistory: {}, {} to {}\nfiles: {}, {}\n\
         schemas: records {}; snapshots {} (this build writes {})\nnow: {}\nstate digest: {}\n",
        doc.name,
        doc.environment,
        doc.id,
        plural(doc.transactions as usize, "transaction"),
        doc.first_time.as_deref().unwrap_or("-"),
        doc.last_time.as_deref().unwrap_or("-"),
        plural(doc.segments, "segment"),
        plural(doc.snapshots, "snapshot"),
        schema_words(&doc.record_schemas),
        schema_words(&doc.snapshot_schemas),
        doc.schema,
        doc.counts.words(),
        doc.state_digest,
    );
    if let Some(from) = &doc.restored_from {
        let get = |k: &str| from.get(k).and_then(|v| v.as_deref()).unwrap_or("-");
        let salvage = get("kind") == "salvage";
        text.push_str(&format!(
            "{} from store {}/{} (id {}) at seq {} ({}) by {} on {}: {}\n",
            if salvage { "salvaged" } else { "restored" },
            get("source_name"),
            get("source_environment"),
            get("source_store_id"),
            get("seq"),
            get("time"),
            get("actor"),
            get(if salvage { "salvaged_at" } else { "restored_at" }),
            get("reason"),
        ));
        if salvage {
            text.push_str(&format!(
                "  left behind: {} records (seqs {}), {} bytes; damage: {}\n",
                get("left_behind_records"),
                get("left_behind_seqs"),
                get("left_behind_bytes"),
                get("damage")
            ));
        }
    }
    Ok(Verdict::new(&doc, text))
}

#[derive(Serialize)]
struct LogDoc {
    filter: LogFilter,
    transactions: Vec<LogRow>,
    count: usize,
}

#[derive(Serialize)]
struct LogFilter {
    from_seq: u64,
    to_seq: u64,
    actor: Option<String>,
    deletions: bool,
    kind: Option<&'static str>,
    entity: Option<String>,
}

#[derive(Serialize)]
struct LogRow {
    #[serde(flatten)]
    txn: TxnRef,
    changes: Changes,
    /// With --entity: that resource's own changes in this transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_changes: Option<Vec<EntityChange>>,
}

#[derive(Serialize)]
struct EntityChange {
    change: &'static str,
    resource: ResourceRef,
    /// Every field of a created resource, or the last value of a deleted one.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    /// The fields a modification changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<FieldChange>,
}

/// Whether `entity` is the one named by `needle`: its id, its ARN (also
/// the ARN it had, once deleted), its name, or a target's instance id.
fn named(store: &ElbStore, entity: &Entity, needle: &str, arn_key: Option<&EntityKey>) -> bool {
    let key = entity.key();
    arn_key == Some(&key)
        || (needle.starts_with("arn:") && ResourceRef::of(store, entity).arn.as_deref() == Some(needle))
        || key.to_string() == needle
        || match entity {
            Entity::LoadBalancer(lb) => lb.name == needle,
            Entity::TargetGroup(tg) => tg.name == needle,
            Entity::TrustStore(ts) => ts.name == needle,
            Entity::Target(t) => &*t.key.id == needle,
            _ => false,
        }
}

fn entity_change(store: &ElbStore, event: &ElbEvent) -> EntityChange {
    match event {
        ElbEvent::Created(e) => EntityChange {
            change: "created",
            resource: ResourceRef::of(store, e),
            value: Some(crate::tools::report::fields(e)),
            fields: Vec::new(),
        },
        ElbEvent::Updated { before, after } => EntityChange {
            change: "modified",
            resource: ResourceRef::of(store, after),
            value: None,
            fields: field_changes(before, after),
        },
        ElbEvent::Deleted(e) => EntityChange {
            change: "deleted",
            resource: ResourceRef::of(store, e),
            value: Some(crate::tools::report::fields(e)),
            fields: Vec::new(),
        },
    }
}

/// An actor cut to `width` characters, so the columns after it stay put.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        format!("{text:<width$}")
    } else {
        let cut: String = text.chars().take(width - 1).collect();
        format!("{cut}~")
    }
}

const ACTOR_WIDTH: usize = 22;

pub(super) fn log(args: &LogArgs, bar: &Bar) -> Result<Verdict, ToolError> {
    let store = open_read(&args.store, bar)?;
    let from = args.from.map(|a| a.point(&store));
    let to = args.to.map(|a| a.point(&store));
    let from_seq = from.map(|p| store.store().resolve(p).map(|(s, _)| s)).transpose()?.unwrap_or(0);
    let to_seq = to.map(|p| store.store().resolve(p).map(|(s, _)| s)).transpose()?.unwrap_or(store.read().seq());
    if from_seq > to_seq {
        return Err(ToolError::usage(format!(
            "--from (seq {from_seq}) is after --to (seq {to_seq}): nothing can lie between them"
        )));
    }
    let filter = HistoryFilter { from, to, actor: args.actor.clone(), entity: None };
    let arn_key = args.entity.as_deref().and_then(|n| store.resolve_arn(n));
    let mut rows = Vec::new();
    bar.start("reading", to_seq.saturating_sub(from_seq));
    for txn in store.history(filter)? {
        let txn = txn?;
        bar.set(txn.seq - from_seq);
        let summary = Summary::of(&txn.events);
        if args.deletions && summary.deleted_total() == 0 {
            continue;
        }
        if let Some(kind) = args.kind {
            if !txn.events.iter().any(|e| e.key().kind() == kind) {
                continue;
            }
        }
        let entity_changes = match &args.entity {
            None => None,
            Some(needle) => {
                let touching: Vec<EntityChange> = txn
                    .events
                    .iter()
                    .filter(|e| e.before().or(e.after()).is_some_and(|v| named(&store, v, needle, arn_key.as_ref())))
                    .map(|e| entity_change(&store, e))
                    .collect();
                if touching.is_empty() {
                    continue;
                }
                Some(touching)
            }
        };
        rows.push(LogRow { txn: TxnRef::of(&txn), changes: Changes::of(&summary), entity_changes });
    }
    let doc = LogDoc {
        filter: LogFilter {
            from_seq,
            to_seq,
            actor: args.actor.clone(),
            deletions: args.deletions,
            kind: args.kind.map(kind_name),
            entity: args.entity.clone(),
        },
        count: rows.len(),
        transactions: rows,
    };
    if doc.transactions.is_empty() {
        if let Some(missing) = unknown_names(&store, args)? {
            return Err(ToolError::failed(missing));
        }
    }
    Ok(Verdict::new(&doc, log_text(&doc)))
}

/// Why a log with an actor or entity filter found nothing, when the name is
/// nowhere in the history (rather than only outside the range).
fn unknown_names(store: &ElbStore, args: &LogArgs) -> Result<Option<String>, ToolError> {
    if let Some(actor) = &args.actor {
        let (seen, actors) = actors_of(store, actor)?;
        if !seen {
            return Ok(Some(unknown_actor(actor, &actors)));
        }
    }
    let Some(needle) = &args.entity else { return Ok(None) };
    let arn_key = store.resolve_arn(needle);
    for txn in store.store().transactions(..) {
        let txn = txn?;
        if txn
            .events
            .iter()
            .any(|e| e.before().or(e.after()).is_some_and(|v| named(store, v, needle, arn_key.as_ref())))
        {
            return Ok(None);
        }
    }
    Ok(Some(format!(
        "no resource named {needle:?} appears in this store's history (give a name, an id such as \
         lb-0000000000010000, an ARN, or a target's id)"
    )))
}

/// Distinct actors remembered while looking for a mistyped one.
const ACTORS_REMEMBERED_MAX: usize = 10_000;

/// "no transaction ... by actor X; did you mean: ...": the actors that share
/// a word with `actor` first, then others, twelve at most.
pub(super) fn unknown_actor(actor: &str, actors: &BTreeSet<String>) -> String {
    let words: Vec<&str> = actor.split([':', '-', '_', '/', '.', '@']).filter(|w| w.len() >= 3).collect();
    let (mut close, others): (Vec<&String>, Vec<&String>) =
        actors.iter().partition(|a| words.iter().any(|w| a.contains(w)));
    close.extend(others);
    let shown: Vec<&str> = close.iter().take(12).map(|a| a.as_str()).collect();
    format!(
        "no transaction in this store was made by actor {actor:?}; actors seen include (closest first): {}",
        shown.join(", ")
    )
}

/// Every actor of the store (up to a bound), for [`unknown_actor`]; and
/// whether `actor` is among them.
pub(super) fn actors_of(store: &ElbStore, actor: &str) -> Result<(bool, BTreeSet<String>), ToolError> {
    let mut actors = BTreeSet::new();
    let mut seen = false;
    for txn in store.store().transactions(..) {
        let txn = txn?;
        seen |= txn.meta.actor == actor;
        if actors.len() < ACTORS_REMEMBERED_MAX {
            actors.insert(txn.meta.actor);
        }
    }
    Ok((seen, actors))
}

fn log_text(doc: &LogDoc) -> String {
    let mut text = format!(
        "{:>8}  {:<24}  {:>9}  {:>17}  {:<ACTOR_WIDTH$}  REASON [TICKET, APPROVER]\n",
        "SEQ", "TIME (UTC)", "LBS +/-", "RESOURCES +/~/-", "ACTOR"
    );
    for row in &doc.transactions {
        let c = &row.changes;
        text.push_str(&format!(
            "{:>8}  {:<24}  {:>9}  {:>17}  {}  {}{}{}\n",
            row.txn.seq,
            row.txn.time.as_deref().map_or("-".to_owned(), time_short),
            format!("+{}/-{}", c.created.load_balancers, c.deleted.load_balancers),
            format!("+{}/~{}/-{}", c.created.resources(), c.modified.resources(), c.deleted.resources()),
            fit(&row.txn.actor, ACTOR_WIDTH),
            row.txn.reason,
            row.txn.ticket_words(),
            row.txn.revert_words()
        ));
        for change in row.entity_changes.iter().flatten() {
            text.push_str(&format!("          {} {}\n", change.change, change.resource.words()));
            for field in &change.fields {
                text.push_str(&format!(
                    "            {}: {} -> {}\n",
                    field.field,
                    value_words(&field.before),
                    value_words(&field.after)
                ));
            }
        }
    }
    text.push_str(&format!(
        "{} shown of seqs {} to {}\n",
        plural(doc.count, "transaction"),
        doc.filter.from_seq + 1,
        doc.filter.to_seq
    ));
    text
}

#[derive(Serialize)]
struct ShowDoc {
    seq: u64,
    time: Option<String>,
    counts: KindCounts,
    /// `ElbState::digest` of the state at `seq`.
    state_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_balancers: Option<Vec<LoadBalancerTree>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<DeletedDoc>,
}

#[derive(Serialize)]
struct LoadBalancerTree {
    /// `ElbState::load_balancer_digest` of this load balancer at the point.
    digest: String,
    load_balancer: Resource,
    listeners: Vec<Resource>,
    rules: Vec<Resource>,
    target_groups: Vec<TargetGroupTree>,
}

#[derive(Serialize)]
struct TargetGroupTree {
    target_group: Resource,
    targets: Vec<Resource>,
}

#[derive(Serialize)]
struct DeletedDoc {
    resource: ResourceRef,
    by: TxnRef,
    last_value: Resource,
}

pub(super) fn show(args: &ShowArgs, bar: &Bar) -> Result<Verdict, ToolError> {
    let store = open_read(&args.store, bar)?;
    let point = args.at.map_or(Point::Seq(store.read().seq()), |a| a.point(&store));
    let view = store.state_at(point)?;
    let counts = KindCounts::of(&view.counts());
    let time = time_text(view.time());
    let state_digest = view.state().digest().to_hex();
    let Some(name) = &args.load_balancer else {
        let text = format!(
            "state at seq {} ({}): {}\nstate digest: {state_digest}\n",
            view.seq(),
            time.as_deref().unwrap_or("-"),
            counts.words()
        );
        let doc = ShowDoc { seq: view.seq(), time, counts, state_digest, load_balancers: None, deleted: None };
        return Ok(Verdict::new(&doc, text));
    };
    let matches: Vec<_> = view.load_balancers().filter(|lb| lb.name == *name).cloned().collect();
    if matches.is_empty() {
        let deleted = explain_missing(&store, name, view.seq())?;
        let text = format!(
            "load balancer {name:?} ({}) does not exist at seq {}: deleted in {}\n",
            deleted.resource.id,
            view.seq(),
            deleted.by.words()
        );
        let doc = ShowDoc { seq: view.seq(), time, counts, state_digest, load_balancers: None, deleted: Some(deleted) };
        return Ok(Verdict::new(&doc, text));
    }
    let mut trees = Vec::new();
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
        let mut target_groups = Vec::new();
        for id in groups {
            if let Some(tg) = view.target_group(id) {
                let targets: Vec<Resource> =
                    view.targets_of(id).map(|t| Resource::of(&store, &Entity::Target(t.clone()))).collect();
                text.push_str(&format!("  target group {} ({}) {} targets\n", tg.name, tg.id, targets.len()));
                target_groups.push(TargetGroupTree {
                    target_group: Resource::of(&store, &Entity::TargetGroup(tg.clone())),
                    targets,
                });
            }
        }
        trees.push(LoadBalancerTree {
            digest: view.state().load_balancer_digest(lb.id).map(|d| d.to_hex()).unwrap_or_default(),
            load_balancer: Resource::of(&store, &Entity::LoadBalancer(lb.clone())),
            listeners: listeners.into_iter().map(|l| Resource::of(&store, &Entity::Listener(l))).collect(),
            rules: rules.into_iter().map(|r| Resource::of(&store, &Entity::Rule(r))).collect(),
            target_groups,
        });
    }
    let doc = ShowDoc { seq: view.seq(), time, counts, state_digest, load_balancers: Some(trees), deleted: None };
    Ok(Verdict::new(&doc, text))
}

/// A name that is not there: who deleted it, when and why, if anyone did.
fn explain_missing(store: &ElbStore, name: &str, at: u64) -> Result<DeletedDoc, ToolError> {
    let mut found = None;
    for txn in store.store().transactions(1..=at) {
        let txn = txn?;
        for event in &txn.events {
            if let ElbEvent::Deleted(lb @ Entity::LoadBalancer(value)) = event {
                if value.name == name {
                    found = Some((TxnRef::of(&txn), lb.clone()));
                }
            }
        }
    }
    let Some((by, lb)) = found else {
        return Err(ToolError::failed(format!(
            "no load balancer named {name:?} at seq {at}, and none was deleted before it"
        )));
    };
    Ok(DeletedDoc { resource: ResourceRef::of(store, &lb), by, last_value: Resource::of(store, &lb) })
}

#[derive(Serialize)]
struct DiffDoc {
    from_seq: u64,
    to_seq: u64,
    created: KindCounts,
    modified: KindCounts,
    deleted: KindCounts,
    resources: Vec<DiffEntry>,
}

#[derive(Serialize)]
struct DiffEntry {
    change: &'static str,
    #[serde(flatten)]
    resource: ResourceRef,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<FieldChange>,
}

pub(super) fn diff(args: &DiffArgs, bar: &Bar) -> Result<Verdict, ToolError> {
    let store = open_read(&args.store, bar)?;
    let diff = store.diff(args.from.point(&store), args.to.point(&store))?;
    let counts = diff.counts();
    let per = |pick: fn(&crate::elb::DiffCounts) -> usize| KindCounts::from_fn(|k| counts.get(&k).map_or(0, pick));
    // Deletions first: in an incident they are what the operator looks for.
    let mut resources: Vec<DiffEntry> = Vec::new();
    for e in &diff.deleted {
        resources.push(DiffEntry { change: "deleted", resource: ResourceRef::of(&store, e), fields: Vec::new() });
    }
    for e in &diff.created {
        resources.push(DiffEntry { change: "created", resource: ResourceRef::of(&store, e), fields: Vec::new() });
    }
    for m in &diff.modified {
        let fields = field_changes(&m.before, &m.after);
        resources.push(DiffEntry { change: "modified", resource: ResourceRef::of(&store, &m.after), fields });
    }
    let doc = DiffDoc {
        from_seq: diff.from_seq,
        to_seq: diff.to_seq,
        created: per(|c| c.created),
        modified: per(|c| c.modified),
        deleted: per(|c| c.deleted),
        resources,
    };
    let mut text = format!("diff seq {} -> seq {}\n", doc.from_seq, doc.to_seq);
    text.push_str(&format!("  {:<15} {:>8} {:>8} {:>8}\n", "", "created", "modified", "deleted"));
    for kind in EntityKind::ALL {
        text.push_str(&format!(
            "  {:<15} {:>8} {:>8} {:>8}\n",
            kind.plural(),
            doc.created.of_kind(kind),
            doc.modified.of_kind(kind),
            doc.deleted.of_kind(kind)
        ));
    }
    let shown = if args.list { doc.resources.len() } else { LISTED.min(doc.resources.len()) };
    for entry in &doc.resources[..shown] {
        text.push_str(&format!("  {} {}\n", entry.change, entry.resource.words()));
        for field in &entry.fields {
            text.push_str(&format!(
                "      {}: {} -> {}\n",
                field.field,
                value_words(&field.before),
                value_words(&field.after)
            ));
        }
    }
    if shown < doc.resources.len() {
        text.push_str(&format!("  and {} more (--list shows them all)\n", doc.resources.len() - shown));
    }
    Ok(Verdict::new(&doc, text))
}

#[derive(Serialize)]
struct VerifyDoc {
    ok: bool,
    problems: Vec<String>,
    transactions: u64,
    segments: usize,
    snapshots_checked: usize,
    record_schemas: BTreeMap<String, u64>,
    older_schema_snapshots: usize,
    tail_being_written: Option<TailDoc>,
    duration_ms: u64,
    next_step: Option<String>,
}

#[derive(Serialize)]
struct TailDoc {
    segment: String,
    offset: u64,
}

pub(super) fn verify(dir: &Path, bar: &Bar, err: &mut dyn Write) -> Result<Verdict, ToolError> {
    if bar.notes() {
        let _ = writeln!(err, "verifying {} ...", dir.display());
    }
    let started = Instant::now();
    let report = verify_store::<ElbState>(dir, Options::default().progress(bar.callback()))?;
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let next_step = (!report.ok()).then(|| {
        format!(
            "`pitr salvage {} --out NEW_DIR --actor WHO --reason WHY` copies every transaction before the first \
             damage into a new store and reports what was left behind",
            dir.display()
        )
    });
    let doc = VerifyDoc {
        ok: report.ok(),
        transactions: report.transactions,
        segments: report.segments,
        snapshots_checked: report.snapshots_checked,
        record_schemas: by_version(&report.record_schemas),
        older_schema_snapshots: report.older_schema_snapshots,
        tail_being_written: report
            .tail_being_written
            .as_ref()
            .map(|(path, offset)| TailDoc { segment: path.display().to_string(), offset: *offset }),
        duration_ms: started.elapsed().as_millis() as u64,
        next_step,
        problems,
    };
    let mut text = if doc.ok {
        format!(
            "sound: {} in {}, {} checked\n",
            plural(doc.transactions as usize, "transaction"),
            plural(doc.segments, "segment"),
            plural(doc.snapshots_checked, "snapshot")
        )
    } else {
        format!(
            "DAMAGED: {}; checked {} in {} before stopping\n",
            plural(doc.problems.len(), "problem"),
            plural(doc.transactions as usize, "transaction"),
            plural(doc.segments, "segment")
        )
    };
    if !doc.record_schemas.is_empty() {
        text.push_str(&format!(
            "  every record read decoded and upcast; schemas: {}\n",
            schema_words(&doc.record_schemas)
        ));
    }
    if doc.older_schema_snapshots > 0 {
        text.push_str(&format!(
            "  {} snapshots of an older schema are passed over by opens, which rebuild from the log\n",
            doc.older_schema_snapshots
        ));
    }
    if let Some(tail) = &doc.tail_being_written {
        text.push_str(&format!(
            "  a writer is appending to {} at byte offset {}: checked up to there\n",
            tail.segment, tail.offset
        ));
    }
    for problem in &doc.problems {
        text.push_str(&format!("  {problem}\n"));
    }
    if let Some(next) = &doc.next_step {
        text.push_str(&format!("next: {next}\n"));
    }
    let status = if doc.ok { Status::Ok } else { Status::Damaged };
    Ok(Verdict::new(&doc, text).with_status(status))
}

#[derive(Serialize)]
struct TimelineDoc<'a> {
    svg: String,
    #[serde(flatten)]
    timeline: &'a Timeline,
}

pub(super) fn timeline(args: &TimelineArgs, bar: &Bar) -> Result<Verdict, ToolError> {
    let store = open_read(&args.store, bar)?;
    let from = args.from.map_or(Point::Seq(0), |a| a.point(&store));
    let to = args.to.map_or(Point::Seq(store.read().seq()), |a| a.point(&store));
    let timeline = crate::tools::timeline::timeline(&store, from, to)?;
    std::fs::write(&args.svg, timeline.to_svg())
        .map_err(|e| ToolError::failed(format!("cannot write {}: {e}", args.svg.display())))?;
    let doc = TimelineDoc { svg: args.svg.display().to_string(), timeline: &timeline };
    let mut text = format!(
        "wrote {}: {} (seqs {} to {}, {} to {}), {} of {} ms\n",
        doc.svg,
        plural(timeline.transactions as usize, "transaction"),
        timeline.from_seq + 1,
        timeline.to_seq,
        timeline.from_time,
        timeline.to_time,
        plural(timeline.buckets.len(), "bucket"),
        timeline.bucket_ms
    );
    for d in &timeline.deletions {
        text.push_str(&format!(
            "  deletion: transaction {} by {} at {}: {} load balancers, {} resources: {}\n",
            d.seq, d.actor, d.time, d.load_balancers_deleted, d.resources_deleted, d.reason
        ));
    }
    for r in &timeline.reverts {
        text.push_str(&format!(
            "  revert: transaction {} by {} at {}: {} load balancers, {} resources back\n",
            r.seq, r.actor, r.time, r.load_balancers_restored, r.resources_restored
        ));
    }
    for a in &timeline.alarms {
        text.push_str(&format!("  alarm at transaction {} ({}): {}\n", a.seq, a.time, a.text));
    }
    Ok(Verdict::new(&doc, text))
}
