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

/// Bucket lengths tried, shortest first, in seconds; past a day, whole days.
const BUCKET_SECS: [u64; 12] = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];

const NANOS_PER_SEC: u64 = 1_000_000_000;

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

/// Durations in the tools' JSON are milliseconds.
fn secs_as_ms<S: Serializer>(secs: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(secs.saturating_mul(1000))
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
    /// The length of each bucket, in seconds: a minute, or longer so that
    /// there are at most [`BUCKETS_MAX`] buckets. In JSON, `bucket_ms`.
    #[serde(rename = "bucket_ms", serialize_with = "secs_as_ms")]
    pub bucket_secs: u64,
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

/// Counts at the end of one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Its start; it ends `bucket_secs` later.
    #[serde(serialize_with = "rfc3339")]
    pub start: Timestamp,
    /// Load balancers at its end.
    pub load_balancers: usize,
    /// Resources of every kind at its end.
    pub resources: usize,
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

/// The first bucket's start and the bucket length (ns) for a span: a whole
/// number of minutes, the shortest in the list that needs at most
/// [`BUCKETS_MAX`] buckets, first bucket aligned to it.
fn buckets_for(from: Timestamp, to: Timestamp) -> (u64, u64, usize) {
    let count = |secs: u64| {
        let len = secs.saturating_mul(NANOS_PER_SEC);
        let start = from.as_nanos() / len * len;
        (start, len, ((to.as_nanos() - start) / len) as usize + 1)
    };
    for secs in BUCKET_SECS {
        let (start, len, n) = count(secs);
        if n <= BUCKETS_MAX {
            return (start, len, n);
        }
    }
    let span_days = (to.as_nanos() - from.as_nanos()) / (86_400 * NANOS_PER_SEC);
    let mut days = span_days / (BUCKETS_MAX as u64 - 1) + 1;
    loop {
        let (start, len, n) = count(days * 86_400);
        if n <= BUCKETS_MAX {
            return (start, len, n);
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

    let (first_start, bucket_len, bucket_count) = buckets_for(from_time, to_time);
    let identity = history.identity();
    let mut timeline = Timeline {
        store: format!("{}/{}", identity.name, identity.environment),
        from_seq,
        to_seq,
        from_time,
        to_time,
        transactions: to_seq - from_seq,
        bucket_secs: bucket_len / NANOS_PER_SEC,
        start_load_balancers: load_balancers,
        start_resources: resources,
        buckets: Vec::with_capacity(bucket_count),
        deletions: Vec::new(),
        reverts: Vec::new(),
        alarms: Vec::new(),
    };
    let bucket_start = |i: usize| Timestamp(first_start + i as u64 * bucket_len);
    let mut deleted_by: HashMap<EntityKey, u64> = HashMap::new();
    if to_seq > from_seq {
        for txn in history.transactions(from_seq + 1..=to_seq) {
            let txn = txn?;
            let bucket =
                (((txn.time.as_nanos().saturating_sub(first_start)) / bucket_len) as usize).min(bucket_count - 1);
            while timeline.buckets.len() < bucket {
                let start = bucket_start(timeline.buckets.len());
                timeline.buckets.push(Bucket { start, load_balancers, resources });
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
            let TxnMeta { actor, reason, ticket, approved_by } = txn.meta.clone();
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
        let start = bucket_start(timeline.buckets.len());
        timeline.buckets.push(Bucket { start, load_balancers, resources });
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

/// `2012-12-24 20:24` (UTC) for a timestamp.
fn minute_text(time: Timestamp) -> String {
    let text = time.to_string();
    format!("{} {}", &text[..10], &text[11..16])
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
    /// resources in two panels over a UTC time axis, deletions as red lines,
    /// reverts as green ones (each labelled `txn N by ACTOR` with its count;
    /// the reason, ticket and approver show on hover), and alarms as dashed
    /// orange ones.
    pub fn to_svg(&self) -> String {
        let t0 = self.buckets.first().map_or(self.from_time.as_nanos(), |b| b.start.as_nanos());
        let bucket_ns = self.bucket_secs.saturating_mul(NANOS_PER_SEC).max(1);
        let t1 = t0.saturating_add(bucket_ns.saturating_mul(self.buckets.len().max(1) as u64));
        let plot_width = WIDTH - LEFT - RIGHT;
        let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * plot_width;
        let mut svg = String::new();
        svg.push_str(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n"
        ));
        svg.push_str(&format!("<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n"));
        svg.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"24\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
            escape(&format!(
                "{}: the fleet from {} to {} UTC, transactions {} to {}, {}-second buckets",
                self.store,
                minute_text(self.from_time),
                minute_text(self.to_time),
                self.from_seq + 1,
                self.to_seq,
                self.bucket_secs
            ))
        ));
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
        let panels: [(&str, Vec<usize>, usize); 2] = [
            ("load balancers", self.buckets.iter().map(|b| b.load_balancers).collect(), start.0),
            ("resources (all kinds)", self.buckets.iter().map(|b| b.resources).collect(), start.1),
        ];
        for (index, (title, values, first)) in panels.iter().enumerate() {
            let top = PANEL_TOP + index as f64 * (PANEL_HEIGHT + PANEL_GAP);
            let lo = values.iter().copied().chain([*first]).min().unwrap_or(0);
            let hi = values.iter().copied().chain([*first]).max().unwrap_or(0);
            let pad = ((hi - lo) / 10).max(1);
            let (lo, hi) = (lo.saturating_sub(pad), hi + pad);
            let y = |v: usize| top + PANEL_HEIGHT - (v - lo) as f64 / (hi - lo) as f64 * PANEL_HEIGHT;
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
            let mut points = format!("{:.1},{:.1}", x(t0), y(*first));
            for (i, v) in values.iter().enumerate() {
                let end = t0.saturating_add(bucket_ns.saturating_mul(i as u64 + 1));
                points.push_str(&format!(" {:.1},{:.1}", x(end), y(*v)));
            }
            let colour = if index == 0 { "#1f77b4" } else { "#9467bd" };
            svg.push_str(&format!(
                "<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>\n"
            ));
        }

        // The time axis: at most about eight ticks, on whole minutes, hours or days.
        let span_secs = (t1 - t0) / NANOS_PER_SEC;
        let step = BUCKET_SECS
            .into_iter()
            .find(|step| span_secs / step <= 8)
            .unwrap_or_else(|| (span_secs / 8 / 86_400 + 1) * 86_400)
            * NANOS_PER_SEC;
        let mut tick = t0.div_ceil(step) * step;
        let mut last_date = String::new();
        while tick <= t1 {
            let text = minute_text(Timestamp(tick));
            let (date, clock) = text.split_at(10);
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
            tick = tick.saturating_add(step);
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
        assert_eq!(timeline.bucket_secs, 60);
        assert_eq!(timeline.from_time, store.store().transaction(1).unwrap().time);
        assert_eq!((timeline.start_load_balancers, timeline.start_resources), (0, 0));
        // Every bucket equals the state at its end, computed the slow way.
        for bucket in &timeline.buckets {
            let end = Timestamp(bucket.start.as_nanos() + 60 * NANOS_PER_SEC - 1).min(timeline.to_time);
            let counts = store.store().state_at(Point::Time(end)).unwrap().counts();
            assert_eq!(
                (bucket.load_balancers, bucket.resources),
                (counts.load_balancers, total(&counts)),
                "{bucket:?}"
            );
        }
        let at = |seq: u64| {
            let time = store.store().transaction(seq).unwrap().time;
            ((time.as_nanos() - timeline.buckets[0].start.as_nanos()) / (60 * NANOS_PER_SEC)) as usize
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
        assert!(svg.contains(">unnamed/unspecified: the fleet from 2012-12-24 20:00 to 2012-12-24 20:51 UTC"));
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

    #[test]
    fn buckets_are_whole_minutes_and_at_most_the_maximum() {
        let t = Timestamp::parse_rfc3339("2012-12-24T20:24:17Z").unwrap();
        let after = |secs: u64| Timestamp(t.as_nanos() + secs * NANOS_PER_SEC);
        let (start, len, n) = buckets_for(t, after(30 * 60));
        assert_eq!(
            (start, len, n),
            (Timestamp::parse_rfc3339("2012-12-24T20:24:00Z").unwrap().as_nanos(), 60 * NANOS_PER_SEC, 31)
        );
        assert_eq!(buckets_for(t, t).2, 1);
        assert_eq!(buckets_for(t, after(86_400)).1, 300 * NANOS_PER_SEC, "a day in five-minute buckets");
        for secs in [0, 59, 60, 599 * 60, 600 * 60, 86_400, 7 * 86_400, 400 * 86_400, 40_000 * 86_400] {
            let (start, len, n) = buckets_for(t, after(secs));
            assert!(n <= BUCKETS_MAX && len % (60 * NANOS_PER_SEC) == 0, "{secs}: {n} of {len}");
            assert!(
                start <= t.as_nanos() && after(secs).as_nanos() < start + n as u64 * len,
                "{secs}: covers the span"
            );
        }
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
