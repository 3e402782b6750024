//! Guardrails from the 2012 incident: bulk deletions need an approval, and
//! unusual deletion rates raise alarms.
//!
//! The ledger remembers, for a sliding window, every transaction that created
//! or deleted load balancers: who, when, how many, and the fleet size after.
//! It is rebuilt from the log on open and updated inside `Store::execute`,
//! under the write lock, so every check sees every earlier transaction.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ElbError;
use super::event::{ElbEvent, Entity};
use crate::clock::Timestamp;
use crate::store::TxnMeta;

/// Whether the deletion guard refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardMode {
    /// Refuse bulk deletions without an approval.
    Enforce,
    /// Let everything through (alarms still fire).
    Off,
}

/// The bulk-deletion guard: a transaction, or one actor within the window,
/// may delete at most `load_balancers_max` load balancers or
/// `fleet_permille_max` per mille of the fleet, whichever is larger, unless it
/// carries an approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionGuard {
    /// Enforce (default) or off.
    pub mode: GuardMode,
    /// The absolute limit (default 50).
    pub load_balancers_max: usize,
    /// The limit as a share of the fleet, per mille (default 10, i.e. 1%).
    pub fleet_permille_max: u32,
    /// How far back one actor's deletions add up (default one hour).
    pub window: Duration,
}

impl Default for DeletionGuard {
    fn default() -> DeletionGuard {
        DeletionGuard {
            mode: GuardMode::Enforce,
            load_balancers_max: 50,
            fleet_permille_max: 10,
            window: Duration::from_secs(3600),
        }
    }
}

/// When alarms fire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmThresholds {
    /// Load-balancer deletions by anyone within the window above which the
    /// deletion alarm fires (default 10).
    pub deletions_in_window: usize,
    /// A drop of the fleet below its peak within the window, per mille, above
    /// which the fleet alarm fires (default 20, i.e. 2%).
    pub fleet_drop_permille: u32,
    /// The window (default one hour).
    pub window: Duration,
}

impl Default for AlarmThresholds {
    fn default() -> AlarmThresholds {
        AlarmThresholds { deletions_in_window: 10, fleet_drop_permille: 20, window: Duration::from_secs(3600) }
    }
}

/// What an alarm is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmKind {
    /// Load-balancer deletions within the window crossed the threshold.
    Deletions {
        /// Deletions in the window.
        count: usize,
        /// The threshold crossed.
        threshold: usize,
    },
    /// The fleet dropped below its peak within the window by more than the threshold.
    FleetDrop {
        /// The peak fleet size in the window.
        peak: usize,
        /// The fleet size now.
        now: usize,
        /// The threshold, per mille.
        threshold_permille: u32,
    },
    /// A process that named another store was refused.
    WrongStore {
        /// The store the process named.
        expected: String,
        /// The store it found.
        found: String,
    },
}

/// An alarm: what happened, who did it and in which transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    /// What it is about.
    pub kind: AlarmKind,
    /// When it fired (the commit time of the transaction that crossed the threshold).
    pub time: Timestamp,
    /// The actors whose transactions count towards it.
    pub actors: Vec<String>,
    /// Those transactions, by sequence number.
    pub transactions: Vec<u64>,
}

/// Receives alarms as they fire.
pub type Observer = Arc<dyn Fn(&Alarm) + Send + Sync>;

/// The guards' view of the recent past.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardStatus {
    /// Load balancers now.
    pub fleet: usize,
    /// The fleet's peak within the alarm window.
    pub fleet_peak_in_window: usize,
    /// Load-balancer deletions within the alarm window.
    pub deletions_in_window: usize,
    /// Whether the deletion alarm is raised.
    pub deletion_alarm_raised: bool,
    /// Whether the fleet-drop alarm is raised.
    pub fleet_drop_alarm_raised: bool,
}

#[derive(Clone, Debug)]
struct Entry {
    seq: u64,
    time: Timestamp,
    actor: String,
    deleted: usize,
    fleet_before: usize,
    fleet_after: usize,
}

/// The sliding-window record behind the guard and the alarms.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    entries: VecDeque<Entry>,
    /// The absolute number of `entries[0]` (entries ever recorded before it).
    base: u64,
    /// Running totals per window length, kept up to date as entries arrive
    /// and leave, so the commit path's checks cost O(1) amortised, not a scan
    /// of every creation and deletion in the last hour.
    sums: Vec<WindowSums>,
    fleet: usize,
    deletion_alarm: bool,
    fleet_alarm: bool,
}

/// Totals over the entries inside one window length.
#[derive(Debug)]
struct WindowSums {
    span: Duration,
    /// The absolute number of the first entry inside the window.
    first: u64,
    deleted: usize,
    by_actor: HashMap<String, usize>,
    /// (absolute number, fleet peak of that entry), peaks decreasing: the
    /// front is the largest inside the window.
    peaks: VecDeque<(u64, usize)>,
}

impl WindowSums {
    fn add(&mut self, at: u64, entry: &Entry) {
        if entry.deleted > 0 {
            self.deleted += entry.deleted;
            *self.by_actor.entry(entry.actor.clone()).or_default() += entry.deleted;
        }
        let peak = entry.fleet_before.max(entry.fleet_after);
        while self.peaks.back().is_some_and(|&(_, p)| p <= peak) {
            self.peaks.pop_back();
        }
        self.peaks.push_back((at, peak));
    }

    fn remove(&mut self, entry: &Entry) {
        if entry.deleted > 0 {
            self.deleted -= entry.deleted;
            if let Some(count) = self.by_actor.get_mut(&entry.actor) {
                *count -= entry.deleted;
                if *count == 0 {
                    self.by_actor.remove(&entry.actor);
                }
            }
        }
    }
}

/// Load balancers a transaction's events create and delete.
pub(crate) fn load_balancer_changes(events: &[ElbEvent]) -> (usize, usize) {
    let mut created = 0;
    let mut deleted = 0;
    for event in events {
        match event {
            ElbEvent::Created(Entity::LoadBalancer(_)) => created += 1,
            ElbEvent::Deleted(Entity::LoadBalancer(_)) => deleted += 1,
            _ => {}
        }
    }
    (created, deleted)
}

/// Whether `meta` carries an approval: a ticket, and an approver who is not the actor.
pub fn approved(meta: &TxnMeta) -> bool {
    let ticket = meta.ticket.as_deref().is_some_and(|t| !t.trim().is_empty());
    let approver = meta.approved_by.as_deref().map(str::trim).filter(|a| !a.is_empty());
    ticket && approver.is_some_and(|a| a != meta.actor.trim())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Ledger {
    /// A ledger for a fleet of `fleet` load balancers, given the window's
    /// transactions as (seq, time, actor, created, deleted), oldest first.
    pub(crate) fn rebuild(
        fleet: usize,
        recent: Vec<(u64, Timestamp, String, usize, usize)>,
        alarms: &AlarmThresholds,
    ) -> Ledger {
        let mut entries = VecDeque::with_capacity(recent.len());
        let mut after = fleet;
        for (seq, time, actor, created, deleted) in recent.into_iter().rev() {
            let before = (after + deleted).saturating_sub(created);
            entries.push_front(Entry { seq, time, actor, deleted, fleet_before: before, fleet_after: after });
            after = before;
        }
        let mut ledger = Ledger { entries, fleet, ..Ledger::default() };
        // Crossings before this open were reported then: start raised, silently.
        if let Some(now) = ledger.entries.back().map(|e| e.time) {
            ledger.deletion_alarm = ledger.window(alarms.window, now).deleted > alarms.deletions_in_window;
            ledger.fleet_alarm = ledger.fleet_dropped(now, alarms).is_some();
        }
        ledger
    }

    /// The totals for windows of `span` ending at `now`, which must not be
    /// earlier than any recorded entry (commit times only move forward).
    fn window(&mut self, span: Duration, now: Timestamp) -> &WindowSums {
        let since = now.as_nanos().saturating_sub(nanos(span));
        let index = match self.sums.iter().position(|w| w.span == span) {
            Some(index) => index,
            None => {
                let mut sums =
                    WindowSums { span, first: self.base, deleted: 0, by_actor: HashMap::new(), peaks: VecDeque::new() };
                for (i, entry) in self.entries.iter().enumerate() {
                    sums.add(self.base + i as u64, entry);
                }
                self.sums.push(sums);
                self.sums.len() - 1
            }
        };
        let (entries, base) = (&self.entries, self.base);
        let sums = &mut self.sums[index];
        while let Some(entry) = entries.get((sums.first - base) as usize) {
            if entry.time.as_nanos() > since {
                break;
            }
            sums.remove(entry);
            sums.first += 1;
        }
        while sums.peaks.front().is_some_and(|&(at, _)| at < sums.first) {
            sums.peaks.pop_front();
        }
        &self.sums[index]
    }

    /// Load balancers deleted since `now - window`, by `actor` if given, by a
    /// scan (for `status`; the commit path uses the running totals).
    fn deleted_since(&self, now: Timestamp, window: Duration, actor: Option<&str>) -> usize {
        let since = now.as_nanos().saturating_sub(nanos(window));
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.time.as_nanos() > since)
            .filter(|e| e.deleted > 0 && actor.is_none_or(|a| a == e.actor))
            .map(|e| e.deleted)
            .sum()
    }

    /// Deletions since `now - window`, by `actor` if given, with their
    /// transactions and actors: for a refusal or an alarm, which are rare.
    fn deletions_since(&self, now: Timestamp, window: Duration, actor: Option<&str>) -> (usize, Vec<u64>, Vec<String>) {
        let since = now.as_nanos().saturating_sub(nanos(window));
        let mut count = 0;
        let mut seqs = Vec::new();
        let mut actors: Vec<String> = Vec::new();
        for entry in self.entries.iter().filter(|e| e.time.as_nanos() > since && e.deleted > 0) {
            if actor.is_some_and(|a| a != entry.actor) {
                continue;
            }
            count += entry.deleted;
            seqs.push(entry.seq);
            if !actors.contains(&entry.actor) {
                actors.push(entry.actor.clone());
            }
        }
        (count, seqs, actors)
    }

    /// The largest fleet size recorded within `window` before `now`, by a
    /// scan (for `status`; the commit path uses the running peak).
    fn peak_since(&self, now: Timestamp, window: Duration) -> Option<usize> {
        let since = now.as_nanos().saturating_sub(nanos(window));
        let in_window = self.entries.iter().rev().take_while(|e| e.time.as_nanos() > since);
        in_window.map(|e| e.fleet_before.max(e.fleet_after)).max()
    }

    /// The peak fleet size within the window, if the fleet is now more than
    /// the threshold below it.
    fn fleet_dropped(&mut self, now: Timestamp, alarms: &AlarmThresholds) -> Option<usize> {
        let peak = self.window(alarms.window, now).peaks.front().map(|&(_, peak)| peak)?;
        let drop = peak.saturating_sub(self.fleet);
        (drop * 1000 > peak * alarms.fleet_drop_permille as usize).then_some(peak)
    }

    /// Refuses a transaction that deletes too many load balancers, alone or
    /// with its actor's other deletions in the window, unless approved.
    pub(crate) fn check(
        &mut self,
        guard: &DeletionGuard,
        meta: &TxnMeta,
        time: Timestamp,
        deleted: usize,
    ) -> Result<(), ElbError> {
        if guard.mode == GuardMode::Off || deleted == 0 || approved(meta) {
            return Ok(());
        }
        let by_share = self.fleet * guard.fleet_permille_max as usize / 1000;
        let limit = guard.load_balancers_max.max(by_share);
        if deleted > limit {
            return Err(ElbError::BulkDeletionRefused {
                count: deleted,
                limit,
                window: None,
                transactions: Vec::new(),
            });
        }
        let earlier = self.window(guard.window, time).by_actor.get(&meta.actor).copied().unwrap_or(0);
        if earlier + deleted > limit {
            let (_, transactions, _) = self.deletions_since(time, guard.window, Some(&meta.actor));
            return Err(ElbError::BulkDeletionRefused {
                count: earlier + deleted,
                limit,
                window: Some((meta.actor.clone(), guard.window)),
                transactions,
            });
        }
        Ok(())
    }

    /// Records a transaction about to commit and returns the alarms it raises.
    pub(crate) fn record(
        &mut self,
        seq: u64,
        time: Timestamp,
        meta: &TxnMeta,
        (created, deleted): (usize, usize),
        thresholds: &AlarmThresholds,
        guard_window: Duration,
    ) -> Vec<Alarm> {
        if created == 0 && deleted == 0 {
            return Vec::new();
        }
        let before = self.fleet;
        self.fleet = (self.fleet + created).saturating_sub(deleted);
        let entry =
            Entry { seq, time, actor: meta.actor.clone(), deleted, fleet_before: before, fleet_after: self.fleet };
        let at = self.base + self.entries.len() as u64;
        for sums in &mut self.sums {
            sums.add(at, &entry);
        }
        self.entries.push_back(entry);
        let keep = thresholds.window.max(guard_window);
        // Bring every window to `time`; entries before all of them can go.
        let spans: Vec<Duration> = self.sums.iter().map(|w| w.span).collect();
        for span in spans {
            self.window(span, time);
        }
        let since = time.as_nanos().saturating_sub(nanos(keep));
        let needed = self.sums.iter().map(|w| w.first).min().unwrap_or(u64::MAX);
        while self.entries.front().is_some_and(|e| e.time.as_nanos() <= since) && self.base < needed {
            self.entries.pop_front();
            self.base += 1;
        }
        let mut alarms = Vec::new();
        let count = self.window(thresholds.window, time).deleted;
        let over = count > thresholds.deletions_in_window;
        if over && !self.deletion_alarm {
            let (count, transactions, actors) = self.deletions_since(time, thresholds.window, None);
            let kind = AlarmKind::Deletions { count, threshold: thresholds.deletions_in_window };
            alarms.push(Alarm { kind, time, actors, transactions });
        }
        self.deletion_alarm = over;
        let dropped = self.fleet_dropped(time, thresholds);
        if let (Some(peak), false) = (dropped, self.fleet_alarm) {
            let (_, transactions, actors) = self.deletions_since(time, thresholds.window, None);
            let kind =
                AlarmKind::FleetDrop { peak, now: self.fleet, threshold_permille: thresholds.fleet_drop_permille };
            alarms.push(Alarm { kind, time, actors, transactions });
        }
        self.fleet_alarm = dropped.is_some();
        alarms
    }

    /// The guards' view now. `now` is the wall clock, which can be ahead of
    /// the commit times the running windows follow (they only move forward),
    /// so this scans instead of moving them.
    pub(crate) fn status(&self, now: Timestamp, thresholds: &AlarmThresholds) -> GuardStatus {
        let peak = self.peak_since(now, thresholds.window).unwrap_or(self.fleet).max(self.fleet);
        GuardStatus {
            fleet: self.fleet,
            fleet_peak_in_window: peak,
            deletions_in_window: self.deleted_since(now, thresholds.window, None),
            deletion_alarm_raised: self.deletion_alarm,
            fleet_drop_alarm_raised: self.fleet_alarm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(actor: &str) -> TxnMeta {
        TxnMeta::new(actor, "why")
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn an_approval_needs_a_ticket_and_a_second_person() {
        assert!(!approved(&meta("ops:a")));
        assert!(!approved(&meta("ops:a").with_ticket("CHG-1")));
        assert!(!approved(&meta("ops:a").with_approval("CHG-1", "ops:a")));
        assert!(!approved(&meta("ops:a").with_approval(" ", "ops:b")));
        assert!(approved(&meta("ops:a").with_approval("CHG-1", "ops:b")));
    }

    #[test]
    fn the_limit_is_the_larger_of_the_count_and_the_share() {
        let guard = DeletionGuard::default();
        let mut small = Ledger::rebuild(1000, vec![], &AlarmThresholds::default());
        assert!(small.check(&guard, &meta("a"), at(1), 50).is_ok());
        assert!(matches!(
            small.check(&guard, &meta("a"), at(1), 51),
            Err(ElbError::BulkDeletionRefused { count: 51, limit: 50, window: None, .. })
        ));
        let mut large = Ledger::rebuild(100_000, vec![], &AlarmThresholds::default());
        assert!(large.check(&guard, &meta("a"), at(1), 1000).is_ok());
        assert!(matches!(
            large.check(&guard, &meta("a"), at(1), 1001),
            Err(ElbError::BulkDeletionRefused { limit: 1000, .. })
        ));
        let off = DeletionGuard { mode: GuardMode::Off, ..DeletionGuard::default() };
        assert!(small.check(&off, &meta("a"), at(1), 500).is_ok());
    }

    #[test]
    fn the_window_adds_up_one_actors_deletions_and_forgets_old_ones() {
        let guard = DeletionGuard::default();
        let thresholds = AlarmThresholds::default();
        let mut ledger = Ledger::rebuild(1000, vec![], &thresholds);
        for (i, secs) in [10, 20, 30, 40].into_iter().enumerate() {
            ledger.check(&guard, &meta("maint"), at(secs), 12).unwrap();
            ledger.record(i as u64 + 1, at(secs), &meta("maint"), (0, 12), &thresholds, guard.window);
        }
        // 48 so far; 3 more would be 51.
        let err = ledger.check(&guard, &meta("maint"), at(50), 3).unwrap_err();
        assert!(
            matches!(err, ElbError::BulkDeletionRefused { count: 51, limit: 50, window: Some(_), ref transactions } if *transactions == vec![1, 2, 3, 4])
        );
        assert!(ledger.check(&guard, &meta("someone-else"), at(50), 3).is_ok(), "the window is per actor");
        // An hour after the first ones, they no longer count.
        assert!(ledger.check(&guard, &meta("maint"), at(3615), 3).is_ok());
    }

    #[test]
    fn alarms_fire_once_per_crossing() {
        let thresholds = AlarmThresholds::default();
        let mut ledger = Ledger::rebuild(1000, vec![], &thresholds);
        let window = thresholds.window;
        assert!(ledger.record(1, at(10), &meta("a"), (0, 6), &thresholds, window).is_empty());
        let alarms = ledger.record(2, at(20), &meta("b"), (0, 6), &thresholds, window);
        assert_eq!(alarms.len(), 1);
        assert_eq!(alarms[0].kind, AlarmKind::Deletions { count: 12, threshold: 10 });
        assert_eq!(
            (alarms[0].transactions.clone(), alarms[0].actors.clone()),
            (vec![1, 2], vec!["a".to_owned(), "b".to_owned()])
        );
        assert!(
            ledger.record(3, at(30), &meta("a"), (0, 1), &thresholds, window).is_empty(),
            "still raised: no new alarm"
        );
        // The window moves past the deletions, the alarm clears, and a new crossing fires again.
        assert!(ledger.record(4, at(4000), &meta("c"), (1, 0), &thresholds, window).is_empty());
        assert!(!ledger.status(at(4000), &thresholds).deletion_alarm_raised);
        let again = ledger.record(5, at(4010), &meta("d"), (0, 11), &thresholds, window);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].transactions, vec![5]);
    }

    #[test]
    fn a_fleet_drop_fires_once() {
        let thresholds = AlarmThresholds { deletions_in_window: 1000, ..AlarmThresholds::default() };
        let mut ledger = Ledger::rebuild(1000, vec![], &thresholds);
        assert!(
            ledger.record(1, at(1), &meta("a"), (0, 20), &thresholds, thresholds.window).is_empty(),
            "2.0% is not more than 2%"
        );
        let alarms = ledger.record(2, at(2), &meta("a"), (0, 1), &thresholds, thresholds.window);
        assert!(matches!(alarms[..], [Alarm { kind: AlarmKind::FleetDrop { peak: 1000, now: 979, .. }, .. }]));
        assert!(ledger.record(3, at(3), &meta("a"), (0, 5), &thresholds, thresholds.window).is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// The running totals equal a scan of the entries, for both windows,
        /// as entries arrive and leave.
        #[test]
        fn running_window_totals_equal_a_scan(
            steps in proptest::collection::vec((0u64..40, 0usize..3, 0usize..3, 0usize..4), 1..120),
        ) {
            let thresholds = AlarmThresholds { window: Duration::from_secs(60), ..AlarmThresholds::default() };
            let guard_window = Duration::from_secs(100);
            let mut ledger = Ledger::rebuild(50, vec![], &thresholds);
            let mut secs = 1;
            for (i, (dt, actor, created, deleted)) in steps.into_iter().enumerate() {
                secs += dt;
                let now = at(secs);
                let actor = format!("actor-{actor}");
                ledger.record(i as u64 + 1, now, &meta(&actor), (created, deleted), &thresholds, guard_window);
                for span in [thresholds.window, guard_window] {
                    let scanned = ledger.deleted_since(now, span, None);
                    let peak = ledger.peak_since(now, span);
                    let by_actor = ledger.deleted_since(now, span, Some(&actor));
                    let sums = ledger.window(span, now);
                    proptest::prop_assert_eq!(sums.deleted, scanned);
                    proptest::prop_assert_eq!(sums.peaks.front().map(|&(_, p)| p), peak);
                    proptest::prop_assert_eq!(sums.by_actor.get(&actor).copied().unwrap_or(0), by_actor);
                }
            }
        }
    }
}
