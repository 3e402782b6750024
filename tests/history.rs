//! Time travel, forensics and repair: state at every point, diffs, explained
//! deletions, reverts that keep later changes, restore and verify.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{files_with_prefix, fold, meta, Kv, KvEvent, TempDir};
use elbstore::elb::{
    fleet, Command, ConflictReason, ElbError, ElbEvent, ElbState, ElbStore, Entity, EntityKey, EntityKind, HealthState,
    HistoryFilter, Lookup, OnConflict, RevertMode, RevertSelection, Settings, Taggable, TargetHealth, TargetSpec,
};
use elbstore::{
    verify, Create, Error, ManualClock, OpenMode, Options, Point, StateMachine, Store, SyncPolicy, Timestamp, TxnMeta,
};
use proptest::prelude::*;

fn kv_options(every: Option<u64>, clock: &ManualClock) -> Options {
    Options::default()
        .create(Create::IfMissing)
        .sync(SyncPolicy::Never)
        .snapshot_every_events(every)
        .segment_bytes(4096)
        .clock(Arc::new(clock.clone()))
}

/// `count` transactions of one to three `Mix` events.
fn mix_txns(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Vec<KvEvent>>> {
    prop::collection::vec(
        prop::collection::vec((0u32..8, any::<u64>()).prop_map(|(k, v)| KvEvent::Mix(k, v)), 1..4),
        count,
    )
}

/// Commits each of `txns`, a second apart: their commit times.
fn commit_each(store: &Store<Kv>, clock: &ManualClock, txns: &[Vec<KvEvent>]) -> Vec<Timestamp> {
    let mut times = Vec::new();
    for (i, events) in txns.iter().enumerate() {
        clock.advance(Duration::from_secs(1));
        times.push(store.commit(meta(i as u64), events.clone()).unwrap().time);
    }
    times
}

/// The log's segments in `dir`, each by the first transaction it holds
/// (its file name, FORMAT.md), in order.
fn segments_by_start(dir: &std::path::Path) -> Vec<(u64, std::path::PathBuf)> {
    let start = |path: &std::path::Path| -> Option<u64> {
        path.file_name()?.to_str()?.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
    };
    let mut segments: Vec<(u64, std::path::PathBuf)> =
        files_with_prefix(dir, "wal-").into_iter().filter_map(|path| Some((start(&path)?, path))).collect();
    segments.sort();
    segments
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn state_at_every_point_is_the_fold_of_the_transactions_before_it(
        txns in mix_txns(1..50),
        every in prop::option::of(1u64..20),
        (checkpoint_every, checkpoints_max) in (1u64..8, 0usize..4),
    ) {
        let dir = TempDir::new("state-at");
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        let options = || kv_options(every, &clock).history_checkpoints(checkpoint_every, checkpoints_max);
        let store: Store<Kv> = Store::open(dir.path(), options()).unwrap();
        let times = commit_each(&store, &clock, &txns);
        let n = txns.len() as u64;
        // The writing store holds checkpoints of states it published; a
        // reopened one makes them as it replays. Newest first, then oldest
        // first, so bases both behind and ahead of a point are in memory.
        for k in (0..=n).rev() {
            prop_assert_eq!(store.state_at(Point::Seq(k)).unwrap().state().clone(), fold(&txns[..k as usize]), "seq {}", k);
        }
        store.close().unwrap();
        let store: Store<Kv> = Store::open(dir.path(), options()).unwrap();
        for k in (0..=n).rev().chain(0..=n) {
            let view = store.state_at(Point::Seq(k)).unwrap();
            prop_assert_eq!(view.seq(), k);
            prop_assert_eq!(view.state(), &fold(&txns[..k as usize]), "seq {}", k);
        }
        for k in 1..=n {
            let time = times[k as usize - 1];
            prop_assert_eq!(store.state_at(Point::Time(time)).unwrap().seq(), k);
            // Half a second later is still that transaction's state (after the
            // last one, that moment is in the store clock's future: refused).
            let later = store.state_at(Point::Time(Timestamp(time.as_nanos() + 500_000_000)));
            if k < n {
                prop_assert_eq!(later.unwrap().seq(), k);
            } else {
                let refused = matches!(later, Err(Error::PointOutOfRange { .. }));
                prop_assert!(refused, "a time after the last commit and the clock is refused");
            }
            prop_assert_eq!(store.state_at(Point::Before(k)).unwrap().state().clone(), fold(&txns[..k as usize - 1]));
            prop_assert_eq!(store.state_at(Point::After(k)).unwrap().state().clone(), fold(&txns[..k as usize]));
        }
        // Without snapshots, the same answers from the log alone.
        drop(store);
        for snapshot in files_with_prefix(dir.path(), "snapshot-") {
            std::fs::remove_file(snapshot).unwrap();
        }
        let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock)).unwrap();
        for k in 0..=n {
            prop_assert_eq!(store.state_at(Point::Seq(k)).unwrap().state().clone(), fold(&txns[..k as usize]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The history index is built a segment at a time, as far as each use
    /// needs: points asked in any order on a fresh open, by number, time,
    /// before and after, and single transactions, are answered as the log
    /// says, whichever segments earlier questions indexed.
    #[test]
    fn points_asked_in_any_order_across_segments_are_the_log_s(
        txns in mix_txns(40..300),
        every in prop::option::of(20u64..200),
        asks in prop::collection::vec((any::<prop::sample::Index>(), 0u8..5), 1..40),
    ) {
        let dir = TempDir::new("index-order");
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        let store: Store<Kv> = Store::open(dir.path(), kv_options(every, &clock)).unwrap();
        let times = commit_each(&store, &clock, &txns);
        store.close().unwrap();
        prop_assert!(files_with_prefix(dir.path(), "wal-").len() > 1, "several segments");
        let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock).mode(OpenMode::ReadOnly)).unwrap();
        let n = txns.len();
        for (at, how) in asks {
            let k = at.index(n) + 1;
            match how {
                0 => prop_assert_eq!(store.state_at(Point::Seq(k as u64)).unwrap().state().clone(), fold(&txns[..k])),
                1 => {
                    let view = store.state_at(Point::Time(times[k - 1])).unwrap();
                    prop_assert_eq!((view.seq(), view.time()), (k as u64, times[k - 1]));
                }
                2 => prop_assert_eq!(store.state_at(Point::Before(k as u64)).unwrap().state().clone(), fold(&txns[..k - 1])),
                3 => prop_assert_eq!(store.resolve(Point::After(k as u64)).unwrap(), (k as u64, times[k - 1])),
                _ => {
                    let txn = store.transaction(k as u64).unwrap();
                    prop_assert_eq!((txn.time, &txn.events), (times[k - 1], &txns[k - 1]));
                }
            }
        }
    }
}

/// Totals by key, whose additions can be undone and whose resets cannot:
/// time travel undoes from a later state where it can, and replays forward
/// where an undo is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Ledger {
    totals: std::collections::BTreeMap<u8, i64>,
    applied: u64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum LedgerEvent {
    Add(u8, i64),
    Reset(u8),
}

thread_local! {
    /// Undos done on this thread (time travel runs on the caller's).
    static UNDONE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Ledger {
    fn add(&mut self, key: u8, amount: i64) {
        let total = self.totals.get(&key).copied().unwrap_or(0).wrapping_add(amount);
        if total == 0 {
            self.totals.remove(&key);
        } else {
            self.totals.insert(key, total);
        }
    }
}

impl StateMachine for Ledger {
    type Event = LedgerEvent;
    /// Runs of several transactions: the undo's runs then end at the
    /// checkpoints it keeps, not at every transaction.
    const REPLAY_RUN_EVENTS: usize = 4;

    fn apply(&mut self, event: &LedgerEvent) {
        match *event {
            LedgerEvent::Add(key, amount) => self.add(key, amount),
            LedgerEvent::Reset(key) => {
                self.totals.remove(&key);
            }
        }
        self.applied += 1;
    }

    fn undo(&mut self, event: &LedgerEvent) -> bool {
        match *event {
            LedgerEvent::Add(key, amount) => self.add(key, amount.wrapping_neg()),
            LedgerEvent::Reset(_) => return false,
        }
        self.applied -= 1;
        UNDONE.with(|undone| undone.set(undone.get() + 1));
        true
    }
}

fn ledger_fold(txns: &[Vec<LedgerEvent>]) -> Ledger {
    let mut state = Ledger::default();
    for event in txns.iter().flatten() {
        state.apply(event);
    }
    state
}

fn ledger_event(resets: bool) -> impl Strategy<Value = LedgerEvent> {
    prop_oneof![
        12 => (0u8..6, -3i64..4).prop_map(|(k, v)| LedgerEvent::Add(k, v)),
        u32::from(resets) => (0u8..6).prop_map(LedgerEvent::Reset),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The same answers whichever way a point is reached: undoing from the
    /// head or a later checkpoint, replaying from an earlier one or from a
    /// snapshot, and forward only once an undo was refused.
    #[test]
    fn state_at_by_undoing_is_the_fold_of_the_transactions_before_it(
        (resets, txns) in any::<bool>().prop_flat_map(|resets| {
            (Just(resets), prop::collection::vec(prop::collection::vec(ledger_event(resets), 1..4), 1..60))
        }),
        every in prop::option::of(1u64..30),
        (checkpoint_every, checkpoints_max) in (1u64..8, 0usize..4),
        order in prop::collection::vec(0u64..1000, 0..40),
    ) {
        let dir = TempDir::new("undo");
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        let options = || kv_options(every, &clock).history_checkpoints(checkpoint_every, checkpoints_max);
        let store: Store<Ledger> = Store::open(dir.path(), options()).unwrap();
        for (i, events) in txns.iter().enumerate() {
            clock.advance(Duration::from_secs(1));
            store.commit(meta(i as u64), events.clone()).unwrap();
        }
        let n = txns.len() as u64;
        store.close().unwrap();
        // Reopened: nothing in memory but the head, so the newest points are
        // undone from it; then points in any order, from whatever is kept.
        let store: Store<Ledger> = Store::open(dir.path(), options()).unwrap();
        let undone = UNDONE.with(|undone| undone.get());
        for (i, k) in (0..=n).rev().chain(order.iter().map(|k| k % (n + 1))).chain(0..=n).enumerate() {
            let view = store.state_at(Point::Seq(k)).unwrap();
            prop_assert_eq!(view.seq(), k);
            prop_assert_eq!(view.state(), &ledger_fold(&txns[..k as usize]), "seq {}", k);
            if i == 1 && !resets && every.is_none() && n >= 10 {
                // One transaction back from the head, no snapshot, nothing
                // else in memory: undone, not replayed from the start.
                prop_assert!(UNDONE.with(|u| u.get()) > undone, "seq {} was undone", k);
            }
        }
    }
}

#[test]
fn a_point_just_before_the_head_is_undone_from_it_not_replayed() {
    let dir = TempDir::new("undo-head");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let options = || kv_options(None, &clock);
    let store: Store<Ledger> = Store::open(dir.path(), options()).unwrap();
    let txns: Vec<Vec<LedgerEvent>> = (0..300).map(|i| vec![LedgerEvent::Add((i % 5) as u8, i as i64 - 150)]).collect();
    for (i, events) in txns.iter().enumerate() {
        clock.advance(Duration::from_secs(1));
        store.commit(meta(i as u64), events.clone()).unwrap();
    }
    store.close().unwrap();
    let store: Store<Ledger> = Store::open(dir.path(), options()).unwrap();
    let undone = UNDONE.with(|undone| undone.get());
    let view = store.state_at(Point::Seq(290)).unwrap();
    assert_eq!(view.state(), &ledger_fold(&txns[..290]));
    assert_eq!(view.time(), Timestamp::from_secs(1_290));
    assert_eq!(UNDONE.with(|u| u.get()) - undone, 10, "ten transactions undone, none replayed");
    // The start of the history is nearer the empty state: replayed forward.
    let view = store.state_at(Point::Seq(20)).unwrap();
    assert_eq!(view.state(), &ledger_fold(&txns[..20]));
    assert_eq!(UNDONE.with(|u| u.get()) - undone, 10);

    // A reset cannot be undone: the store replays forward from then on.
    drop(store);
    let store: Store<Ledger> = Store::open(dir.path(), options().create(Create::IfMissing)).unwrap();
    clock.advance(Duration::from_secs(1));
    store.commit(meta(300), vec![LedgerEvent::Reset(1)]).unwrap();
    let mut all = txns.clone();
    all.push(vec![LedgerEvent::Reset(1)]);
    let undone = UNDONE.with(|u| u.get());
    for k in [299, 295, 300, 298] {
        assert_eq!(store.state_at(Point::Seq(k)).unwrap().state(), &ledger_fold(&all[..k as usize]), "seq {k}");
    }
    assert_eq!(UNDONE.with(|u| u.get()), undone, "the reset is never undone: those points are replayed");
}

#[test]
fn transactions_after_a_time_skip_whole_segments_and_miss_none() {
    let dir = TempDir::new("after-time");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock)).unwrap();
    let mut times = Vec::new();
    for i in 0..400u64 {
        // Runs of commits in the same second, so times repeat at segment edges.
        if i % 3 == 0 {
            clock.advance(Duration::from_secs(1));
        }
        times.push(store.commit(meta(i), vec![KvEvent::Mix(i as u32 % 8, i)]).unwrap().time);
    }
    assert!(store.segments().len() > 5, "the log spans several segments");
    for since in [Timestamp(0), times[0], times[57], times[200], times[398], times[399], Timestamp(u64::MAX)] {
        let seqs: Vec<u64> = store.transactions_after(since).map(|txn| txn.unwrap().seq).collect();
        let expected: Vec<u64> = (1..=400).filter(|&seq| times[seq as usize - 1] > since).collect();
        assert_eq!(seqs, expected, "after {since}");
    }
}

#[test]
fn points_outside_history_are_refused_clearly() {
    let dir = TempDir::new("points");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock)).unwrap();
    assert!(matches!(store.state_at(Point::Time(Timestamp::from_secs(5))), Err(Error::PointOutOfRange { .. })));
    for i in 0..3 {
        clock.advance(Duration::from_secs(10));
        store.commit(meta(i), vec![KvEvent::Set(1, i)]).unwrap();
    }
    let before_first = store.state_at(Point::Time(Timestamp::from_secs(1_005))).unwrap_err();
    let message = before_first.to_string();
    assert!(message.contains("outside the history") && message.contains("transaction 1"), "{message}");
    let future = Point::Time(Timestamp::from_secs(10_000_000_000));
    assert!(matches!(store.state_at(future), Err(Error::PointOutOfRange { .. })));
    assert!(matches!(store.state_at(Point::Seq(4)), Err(Error::PointOutOfRange { .. })));
    assert!(matches!(store.state_at(Point::Before(0)), Err(Error::PointOutOfRange { .. })));
    assert_eq!(store.state_at(Point::Before(1)).unwrap().seq(), 0);
    assert_eq!(store.state_at(Point::Seq(0)).unwrap().state(), &Kv::default());
}

/// A log that starts late (its first segments gone, a snapshot at the
/// floor) answers from its floor on, a segment at a time, and refuses what
/// is before it: a point, and a single transaction, which has no record.
#[test]
fn a_log_that_starts_late_answers_from_its_floor_and_refuses_what_is_before() {
    let dir = TempDir::new("late-log");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock)).unwrap();
    let (mut txns, mut times) = (Vec::new(), vec![Timestamp(0)]);
    for i in 1..=300u64 {
        clock.advance(Duration::from_secs(1));
        let events = vec![KvEvent::Mix((i % 7) as u32, i)];
        times.push(store.commit(meta(i), events.clone()).unwrap().time);
        txns.push(events);
        // A snapshot wherever the floor may fall.
        if (100..200).contains(&i) {
            store.snapshot().unwrap();
        }
    }
    store.close().unwrap();
    let segments = segments_by_start(dir.path());
    let kept = segments.iter().position(|(start, _)| (102..=200).contains(start)).unwrap();
    for (_, gone) in &segments[..kept] {
        std::fs::remove_file(gone).unwrap();
    }
    let floor = segments[kept].0 - 1;
    let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock).mode(OpenMode::ReadOnly)).unwrap();
    let refused = |result: Result<u64, Error>| matches!(result, Err(Error::PointOutOfRange { .. }));
    assert_eq!(store.resolve(Point::Seq(floor)).unwrap(), (floor, times[floor as usize]), "the snapshot's time");
    assert_eq!(store.resolve(Point::Seq(floor + 1)).unwrap(), (floor + 1, times[floor as usize + 1]));
    assert_eq!(store.resolve(Point::Time(times[floor as usize + 5])).unwrap().0, floor + 5);
    assert!(refused(store.resolve(Point::Seq(floor - 1)).map(|(seq, _)| seq)));
    let txn = store.transaction(floor + 1).unwrap();
    assert_eq!((txn.seq, &txn.events), (floor + 1, &txns[floor as usize]));
    assert!(refused(store.transaction(floor).map(|t| t.seq)), "no record at the floor");
    assert!(refused(store.transaction(1).map(|t| t.seq)), "none before it");
    let past = store.state_at(Point::Seq(floor + 3)).unwrap();
    assert_eq!(past.state(), &fold(&txns[..floor as usize + 3]));
    assert!(refused(store.state_at(Point::Seq(floor - 1)).map(|v| v.seq())));
}

/// A replay of hundreds of transactions is read and decoded on a second
/// thread while this one applies: it is still the fold of the log, so are
/// the checkpoints it leaves, and a record it cannot read is its error,
/// naming the record, while points before the record still answer.
#[test]
fn a_long_replay_is_the_fold_of_the_log_and_stops_at_the_record_it_cannot_read() {
    use elbstore::WalError;
    let dir = TempDir::new("long-replay");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    // The replays' lengths, from their first progress report.
    let replays = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = replays.clone();
    let progress = elbstore::ProgressFn::new(move |p| {
        if p.work == elbstore::Work::Replay && p.done == 0 {
            sink.lock().push(p.total);
        }
    });
    let options =
        || kv_options(None, &clock).segment_bytes(64 << 10).history_checkpoints(100, 8).progress(progress.clone());
    let store: Store<Kv> = Store::open(dir.path(), options()).unwrap();
    const NEEDLE: u64 = 0xFEED_FACE_CAFE_BEEF;
    let txns: Vec<Vec<KvEvent>> = (1..=3000u64)
        .map(|i| match i {
            2222 => vec![KvEvent::Set(9, NEEDLE)],
            _ => vec![KvEvent::Mix((i % 8) as u32, i * 7919), KvEvent::Set(100 + (i % 3) as u32, i)],
        })
        .collect();
    commit_each(&store, &clock, &txns);
    // Opened again, the head is this snapshot's: every past point is a replay.
    store.snapshot().unwrap();
    store.close().unwrap();
    let reader = || Store::<Kv>::open(dir.path(), options().mode(OpenMode::ReadOnly)).unwrap();
    let store = reader();
    // From the empty state, then from the checkpoints that replay left.
    for seq in [2999u64, 1500, 2750, 256, 255, 1] {
        let past = store.state_at(Point::Seq(seq)).unwrap();
        assert_eq!(past.state(), &fold(&txns[..seq as usize]), "seq {seq}");
    }

    let (at, segment) = segments_by_start(dir.path())
        .into_iter()
        .find_map(|(_, path)| {
            let bytes = std::fs::read(&path).unwrap();
            let at = bytes.windows(8).position(|w| w == NEEDLE.to_le_bytes())?;
            Some((at as u64, path))
        })
        .expect("the needle is in the log");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[at as usize] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let store = reader();
    match store.state_at(Point::Seq(2999)) {
        Err(Error::Wal(WalError::Corrupted { path, offset, .. })) => {
            assert_eq!(path, segment);
            // Transaction 2221 replays below, so this is 2222's record.
            assert!(offset <= at, "the record at {offset} holds the changed byte at {at}");
        }
        other => panic!("{:?}", other.map(|v| v.seq())),
    }
    // Everything before the record was applied: the failed replay kept the
    // checkpoint at 2,200, in the batch the record's error came after.
    assert_eq!(store.state_at(Point::Seq(2210)).unwrap().state(), &fold(&txns[..2210]));
    assert_eq!(replays.lock().last(), Some(&10), "replayed from the checkpoint at 2,200");
    // The records before it still replay.
    for seq in [2221u64, 2000, 700] {
        assert_eq!(store.state_at(Point::Seq(seq)).unwrap().state(), &fold(&txns[..seq as usize]), "seq {seq}");
    }
}

fn elb_options() -> Options {
    Options::default().create(Create::IfMissing).sync(SyncPolicy::Never).snapshot_every_events(Some(500))
}

fn build(store: &ElbStore, range: std::ops::Range<u64>) {
    for i in range {
        store
            .execute_with(TxnMeta::new("svc:provisioning", format!("create {}", fleet::name(i))), |_, ctx| {
                fleet::reference_commands(i, ctx.seq)
            })
            .unwrap();
    }
}

/// Points near the head of a reopened store are undone from the head: every
/// kind of change (creations, updates, health, deletions) undone gives the
/// state its transactions fold to.
#[test]
fn elb_points_undone_from_the_head_are_the_fold_of_the_log() {
    let dir = TempDir::new("elb-undo");
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    build(&store, 0..30);
    let first = store.read().seq();
    delete_load_balancers(&store, (0..30).filter(|i| i % 7 == 2));
    build(&store, 30..35);
    for i in 0..20u64 {
        let n = (i * 3) % 30;
        if n % 7 == 2 {
            continue;
        }
        change_health(&store, n, i, i % 2 == 0);
    }
    let last = store.read().seq();
    store.close().unwrap();
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    let expected = folded_states(&store, last);
    for k in (first..=last).rev() {
        let view = store.store().state_at(Point::Seq(k)).unwrap();
        assert_eq!(view.state(), &expected[k as usize], "seq {k}");
    }
}

/// Points far from the head of a reopened store, with no checkpoint kept in
/// memory, are a snapshot and a replay: the snapshot decoded sharing the
/// head's equal resources, after deletions, health changes and tags made
/// the head differ, is still the state its transactions fold to.
#[test]
fn elb_points_loaded_from_snapshots_share_the_head_s_resources_and_are_the_fold_of_the_log() {
    let dir = TempDir::new("elb-snapshot-like");
    // Snapshots taken where the test says, none in the background.
    let options = elb_options().snapshot_every_events(None).history_checkpoints(1, 0);
    let store = ElbStore::open(dir.path(), options.clone(), Settings::in_region("us-east-1")).unwrap();
    build(&store, 0..35);
    store.store().snapshot().unwrap();
    build(&store, 35..70);
    store.store().snapshot().unwrap();
    delete_load_balancers(&store, (0..70).filter(|i| i % 9 == 4));
    for i in 0..40u64 {
        let n = (i * 7) % 70;
        if n % 9 == 4 {
            continue;
        }
        change_health(&store, n, i, i % 3 == 0);
    }
    store.store().snapshot().unwrap();
    // Resources changed in place after the snapshots: tagged.
    let tagged = store.read().seq() + 1;
    for n in [10u64, 50] {
        store
            .execute(
                TxnMeta::new("svc:tags", "tag"),
                vec![Command::AddTags {
                    resources: vec![elbstore::elb::Taggable::LoadBalancer(lb_id(&store, n))],
                    tags: [("owner".to_string(), format!("o{n}"))].into(),
                }],
            )
            .unwrap();
    }
    build(&store, 70..90);
    let last = store.read().seq();
    store.close().unwrap();
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    assert_eq!(store.store().snapshots().len(), 3, "snapshots to load: {:?}", store.store().snapshots());
    let expected = folded_states(&store, last);
    let head = store.read();
    let first_snapshot = store.store().snapshots()[0].seq;
    for k in (0..=last - 20).rev() {
        let view = store.store().state_at(Point::Seq(k)).unwrap();
        assert_eq!(view.state(), &expected[k as usize], "seq {k}");
        if k >= first_snapshot {
            // Load balancer 0 never changed after its creation: one value in both.
            let ours = view.load_balancer_by_name(&fleet::account(0), &fleet::name(0)).unwrap();
            let heads = head.load_balancer_by_name(&fleet::account(0), &fleet::name(0)).unwrap();
            assert!(std::sync::Arc::ptr_eq(ours, heads), "seq {k}: shared with the head");
            // Load balancer 10, tagged since: before the tag, the past state's own.
            let ours = view.load_balancer_by_name(&fleet::account(10), &fleet::name(10)).unwrap();
            let heads = head.load_balancer_by_name(&fleet::account(10), &fleet::name(10)).unwrap();
            if k < tagged {
                let untagged = !ours.tags.contains_key("owner");
                assert!(!std::sync::Arc::ptr_eq(ours, heads) && untagged, "seq {k}: its own, untagged");
            }
        }
    }
}

fn lb_id(store: &ElbStore, i: u64) -> elbstore::elb::LoadBalancerId {
    store.read().load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id
}

/// Deletes the fleet's load balancers `fleet` in one transaction.
fn delete_load_balancers(store: &ElbStore, fleet: impl Iterator<Item = u64>) {
    let commands = fleet.map(|i| Command::DeleteLoadBalancer { load_balancer: lb_id(store, i) }).collect();
    store.execute(TxnMeta::new("maint:cleanup", "remove stale load balancers"), commands).unwrap();
}

/// The `i`th health check of load balancer `n`'s group: one of its targets up or down.
fn change_health(store: &ElbStore, n: u64, i: u64, up: bool) {
    let tg = store.read().target_group_by_name(&fleet::account(n), &fleet::name(n)).unwrap().id;
    let health = Command::UpdateTargetHealth {
        target_group: tg,
        target: TargetSpec::new(fleet::target_id(n, i % fleet::TARGETS_PER_GROUP)),
        health: fleet::check_result(up, i),
    };
    store.execute(TxnMeta::new("svc:health", "health"), vec![health]).unwrap();
}

/// The state after each transaction through `last`, folded from the log
/// (index `k` is the state after transaction `k`).
fn folded_states(store: &ElbStore, last: u64) -> Vec<ElbState> {
    let mut folded = ElbState::default();
    let mut states = vec![folded.clone()];
    for txn in store.store().transactions(1..=last) {
        for event in &txn.unwrap().events {
            folded.apply(event);
        }
        states.push(folded.clone());
    }
    states
}

/// The 2012 incident, end to end: a maintenance process deletes a tenth of the
/// fleet; customers keep working; the deletions are found and reverted, and
/// every later change survives.
#[test]
fn reverting_the_2012_deletion_restores_everything_and_keeps_later_changes() {
    let dir = TempDir::new("incident");
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    let fleet_size = 200u64;
    build(&store, 0..fleet_size);
    let before_incident = store.read();

    // The maintenance process deletes every tenth load balancer, in batches.
    let victims: Vec<u64> = (0..fleet_size).filter(|i| i % 10 == 3).collect();
    for batch in victims.chunks(5) {
        let commands = batch.iter().map(|&i| Command::DeleteLoadBalancer { load_balancer: lb_id(&store, i) }).collect();
        store.execute(TxnMeta::new("maint:cleanup", "remove stale load balancers"), commands).unwrap();
    }
    let deleted: Vec<_> = victims
        .iter()
        .map(|&i| before_incident.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id)
        .collect();
    assert_eq!(store.read().counts().load_balancers, 180);

    // Customers keep working: new load balancers, changes to surviving ones.
    build(&store, fleet_size..fleet_size + 10);
    let survivor = lb_id(&store, 5);
    store
        .execute(
            TxnMeta::new("customer:5", "tag it"),
            vec![Command::AddTags {
                resources: vec![Taggable::LoadBalancer(survivor)],
                tags: [("env".to_owned(), "prod".to_owned())].into(),
            }],
        )
        .unwrap();
    let tg = store.read().target_group_by_name(&fleet::account(7), &fleet::name(7)).unwrap().id;
    store
        .execute(
            TxnMeta::new("svc:health", "health"),
            vec![Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(fleet::target_id(7, 1)),
                health: TargetHealth { state: HealthState::Healthy, reason: None },
            }],
        )
        .unwrap();
    let before_revert = store.read();

    // Detection: the deleted name says who deleted it, when and why.
    match store.lookup_load_balancer(&fleet::account(3), &fleet::name(3)).unwrap() {
        Lookup::Deleted(version) => {
            assert_eq!(version.meta.actor, "maint:cleanup");
            assert_eq!(version.meta.reason, "remove stale load balancers");
        }
        other => panic!("expected an explained deletion, got {other:?}"),
    }
    // The operator finds the maintenance transactions and reverts them all.
    let maintenance: Vec<u64> = store
        .history(HistoryFilter { actor: Some("maint:cleanup".into()), ..HistoryFilter::default() })
        .unwrap()
        .map(|t| t.unwrap().seq)
        .collect();
    assert_eq!(maintenance.len(), 4);
    let selection = RevertSelection::Actor {
        actor: "maint:cleanup".into(),
        from: Point::Seq(0),
        to: Point::Seq(store.read().seq()),
    };
    let dry = store
        .revert(
            selection.clone(),
            TxnMeta::new("ops:oncall", "undo mistaken cleanup"),
            RevertMode::DryRun,
            OnConflict::Abort,
        )
        .unwrap();
    assert!(dry.conflicts.is_empty(), "{:?}", dry.conflicts);
    assert_eq!(dry.committed, None);
    assert_eq!(store.read().seq(), before_revert.seq(), "a dry run writes nothing");
    let plan = store
        .revert(selection, TxnMeta::new("ops:oncall", "undo mistaken cleanup"), RevertMode::Apply, OnConflict::Abort)
        .unwrap();
    assert!(plan.committed.is_some());
    assert_eq!(plan.reverted_transactions, maintenance);
    // The compensating transaction is marked as the revert of all four, in
    // the log (and so in history, the change feed and every tool).
    let revert_txn = store.store().transaction(plan.committed.unwrap().seq).unwrap();
    assert_eq!(revert_txn.meta.reverts, maintenance);
    assert_eq!(revert_txn.meta.actor, "ops:oncall");
    assert_eq!(plan.restored.len(), 20 * 5, "each load balancer with its 2 listeners and 2 rules");

    let after = store.read();
    // Every deleted resource is back exactly as it was.
    for id in &deleted {
        assert_eq!(after.load_balancer(*id), before_incident.load_balancer(*id));
        let listeners: Vec<_> = after.listeners_of(*id).cloned().collect();
        let original: Vec<_> = before_incident.listeners_of(*id).cloned().collect();
        assert_eq!(listeners, original);
        for listener in &original {
            assert_eq!(
                after.rules_of(listener.id).cloned().collect::<Vec<_>>(),
                before_incident.rules_of(listener.id).cloned().collect::<Vec<_>>()
            );
        }
    }
    // Every later change survived.
    assert_eq!(after.counts().load_balancers, 210);
    assert_eq!(after.load_balancer(survivor).unwrap().tags.get("env").map(String::as_str), Some("prod"));
    let target = after.targets_of(tg).find(|t| *t.key.id == *fleet::target_id(7, 1)).unwrap().clone();
    assert_eq!(target.health.state, HealthState::Healthy);
    for i in fleet_size..fleet_size + 10 {
        assert!(after.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).is_some());
    }
    // And the state equals the one before the incident plus the later changes.
    let mut expected = before_revert.state().clone();
    for event in &plan.events {
        expected.apply(event);
    }
    assert_eq!(after.state(), &expected);
    // Nothing was rewritten: the deletions are still in history.
    assert!(matches!(
        store.history(HistoryFilter { actor: Some("maint:cleanup".into()), ..Default::default() }).unwrap().count(),
        4
    ));
}

#[test]
fn a_conflicting_revert_reports_per_resource_and_writes_nothing_unless_told_to_skip() {
    let dir = TempDir::new("conflicts");
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    build(&store, 0..3);
    let (a, b) = (lb_id(&store, 0), lb_id(&store, 1));
    let deletion = store
        .execute(
            TxnMeta::new("maint", "delete two"),
            vec![Command::DeleteLoadBalancer { load_balancer: a }, Command::DeleteLoadBalancer { load_balancer: b }],
        )
        .unwrap()
        .committed
        .unwrap()
        .seq;
    // Someone reuses lb-0's name since.
    let mut spec = fleet::load_balancer_spec(0);
    spec.tags.clear();
    let reused =
        store.execute(TxnMeta::new("customer", "reuse the name"), vec![Command::CreateLoadBalancer(spec)]).unwrap();
    let seq_before = store.read().seq();
    let meta = TxnMeta::new("ops", "undo");
    let plan = store
        .revert(RevertSelection::Transactions(vec![deletion]), meta.clone(), RevertMode::Apply, OnConflict::Abort)
        .unwrap();
    assert_eq!(plan.committed, None);
    assert_eq!(store.read().seq(), seq_before, "nothing written");
    let conflict = plan.conflicts.iter().find(|c| c.key == EntityKey::LoadBalancer(a)).expect("lb-0 conflicts");
    assert!(matches!(conflict.reason, ConflictReason::NameTaken { .. }), "{conflict:?}");
    assert_eq!(conflict.label, "lb-0");
    // Skipping: lb-1 comes back with its listeners and rules; lb-0 and its
    // children (which need it) stay deleted.
    let plan = store
        .revert(RevertSelection::Transactions(vec![deletion]), meta, RevertMode::Apply, OnConflict::SkipConflicting)
        .unwrap();
    assert!(plan.committed.is_some());
    let view = store.read();
    assert!(view.load_balancer(b).is_some());
    assert_eq!(view.listeners_of(b).count(), 2);
    assert!(view.load_balancer(a).is_none());
    assert!(plan.conflicts.iter().any(|c| matches!(c.reason, ConflictReason::ParentMissing { .. })));
    let Some(elbstore::elb::Outcome::LoadBalancerCreated(new_id)) = reused.outcomes.first().cloned() else { panic!() };
    assert!(view.load_balancer(new_id).is_some(), "the later load balancer is untouched");
}

#[test]
fn a_revert_never_overwrites_a_later_change() {
    let dir = TempDir::new("changed-since");
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    build(&store, 0..1);
    let lb = lb_id(&store, 0);
    let tag = |k: &str| Command::AddTags {
        resources: vec![Taggable::LoadBalancer(lb)],
        tags: [(k.to_owned(), "v".to_owned())].into(),
    };
    let first = store.execute(TxnMeta::new("a", "tag"), vec![tag("first")]).unwrap().committed.unwrap().seq;
    let second = store.execute(TxnMeta::new("b", "tag"), vec![tag("second")]).unwrap().committed.unwrap().seq;
    let plan = store
        .revert(
            RevertSelection::Transactions(vec![first]),
            TxnMeta::new("ops", "undo"),
            RevertMode::DryRun,
            OnConflict::Abort,
        )
        .unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].reason, ConflictReason::ChangedSince { seq: Some(second) });
}

/// The typed store answers time travel itself, with the same views as the
/// generic store underneath, and every history method fails with `ElbError`,
/// so a service handles one error type.
#[test]
fn the_typed_store_reads_the_past_and_answers_in_its_own_error_type() {
    let dir = TempDir::new("elb-state-at");
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    build(&store, 0..3);
    let gone = lb_id(&store, 1);
    let deleted = store
        .execute(TxnMeta::new("ops:bob", "retire lb-1"), vec![Command::DeleteLoadBalancer { load_balancer: gone }])
        .unwrap()
        .committed
        .unwrap();
    for seq in 0..=deleted.seq {
        let typed = store.state_at(Point::Seq(seq)).unwrap();
        let generic = store.store().state_at(Point::Seq(seq)).unwrap();
        assert_eq!((typed.seq(), typed.state()), (generic.seq(), generic.state()), "seq {seq}");
        assert_eq!(typed.counts().load_balancers, seq.min(3) as usize - usize::from(seq == deleted.seq));
    }
    assert!(store.state_at(Point::Before(deleted.seq)).unwrap().load_balancer(gone).is_some());
    assert_eq!(store.state_at(Point::Time(deleted.time)).unwrap().seq(), deleted.seq);

    let beyond = Point::Seq(deleted.seq + 1);
    let out_of_range = |err: ElbError| matches!(err, ElbError::Store(Error::PointOutOfRange { .. }));
    assert!(out_of_range(store.state_at(beyond).unwrap_err()));
    assert!(out_of_range(store.diff(Point::Seq(0), beyond).unwrap_err()));
    let filter = HistoryFilter { to: Some(beyond), ..HistoryFilter::default() };
    assert!(out_of_range(store.history(filter).err().unwrap()));
    store.close().unwrap();
}

#[test]
fn history_diff_and_lookups_explain_what_happened() {
    let dir = TempDir::new("forensics");
    let store = ElbStore::open(dir.path(), elb_options(), Settings::in_region("us-east-1")).unwrap();
    build(&store, 0..3);
    let start = store.read().seq();
    let lb = lb_id(&store, 1);
    store
        .execute(
            TxnMeta::new("ops:alice", "protect"),
            vec![Command::ModifyLoadBalancerAttributes {
                load_balancer: lb,
                attributes: [("idle_timeout.timeout_seconds".to_owned(), "120".to_owned())].into(),
            }],
        )
        .unwrap();
    let deleter = TxnMeta::new("ops:bob", "decommission lb-2").with_ticket("CHG-42");
    let gone = lb_id(&store, 2);
    let deleted_at =
        store.execute(deleter, vec![Command::DeleteLoadBalancer { load_balancer: gone }]).unwrap().committed.unwrap();
    build(&store, 3..4);

    let diff = store.diff(Point::Seq(start), Point::Seq(store.read().seq())).unwrap();
    let counts = diff.counts();
    assert_eq!(counts[&EntityKind::LoadBalancer].created, 1);
    assert_eq!(counts[&EntityKind::LoadBalancer].deleted, 1);
    assert_eq!(counts[&EntityKind::LoadBalancer].modified, 1);
    assert_eq!(counts[&EntityKind::Listener].deleted, 2);
    assert_eq!(counts[&EntityKind::Target].created, 10);
    let modified = &diff.modified[0];
    assert_eq!(modified.fields.len(), 1);
    assert_eq!(modified.fields[0].field, "attributes");
    assert!(modified.fields[0].after.contains("120"));
    // The reverse diff swaps created and deleted.
    let back = store.diff(Point::Seq(store.read().seq()), Point::Seq(start)).unwrap();
    assert_eq!(back.counts()[&EntityKind::LoadBalancer].created, 1);
    assert_eq!(back.deleted.len(), diff.created.len());

    match store.lookup(&EntityKey::LoadBalancer(gone)).unwrap() {
        Lookup::Deleted(version) => {
            assert_eq!((version.seq, version.time), (deleted_at.seq, deleted_at.time));
            assert_eq!(version.meta.actor, "ops:bob");
            assert_eq!(version.meta.ticket.as_deref(), Some("CHG-42"));
            assert!(matches!(version.event, ElbEvent::Deleted(Entity::LoadBalancer(ref old)) if old.name == "lb-2"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(store.lookup(&EntityKey::LoadBalancer(lb)).unwrap(), Lookup::Live(_)));
    assert_eq!(store.lookup(&EntityKey::LoadBalancer(elbstore::elb::LoadBalancerId(12345))).unwrap(), Lookup::Unknown);

    let versions = store.entity_history(&EntityKey::LoadBalancer(lb)).unwrap();
    assert_eq!(versions.len(), 2, "created, then modified");
    assert!(matches!(versions[0].event, ElbEvent::Created(_)));
    assert_eq!(versions[1].meta.actor, "ops:alice");
    let bobs: Vec<_> = store
        .history(HistoryFilter { actor: Some("ops:bob".into()), ..HistoryFilter::default() })
        .unwrap()
        .map(|t| t.unwrap())
        .collect();
    assert_eq!(bobs.len(), 1);
    let summary = elbstore::elb::Summary::of(&bobs[0].events);
    // The load balancer, its 2 listeners and 2 rules go; its group's 10
    // targets become unused (no load balancer uses the group any more).
    assert_eq!((summary.created_total(), summary.changed_total(), summary.deleted_total()), (0, 10, 5));
}

/// An entity's history reads only its own events' bytes (and the metadata
/// before them), each checked against the checksum its index took when the
/// whole record was read: a changed byte there is an error naming the file
/// and offset, never a wrong version. A changed byte in another resource's
/// event of the same record is that resource's error (and `verify`'s).
#[test]
fn an_entity_history_checks_the_bytes_it_reads_against_the_index() {
    use elbstore::{FrameProblem, WalError};
    let dir = TempDir::new("history-pieces");
    let options = elb_options().snapshot_every_events(None);
    let store = ElbStore::open(dir.path(), options.clone(), Settings::in_region("us-east-1")).unwrap();
    store.execute_with(TxnMeta::new("svc:provisioning", "two"), |_, ctx| fleet::batch_commands(0..2, ctx.seq)).unwrap();
    let (zero, one) = (lb_id(&store, 0), lb_id(&store, 1));
    for (lb, value) in [(zero, "needle-zero"), (one, "needle-one")] {
        let tags = [("mark".to_owned(), value.to_owned())].into();
        let command = Command::AddTags { resources: vec![Taggable::LoadBalancer(lb)], tags };
        store.execute(TxnMeta::new("ops:tagger", "mark"), vec![command]).unwrap();
    }
    let (key_zero, key_one) = (EntityKey::LoadBalancer(zero), EntityKey::LoadBalancer(one));
    let before = store.entity_history(&key_zero).unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(store.entity_history(&key_one).unwrap().len(), 2);

    let segment = files_with_prefix(dir.path(), "wal-").remove(0);
    let flip = |needle: &[u8]| {
        let mut bytes = std::fs::read(&segment).unwrap();
        let at = bytes.windows(needle.len()).position(|w| w == needle).expect("the bytes are in the log");
        // Still valid text: decoded without the check, it would be a wrong version.
        bytes[at] ^= 0x20;
        std::fs::write(&segment, bytes).unwrap();
        at as u64
    };
    let changed_at = |err: ElbError| match err {
        ElbError::Store(Error::Wal(WalError::Corrupted {
            path,
            offset,
            problem: FrameProblem::ChangedSinceIndexed { bytes, .. },
        })) => {
            // The error names the record's frame, and which of its bytes changed.
            assert_eq!(path, segment);
            offset + bytes.start..offset + bytes.end
        }
        other => panic!("{other:?}"),
    };
    // Load balancer 1's creation, in the record that created both.
    let at = flip(b"lb-1-");
    assert!(changed_at(store.entity_history(&key_one).unwrap_err()).contains(&at));
    assert_eq!(store.entity_history(&key_zero).unwrap(), before, "its own bytes did not change");
    // A reader of whole records sees the record's checksum fail.
    assert!(store.store().transaction(1).is_err());
    // Load balancer 0's tag change, a record of its own.
    let at = flip(b"needle-zero");
    assert!(changed_at(store.entity_history(&key_zero).unwrap_err()).contains(&at));
    drop(store);
    let report = verify::<ElbState>(dir.path(), options.mode(OpenMode::ReadOnly)).unwrap();
    assert!(!report.ok());
}

#[test]
fn restore_writes_a_verified_new_store_and_refuses_a_non_empty_directory() {
    let dir = TempDir::new("restore-source");
    let store =
        ElbStore::open(dir.path(), elb_options().snapshot_every_events(Some(40)), Settings::in_region("us-east-1"))
            .unwrap();
    build(&store, 0..10);
    let point = store.read().seq() - 3;
    build(&store, 10..12);
    let target = TempDir::new("restore-target");
    let report = store
        .store()
        .restore_to(
            Point::Seq(point),
            target.path(),
            Options::default().create(Create::IfMissing).identity("restored", "recovery"),
            &TxnMeta::new("ops:oncall", "recover lb state").with_ticket("INC-1224"),
        )
        .unwrap();
    let provenance = std::fs::read_to_string(&report.provenance).unwrap();
    assert!(provenance.contains("actor: ops:oncall") && provenance.contains("ticket: INC-1224"), "{provenance}");
    assert!(provenance.contains(&format!("seq: {point}")));
    assert_eq!(report.seq, point);
    assert!(report.verified.ok() && report.verified.transactions == point);
    let restored = ElbStore::open(
        target.path(),
        Options::default().create(Create::IfMissing).mode(OpenMode::ReadOnly),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    assert_eq!(restored.read().state(), store.store().state_at(Point::Seq(point)).unwrap().state());
    assert_eq!(restored.store().identity().name, "restored");
    assert_ne!(restored.store().identity().id, store.store().identity().id);
    let original: Vec<_> = store.store().transactions(1..=point).map(|t| t.unwrap()).collect();
    let copied: Vec<_> = restored.store().transactions(..).map(|t| t.unwrap()).collect();
    assert_eq!(original, copied, "the same transactions, sequence numbers and times");
    drop(restored);
    let again = store.store().restore_to(
        Point::Seq(point),
        target.path(),
        Options::default().create(Create::IfMissing),
        &TxnMeta::new("ops", "again"),
    );
    assert!(matches!(again, Err(Error::DirectoryNotEmpty { .. })), "{again:?}");
    let other = TempDir::new("restore-unattributed");
    let unattributed = store.store().restore_to(
        Point::Seq(point),
        other.path(),
        Options::default().create(Create::IfMissing),
        &TxnMeta::new("ops", ""),
    );
    assert!(matches!(unattributed, Err(Error::MissingAttribution { field: "reason" })), "{unattributed:?}");
}

#[test]
fn verify_reports_the_first_problem_with_file_and_offset() {
    let dir = TempDir::new("verify");
    let clock = ManualClock::new(Timestamp::from_secs(1));
    let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock)).unwrap();
    for i in 0..60 {
        store.commit(meta(i), vec![KvEvent::Set(i as u32, i)]).unwrap();
        if i == 30 {
            store.snapshot().unwrap();
        }
    }
    drop(store);
    let report = verify::<Kv>(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.transactions, report.snapshots_checked), (60, 1));
    assert!(report.segments >= 2);

    // A snapshot with a valid frame but the wrong state: written by a store
    // that shares this one's identity but not its history.
    let impostor = TempDir::new("verify-impostor");
    std::fs::create_dir_all(impostor.path()).unwrap();
    std::fs::copy(dir.join("IDENTITY"), impostor.join("IDENTITY")).unwrap();
    let other: Store<Kv> = Store::open(impostor.path(), kv_options(None, &clock)).unwrap();
    for i in 0..31 {
        other.commit(meta(i), vec![KvEvent::Set(999, i)]).unwrap();
    }
    let fake = other.snapshot().unwrap();
    drop(other);
    let real = files_with_prefix(dir.path(), "snapshot-").remove(0);
    std::fs::copy(&fake.path, &real).unwrap();
    let report = verify::<Kv>(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    assert!(matches!(&report.problems[..], [Error::SnapshotMismatch { seq: 31, .. }]), "{:?}", report.problems);

    // Damage in a sealed segment names the file and offset.
    let segment = files_with_prefix(dir.path(), "wal-").remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[200] ^= 1;
    std::fs::write(&segment, bytes).unwrap();
    let report = verify::<Kv>(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    assert!(!report.ok());
    let message = report.problems[0].to_string();
    assert!(message.contains("wal-00000000000000000001.log") && message.contains("byte offset"), "{message}");
}

/// A random control-plane history over a small fleet: tags, health, target
/// registrations, listener changes, deletions and creations.
fn random_history(seed_ops: &[(u8, u8, u8)], store: &ElbStore) {
    for (n, &(op, a, b)) in seed_ops.iter().enumerate() {
        let view = store.read();
        let lbs: Vec<_> = view.load_balancers().map(|lb| lb.id).collect();
        let tgs: Vec<_> = view.target_groups().map(|tg| tg.id).collect();
        drop(view);
        let lb = lbs.get(a as usize % lbs.len().max(1)).copied();
        let tg = tgs.get(a as usize % tgs.len().max(1)).copied();
        let command = match (op % 5, lb, tg) {
            (0, Some(lb), _) => Command::AddTags {
                resources: vec![Taggable::LoadBalancer(lb)],
                tags: [(format!("k{}", b % 4), format!("v{n}"))].into(),
            },
            (1, _, Some(tg)) => Command::UpdateTargetHealth {
                target_group: tg,
                target: TargetSpec::new(format!("i-{:012x}{:02}", tg.created_seq(), 0)),
                health: fleet::check_result(false, b as u64),
            },
            (2, _, Some(tg)) => {
                Command::RegisterTargets { target_group: tg, targets: vec![TargetSpec::new(format!("i-x{b}"))] }
            }
            (3, Some(lb), _) => Command::DeleteLoadBalancer { load_balancer: lb },
            _ => {
                let i = 100 + u64::from(b % 8);
                let _ = store.execute_with(TxnMeta::new(format!("actor-{}", a % 3), "create"), |_, ctx| {
                    fleet::reference_commands(i, ctx.seq)
                });
                continue;
            }
        };
        let _ = store.execute(TxnMeta::new(format!("actor-{}", a % 3), format!("op {n}")), vec![command]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn reverting_without_conflicts_equals_the_history_without_those_transactions(
        ops in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 1..40),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let dir = TempDir::new("revert-prop");
        let store = ElbStore::open(dir.path(), elb_options().snapshot_every_events(None), Settings::in_region("us-east-1")).unwrap();
        build(&store, 0..3);
        random_history(&ops, &store);
        let txns: Vec<_> = store.store().transactions(..).map(|t| t.unwrap()).collect();
        let chosen: BTreeSet<u64> = picks.iter().map(|i| txns[i.index(txns.len())].seq).collect();
        let seq_before = store.read().seq();
        let plan = store
            .revert(RevertSelection::Transactions(chosen.iter().copied().collect()), TxnMeta::new("ops", "revert"), RevertMode::Apply, OnConflict::Abort)
            .unwrap();
        if plan.conflicts.is_empty() {
            let mut expected = ElbState::default();
            for txn in txns.iter().filter(|t| !chosen.contains(&t.seq)) {
                for event in &txn.events {
                    expected.apply(event);
                }
            }
            prop_assert_eq!(store.read().state().clone(), expected);
        } else {
            prop_assert_eq!(plan.committed, None);
            prop_assert_eq!(store.read().seq(), seq_before, "a conflict writes nothing");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_resource_history_is_its_events_in_the_log_in_order(
        ops in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 1..40),
        split in 0usize..40,
    ) {
        let dir = TempDir::new("entity-history-prop");
        let store = ElbStore::open(dir.path(), elb_options().segment_bytes(8 * 1024), Settings::in_region("us-east-1")).unwrap();
        build(&store, 0..3);
        // One transaction that changes the same resource twice.
        let tag = |k: &str| Command::AddTags {
            resources: vec![Taggable::LoadBalancer(lb_id(&store, 1))],
            tags: [(k.to_owned(), "v".to_owned())].into(),
        };
        let twice = store.execute(TxnMeta::new("ops", "two tags"), vec![tag("a"), tag("b")]).unwrap();
        prop_assert_eq!(store.store().transaction(twice.committed.unwrap().seq).unwrap().events.len(), 2);
        // Ask once part-way, so the index is built in two steps.
        random_history(&ops[..split.min(ops.len())], &store);
        let first = store.store().transaction(1).unwrap().events[0].key();
        prop_assert!(!store.entity_history(&first).unwrap().is_empty());
        random_history(&ops[split.min(ops.len())..], &store);
        let mut expected: std::collections::BTreeMap<EntityKey, Vec<(u64, Timestamp, TxnMeta, ElbEvent)>> =
            Default::default();
        for txn in store.store().transactions(..) {
            let txn = txn.unwrap();
            for event in txn.events {
                expected.entry(event.key()).or_default().push((txn.seq, txn.time, txn.meta.clone(), event));
            }
        }
        for (key, events) in &expected {
            let versions = store.entity_history(key).unwrap();
            let got: Vec<_> = versions.into_iter().map(|v| (v.seq, v.time, v.meta, v.event)).collect();
            prop_assert_eq!(&got, events, "{}", key);
        }
    }
}

/// Long work reports its progress to `Options::progress`: the history index
/// (through a point named by sequence number, through the head for a time)
/// and the replay for a past point, a restore, a verify; each piece starts
/// at 0 and ends with `done == total`.
#[test]
fn long_work_reports_progress_from_start_to_end() {
    use elbstore::{Progress, ProgressFn, Work};
    let dir = TempDir::new("progress");
    let clock = ManualClock::new(Timestamp(1));
    let store: Store<Kv> = Store::open(dir.path(), kv_options(None, &clock)).unwrap();
    for i in 0..3000u64 {
        clock.advance(Duration::from_millis(1));
        store.commit(meta(i), vec![KvEvent::Set((i % 50) as u32, i)]).unwrap();
    }
    let time_of_2000 = store.transaction(2000).unwrap().time;
    drop(store);
    let seen: Arc<parking_lot::Mutex<Vec<Progress>>> = Arc::default();
    let sink = seen.clone();
    let options =
        kv_options(None, &clock).mode(OpenMode::ReadOnly).progress(ProgressFn::new(move |p| sink.lock().push(p)));
    // Each piece of work of a kind, as (done, total) reports: a piece ends
    // when its work is done (a report may be repeated).
    let pieces = |work: Work| -> Vec<Vec<(u64, u64)>> {
        let mut pieces: Vec<Vec<(u64, u64)>> = Vec::new();
        for p in seen.lock().iter().filter(|p| p.work == work) {
            let report = (p.done, p.total);
            match pieces.last_mut() {
                Some(piece) if piece.last() == Some(&report) => {}
                Some(piece) if piece.last().is_some_and(|&(done, total)| done < total) => piece.push(report),
                _ => pieces.push(vec![report]),
            }
        }
        pieces
    };
    let totals = |work: Work| -> Vec<u64> {
        let pieces = pieces(work);
        for piece in &pieces {
            let total = piece[0].1;
            assert!(piece.len() >= 2, "{work:?}: {piece:?}");
            assert_eq!((piece[0], piece.last().copied()), ((0, total), Some((total, total))), "{work:?}");
            assert!(piece.windows(2).all(|w| w[0].0 <= w[1].0 && w[1].1 == total), "{work:?} goes forward: {piece:?}");
        }
        pieces.iter().map(|piece| piece[0].1).collect()
    };
    let store: Store<Kv> = Store::open(dir.path(), options.clone()).unwrap();
    assert_eq!(store.resolve(Point::Seq(1000)).unwrap().0, 1000);
    let starts: Vec<u64> = segments_by_start(dir.path()).into_iter().map(|(start, _)| start).collect();
    assert!(starts.len() > 10, "{starts:?}");
    let segment_start = |seq: u64| starts[starts.partition_point(|&s| s <= seq) - 1];
    let through = |seq: u64| seq - segment_start(seq) + 1;
    assert_eq!(
        totals(Work::Index),
        [through(1000)],
        "a point by sequence number indexes its segment through it, and no other"
    );
    assert_eq!(store.resolve(Point::Time(time_of_2000)).unwrap(), (2000, time_of_2000));
    assert_eq!(totals(Work::Index), [through(1000), 3000 - through(1000)], "a time indexes the rest of the log");
    seen.lock().clear();

    let store: Store<Kv> = Store::open(dir.path(), options.clone()).unwrap();
    let past = store.state_at(Point::Seq(2500)).unwrap();
    assert_eq!(past.seq(), 2500);
    // Its segment through the point, the head's to read the head's last
    // transaction (which this state machine cannot undo), and the first
    // record's place, where the replay forward starts.
    assert_eq!(totals(Work::Index), [through(2500), through(3000), 1]);
    assert_eq!(totals(Work::Replay), [2500]);
    let target = TempDir::new("progress-restore");
    store
        .restore_to(Point::Seq(2000), target.path(), Options::default().identity("p", "q"), &TxnMeta::new("ops:a", "r"))
        .unwrap();
    assert_eq!(totals(Work::Restore), [2000]);
    let report = verify::<Kv>(dir.path(), options).unwrap();
    assert!(report.ok());
    let segments = report.segments as u64;
    assert_eq!(totals(Work::Verify), [segments]);
}
