//! Model-based properties: whatever the events, snapshot interval, segment size
//! and restart points, the store's state is the fold of what it acknowledged.

mod common;

use common::{files_with_prefix, fold, meta, Kv, KvEvent, TempDir};
use elbstore::{Create, Options, StateMachine, Store, SyncPolicy};
use proptest::prelude::*;

fn event() -> impl Strategy<Value = KvEvent> {
    prop_oneof![
        (0u32..16, any::<u64>()).prop_map(|(k, v)| KvEvent::Set(k, v)),
        (0u32..16).prop_map(KvEvent::Remove),
        (0u32..16, any::<u64>()).prop_map(|(k, v)| KvEvent::Mix(k, v)),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Commit(Vec<KvEvent>),
    Snapshot,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => prop::collection::vec(event(), 1..6).prop_map(Step::Commit),
        1 => Just(Step::Snapshot),
        1 => Just(Step::Reopen),
    ]
}

fn options(every: Option<u64>, segment_bytes: u64) -> Options {
    Options::default()
        .create(Create::IfMissing)
        .sync(SyncPolicy::Never)
        .snapshot_every_events(every)
        .segment_bytes(segment_bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reopen_gives_the_fold_of_every_committed_event(
        steps in prop::collection::vec(step(), 1..80),
        every in prop::option::of(1u64..40),
        segment_bytes in 4096u64..10_000,
    ) {
        let dir = TempDir::new("prop-reopen");
        let mut store: Store<Kv> = Store::open(dir.path(), options(every, segment_bytes)).unwrap();
        let mut committed: Vec<Vec<KvEvent>> = Vec::new();
        for step in steps {
            match step {
                Step::Commit(events) => {
                    let c = store.commit(meta(committed.len() as u64), events.clone()).unwrap();
                    committed.push(events);
                    prop_assert_eq!(c.seq, committed.len() as u64);
                }
                Step::Snapshot => {
                    let info = store.snapshot().unwrap();
                    prop_assert_eq!(info.seq, committed.len() as u64);
                }
                Step::Reopen => {
                    store.close().unwrap();
                    store = Store::open(dir.path(), options(every, segment_bytes)).unwrap();
                }
            }
            prop_assert_eq!(&*store.read(), &fold(&committed));
        }
        store.close().unwrap();

        let store: Store<Kv> = Store::open(dir.path(), options(every, segment_bytes)).unwrap();
        prop_assert_eq!(&*store.read(), &fold(&committed));
        let logged: Vec<Vec<KvEvent>> = store.transactions(..).map(|t| t.unwrap().events).collect();
        prop_assert_eq!(&logged, &committed);
        let with_snapshot = store.open_report().snapshot.clone();
        drop(store);

        // Snapshot + tail equals a full replay of the log.
        for snapshot in files_with_prefix(dir.path(), "snapshot-") {
            std::fs::remove_file(snapshot).unwrap();
        }
        let replayed: Store<Kv> = Store::open(dir.path(), options(every, segment_bytes)).unwrap();
        prop_assert!(replayed.open_report().snapshot.is_none());
        prop_assert_eq!(replayed.open_report().replayed_transactions, committed.len() as u64);
        prop_assert_eq!(&*replayed.read(), &fold(&committed));
        if let Some(snapshot) = with_snapshot {
            prop_assert!(snapshot.seq <= committed.len() as u64);
        }
    }
}

/// What one subscriber saw: where it started, and each (seq, events).
type Followed = (u64, Vec<(u64, Vec<KvEvent>)>);

/// One subscriber of the feed property: where it starts (a share of the head
/// when it subscribes) and after how many transactions it drops its
/// subscription and subscribes again from its next seq.
#[derive(Clone, Debug)]
struct Subscriber {
    start_percent: u64,
    restarts: Vec<usize>,
}

fn subscriber() -> impl Strategy<Value = Subscriber> {
    (0u64..=100, prop::collection::vec(1usize..30, 0..4))
        .prop_map(|(start_percent, restarts)| Subscriber { start_percent, restarts })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Writers commit concurrently while subscribers start at random points
    /// and restart at random moments: each sees exactly the durable sequence
    /// from its start, in order, each transaction as the log holds it, and
    /// its fold from the state before its start equals `state_at(seq)` at
    /// every step.
    #[test]
    fn subscribers_see_exactly_the_durable_sequence_from_their_start(
        writers in prop::collection::vec(prop::collection::vec(prop::collection::vec(event(), 1..4), 1..30), 1..4),
        subscribers in prop::collection::vec(subscriber(), 1..4),
        segment_bytes in 4096u64..10_000,
    ) {
        use std::time::Duration;
        use elbstore::Point;
        let fs = elbstore::io::SimFs::new();
        let options = Options::default()
            .create(Create::IfMissing)
            .file_system(std::sync::Arc::new(fs))
            .sync(SyncPolicy::Always)
            .snapshot_every_events(None)
            .segment_bytes(segment_bytes);
        let store: Store<Kv> = Store::open("/feed", options).unwrap();
        let total: u64 = writers.iter().map(|w| w.len() as u64).sum();
        let seen: Vec<Followed> = std::thread::scope(|scope| {
            for (w, commits) in writers.iter().enumerate() {
                let store = &store;
                scope.spawn(move || {
                    for (n, events) in commits.iter().enumerate() {
                        store.commit(meta((w * 1000 + n) as u64), events.clone()).unwrap();
                    }
                });
            }
            let readers: Vec<_> = subscribers
                .iter()
                .map(|sub| {
                    let store = &store;
                    scope.spawn(move || {
                        let start = store.read().seq() * sub.start_percent / 100 + 1;
                        let mut feed = store.subscribe(start).unwrap();
                        let mut restarts = sub.restarts.iter().copied().peekable();
                        let mut got = Vec::new();
                        let mut since_restart = 0;
                        while feed.next_seq() <= total {
                            let txn = feed.recv_timeout(Duration::from_secs(20)).unwrap().expect("the writers go on");
                            got.push((txn.seq, txn.events));
                            since_restart += 1;
                            if restarts.peek() == Some(&since_restart) {
                                restarts.next();
                                since_restart = 0;
                                feed = store.subscribe(feed.next_seq()).unwrap();
                            }
                        }
                        prop_assert!(feed.try_recv().unwrap().is_none(), "nothing past the last commit");
                        Ok((start, got))
                    })
                })
                .collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect::<Result<Vec<_>, TestCaseError>>()
        })?;
        prop_assert_eq!(store.read().seq(), total);
        for (start, got) in seen {
            let seqs: Vec<u64> = got.iter().map(|(seq, _)| *seq).collect();
            prop_assert_eq!(seqs, (start..=total).collect::<Vec<u64>>());
            let mut folded = store.state_at(Point::Seq(start - 1)).unwrap().state().clone();
            for (seq, events) in got {
                prop_assert_eq!(&events, &store.transaction(seq).unwrap().events);
                for event in &events {
                    folded.apply(event);
                }
                let at = store.state_at(Point::Seq(seq)).unwrap();
                prop_assert_eq!(&folded, at.state(), "at seq {}", seq);
            }
        }
    }
}
