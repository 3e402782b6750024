//! The fleet over time, so that an incident is one picture: counts per time
//! bucket, the transactions that deleted resources, the reverts that brought
//! them back, and the alarms the deletions raised; as data ([`Timeline`],
//! serializable) and as a standalone SVG ([`Timeline::to_svg`]).
//!
//! One walk: the state at `from` (one `state_at`), then the transactions
//! after it, in order, counting creations and deletions per kind. No state is
//! rebuilt per bucket.
//!
//! What the log says and what is derived:
//! - Deletions: any transaction with a `Deleted` event.
//! - Reverts: the log has no marker for them (a revert's metadata is its
//!   operator's, in words of their own). But ids name the transaction that
//!   created the resource (`seq << 16 | n`), and a command only ever creates
//!   resources with its own transaction's ids; so a transaction that creates
//!   a resource whose id names an earlier transaction is bringing a deleted
//!   one back: a revert (of a deletion). A revert that only changes values
//!   back, or only re-registers targets (whose keys carry no sequence
//!   number), is not recognised.
//! - Alarms: not in the log. They are derived by replaying the guard's
//!   ledger over the transactions, seeded with the alarm window before
//!   `from`, with the store's current thresholds: the alarms the store would
//!   raise for this history now. An alarm already raised at `from` is not
//!   repeated; a refused wrong-store open leaves nothing in the log.

use std::collections::HashMap;

use serde::{Serialize, Serializer};

use crate::clock::Timestamp;
use crate::elb::{load_balancer_changes, AlarmKind, ElbError, ElbEvent, ElbStore, EntityKey, EntityKind, Ledger};
use crate::store::{Point, TxnMeta};

/// Buckets at most in a timeline: a longer span gets longer buckets.
pub const BUCKETS_MAX: usize = 600;

/// Bucket lengths tried, shortest first, in milliseconds: round lengths from
/// a millisecond (so that `bucket_ms` is a whole number) to a day; past a
/// day, whole days. The same ladder spaces the ticks of the time axis.
const BUCKET_MS: [u64; 27] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, // under a second
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, // under a minute
    60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, // under an hour
    3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

const NANOS_PER_MS: u64 = 1_000_000;
const MS_PER_DAY: u64 = 86_400_000;

fn rfc3339<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(time)
}

/// An alarm's kind as one word in JSON (`deletions`, `fleet_drop`,
/// `wrong_store`); its figures are in the mark's text.
fn alarm_kind_name<S: Serializer>(kind: &AlarmKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match kind {
        AlarmKind::Deletions { .. } => "deletions",
        AlarmKind::FleetDrop { .. } => "fleet_drop",
        AlarmKind::WrongStore { .. } => "wrong_store",
    })
}

/// The fleet between two points in history.
#[derive(Debug, Serialize)]
pub struct Timeline {
    /// The store, as `name/environment`.
    pub store: String,
    /// The first point: the state after this transaction is where counting starts.
    pub from_seq: u64,
    /// The last transaction included.
    pub to_seq: u64,
    /// The commit time of `from_seq` (of the first transaction after it when
    /// `from_seq` is 0).
    #[serde(serialize_with = "rfc3339")]
    pub from_time: Timestamp,
    /// The commit time of `to_seq`.
    #[serde(serialize_with = "rfc3339")]
    pub to_time: Timestamp,
    /// Transactions walked: `from_seq + 1 ..= to_seq`.
    pub transactions: u64,
    /// The length of each bucket, in milliseconds: the shortest round length
    /// from a millisecond to a day (or a whole number of days) that needs at
    /// most [`BUCKETS_MAX`] buckets, so a history of seconds gets buckets of
    /// milliseconds and one of months gets days.
    pub bucket_ms: u64,
    /// Load balancers at `from_seq`.
    pub start_load_balancers: usize,
    /// Resources of every kind at `from_seq`.
    pub start_resources: usize,
    /// The buckets, in time order, covering `from_time ..= to_time`; the first
    /// starts at `from_time` rounded down to a multiple of the bucket length.
    pub buckets: Vec<Bucket>,
    /// Transactions that deleted resources.
    pub deletions: Vec<DeletionMark>,
    /// Transactions that brought deleted resources back (see the module
    /// documentation for how they are recognised).
    pub reverts: Vec<RevertMark>,
    /// Alarms the transactions raise (derived; see the module documentation).
    pub alarms: Vec<AlarmMark>,
}

/// Counts at the end of one bucket, and the fewest within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Its start; it ends `bucket_ms` later.
    #[serde(serialize_with = "rfc3339")]
    pub start: Timestamp,
    /// Load balancers at its end.
    pub load_balancers: usize,
    /// Resources of every kind at its end.
    pub resources: usize,
    /// The fewest load balancers at any moment in it, its start included.
    /// Below `load_balancers` when a deletion and its revert fall within
    /// one bucket: the dip the end count alone would hide.
    pub min_load_balancers: usize,
    /// The fewest resources of every kind at any moment in it, its start
    /// included.
    pub min_resources: usize,
}

/// A transaction that deleted resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeletionMark {
    /// The transaction.
    pub seq: u64,
    /// Its commit time.
    #[serde(serialize_with = "rfc3339")]
    pub time: Timestamp,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The change ticket, if any.
    pub ticket: Option<String>,
    /// The approver, if any.
    pub approved_by: Option<String>,
    /// Load balancers deleted.
    pub load_balancers_deleted: usize,
    /// Resources of every kind deleted.
    pub resources_deleted: usize,
}

/// A transaction that brought deleted resources back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RevertMark {
    /// The transaction.
    pub seq: u64,
    /// Its commit time.
    #[serde(serialize_with = "rfc3339")]
    pub time: Timestamp,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: String,
    /// The ticket, if any.
    pub ticket: Option<String>,
    /// Load balancers it created (brought back).
    pub load_balancers_restored: usize,
    /// Resources of every kind it created (brought back).
    pub resources_restored: usize,
    /// Transactions within the timeline that had deleted what it brought back.
    pub undoes: Vec<u64>,
}

/// An alarm the guard raises for a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlarmMark {
    /// The transaction that crossed the threshold.
    pub seq: u64,
    /// Its commit time.
    #[serde(serialize_with = "rfc3339")]
    pub time: Timestamp,
    /// What it is about.
    #[serde(serialize_with = "alarm_kind_name")]
    pub kind: AlarmKind,
    /// The same in words.
    pub text: String,
    /// The actors whose transactions count towards it.
    pub actors: Vec<String>,
    /// Those transactions.
    pub transactions: Vec<u64>,
}

/// One alarm in words.
fn alarm_text(kind: &AlarmKind) -> String {
    match kind {
        AlarmKind::Deletions { count, threshold } => {
            format!("{count} load-balancer deletions in the window (threshold {threshold})")
        }
        AlarmKind::FleetDrop { peak, now, threshold_permille } => {
            format!("fleet dropped from {peak} to {now} load balancers (threshold {threshold_permille} per mille)")
        }
        AlarmKind::WrongStore { expected, found } => format!("wrong store: expected {expected}, found {found}"),
    }
}

/// The first bucket's start (ns), the bucket length (ms) and the number of
/// buckets for `from ..= to`: the shortest length in [`BUCKET_MS`] (past a
/// day, the fewest whole days) that needs at most [`BUCKETS_MAX`] buckets,
/// the first bucket aligned to it. `to` before `from` counts as `from`.
fn buckets_for(from: Timestamp, to: Timestamp) -> (u64, u64, usize) {
    let to = to.as_nanos().max(from.as_nanos());
    let count = |ms: u64| {
        let len = ms.saturating_mul(NANOS_PER_MS).max(1);
        let start = from.as_nanos() / len * len;
        (start, (to - start) / len + 1)
    };
    let fits = |n: u64| n <= BUCKETS_MAX as u64;
    for ms in BUCKET_MS {
        let (start, n) = count(ms);
        if fits(n) {
            return (start, ms, n as usize);
        }
    }
    let span_days = (to - from.as_nanos()) / (MS_PER_DAY * NANOS_PER_MS);
    let mut days = span_days / (BUCKETS_MAX as u64 - 1) + 1;
    loop {
        let ms = days.saturating_mul(MS_PER_DAY);
        let (start, n) = count(ms);
        // A length that saturated covers all of time in one bucket.
        if fits(n) || ms == u64::MAX {
            return (start, ms, n.min(BUCKETS_MAX as u64) as usize);
        }
        days += 1;
    }
}

/// The key's creating transaction, for kinds whose ids name it.
fn created_seq(key: &EntityKey) -> Option<u64> {
    match key {
        EntityKey::LoadBalancer(id) => Some(id.created_seq()),
        EntityKey::Listener(id) => Some(id.created_seq()),
        EntityKey::Rule(id) => Some(id.created_seq()),
        EntityKey::TargetGroup(id) => Some(id.created_seq()),
        EntityKey::TrustStore(id) => Some(id.created_seq()),
        EntityKey::Target(_) => None,
    }
}

/// The fleet between `from` and `to` (see the module documentation). `from`
/// after `to` is [`ElbError::InvalidValue`]; a point outside the history is
/// the store's [`crate::Error::PointOutOfRange`]. Equal points give a
/// timeline of one bucket and no transactions.
pub fn timeline(store: &ElbStore, from: Point, to: Point) -> Result<Timeline, ElbError> {
    let history = store.store();
    let (from_seq, from_point_time) = history.resolve(from)?;
    let (to_seq, to_time) = history.resolve(to)?;
    if from_seq > to_seq {
        return Err(ElbError::InvalidValue {
            field: "to",
            value: format!("{to} (transaction {to_seq}, before {from}, transaction {from_seq})"),
            problem: "is before the start of the timeline",
        });
    }
    let start = history.state_at(Point::Seq(from_seq))?;
    let counts = start.counts();
    let mut load_balancers = counts.load_balancers;
    let mut resources: usize = EntityKind::ALL.iter().map(|kind| counts.of(*kind)).sum();
    drop(start);
    let from_time = if from_seq == 0 && to_seq > 0 { history.transaction(1)?.time } else { from_point_time };
    let from_time = from_time.min(to_time);

    // The guard's ledger as it stood at `from`: its window's transactions.
    let settings = store.settings();
    let window = settings.alarms.window.max(settings.guard.window);
    let mut recent = Vec::new();
    if from_seq > 0 {
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let since = Timestamp(from_point_time.as_nanos().saturating_sub(window_ns));
        for txn in history.transactions_after(since) {
            let txn = txn?;
            if txn.seq > from_seq {
                break;
            }
            let (created, deleted) = load_balancer_changes(&txn.events);
            if created + deleted > 0 {
                recent.push((txn.seq, txn.time, txn.meta.actor, created, deleted));
            }
        }
    }
    let mut ledger = Ledger::rebuild(load_balancers, recent, &settings.alarms);

    let (first_start, bucket_ms, bucket_count) = buckets_for(from_time, to_time);
    let bucket_len = bucket_ms.saturating_mul(NANOS_PER_MS);
    let identity = history.identity();
    let mut timeline = Timeline {
        store: format!("{}/{}", identity.name, identity.environment),
        from_seq,
        to_seq,
        from_time,
        to_time,
        transactions: to_seq - from_seq,
        bucket_ms,
        start_load_balancers: load_balancers,
        start_resources: resources,
        buckets: Vec::with_capacity(bucket_count),
        deletions: Vec::new(),
        reverts: Vec::new(),
        alarms: Vec::new(),
    };
    let bucket_start = |i: usize| Timestamp(first_start.saturating_add((i as u64).saturating_mul(bucket_len)));
    // Closes the open bucket (the next one in `buckets`) with the counts now
    // and the fewest seen in it; the next one opens with the counts now.
    let close = |buckets: &mut Vec<Bucket>, low: &mut (usize, usize), now: (usize, usize)| {
        buckets.push(Bucket {
            start: bucket_start(buckets.len()),
            load_balancers: now.0,
            resources: now.1,
            min_load_balancers: low.0,
            min_resources: low.1,
        });
        *low = now;
    };
    // The fewest load balancers and resources in the open bucket so far.
    let mut low = (load_balancers, resources);
    let mut deleted_by: HashMap<EntityKey, u64> = HashMap::new();
    if to_seq > from_seq {
        for txn in history.transactions(from_seq + 1..=to_seq) {
            let txn = txn?;
            let bucket =
                (((txn.time.as_nanos().saturating_sub(first_start)) / bucket_len) as usize).min(bucket_count - 1);
            while timeline.buckets.len() < bucket {
                close(&mut timeline.buckets, &mut low, (load_balancers, resources));
            }
            let (mut lbs_deleted, mut deleted, mut lbs_created, mut created) = (0, 0, 0, 0);
            let (mut revert, mut undoes) = (false, Vec::new());
            for event in &txn.events {
                match event {
                    ElbEvent::Created(entity) => {
                        let key = entity.key();
                        created += 1;
                        lbs_created += usize::from(key.kind() == EntityKind::LoadBalancer);
                        revert |= created_seq(&key).is_some_and(|seq| seq < txn.seq);
                        if let Some(seq) = deleted_by.remove(&key) {
                            undoes.push(seq);
                        }
                    }
                    ElbEvent::Deleted(entity) => {
                        let key = entity.key();
                        deleted += 1;
                        lbs_deleted += usize::from(key.kind() == EntityKind::LoadBalancer);
                        deleted_by.insert(key, txn.seq);
                    }
                    ElbEvent::Updated { .. } => {}
                }
            }
            load_balancers = (load_balancers + lbs_created).saturating_sub(lbs_deleted);
            resources = (resources + created).saturating_sub(deleted);
            low = (low.0.min(load_balancers), low.1.min(resources));
            let TxnMeta { actor, reason, ticket, approved_by, reverts, .. } = txn.meta.clone();
            revert |= !reverts.is_empty();
            if deleted > 0 {
                timeline.deletions.push(DeletionMark {
                    seq: txn.seq,
                    time: txn.time,
                    actor: actor.clone(),
                    reason: reason.clone(),
                    ticket: ticket.clone(),
                    approved_by,
                    load_balancers_deleted: lbs_deleted,
                    resources_deleted: deleted,
                });
            }
            if revert {
                undoes.sort_unstable();
                undoes.dedup();
                timeline.reverts.push(RevertMark {
                    seq: txn.seq,
                    time: txn.time,
                    actor,
                    reason,
                    ticket,
                    load_balancers_restored: lbs_created,
                    resources_restored: created,
                    undoes,
                });
            }
            let changes = load_balancer_changes(&txn.events);
            let raised = ledger.record(txn.seq, txn.time, &txn.meta, changes, &settings.alarms, settings.guard.window);
            for alarm in raised {
                timeline.alarms.push(AlarmMark {
                    seq: txn.seq,
                    time: alarm.time,
                    text: alarm_text(&alarm.kind),
                    kind: alarm.kind,
                    actors: alarm.actors,
                    transactions: alarm.transactions,
                });
            }
        }
    }
    while timeline.buckets.len() < bucket_count {
        close(&mut timeline.buckets, &mut low, (load_balancers, resources));
    }
    Ok(timeline)
}

/// Escapes text for XML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How finely a time is written on the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    /// `2012-12-24 20:24`.
    Minutes,
    /// `2012-12-24 20:24:17`.
    Seconds,
    /// `2012-12-24 20:24:17.125`.
    Milliseconds,
}

impl Precision {
    /// The coarsest precision that tells apart times `ms` milliseconds apart
    /// (bucket starts, or ticks): whole minutes need minutes.
    fn for_step(ms: u64) -> Precision {
        if ms.is_multiple_of(60_000) {
            Precision::Minutes
        } else if ms.is_multiple_of(1000) {
            Precision::Seconds
        } else {
            Precision::Milliseconds
        }
    }

    /// The characters of `HH:MM:SS.mmm` kept.
    fn clock_len(self) -> usize {
        match self {
            Precision::Minutes => 5,
            Precision::Seconds => 8,
            Precision::Milliseconds => 12,
        }
    }
}

/// `2012-12-24 20:24`, `… 20:24:17` or `… 20:24:17.125` (UTC) for a timestamp.
fn time_text(time: Timestamp, precision: Precision) -> String {
    let text = time.to_string();
    match (text.get(..10), text.get(11..11 + precision.clock_len())) {
        (Some(date), Some(clock)) => format!("{date} {clock}"),
        _ => text,
    }
}

/// A bucket length in words: `5 ms`, `10 s`, `15 min`, `6 h`, `2 d`.
fn length_text(ms: u64) -> String {
    match ms {
        ms if ms >= MS_PER_DAY && ms.is_multiple_of(MS_PER_DAY) => format!("{} d", ms / MS_PER_DAY),
        ms if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) => format!("{} h", ms / 3_600_000),
        ms if ms >= 60_000 && ms.is_multiple_of(60_000) => format!("{} min", ms / 60_000),
        ms if ms >= 1000 && ms.is_multiple_of(1000) => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    }
}

/// A panel's vertical scale: counts from `lo` (its bottom) to `hi` (its top).
#[derive(Clone, Copy, Debug)]
struct Scale {
    top: f64,
    lo: usize,
    hi: usize,
}

impl Scale {
    /// A scale for counts between `lo` and `hi`, with a tenth of the range
    /// (at least one) spare above and below.
    fn new(top: f64, lo: usize, hi: usize) -> Scale {
        let pad = (hi.saturating_sub(lo) / 10).max(1);
        Scale { top, lo: lo.saturating_sub(pad), hi: hi.saturating_add(pad) }
    }

    /// The height of count `v` on the picture.
    fn y(&self, v: usize) -> f64 {
        let range = self.hi.saturating_sub(self.lo).max(1) as f64;
        self.top + PANEL_HEIGHT - v.saturating_sub(self.lo) as f64 / range * PANEL_HEIGHT
    }
}

/// One bucket of a series: (its count at its end, its fewest).
type Step = (usize, usize);

/// The points of a series drawn as steps: from `first` at `x(0)`, each
/// bucket's count is a horizontal line across it, and at each bucket's start
/// a vertical line joins the previous count to its own, reaching down to
/// its fewest on the way, so that a dip within one bucket shows as a spike
/// and a drop between buckets as a cliff. Repeated points are left out.
fn step_points(first: usize, series: &[Step], x: impl Fn(usize) -> f64, scale: Scale) -> String {
    let mut points: Vec<(f64, f64)> = vec![(x(0), scale.y(first))];
    let mut push = |point: (f64, f64)| {
        if points.last() != Some(&point) {
            points.push(point);
        }
    };
    let mut previous = first;
    for (i, &(end, min)) in series.iter().enumerate() {
        let at = x(i);
        push((at, scale.y(previous)));
        if min < previous.min(end) {
            push((at, scale.y(min)));
        }
        push((at, scale.y(end)));
        push((x(i + 1), scale.y(end)));
        previous = end;
    }
    let text: Vec<String> = points.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
    text.join(" ")
}

// The picture's geometry, in SVG user units.
const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 720.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 30.0;
const LABEL_TOP: f64 = 52.0;
const LABEL_ROWS: usize = 6;
const LABEL_ROW: f64 = 16.0;
const PANEL_GAP: f64 = 40.0;
const PANEL_TOP: f64 = LABEL_TOP + LABEL_ROWS as f64 * LABEL_ROW + 20.0;
const PANEL_HEIGHT: f64 = 210.0;
const AXIS_Y: f64 = PANEL_TOP + 2.0 * PANEL_HEIGHT + PANEL_GAP;
const DELETION_COLOUR: &str = "#d62728";
const REVERT_COLOUR: &str = "#2ca02c";
const ALARM_COLOUR: &str = "#ff7f0e";

/// A mark on the picture: where, what colour, its label and its tooltip.
struct Mark {
    time: Timestamp,
    colour: &'static str,
    dashed: bool,
    label: String,
    detail: String,
}

impl Timeline {
    /// The timeline as a standalone SVG document: load balancers and
    /// resources in two panels over a UTC time axis, each drawn as steps (a
    /// deletion is a cliff; a dip within one bucket a bar down to its
    /// fewest), times as finely as the buckets need, deletions as red lines,
    /// reverts as green ones (each labelled `txn N by ACTOR` with its count;
    /// the reason, ticket and approver show on hover), and alarms as dashed
    /// orange ones.
    pub fn to_svg(&self) -> String {
        let t0 = self.buckets.first().map_or(self.from_time.as_nanos(), |b| b.start.as_nanos());
        let bucket_ns = self.bucket_ms.saturating_mul(NANOS_PER_MS).max(1);
        let buckets_end = t0.saturating_add(bucket_ns.saturating_mul(self.buckets.len().max(1) as u64));
        // A little room after the last bucket, so that a change in it (a
        // revert that is the last transaction) is not at the very edge.
        let t1 = buckets_end.saturating_add(bucket_ns.max((buckets_end - t0) / 40)).max(t0.saturating_add(1));
        let plot_width = WIDTH - LEFT - RIGHT;
        let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot_width;
        let bucket_x = |i: usize| x(t0.saturating_add(bucket_ns.saturating_mul(i as u64)));
        // Times in words as finely as a bucket needs: a picture of seconds
        // reads in milliseconds, one of days in minutes.
        let precision = Precision::for_step(self.bucket_ms);
        let mut svg = String::new();
        svg.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n"
        ));
        svg.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n"));
        // The date once when both ends are on the same day.
        let (from_text, to_text) = (time_text(self.from_time, precision), time_text(self.to_time, precision));
        let to_text = match (from_text.split_once(' '), to_text.split_once(' ')) {
            (Some((from_date, _)), Some((to_date, clock))) if from_date == to_date => clock.to_owned(),
            _ => to_text,
        };
        svg.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
            escape(&format!(
                "{}: the fleet from {} to {} UTC, transactions {} to {}, {} buckets",
                self.store,
                from_text,
                to_text,
                self.from_seq + 1,
                self.to_seq,
                length_text(self.bucket_ms)
            ))
        ));
        // The series, drawn last so that no mark hides a step.
        let mut series_svg = String::new();
        // Legend.
        for (i, (colour, dashed, name)) in
            [(DELETION_COLOUR, false, "deletion"), (REVERT_COLOUR, false, "revert"), (ALARM_COLOUR, true, "alarm")]
                .into_iter()
                .enumerate()
        {
            let lx = WIDTH - RIGHT - 260.0 + i as f64 * 90.0;
            let ly = AXIS_Y + 40.0;
            let dash = if dashed { " stroke-dasharray=\"4 3\"" } else { "" };
            svg.push_str(&format!(
                "<line x1=\"{lx}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>\
                 <text x=\"{2}\" y=\"{3}\">{name}</text>\n",
                ly - 4.0,
                lx + 20.0,
                lx + 25.0,
                ly
            ));
        }

        let start = (self.start_load_balancers, self.start_resources);
        let panels: [(&str, Vec<Step>, usize); 2] = [
            (
                "load balancers",
                self.buckets.iter().map(|b| (b.load_balancers, b.min_load_balancers)).collect(),
                start.0,
            ),
            ("resources (all kinds)", self.buckets.iter().map(|b| (b.resources, b.min_resources)).collect(), start.1),
        ];
        for (index, (title, series, first)) in panels.iter().enumerate() {
            let top = PANEL_TOP + index as f64 * (PANEL_HEIGHT + PANEL_GAP);
            let counts = || series.iter().flat_map(|&(end, min)| [end, min]).chain([*first]);
            let scale = Scale::new(top, counts().min().unwrap_or(0), counts().max().unwrap_or(0));
            let (lo, hi) = (scale.lo, scale.hi);
            let y = |v: usize| scale.y(v);
            svg.push_str(&format!(
                "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot_width}\" height=\"{PANEL_HEIGHT}\" fill=\"none\" \
                 stroke=\"#999\"/>\n<text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text>\n",
                LEFT + 6.0,
                top + 16.0,
                escape(title)
            ));
            for v in [lo, lo + (hi - lo) / 2, hi] {
                svg.push_str(&format!(
                    "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eee\"/>\
                     <text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{v}</text>\n",
                    y(v),
                    WIDTH - RIGHT,
                    LEFT - 6.0,
                    y(v) + 4.0
                ));
            }
            let points = step_points(*first, series, bucket_x, scale);
            let colour = if index == 0 { "#1f77b4" } else { "#9467bd" };
            series_svg.push_str(&format!(
                "<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>\n"
            ));
            // A dip within one bucket is a spike in the line, easily lost
            // under the marks of the deletion and revert that made it; a
            // bar at least 4 units wide, over them, keeps it in sight.
            let mut previous = *first;
            for (i, &(end, min)) in series.iter().enumerate() {
                if min < previous.min(end) {
                    let (left, right) = (bucket_x(i), bucket_x(i + 1));
                    let width = (right - left).max(4.0);
                    let (bar_top, bar_bottom) = (y(previous.min(end)), y(min));
                    series_svg.push_str(&format!(
                        "<g><title>{}</title><rect x=\"{:.1}\" y=\"{bar_top:.1}\" width=\"{width:.1}\" \
                         height=\"{:.1}\" fill=\"{colour}\"/></g>\n",
                        escape(&format!(
                            "{title}: down to {min} within the bucket from {}",
                            time_text(self.buckets[i].start, precision)
                        )),
                        left - (width - (right - left)) / 2.0,
                        bar_bottom - bar_top,
                    ));
                }
                previous = end;
            }
        }

        // The time axis: at most about eight ticks, on round lengths from a
        // millisecond to a day, or whole days; labelled as finely as the
        // ticks are apart, the date only where it changes.
        let span_ms = (t1 - t0) / NANOS_PER_MS;
        let step_ms = BUCKET_MS
            .into_iter()
            .find(|step| span_ms / step <= 8)
            .unwrap_or_else(|| (span_ms / 8 / MS_PER_DAY + 1).saturating_mul(MS_PER_DAY));
        let tick_precision = Precision::for_step(step_ms);
        let step = step_ms.saturating_mul(NANOS_PER_MS).max(1);
        let mut tick = t0.div_ceil(step).saturating_mul(step);
        let mut last_date = String::new();
        while tick <= t1 {
            let text = time_text(Timestamp(tick), tick_precision);
            let (date, clock) = text.split_at(text.find(' ').unwrap_or(0));
            let label = if date != last_date { text.clone() } else { clock.trim().to_owned() };
            last_date = date.to_owned();
            svg.push_str(&format!(
                "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2}\" stroke=\"#999\"/>\
                 <text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                x(tick),
                AXIS_Y,
                AXIS_Y + 5.0,
                AXIS_Y + 20.0,
                escape(&label)
            ));
            match tick.checked_add(step) {
                Some(next) => tick = next,
                None => break,
            }
        }
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (UTC)</text>\n",
            LEFT + plot_width / 2.0,
            AXIS_Y + 40.0
        ));

        // Marks, in time order, their labels on rows so neighbours do not overlap.
        let mut marks: Vec<Mark> = Vec::new();
        let extra = |ticket: &Option<String>, approver: Option<&Option<String>>| {
            let mut text = String::new();
            if let Some(ticket) = ticket {
                text.push_str(&format!("; ticket {ticket}"));
            }
            if let Some(Some(approver)) = approver {
                text.push_str(&format!("; approved by {approver}"));
            }
            text
        };
        // Alarms first: at the same time, the transaction's own line is drawn over theirs.
        for a in &self.alarms {
            let actors = a.actors.join(", ");
            marks.push(Mark {
                time: a.time,
                colour: ALARM_COLOUR,
                dashed: true,
                label: format!("alarm at txn {}: {}", a.seq, a.text),
                detail: format!("{} at {}; actors {actors}", a.text, a.time),
            });
        }
        for d in &self.deletions {
            marks.push(Mark {
                time: d.time,
                colour: DELETION_COLOUR,
                dashed: false,
                label: format!(
                    "txn {} by {}: deleted {} load balancers ({} resources)",
                    d.seq, d.actor, d.load_balancers_deleted, d.resources_deleted
                ),
                detail: format!(
                    "txn {} at {} by {}: {}{}",
                    d.seq,
                    d.time,
                    d.actor,
                    d.reason,
                    extra(&d.ticket, Some(&d.approved_by))
                ),
            });
        }
        for r in &self.reverts {
            let undoes: Vec<String> = r.undoes.iter().map(u64::to_string).collect();
            let undoes = if undoes.is_empty() { String::new() } else { format!(", undoing txn {}", undoes.join(", ")) };
            marks.push(Mark {
                time: r.time,
                colour: REVERT_COLOUR,
                dashed: false,
                label: format!(
                    "txn {} by {}: restored {} load balancers ({} resources){undoes}",
                    r.seq, r.actor, r.load_balancers_restored, r.resources_restored
                ),
                detail: format!("txn {} at {} by {}: {}{}", r.seq, r.time, r.actor, r.reason, extra(&r.ticket, None)),
            });
        }
        marks.sort_by_key(|m| m.time);
        for (i, mark) in marks.iter().enumerate() {
            let mx = x(mark.time.as_nanos());
            let row_y = LABEL_TOP + (i % LABEL_ROWS) as f64 * LABEL_ROW;
            let (anchor, tx) = if mx > WIDTH / 2.0 { ("end", mx - 4.0) } else { ("start", mx + 4.0) };
            let dash = if mark.dashed { " stroke-dasharray=\"4 3\"" } else { "" };
            svg.push_str(&format!(
                "<g><title>{}</title><line x1=\"{mx:.1}\" y1=\"{:.1}\" x2=\"{mx:.1}\" y2=\"{}\" stroke=\"{}\" \
                 stroke-width=\"1.5\"{dash}/><text x=\"{tx:.1}\" y=\"{row_y:.1}\" text-anchor=\"{anchor}\" \
                 fill=\"{}\">{}</text></g>\n",
                escape(&mark.detail),
                row_y - 10.0,
                AXIS_Y,
                mark.colour,
                mark.colour,
                escape(&mark.label)
            ));
        }
        svg.push_str(&series_svg);
        svg.push_str("</svg>\n");
        svg
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::elb::{fleet, Command, OnConflict, RevertMode, RevertSelection, Settings, Summary, Taggable};
    use crate::store::{Create, Error, Options};

    /// A directory removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("elbstore-timeline-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    struct Incident {
        _dir: Scratch,
        store: ElbStore,
        deletion_seq: u64,
        revert_seq: u64,
    }

    const START: &str = "2012-12-24T20:00:30Z";
    const REVERT_REASON: &str = "revert <mistaken> cleanup & keep later changes";

    /// The 2012 pattern in small: 100 load balancers built over five
    /// minutes, traffic, a maintenance process deleting 20 of them, customers
    /// carrying on, a revert, more traffic; the clock a minute or more apart.
    fn incident() -> Incident {
        let dir = Scratch::new("incident");
        let clock = ManualClock::new(Timestamp::parse_rfc3339(START).unwrap());
        let options = Options::default().create(Create::New).clock(Arc::new(clock.clone()));
        let store = ElbStore::open(&dir.0, options, Settings::in_region("us-east-1")).unwrap();
        let minutes = |n: u64| clock.advance(Duration::from_secs(60 * n));
        for batch in 0..5u64 {
            let meta = TxnMeta::new("svc:provisioning", format!("provision batch {batch}"));
            store.execute_with(meta, |_, ctx| fleet::batch_commands(batch * 20..batch * 20 + 20, ctx.seq)).unwrap();
            minutes(1);
        }
        let tag = |store: &ElbStore, i: u64, value: &str| {
            let lb = store.read().load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id;
            let command = Command::AddTags {
                resources: vec![Taggable::LoadBalancer(lb)],
                tags: [("change".to_owned(), value.to_owned())].into(),
            };
            store.execute(TxnMeta::new(format!("customer:{}", fleet::account(i)), "tag"), vec![command]).unwrap();
        };
        minutes(10);
        tag(&store, 1, "one");
        minutes(6);
        let victims: Vec<Command> = {
            let view = store.read();
            (0..100u64)
                .filter(|i| i % 5 == 3)
                .map(|i| Command::DeleteLoadBalancer {
                    load_balancer: view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id,
                })
                .collect()
        };
        let maintenance =
            TxnMeta::new("maint:state-cleanup", "remove load balancers with stale state").with_ticket("CHG-2012-1224");
        let deletion_seq = store.execute(maintenance, victims).unwrap().committed.unwrap().seq;
        minutes(15);
        for i in 100..102 {
            let meta = TxnMeta::new(format!("customer:{}", fleet::account(i)), "CreateLoadBalancer");
            store.execute_with(meta, |_, ctx| fleet::reference_commands(i, ctx.seq)).unwrap();
        }
        minutes(10);
        let plan = store
            .revert(
                RevertSelection::Transactions(vec![deletion_seq]),
                TxnMeta::new("ops:incident-response", REVERT_REASON).with_ticket("INC-2012-1224"),
                RevertMode::Apply,
                OnConflict::Abort,
            )
            .unwrap();
        assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
        let revert_seq = plan.committed.unwrap().seq;
        minutes(5);
        tag(&store, 2, "two");
        Incident { _dir: dir, store, deletion_seq, revert_seq }
    }

    fn total(counts: &crate::elb::Counts) -> usize {
        EntityKind::ALL.iter().map(|kind| counts.of(*kind)).sum()
    }

    #[test]
    fn the_counts_drop_at_the_deletion_and_rise_at_the_revert_as_state_at_says() {
        let incident = incident();
        let store = &incident.store;
        let last = store.read().seq();
        let timeline = timeline(store, Point::Seq(0), Point::Seq(last)).unwrap();
        assert_eq!((timeline.from_seq, timeline.to_seq, timeline.transactions), (0, last, last));
        assert_eq!(timeline.bucket_ms, 10_000, "51 minutes in 10-second buckets");
        let bucket_ns = timeline.bucket_ms * NANOS_PER_MS;
        assert_eq!(timeline.from_time, store.store().transaction(1).unwrap().time);
        assert_eq!((timeline.start_load_balancers, timeline.start_resources), (0, 0));
        // Every bucket equals the state at its end, computed the slow way;
        // with a transaction a minute or more apart, its fewest are the
        // fewer of its start and its end.
        let mut previous = (0, 0);
        for bucket in &timeline.buckets {
            let end = Timestamp(bucket.start.as_nanos() + bucket_ns - 1).min(timeline.to_time);
            let counts = store.store().state_at(Point::Time(end)).unwrap().counts();
            assert_eq!(
                (bucket.load_balancers, bucket.resources),
                (counts.load_balancers, total(&counts)),
                "{bucket:?}"
            );
            assert_eq!(
                (bucket.min_load_balancers, bucket.min_resources),
                (previous.0.min(bucket.load_balancers), previous.1.min(bucket.resources)),
                "{bucket:?}"
            );
            previous = (bucket.load_balancers, bucket.resources);
        }
        let at = |seq: u64| {
            let time = store.store().transaction(seq).unwrap().time;
            ((time.as_nanos() - timeline.buckets[0].start.as_nanos()) / bucket_ns) as usize
        };
        let (deleted, reverted) = (at(incident.deletion_seq), at(incident.revert_seq));
        assert_eq!(timeline.buckets[deleted - 1].load_balancers, 100);
        assert_eq!(timeline.buckets[deleted].load_balancers, 80);
        assert_eq!(timeline.buckets[reverted - 1].load_balancers, 82);
        assert_eq!(timeline.buckets[reverted].load_balancers, 102);
        assert!(timeline.buckets[deleted].resources < timeline.buckets[deleted - 1].resources);
        assert!(timeline.buckets[reverted].resources > timeline.buckets[reverted - 1].resources);

        let deletion = store.store().transaction(incident.deletion_seq).unwrap();
        assert_eq!(
            timeline.deletions,
            vec![DeletionMark {
                seq: incident.deletion_seq,
                time: deletion.time,
                actor: "maint:state-cleanup".to_owned(),
                reason: "remove load balancers with stale state".to_owned(),
                ticket: Some("CHG-2012-1224".to_owned()),
                approved_by: None,
                load_balancers_deleted: 20,
                resources_deleted: Summary::of(&deletion.events).deleted_total(),
            }]
        );
        assert_eq!(timeline.reverts.len(), 1, "{:?}", timeline.reverts);
        let revert = &timeline.reverts[0];
        assert_eq!((revert.seq, revert.actor.as_str()), (incident.revert_seq, "ops:incident-response"));
        assert_eq!(
            (revert.load_balancers_restored, revert.resources_restored),
            (20, timeline.deletions[0].resources_deleted)
        );
        assert_eq!(revert.undoes, vec![incident.deletion_seq]);
        // 20 deletions in the hour (threshold 10) and a 20% drop (threshold 2%).
        let kinds: Vec<&AlarmKind> = timeline.alarms.iter().map(|a| &a.kind).collect();
        assert!(
            matches!(
                kinds[..],
                [AlarmKind::Deletions { count: 20, .. }, AlarmKind::FleetDrop { peak: 100, now: 80, .. }]
            ),
            "{kinds:?}"
        );
        assert!(timeline
            .alarms
            .iter()
            .all(|a| a.seq == incident.deletion_seq && a.transactions == vec![incident.deletion_seq]));

        let json = serde_json::to_value(&timeline).unwrap();
        assert_eq!(json["from_time"], serde_json::json!(timeline.from_time.to_string()));
        assert_eq!(json["deletions"][0]["actor"], "maint:state-cleanup");
        assert_eq!(json["buckets"].as_array().unwrap().len(), timeline.buckets.len());
        assert_eq!(json["bucket_ms"], 10_000);
        assert_eq!(json["buckets"][deleted]["min_load_balancers"], 80);
        assert_eq!(json["buckets"][deleted - 1]["min_resources"], json["buckets"][deleted - 1]["resources"]);
    }

    /// A timeline that starts inside the history starts from the state
    /// there, and an alarm already raised then is not raised again.
    #[test]
    fn a_timeline_from_the_middle_starts_from_the_state_there() {
        let incident = incident();
        let store = &incident.store;
        let from = Point::After(incident.deletion_seq);
        let timeline = timeline(store, from, Point::Seq(store.read().seq())).unwrap();
        assert_eq!(timeline.from_seq, incident.deletion_seq);
        assert_eq!(timeline.start_load_balancers, 80);
        assert!(timeline.deletions.is_empty());
        assert_eq!(timeline.reverts.len(), 1);
        assert!(timeline.reverts[0].undoes.is_empty(), "the deletion is before the timeline");
        assert!(timeline.alarms.is_empty(), "{:?}", timeline.alarms);
        assert_eq!(timeline.buckets.last().unwrap().load_balancers, 102);
    }

    #[test]
    fn the_svg_is_well_formed_escaped_and_names_the_deletion_and_the_revert() {
        let incident = incident();
        let store = &incident.store;
        let svg = timeline(store, Point::Seq(0), Point::Seq(store.read().seq())).unwrap().to_svg();
        check_well_formed(&svg);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{}", &svg[..80]);
        assert!(
            svg.contains(&format!("txn {} by maint:state-cleanup: deleted 20 load balancers", incident.deletion_seq))
        );
        assert!(
            svg.contains(&format!("txn {} by ops:incident-response: restored 20 load balancers", incident.revert_seq))
        );
        assert!(svg.contains("ticket CHG-2012-1224"));
        assert!(svg.contains("revert &lt;mistaken&gt; cleanup &amp; keep"), "the reason is escaped");
        assert!(!svg.contains("<mistaken>"));
        assert!(svg.contains("alarm at txn"));
        assert!(
            svg.contains(&format!("stroke=\"{DELETION_COLOUR}\""))
                && svg.contains(&format!("stroke=\"{REVERT_COLOUR}\""))
        );
        assert!(svg.contains(">2012-12-24 20:"), "UTC labels on the time axis");
        assert!(
            svg.contains(">unnamed/unspecified: the fleet from 2012-12-24 20:00:30 to 20:51:30 UTC, transactions 1 to")
        );
        assert!(svg.contains(", 10 s buckets<"), "the bucket length in words");
        assert_eq!(svg.matches("<polyline ").count(), 2);
    }

    #[test]
    fn from_after_to_is_a_typed_error_and_equal_points_give_one_bucket() {
        let incident = incident();
        let store = &incident.store;
        match timeline(store, Point::Seq(5), Point::Seq(3)) {
            Err(ElbError::InvalidValue { field: "to", .. }) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(matches!(
            timeline(store, Point::Seq(0), Point::Seq(10_000)),
            Err(ElbError::Store(Error::PointOutOfRange { .. }))
        ));
        let one = timeline(store, Point::Seq(3), Point::Seq(3)).unwrap();
        assert_eq!((one.transactions, one.buckets.len()), (0, 1));
        assert_eq!(one.buckets[0].load_balancers, 60);
        assert!(one.deletions.is_empty() && one.reverts.is_empty() && one.alarms.is_empty());
        check_well_formed(&one.to_svg());
    }

    #[test]
    fn an_empty_store_gives_an_empty_timeline() {
        let dir = Scratch::new("empty");
        let store = ElbStore::open(&dir.0, Options::default().create(Create::New), Settings::default()).unwrap();
        let empty = timeline(&store, Point::Seq(0), Point::Seq(0)).unwrap();
        assert_eq!((empty.transactions, empty.buckets.len(), empty.buckets[0].resources), (0, 1, 0));
        check_well_formed(&empty.to_svg());
    }

    /// Buckets were never shorter than a minute, so a history of seconds
    /// (the incident demo's) was one or two buckets and a straight line.
    #[test]
    fn buckets_are_the_shortest_round_length_that_fits_down_to_a_millisecond() {
        let t = Timestamp::parse_rfc3339("2012-12-24T20:24:17.123456789Z").unwrap();
        let after = |ms: u64| Timestamp(t.as_nanos() + ms * NANOS_PER_MS);
        let at = |text: &str| Timestamp::parse_rfc3339(text).unwrap().as_nanos();
        assert_eq!(buckets_for(t, after(30 * 60_000)), (at("2012-12-24T20:24:15Z"), 5_000, 361));
        assert_eq!(buckets_for(t, after(3_000)), (at("2012-12-24T20:24:17.120Z"), 10, 301), "seconds in ms");
        assert_eq!(buckets_for(t, t), (at("2012-12-24T20:24:17.123Z"), 1, 1));
        assert_eq!(buckets_for(t, after(86_400_000)).1, 300_000, "a day in five-minute buckets");
        assert_eq!(buckets_for(t, Timestamp(t.as_nanos() + 1)).2, 1, "never shorter than a millisecond");
        let spans_ms = [0, 1, 599, 600, 3_000, 59_000, 60_000, 599 * 60_000, 600 * 60_000, MS_PER_DAY];
        let days = [7 * MS_PER_DAY, 400 * MS_PER_DAY, 40_000 * MS_PER_DAY];
        for ms in spans_ms.into_iter().chain(days) {
            let (start, len, n) = buckets_for(t, after(ms));
            assert!(n <= BUCKETS_MAX, "{ms}: {n} of {len} ms");
            assert!(BUCKET_MS.contains(&len) || len.is_multiple_of(MS_PER_DAY), "{ms}: a round length, not {len} ms");
            let len_ns = len * NANOS_PER_MS;
            assert!(start <= t.as_nanos() && after(ms).as_nanos() < start + n as u64 * len_ns, "{ms}: covers the span");
            // The next shorter length would need too many buckets.
            if let Some(shorter) = BUCKET_MS.iter().rev().find(|l| **l < len) {
                let shorter_ns = shorter * NANOS_PER_MS;
                let needed = (after(ms).as_nanos() - t.as_nanos() / shorter_ns * shorter_ns) / shorter_ns + 1;
                assert!(needed > BUCKETS_MAX as u64 || len > MS_PER_DAY, "{ms}: {shorter} ms would do");
            }
        }
        // All of time fits; nothing overflows.
        let (_, len, n) = buckets_for(Timestamp(0), Timestamp(u64::MAX));
        assert!(n <= BUCKETS_MAX && len.is_multiple_of(MS_PER_DAY), "{n} of {len} ms");
        assert_eq!(buckets_for(Timestamp(u64::MAX), Timestamp(0)).2, 1, "to before from is one bucket");
    }

    #[test]
    fn times_are_written_as_finely_as_the_buckets_need() {
        let t = Timestamp::parse_rfc3339("2012-12-24T20:24:17.125Z").unwrap();
        assert_eq!(time_text(t, Precision::for_step(86_400_000)), "2012-12-24 20:24");
        assert_eq!(time_text(t, Precision::for_step(60_000)), "2012-12-24 20:24");
        assert_eq!(time_text(t, Precision::for_step(15_000)), "2012-12-24 20:24:17");
        assert_eq!(time_text(t, Precision::for_step(5)), "2012-12-24 20:24:17.125");
        assert_eq!(time_text(Timestamp(u64::MAX), Precision::Milliseconds), "2554-07-21 23:34:33.709");
        let lengths: Vec<String> = [5, 1000, 15_000, 120_000, 7_200_000, 2 * MS_PER_DAY].map(length_text).to_vec();
        assert_eq!(lengths, ["5 ms", "1 s", "15 s", "2 min", "2 h", "2 d"]);
    }

    /// A 3-second history, as the incident demo's is: 100 load balancers
    /// in 0.4 s, 20 deleted at 1.5 s, brought back 4 ms later, a tag at 3 s.
    fn seconds_incident() -> Incident {
        let dir = Scratch::new("seconds");
        let clock = ManualClock::new(Timestamp::parse_rfc3339(START).unwrap());
        let options = Options::default().create(Create::New).clock(Arc::new(clock.clone()));
        let store = ElbStore::open(&dir.0, options, Settings::in_region("us-east-1")).unwrap();
        let ms = |n: u64| clock.advance(Duration::from_millis(n));
        for batch in 0..5u64 {
            let meta = TxnMeta::new("svc:provisioning", format!("provision batch {batch}"));
            store.execute_with(meta, |_, ctx| fleet::batch_commands(batch * 20..batch * 20 + 20, ctx.seq)).unwrap();
            ms(100);
        }
        ms(1_000);
        let victims: Vec<Command> = {
            let view = store.read();
            (0..100u64)
                .filter(|i| i % 5 == 3)
                .map(|i| Command::DeleteLoadBalancer {
                    load_balancer: view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id,
                })
                .collect()
        };
        let maintenance =
            TxnMeta::new("maint:state-cleanup", "remove load balancers with stale state").with_ticket("CHG-2012-1224");
        let deletion_seq = store.execute(maintenance, victims).unwrap().committed.unwrap().seq;
        ms(4);
        let plan = store
            .revert(
                RevertSelection::Transactions(vec![deletion_seq]),
                TxnMeta::new("ops:incident-response", REVERT_REASON),
                RevertMode::Apply,
                OnConflict::Abort,
            )
            .unwrap();
        let revert_seq = plan.committed.unwrap().seq;
        ms(1_496);
        let lb = store.read().load_balancer_by_name(&fleet::account(1), &fleet::name(1)).unwrap().id;
        let command = Command::AddTags {
            resources: vec![Taggable::LoadBalancer(lb)],
            tags: [("change".to_owned(), "one".to_owned())].into(),
        };
        store.execute(TxnMeta::new(format!("customer:{}", fleet::account(1)), "tag"), vec![command]).unwrap();
        Incident { _dir: dir, store, deletion_seq, revert_seq }
    }

    /// The points of the `n`-th polyline of an SVG.
    fn polyline(svg: &str, n: usize) -> Vec<(f64, f64)> {
        let line = svg.split("<polyline points=\"").nth(n + 1).expect("the polyline");
        let points = &line[..line.find('"').expect("its points end")];
        points
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    }

    /// The regression: over a 3-second history the fleet climbed in a
    /// straight line through one or two minute-long buckets, with no drop
    /// at the deletion. Now the buckets are milliseconds, the series is
    /// drawn as steps, and a deletion and its revert within one bucket
    /// still show, as the bucket's fewest.
    #[test]
    fn a_deletion_and_its_revert_seconds_apart_show_as_a_dip() {
        let incident = seconds_incident();
        let store = &incident.store;
        let last = store.read().seq();
        let whole = timeline(store, Point::Seq(0), Point::Seq(last)).unwrap();
        assert_eq!(whole.bucket_ms, 10, "3 s in 10 ms buckets");
        assert!(whole.buckets.len() > 100 && whole.buckets.len() <= BUCKETS_MAX, "{}", whole.buckets.len());
        // The deletion and the revert share a bucket: it ends at 100 but
        // went down to 80.
        let deleted_at = store.store().transaction(incident.deletion_seq).unwrap().time.as_nanos();
        let since_deletion: Vec<&Bucket> =
            whole.buckets.iter().skip_while(|b| b.start.as_nanos() + 10 * NANOS_PER_MS <= deleted_at).collect();
        let dip: Vec<&&Bucket> = since_deletion.iter().filter(|b| b.min_load_balancers == 80).collect();
        assert_eq!(dip.len(), 1, "{dip:?}");
        assert_eq!(dip[0].load_balancers, 100);
        assert!(dip[0].min_resources < dip[0].resources);
        assert!(since_deletion.iter().all(|b| b.load_balancers == 100), "the end counts alone hide the dip");
        let json = serde_json::to_value(&whole).unwrap();
        assert!(json["buckets"].as_array().unwrap().iter().any(|b| b["min_load_balancers"] == 80));
        let svg = whole.to_svg();
        check_well_formed(&svg);
        assert!(svg.contains("the fleet from 2012-12-24 20:00:30.000 to 20:00:33.000 UTC"));
        assert!(svg.contains(", 10 ms buckets<"));
        assert!(svg.contains(">20:00:31<") || svg.contains(">20:00:31.000<"), "ticks in seconds");
        // The load-balancer series goes from 100 down to 80 and back up to
        // 100 at one x: a spike down where the dip is.
        let scale = Scale::new(PANEL_TOP, 0, 100);
        let at = |v: usize| format!("{:.1}", scale.y(v));
        let points = polyline(&svg, 0);
        let spike = points.windows(3).any(|w| {
            let heights: Vec<String> = w.iter().map(|p| format!("{:.1}", p.1)).collect();
            w[0].0 == w[1].0 && w[1].0 == w[2].0 && heights == [at(100), at(80), at(100)]
        });
        assert!(spike, "no spike down to 80: {points:?}");
        assert!(svg.contains("load balancers: down to 80 within the bucket from 2012-12-24 20:00:31.500<"));
        assert!(svg.contains(&format!("y=\"{}\" width=\"4.0\" height=\"{:.1}\"", at(100), scale.y(80) - scale.y(100))));

        // Closer in, the two fall in different buckets: a cliff down at the
        // deletion and up at the revert.
        let close = timeline(store, Point::Seq(incident.deletion_seq - 1), Point::Seq(incident.revert_seq)).unwrap();
        assert!(close.bucket_ms < 4, "{}", close.bucket_ms);
        let ends: Vec<usize> = close.buckets.iter().map(|b| b.load_balancers).collect();
        assert_eq!((ends.first(), ends.iter().min(), ends.last()), (Some(&100), Some(&80), Some(&100)));
        let svg = close.to_svg();
        let scale = Scale::new(PANEL_TOP, 80, 100);
        let (y100, y80) = (format!("{:.1}", scale.y(100)), format!("{:.1}", scale.y(80)));
        let points = polyline(&svg, 0);
        let vertical = |from: &str, to: &str| {
            points
                .windows(2)
                .any(|w| w[0].0 == w[1].0 && format!("{:.1}", w[0].1) == from && format!("{:.1}", w[1].1) == to)
        };
        assert!(vertical(&y100, &y80), "a cliff down: {points:?}");
        assert!(vertical(&y80, &y100), "a cliff up: {points:?}");
        assert!(points.windows(2).all(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1), "steps, no slopes");
    }

    #[test]
    fn escaping_leaves_no_markup_in_text() {
        assert_eq!(escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&#39; ");
        check_well_formed(&format!("<svg><text>{}</text></svg>", escape("<&>")));
    }

    /// A small check of well-formedness: tags balance and nest, the document
    /// is one `svg` element, and text and attribute values hold no `<` and no
    /// `&` that does not start an entity.
    fn check_well_formed(svg: &str) {
        let entities = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"];
        let check_ampersands = |text: &str| {
            for (at, _) in text.match_indices('&') {
                assert!(entities.iter().any(|e| text[at..].starts_with(e)), "bare & in {text:?}");
            }
        };
        let mut stack: Vec<&str> = Vec::new();
        let mut rest = svg.trim_end();
        assert!(rest.starts_with("<svg"));
        let mut roots = 0;
        while let Some(open) = rest.find('<') {
            check_ampersands(&rest[..open]);
            assert!(!stack.is_empty() || rest[..open].trim().is_empty(), "text outside the root");
            let close = open + rest[open..].find('>').expect("every tag closes");
            let tag = &rest[open + 1..close];
            assert!(!tag.contains('<'), "< inside a tag: {tag:?}");
            assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in {tag:?}");
            check_ampersands(tag);
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
            } else {
                let name = tag.trim_end_matches('/').split_whitespace().next().expect("a tag name");
                if stack.is_empty() {
                    roots += 1;
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[close + 1..];
        }
        assert!(rest.trim().is_empty(), "text after the root");
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert_eq!(roots, 1);
    }
}
