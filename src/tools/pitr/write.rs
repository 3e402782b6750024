//! The verbs that write: restore and salvage (into a new directory only)
//! and revert (one compensating transaction, to the store named by
//! `--expect-store`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::read::LISTED;
use super::{open_read, RestoreArgs, RevertArgs, SalvageArgs};
use crate::elb::{ConflictReason, ElbEvent, ElbStore, OnConflict, RevertMode, RevertSelection, Settings};
use crate::identity::StoreId;
use crate::store::{OpenMode, Options, Point, TxnMeta};
use crate::tools::cli::{Status, ToolError, Verdict};
use crate::tools::progress::Bar;
use crate::tools::report::{plural, time_text, ResourceRef};

fn meta(actor: &str, reason: &str, ticket: Option<&String>, approver: Option<&String>) -> TxnMeta {
    let mut meta = TxnMeta::new(actor, reason);
    meta.ticket = ticket.cloned();
    meta.approved_by = approver.cloned();
    meta
}

/// Refuses an output directory that holds files, before any work.
fn check_out_dir(out: &Path) -> Result<(), ToolError> {
    if out.is_file() {
        return Err(ToolError::usage(format!("{} is a file; --out takes a new or empty directory", out.display())));
    }
    if std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ToolError::usage(format!("{} is not empty; --out takes a new or empty directory", out.display())));
    }
    Ok(())
}

#[derive(Serialize)]
struct RestoreDoc {
    /// The archive restored from (`None`: the store directory).
    from_archive: Option<String>,
    dir: String,
    seq: u64,
    time: Option<String>,
    transactions: u64,
    verified: bool,
    duration_ms: u64,
    violations: Vec<Violation>,
}

#[derive(Serialize)]
struct Violation {
    resource: String,
    code: &'static str,
    message: String,
}

pub(super) fn restore(args: &RestoreArgs, bar: &Bar, err: &mut dyn Write) -> Result<Verdict, ToolError> {
    let meta = meta(&args.actor, &args.reason, args.ticket.as_ref(), None);
    check_meta(&meta)?;
    check_out_dir(&args.out)?;
    // From the store, or from a checked copy of its archive beside --out.
    let staged = match &args.from_archive {
        Some(url) => Some(super::archive::staged(url, &args.out, bar, err)?),
        None => None,
    };
    let opened;
    let store = match (&staged, &args.store) {
        (Some(staged), _) => &staged.store,
        (None, Some(dir)) => {
            opened = open_read(dir, bar)?;
            &opened
        }
        (None, None) => return Err(ToolError::usage("name a store directory or --from-archive URL")),
    };
    let point = args.at.point(store);
    let (seq, _) = store.store().resolve(point)?;
    if bar.notes() {
        let _ = writeln!(err, "restoring {seq} transactions into {} ...", args.out.display());
    }
    let started = Instant::now();
    let identity = store.store().identity();
    let options = Options::default().identity(identity.name.clone(), identity.environment.clone());
    // The copy names where its history came from: the store, or the archive.
    let source = match &args.from_archive {
        Some(url) => url.clone(),
        None => store.store().dir().display().to_string(),
    };
    let report = store.store().restore_to_from(point, &args.out, options, &meta, &source)?;
    // The restored state against today's rules: a state of an older schema
    // or under other quotas may break some; the operator is told, the copy
    // is kept (it is what the store held).
    let restored = store.state_at(Point::Seq(report.seq))?;
    let violations: Vec<Violation> = restored
        .state()
        .violations(&store.settings().quotas)
        .into_iter()
        .map(|(key, e)| Violation { resource: key.to_string(), code: e.code(), message: e.to_string() })
        .collect();
    let doc = RestoreDoc {
        from_archive: args.from_archive.clone(),
        dir: args.out.display().to_string(),
        seq: report.seq,
        time: time_text(report.time),
        transactions: report.verified.transactions,
        verified: report.verified.ok(),
        duration_ms: started.elapsed().as_millis() as u64,
        violations,
    };
    let mut text = format!(
        "restored seq {} ({}) into {}, verified; `pitr info {}` shows where it came from\n",
        doc.seq,
        doc.time.as_deref().unwrap_or("-"),
        doc.dir,
        doc.dir
    );
    for v in doc.violations.iter().take(LISTED) {
        text += &format!("  warning: {} breaks a rule of today's API: {} ({})\n", v.resource, v.code, v.message);
    }
    if doc.violations.len() > LISTED {
        text += &format!("  warning: and {} more\n", doc.violations.len() - LISTED);
    }
    Ok(Verdict::new(&doc, text))
}

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
        ConflictReason::AlreadyUndone { .. } => "already set back",
    }
}

#[derive(Serialize)]
struct RevertDoc {
    dry_run: bool,
    reverted_transactions: Vec<u64>,
    already_reverted_by: Vec<u64>,
    restored: usize,
    removed: usize,
    modified: usize,
    events: usize,
    conflict_count: usize,
    conflicts_by_reason: BTreeMap<&'static str, usize>,
    conflicts: Vec<ConflictDoc>,
    new_seq: Option<u64>,
    written: bool,
}

#[derive(Serialize)]
struct ConflictDoc {
    #[serde(flatten)]
    resource: ResourceRef,
    reason: &'static str,
    message: String,
    /// The later transaction, for conflicts with one.
    seq: Option<u64>,
}

/// Opens the store `--expect-store` names for writing (or read-only for a dry
/// run): NAME, NAME/ENVIRONMENT or its 32-digit id.
/// The metadata's checks, in the words of the flags that set it.
fn check_meta(meta: &TxnMeta) -> Result<(), ToolError> {
    match meta.check() {
        Ok(()) => Ok(()),
        Err(crate::store::Error::MissingAttribution { field }) => {
            Err(ToolError::usage(format!("--{field} is blank: every change names who made it and why")))
        }
        Err(crate::store::Error::FieldTooLong { field, bytes, limit }) => {
            let flag = if field == "approved_by" { "approver" } else { field };
            Err(ToolError::usage(format!("--{flag} is {bytes} bytes long, over the limit of {limit}")))
        }
        Err(err) => Err(err.into()),
    }
}

fn open_expected(dir: &Path, expected: &str, dry_run: bool, bar: &Bar) -> Result<ElbStore, ToolError> {
    // The identity file alone: the store is opened (and replayed) once, below.
    let found = crate::store::identity_of(dir)?;
    let refused = || {
        ToolError::new(
            Status::Refused,
            format!(
                "store {} is {}/{} (id {}), not {expected:?}; --expect-store takes NAME, NAME/ENVIRONMENT or \
                 the store's id",
                dir.display(),
                found.name,
                found.environment,
                found.id
            ),
        )
    };
    let matches = match parse_store_id(expected) {
        Some(id) => id == found.id,
        None => match expected.split_once('/') {
            Some((name, env)) => name == found.name && env == found.environment,
            None => expected == found.name,
        },
    };
    if !matches {
        return Err(refused());
    }
    let options = if let Some(id) = parse_store_id(expected) {
        Options::default().identity(found.name, found.environment).expect_id(id)
    } else {
        match expected.split_once('/') {
            Some((name, env)) => Options::default().identity(name, env),
            // Only the name: the environment is the store's own.
            None => Options::default().identity(expected, found.environment),
        }
    };
    if dry_run {
        refuse_if_locked(dir)?;
    }
    let options = if dry_run { options.mode(OpenMode::ReadOnly) } else { options };
    Ok(ElbStore::open(dir, options.progress(bar.callback()), Settings::default())?)
}

/// The real run would fail on a store another process writes to: so does
/// the dry run. A shared lock taken and dropped at once tells, changing no
/// byte.
fn refuse_if_locked(dir: &Path) -> Result<(), ToolError> {
    let path = dir.join(crate::store::LOCK_FILE);
    let Ok(file) = std::fs::File::open(&path) else { return Ok(()) };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(ToolError::from(crate::store::Error::Locked { path })),
        Err(_) => Ok(()),
    }
}

fn parse_store_id(text: &str) -> Option<StoreId> {
    (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(text, 16).ok().map(StoreId))
        .flatten()
}

pub(super) fn revert(args: &RevertArgs, bar: &Bar) -> Result<Verdict, ToolError> {
    let meta = meta(&args.actor, &args.reason, args.ticket.as_ref(), args.approver.as_ref());
    check_meta(&meta)?;
    if args.approver.as_ref().is_some_and(|a| *a == args.actor) {
        return Err(ToolError::usage(
            "--approver must be someone other than --actor: nobody approves their own bulk change",
        ));
    }
    let store = open_expected(&args.store, &args.expect_store, args.dry_run, bar)?;
    let last = store.read().seq();
    if let Some(missing) = args.txn.iter().find(|&&seq| seq == 0 || seq > last) {
        return Err(ToolError::usage(format!(
            "--txn {missing}: there is no such transaction; this store holds transactions 1 to {last}"
        )));
    }
    let selection = match (&args.by_actor, args.from, args.to) {
        (Some(actor), Some(from), Some(to)) => {
            RevertSelection::Actor { actor: actor.clone(), from: from.point(&store), to: to.point(&store) }
        }
        // clap requires one form, whole.
        _ => RevertSelection::Transactions(args.txn.clone()),
    };
    let mode = if args.dry_run { RevertMode::DryRun } else { RevertMode::Apply };
    let on_conflict = if args.skip_conflicts { OnConflict::SkipConflicting } else { OnConflict::Abort };
    let plan = store.revert(selection, meta, mode, on_conflict)?;
    let mut by_reason: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in &plan.conflicts {
        *by_reason.entry(reason_kind(&c.reason)).or_default() += 1;
    }
    let conflicts = plan
        .conflicts
        .iter()
        .map(|c| ConflictDoc {
            resource: ResourceRef::new(&store, &c.key, c.label.clone()),
            reason: reason_kind(&c.reason),
            message: c.reason.to_string(),
            seq: match c.reason {
                ConflictReason::ChangedSince { seq } => seq,
                ConflictReason::AlreadyUndone { by } => Some(by),
                _ => None,
            },
        })
        .collect();
    let doc = RevertDoc {
        dry_run: args.dry_run,
        reverted_transactions: plan.reverted_transactions.clone(),
        already_reverted_by: plan.already_undone_by.clone(),
        restored: plan.restored.len(),
        removed: plan.events.iter().filter(|e| matches!(e, ElbEvent::Deleted(_))).count(),
        modified: plan.events.iter().filter(|e| matches!(e, ElbEvent::Updated { .. })).count(),
        events: plan.events.len(),
        conflict_count: plan.conflicts.len(),
        conflicts_by_reason: by_reason,
        conflicts,
        new_seq: plan.committed.map(|c| c.seq),
        written: plan.committed.is_some(),
    };
    let seqs = |s: &[u64]| s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    if plan.already_reverted() {
        let text = format!(
            "{} already reverted by {}, nothing to do\n",
            if plan.reverted_transactions.len() == 1 {
                format!("transaction {} is", plan.reverted_transactions[0])
            } else {
                format!("transactions {} are", seqs(&plan.reverted_transactions))
            },
            seqs(&plan.already_undone_by)
        );
        return Ok(Verdict::new(&doc, text));
    }
    if plan.reverted_transactions.is_empty() {
        if let Some(actor) = &args.by_actor {
            let (seen, actors) = super::read::actors_of(&store, actor)?;
            if !seen {
                return Err(ToolError::failed(super::read::unknown_actor(actor, &actors)));
            }
        }
        return Ok(Verdict::new(&doc, "no transactions match the selection, nothing to do\n".to_owned()));
    }
    let mut text = format!(
        "{} {} ({}): {} back, {} removed, {} set back ({}), {}\n",
        if args.dry_run { "would revert" } else { "reverted" },
        plural(plan.reverted_transactions.len(), "transaction"),
        seqs(&plan.reverted_transactions),
        plural(doc.restored, "resource"),
        plural(doc.removed, "resource"),
        plural(doc.modified, "resource"),
        plural(doc.events, "event"),
        plural(doc.conflict_count, "conflict")
    );
    if !plan.already_undone_by.is_empty() {
        text.push_str(&format!(
            "  some resources were set back already, by {}: they count as conflicts\n",
            seqs(&plan.already_undone_by)
        ));
    }
    for c in plan.conflicts.iter().take(LISTED) {
        let name = ResourceRef::new(&store, &c.key, c.label.clone());
        text.push_str(&format!("  conflict: {}: {}\n", name.words(), c.reason));
    }
    if plan.conflicts.len() > LISTED {
        // The rest in one line per reason, most common first.
        let mut rest: BTreeMap<&'static str, usize> = BTreeMap::new();
        for c in &plan.conflicts[LISTED..] {
            *rest.entry(reason_kind(&c.reason)).or_default() += 1;
        }
        let mut rest: Vec<(&str, usize)> = rest.into_iter().collect();
        rest.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let words: Vec<String> = rest.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        text.push_str(&format!(
            "  and {} more conflicts: {} (--json lists them all)\n",
            plan.conflicts.len() - LISTED,
            words.join(", ")
        ));
    }
    let blocked = !plan.writes(on_conflict) && !plan.conflicts.is_empty();
    if let Some(committed) = plan.committed {
        text.push_str(&format!("written as transaction {}\n", committed.seq));
    } else if blocked {
        text.push_str(if args.dry_run {
            "the real run would write nothing: resolve the conflicts or pass --skip-conflicts\n"
        } else {
            "nothing written: resolve the conflicts or pass --skip-conflicts\n"
        });
    } else if args.dry_run {
        text.push_str("every check of the real run passed; nothing written (dry run)\n");
    }
    let status = if blocked { Status::Conflicts } else { Status::Ok };
    Ok(Verdict::new(&doc, text).with_status(status))
}

#[derive(Serialize)]
struct SalvageDoc {
    dir: String,
    seq: u64,
    time: Option<String>,
    transactions: u64,
    verified: bool,
    complete: bool,
    damage: Option<DamageDoc>,
    duration_ms: u64,
}

#[derive(Serialize)]
struct DamageDoc {
    segment: String,
    offset: u64,
    problem: String,
    torn_tail: bool,
    left_behind: LeftBehind,
}

#[derive(Serialize)]
struct LeftBehind {
    bytes: u64,
    segments: usize,
    records: u64,
    seqs: Vec<SeqRun>,
    last_time: Option<String>,
}

#[derive(Serialize)]
struct SeqRun {
    first: u64,
    last: u64,
}

pub(super) fn salvage(args: &SalvageArgs, bar: &Bar, err: &mut dyn Write) -> Result<Verdict, ToolError> {
    let meta = meta(&args.actor, &args.reason, args.ticket.as_ref(), None);
    check_meta(&meta)?;
    check_out_dir(&args.out)?;
    if bar.notes() {
        let _ = writeln!(err, "salvaging {} into {} ...", args.store.display(), args.out.display());
    }
    let started = Instant::now();
    let options = Options::default().progress(bar.callback());
    let report = crate::store::salvage::<crate::elb::ElbState>(&args.store, &args.out, options, &meta)?;
    if report.transactions == 0 && !report.complete() {
        // Nothing before the damage: an empty store with the production
        // name would only mislead. The directory was new or empty.
        if let Ok(entries) = std::fs::read_dir(&args.out) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let damage = report.damage.as_ref().map_or(String::new(), |d| format!(": {d}"));
        return Err(ToolError::new(
            Status::Damaged,
            format!("nothing to salvage: the log is damaged from its first record{damage}"),
        ));
    }
    let damage = report.damage.as_ref().map(|d| DamageDoc {
        segment: d.segment.display().to_string(),
        offset: d.offset,
        problem: d.cause.to_string(),
        torn_tail: d.torn_tail,
        left_behind: LeftBehind {
            bytes: d.bytes_left,
            segments: d.segments_left,
            records: d.frames_left,
            seqs: d.seqs_left.iter().map(|r| SeqRun { first: *r.start(), last: *r.end() }).collect(),
            last_time: d.last_time_left.and_then(time_text),
        },
    });
    let doc = SalvageDoc {
        dir: args.out.display().to_string(),
        seq: report.seq,
        time: time_text(report.time),
        transactions: report.transactions,
        verified: report.verified.ok(),
        complete: report.complete(),
        damage,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let mut text = format!(
        "salvaged {} (up to seq {}, {}) into {}, {}\n",
        plural(doc.transactions as usize, "transaction"),
        doc.seq,
        doc.time.as_deref().unwrap_or("-"),
        doc.dir,
        if doc.verified { "verified" } else { "NOT verified" }
    );
    match &report.damage {
        None => text.push_str("nothing was left behind: the whole log was copied\n"),
        Some(d) => {
            let seqs: Vec<String> = d
                .seqs_left
                .iter()
                .map(
                    |r| if r.start() == r.end() { r.start().to_string() } else { format!("{}-{}", r.start(), r.end()) },
                )
                .collect();
            text.push_str(&format!("damage: {}\n", d.cause));
            text.push_str(&format!(
                "left behind: {} after it ({}), {} bytes in {}\n",
                plural(d.frames_left as usize, "whole record"),
                if seqs.is_empty() {
                    "no sequence numbers readable".to_owned()
                } else {
                    format!("seqs {}", seqs.join(","))
                },
                d.bytes_left,
                plural(d.segments_left, "segment")
            ));
        }
    }
    text.push_str(&format!("`pitr info {}` shows where it came from\n", doc.dir));
    let status = if doc.verified { Status::Ok } else { Status::Damaged };
    Ok(Verdict::new(&doc, text).with_status(status))
}
