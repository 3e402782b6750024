//! Model-based properties: whatever the events, snapshot interval, segment size
//! and restart points, the store's state is the fold of what it acknowledged.

mod common;

use common::{files_with_prefix, fold, meta, Kv, KvEvent, TempDir};
use elbstore::{Create, Options, Store, SyncPolicy};
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
