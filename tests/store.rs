//! The store's behaviour on the real file system: commits, reopen, concurrency,
//! snapshots, modes and refusals.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{dir_contents, files_with_prefix, fold, meta, Kv, KvEvent, TempDir};
use elbstore::{
    Create, Error, ManualClock, OpenMode, Options, SnapshotRetention, Store, SyncPolicy, Timestamp, TxnMeta, WalError,
};

fn open(dir: &TempDir, options: Options) -> Store<Kv> {
    Store::open(dir.path(), options).unwrap()
}

#[test]
fn commits_survive_reopen_with_their_metadata() {
    let dir = TempDir::new("reopen");
    let txns: Vec<Vec<KvEvent>> =
        (0..20).map(|i| vec![KvEvent::Set(i, u64::from(i) * 10), KvEvent::Mix(1, 7)]).collect();
    let store = open(&dir, Options::default().create(Create::IfMissing));
    assert!(store.open_report().created);
    for (i, events) in txns.iter().enumerate() {
        let meta = TxnMeta::new("ops:alice", format!("step {i}")).with_ticket("CHG-1");
        let committed = store.commit(meta, events.clone()).unwrap();
        assert_eq!(committed.seq, i as u64 + 1);
    }
    assert_eq!(*store.read(), fold(&txns));
    let id = store.identity().id;
    store.close().unwrap();

    let store = open(&dir, Options::default().create(Create::IfMissing));
    assert!(!store.open_report().created);
    assert_eq!(store.identity().id, id);
    assert_eq!(store.read().seq(), 20);
    assert_eq!(*store.read(), fold(&txns));
    let logged: Vec<_> = store.transactions(..).map(Result::unwrap).collect();
    assert_eq!(logged.len(), 20);
    for (i, txn) in logged.iter().enumerate() {
        assert_eq!(txn.seq, i as u64 + 1);
        assert_eq!(txn.events, txns[i]);
        assert_eq!(txn.meta.reason, format!("step {i}"));
        assert_eq!(txn.meta.ticket.as_deref(), Some("CHG-1"));
    }
    let middle: Vec<u64> = store.transactions(5..=7).map(|t| t.unwrap().seq).collect();
    assert_eq!(middle, [5, 6, 7]);
}

#[test]
fn commit_timestamps_never_go_backwards_when_the_clock_does() {
    let dir = TempDir::new("clock");
    let clock = ManualClock::new(Timestamp::from_secs(1_000));
    let store = open(&dir, Options::default().create(Create::IfMissing).clock(Arc::new(clock.clone())));
    let first = store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    assert_eq!(first.time, Timestamp::from_secs(1_000));
    clock.set(Timestamp::from_secs(10));
    let second = store.commit(meta(2), vec![KvEvent::Set(1, 2)]).unwrap();
    assert_eq!(second.time, first.time.checked_next().unwrap());
    let third = store.commit(meta(3), vec![KvEvent::Set(1, 3)]).unwrap();
    assert_eq!(third.time, second.time.checked_next().unwrap());
    store.close().unwrap();

    // The floor survives a restart: the log's last timestamp.
    let store = open(&dir, Options::default().create(Create::IfMissing).clock(Arc::new(clock.clone())));
    let fourth = store.commit(meta(4), vec![KvEvent::Set(1, 4)]).unwrap();
    assert_eq!(fourth.time, third.time.checked_next().unwrap());
    clock.set(Timestamp::from_secs(2_000));
    assert_eq!(store.commit(meta(5), vec![KvEvent::Set(1, 5)]).unwrap().time, Timestamp::from_secs(2_000));
}

/// Regression: commit timestamps saturated at the largest one there is, so
/// two commits got the same time, both were acknowledged, and the store then
/// refused to open (time must strictly increase). The commit after the
/// largest timestamp is refused instead, and nothing is written.
#[test]
fn a_commit_after_the_largest_timestamp_is_refused_not_given_the_same_time() {
    let dir = TempDir::new("end-of-time");
    let clock = ManualClock::new(Timestamp(u64::MAX - 1));
    let options = || Options::default().create(Create::IfMissing).clock(Arc::new(clock.clone()));
    let store = open(&dir, options());
    assert_eq!(store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap().time, Timestamp(u64::MAX - 1));
    assert_eq!(store.commit(meta(2), vec![KvEvent::Set(1, 2)]).unwrap().time, Timestamp(u64::MAX));
    let before = dir_contents(dir.path());
    match store.commit(meta(3), vec![KvEvent::Set(1, 3)]) {
        Err(Error::TimeExhausted { last }) => assert_eq!(last, Timestamp(u64::MAX)),
        other => panic!("expected TimeExhausted, got {other:?}"),
    }
    assert_eq!(dir_contents(dir.path()), before, "nothing was written");
    drop(store);
    let store = open(&dir, options());
    assert_eq!(store.read().seq(), 2);
    assert!(matches!(store.commit(meta(3), vec![KvEvent::Set(1, 3)]), Err(Error::TimeExhausted { .. })));
}

#[test]
fn concurrent_writers_get_gapless_ordered_sequence_numbers_that_survive_reopen() {
    let dir = TempDir::new("concurrent");
    let store = open(
        &dir,
        Options::default().create(Create::IfMissing).segment_bytes(8 << 10).snapshot_every_events(Some(300)),
    );
    let threads = 8u32;
    let per_thread = 100u32;
    let acked: Vec<(u64, u32, u32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = &store;
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            let events = vec![KvEvent::Set(t * 1000 + i, u64::from(i)), KvEvent::Mix(t, u64::from(i))];
                            (store.commit(meta(u64::from(i)), events).unwrap().seq, t, i)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let seqs: BTreeSet<u64> = acked.iter().map(|a| a.0).collect();
    assert_eq!(seqs.len(), (threads * per_thread) as usize, "no sequence number handed out twice");
    assert_eq!(seqs.iter().copied().collect::<Vec<_>>(), (1..=u64::from(threads * per_thread)).collect::<Vec<_>>());
    // Each thread's own commits are in its order.
    for t in 0..threads {
        let mine: Vec<u64> = acked.iter().filter(|a| a.1 == t).map(|a| a.0).collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
    }
    let expected = store.read().state().clone();
    store.close().unwrap();

    let store = open(&dir, Options::default().create(Create::IfMissing));
    assert!(store.segments().len() > 2, "small segments roll");
    let logged: Vec<_> = store.transactions(..).map(Result::unwrap).collect();
    assert_eq!(logged.len(), (threads * per_thread) as usize);
    for (seq, t, i) in &acked {
        let txn = &logged[*seq as usize - 1];
        assert_eq!(txn.seq, *seq);
        assert_eq!(txn.events[0], KvEvent::Set(t * 1000 + i, u64::from(*i)));
    }
    assert!(logged.windows(2).all(|w| w[0].time < w[1].time));
    assert_eq!(*store.read(), expected);
    assert_eq!(*store.read(), fold(logged.iter().map(|t| &t.events)));
}

#[test]
fn a_rejected_command_writes_nothing_and_consumes_no_sequence_number() {
    let dir = TempDir::new("rejected");
    let store = open(&dir, Options::default().create(Create::IfMissing));
    store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    let before = dir_contents(dir.path());
    #[derive(Debug)]
    enum Refused {
        TooBig,
        Store(#[allow(dead_code)] Error),
    }
    impl From<Error> for Refused {
        fn from(err: Error) -> Refused {
            Refused::Store(err)
        }
    }
    let outcome = store.execute(meta(2), |state: &Kv, _| {
        if state.entries[&1] < 10 {
            return Err(Refused::TooBig);
        }
        Ok((vec![KvEvent::Remove(1)], ()))
    });
    assert!(matches!(outcome, Err(Refused::TooBig)));
    assert!(matches!(store.commit(meta(3), vec![]), Err(Error::EmptyTransaction)));
    assert!(matches!(
        store.commit(TxnMeta::new("", "why"), vec![KvEvent::Set(2, 2)]),
        Err(Error::MissingAttribution { field: "actor" })
    ));
    assert!(matches!(
        store.commit(TxnMeta::new("ops:bob", "  "), vec![KvEvent::Set(2, 2)]),
        Err(Error::MissingAttribution { field: "reason" })
    ));
    assert_eq!(dir_contents(dir.path()), before);
    assert_eq!(store.commit(meta(4), vec![KvEvent::Set(2, 2)]).unwrap().seq, 2);
}

#[test]
fn execute_sees_the_state_with_every_earlier_transaction() {
    let dir = TempDir::new("execute");
    let store = open(&dir, Options::default().create(Create::IfMissing));
    for i in 0..5u64 {
        let (committed, seen) = store
            .execute(meta(i), |state: &Kv, ctx| {
                assert_eq!(ctx.seq, i + 1);
                Ok::<_, Error>((vec![KvEvent::Mix(0, 1)], state.applied))
            })
            .unwrap();
        assert_eq!((committed.seq, seen), (i + 1, i));
    }
}

#[test]
fn an_oversized_transaction_is_refused() {
    let dir = TempDir::new("oversized");
    let store = open(&dir, Options::default().create(Create::IfMissing).record_bytes_max(1024));
    let events: Vec<KvEvent> = (0..200).map(|i| KvEvent::Set(i, 0)).collect();
    // Encoding stops at the limit: the size reported is the limit plus one.
    assert!(matches!(store.commit(meta(1), events), Err(Error::RecordTooLarge { seq: 1, bytes: 1025, limit: 1024 })));
    assert_eq!(store.commit(meta(2), vec![KvEvent::Set(1, 1)]).unwrap().seq, 1);
}

/// What a dry run asks: the checks a commit makes before writing, giving
/// the same verdicts, on a read-only handle too, writing nothing.
#[test]
fn check_transaction_refuses_what_a_commit_refuses_and_writes_nothing() {
    let dir = TempDir::new("check-transaction");
    let store = open(&dir, Options::default().create(Create::IfMissing).record_bytes_max(1024));
    store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    drop(store);
    let before = dir_contents(dir.path());
    let reader = open(&dir, Options::default().mode(OpenMode::ReadOnly).record_bytes_max(1024));
    let big: Vec<KvEvent> = (0..200).map(|i| KvEvent::Set(i, 0)).collect();
    let small = vec![KvEvent::Set(2, 2)];
    assert!(matches!(reader.check_transaction(&meta(2), &big), Err(Error::RecordTooLarge { seq: 2, limit: 1024, .. })));
    let blank = TxnMeta::new("ops:a", " ");
    assert!(matches!(reader.check_transaction(&blank, &small), Err(Error::MissingAttribution { field: "reason" })));
    assert!(matches!(blank.check(), Err(Error::MissingAttribution { field: "reason" })));
    let long = TxnMeta::new("x".repeat(elbstore::ACTOR_BYTES_MAX + 1), "r");
    assert!(matches!(reader.check_transaction(&long, &small), Err(Error::FieldTooLong { field: "actor", .. })));
    reader.check_transaction(&meta(2), &small).unwrap();
    drop(reader);
    assert_eq!(dir_contents(dir.path()), before, "checking wrote nothing");
    // A writer gets the same verdicts from a commit.
    let writer = open(&dir, Options::default().record_bytes_max(1024));
    assert!(matches!(writer.commit(meta(2), big), Err(Error::RecordTooLarge { .. })));
    assert!(matches!(writer.commit(blank, small.clone()), Err(Error::MissingAttribution { field: "reason" })));
    assert_eq!(writer.commit(meta(2), small).unwrap().seq, 2);
}

/// A revert mark is kept with the transaction (read back from the log after
/// a reopen, and by a reader beside the writer); one naming a transaction
/// that is not earlier is refused by a commit and a dry run alike.
#[test]
fn a_revert_mark_is_kept_in_the_log_and_names_only_earlier_transactions() {
    let dir = TempDir::new("revert-mark");
    let store = open(&dir, Options::default().create(Create::IfMissing));
    store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    store.commit(meta(2), vec![KvEvent::Set(1, 2)]).unwrap();
    for bad in [0, 3, 4] {
        let marked = meta(3).with_reverts([1, bad]);
        let checked = store.check_transaction(&marked, &[KvEvent::Set(1, 1)]);
        assert!(matches!(checked, Err(Error::RevertsNotEarlier { seq: 3, reverts }) if reverts == bad), "{checked:?}");
        assert!(
            matches!(store.commit(marked, vec![KvEvent::Set(1, 1)]), Err(Error::RevertsNotEarlier { seq: 3, reverts }) if reverts == bad)
        );
    }
    let undo = meta(3).with_reverts([2, 1, 2]);
    assert_eq!(store.commit(undo, vec![KvEvent::Set(1, 1)]).unwrap().seq, 3);
    store.commit(meta(4), vec![KvEvent::Set(2, 2)]).unwrap();
    let reader = open(&dir, Options::default().mode(OpenMode::ReadOnly));
    let marks = |store: &Store<Kv>| -> Vec<Vec<u64>> {
        store.transactions(1..=4).map(|txn| txn.unwrap().meta.reverts).collect()
    };
    let expected = vec![vec![], vec![], vec![1, 2], vec![]];
    assert_eq!(marks(&reader), expected);
    drop((store, reader));
    let reopened = open(&dir, Options::default());
    assert_eq!(marks(&reopened), expected);
    assert_eq!(reopened.read().entries[&1], 1);
}

#[test]
fn a_second_writer_is_refused_and_a_reader_works_beside_the_writer() {
    let dir = TempDir::new("lock");
    let writer = open(&dir, Options::default().create(Create::IfMissing));
    writer.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    let second = Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing));
    assert!(matches!(second, Err(Error::Locked { ref path }) if path.ends_with("LOCK")), "{second:?}");
    let reader = open(&dir, Options::default().create(Create::IfMissing).mode(OpenMode::ReadOnly));
    assert_eq!(reader.read().entries[&1], 1);
    drop(writer);
    assert!(
        Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing)).is_ok(),
        "the lock is released on drop"
    );
}

#[test]
fn a_read_only_handle_cannot_write_and_changes_no_byte() {
    let dir = TempDir::new("readonly");
    let store = open(&dir, Options::default().create(Create::IfMissing).segment_bytes(4096));
    for i in 0..50 {
        store.commit(meta(i), vec![KvEvent::Set(i as u32, i)]).unwrap();
    }
    store.snapshot().unwrap();
    drop(store);
    // A torn tail that a writer would cut: read-only leaves it in place.
    let last = files_with_prefix(dir.path(), "wal-").pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0xEE; 17]);
    std::fs::write(&last, &bytes).unwrap();
    let before = dir_contents(dir.path());

    let reader = open(&dir, Options::default().create(Create::IfMissing).mode(OpenMode::ReadOnly));
    assert_eq!(reader.read().seq(), 50);
    assert!(reader.open_report().torn_tail.as_ref().is_some_and(|t| t.kept_at.is_none() && t.bytes == 17));
    assert!(matches!(reader.commit(meta(99), vec![KvEvent::Set(0, 0)]), Err(Error::ReadOnly { .. })));
    assert!(matches!(reader.snapshot(), Err(Error::ReadOnly { .. })));
    assert_eq!(reader.transactions(..).count(), 50);
    drop(reader);
    assert_eq!(dir_contents(dir.path()), before);

    let missing = TempDir::new("readonly-missing");
    assert!(matches!(
        Store::<Kv>::open(missing.path(), Options::default().create(Create::IfMissing).mode(OpenMode::ReadOnly)),
        Err(Error::NotAStore { .. })
    ));
    assert!(!missing.path().exists(), "a read-only open creates nothing");
}

#[test]
fn a_directory_with_foreign_files_is_not_taken_over() {
    let dir = TempDir::new("foreign-dir");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.join("notes.txt"), b"someone else's").unwrap();
    assert!(matches!(
        Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing)),
        Err(Error::NotAStore { .. })
    ));
}

#[test]
fn a_segment_from_another_store_is_refused_by_name() {
    let a = TempDir::new("store-a");
    let b = TempDir::new("store-b");
    for dir in [&a, &b] {
        let store = open(dir, Options::default().create(Create::IfMissing));
        store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    }
    let segment = files_with_prefix(a.path(), "wal-").remove(0);
    std::fs::copy(&segment, b.join(segment.file_name().unwrap().to_str().unwrap())).unwrap();
    match Store::<Kv>::open(b.path(), Options::default().create(Create::IfMissing)) {
        Err(Error::Wal(WalError::ForeignSegment { path, .. })) => assert_eq!(path.file_name(), segment.file_name()),
        other => panic!("expected a foreign segment error, got {other:?}"),
    }
}

#[test]
fn automatic_snapshots_are_used_on_reopen_and_retention_keeps_the_newest() {
    let dir = TempDir::new("snapshots");
    let options = || {
        Options::default()
            .create(Create::IfMissing)
            .snapshot_every_events(Some(20))
            .snapshot_retention(SnapshotRetention::KeepLast(2.try_into().unwrap()))
    };
    let store = open(&dir, options());
    let txns: Vec<Vec<KvEvent>> = (0..100).map(|i| vec![KvEvent::Mix(i % 7, u64::from(i))]).collect();
    for (i, events) in txns.iter().enumerate() {
        let seq = store.commit(meta(i as u64), events.clone()).unwrap().seq;
        if seq.is_multiple_of(20) {
            // Let each background snapshot land before the next is due (a
            // busy machine would otherwise skip triggers, and retention
            // would have less to remove).
            let started = std::time::Instant::now();
            while store.snapshots().last().is_none_or(|s| s.seq < seq) {
                assert!(started.elapsed() < std::time::Duration::from_secs(30), "the snapshot at {seq} lands");
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
    store.close().unwrap();
    let snapshots = files_with_prefix(dir.path(), "snapshot-");
    assert_eq!(snapshots.len(), 2, "five taken, the newest two kept: {snapshots:?}");

    let store = open(&dir, options());
    let used = store.open_report().snapshot.clone().expect("a snapshot is used");
    // Where the background snapshots land depends on timing (one in flight
    // makes the next trigger wait), but the newest file is the one used.
    assert_eq!(Some(&used.path), snapshots.last());
    assert_eq!(used.seq, 100, "the newest snapshot");
    assert_eq!(store.open_report().replayed_transactions, 100 - used.seq);
    assert_eq!(*store.read(), fold(&txns));
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one_and_says_so() {
    let dir = TempDir::new("snapshot-fallback");
    let store = open(&dir, Options::default().create(Create::IfMissing).snapshot_every_events(None));
    let txns: Vec<Vec<KvEvent>> = (0..30).map(|i| vec![KvEvent::Mix(1, i)]).collect();
    for (i, events) in txns.iter().enumerate() {
        store.commit(meta(i as u64), events.clone()).unwrap();
        if i == 9 || i == 19 {
            store.snapshot().unwrap();
        }
    }
    drop(store);
    let newest = files_with_prefix(dir.path(), "snapshot-").pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&newest, bytes).unwrap();

    let store = open(&dir, Options::default().create(Create::IfMissing));
    let report = store.open_report();
    assert_eq!(report.snapshot.as_ref().map(|s| s.seq), Some(10));
    assert_eq!(report.rejected_snapshots.len(), 1);
    assert!(report.rejected_snapshots[0].to_string().contains("snapshot-00000000000000000020.snap"));
    assert_eq!(report.replayed_transactions, 20);
    assert_eq!(*store.read(), fold(&txns));
    // The damaged one is not offered as a base for history.
    assert_eq!(store.snapshots().iter().map(|s| s.seq).collect::<Vec<_>>(), [10]);
}

#[test]
fn interval_and_never_policies_acknowledge_and_recover() {
    for policy in [SyncPolicy::Interval(Duration::from_millis(5)), SyncPolicy::Never] {
        let dir = TempDir::new("policies");
        let store =
            open(&dir, Options::default().create(Create::IfMissing).sync(policy).snapshot_every_events(Some(7)));
        let txns: Vec<Vec<KvEvent>> = (0..40).map(|i| vec![KvEvent::Set(i, 1)]).collect();
        for (i, events) in txns.iter().enumerate() {
            store.commit(meta(i as u64), events.clone()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        store.close().unwrap();
        let store = open(&dir, Options::default().create(Create::IfMissing));
        assert_eq!(*store.read(), fold(&txns), "{policy:?}");
    }
}

#[test]
fn options_out_of_range_are_refused() {
    let dir = TempDir::new("options");
    for (options, name) in [
        (Options::default().create(Create::IfMissing).segment_bytes(10), "segment_bytes"),
        (Options::default().create(Create::IfMissing).record_bytes_max(1), "record_bytes_max"),
        (Options::default().create(Create::IfMissing).snapshot_every_events(Some(0)), "snapshot_every_events"),
        (Options::default().create(Create::IfMissing).sync(SyncPolicy::Interval(Duration::ZERO)), "sync"),
        (Options::default().create(Create::IfMissing).identity("", "production"), "name"),
        (Options::default().create(Create::IfMissing).record_bytes_max(63), "record_bytes_max"),
        (Options::default().create(Create::IfMissing).identity("n".repeat(256), "production"), "name"),
        (Options::default().create(Create::IfMissing).identity("name", "e".repeat(256)), "environment"),
    ] {
        match Store::<Kv>::open(dir.path(), options) {
            Err(Error::InvalidOption { name: got, .. }) => assert_eq!(got, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(!dir.path().exists());
    // Each bound itself is accepted.
    let at_bounds = Options::default()
        .create(Create::IfMissing)
        .segment_bytes(4096)
        .record_bytes_max(64)
        .identity("n".repeat(255), "e".repeat(255));
    assert_eq!(open(&dir, at_bounds).identity().name.len(), 255);
}

/// A store opens only for the identity it was created with: a writer must
/// name it (the defaults name `unnamed/unspecified`), a reader is checked
/// against what it names, and `expect_id` pins the random id.
#[test]
fn a_store_opens_only_for_the_identity_it_was_created_with() {
    let dir = TempDir::new("identity");
    let id = {
        let store = open(&dir, Options::default().create(Create::IfMissing).identity("us-east-1", "production"));
        store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
        store.identity().id
    };
    let other_id = {
        let other = TempDir::new("identity-other");
        open(&other, Options::default().create(Create::IfMissing)).identity().id
    };
    let read_only = || Options::default().mode(OpenMode::ReadOnly);
    let refused = [
        ("writer naming nothing", Options::default()),
        ("writer, other name", Options::default().identity("us-west-2", "production")),
        ("writer, other environment", Options::default().identity("us-east-1", "staging")),
        ("writer, other id", Options::default().identity("us-east-1", "production").expect_id(other_id)),
        ("reader, other name", read_only().identity("us-west-2", "production")),
        ("reader, other environment", read_only().identity("us-east-1", "staging")),
        ("reader, other id", read_only().expect_id(other_id)),
    ];
    for (what, options) in refused {
        match Store::<Kv>::open(dir.path(), options) {
            Err(Error::WrongStore { path, found, .. }) => {
                assert_eq!((path.as_path(), found.id), (dir.path(), id), "{what}");
            }
            other => panic!("{what}: expected WrongStore, got {other:?}"),
        }
    }
    let accepted = [
        ("writer naming it", Options::default().identity("us-east-1", "production")),
        ("writer with its id", Options::default().identity("us-east-1", "production").expect_id(id)),
        ("reader naming nothing", read_only()),
        ("reader naming it", read_only().identity("us-east-1", "production")),
        ("reader with its id", read_only().expect_id(id)),
    ];
    for (what, options) in accepted {
        let store = Store::<Kv>::open(dir.path(), options).unwrap_or_else(|err| panic!("{what}: {err}"));
        assert_eq!(store.read().seq(), 1, "{what}");
    }
}

/// One record limit, checked the same way by the writer and by every reader:
/// `record_bytes_max` bounds a frame's payload (its version byte included).
/// A record of exactly the limit commits, reopens and reads back through the
/// log cursor, history and verify; one byte more is refused before anything
/// is written.
#[test]
fn a_record_at_the_limit_commits_and_reads_back_and_one_byte_over_is_refused() {
    let limit = 1000u32;
    let dir = TempDir::new("record-limit");
    let options = || Options::default().create(Create::IfMissing).record_bytes_max(limit);
    let store = open(&dir, options());
    let payload_bytes = |seq: u64| {
        let segment = std::fs::read(files_with_prefix(dir.path(), "wal-").remove(0)).unwrap();
        let mut offset = elbstore::SEGMENT_HEADER_BYTES;
        loop {
            let frame = elbstore::decode_frame(&segment[offset..], u32::MAX).unwrap();
            if frame.seq == seq {
                return frame.payload.len();
            }
            offset += frame.encoded_bytes();
        }
    };
    let events = vec![KvEvent::Set(1, 1)];
    store.commit(TxnMeta::new("svc:test", "r"), events.clone()).unwrap();
    // The payload grows by one byte per byte of reason.
    let base = payload_bytes(1) - 1;
    for (seq, target) in [(2, limit - 1), (3, limit)] {
        let reason = "r".repeat(target as usize - base);
        assert_eq!(store.commit(TxnMeta::new("svc:test", reason), events.clone()).unwrap().seq, seq);
        assert_eq!(payload_bytes(seq), target as usize);
    }
    let before = dir_contents(dir.path());
    let over = store.commit(TxnMeta::new("svc:test", "r".repeat(limit as usize + 1 - base)), events.clone());
    assert!(
        matches!(over, Err(Error::RecordTooLarge { seq: 4, bytes, limit: l }) if bytes == limit as usize + 1 && l == limit),
        "{over:?}"
    );
    assert_eq!(dir_contents(dir.path()), before, "nothing was written");
    drop(store);
    let store = open(&dir, options());
    assert_eq!(store.read().seq(), 3);
    let reasons: Vec<usize> = store.transactions(..).map(|t| t.unwrap().meta.reason.len()).collect();
    assert_eq!(reasons, [1, limit as usize - 1 - base, limit as usize - base]);
    assert_eq!(store.state_at(elbstore::Point::Seq(2)).unwrap().seq(), 2);
    let report = elbstore::verify::<Kv>(dir.path(), options()).unwrap();
    assert!(report.ok() && report.transactions == 3, "{:?}", report.problems);
    assert_eq!(store.commit(meta(4), events).unwrap().seq, 4, "the refused record used no sequence number");
}

/// Each metadata field is accepted at its limit and refused one byte over it,
/// naming the field.
#[test]
fn metadata_fields_are_accepted_at_their_limits_and_refused_one_byte_over() {
    let dir = TempDir::new("field-limits");
    let store = open(&dir, Options::default().create(Create::IfMissing));
    let (actor, reason) = (elbstore::ACTOR_BYTES_MAX, elbstore::REASON_BYTES_MAX);
    let at = |a: usize, r: usize, t: usize, p: usize| {
        TxnMeta::new("a".repeat(a), "r".repeat(r)).with_approval("t".repeat(t), "p".repeat(p))
    };
    store.commit(at(actor, reason, actor, actor), vec![KvEvent::Set(1, 1)]).unwrap();
    for (field, meta, bytes, limit) in [
        ("actor", at(actor + 1, 1, 1, 1), actor + 1, actor),
        ("reason", at(1, reason + 1, 1, 1), reason + 1, reason),
        ("ticket", at(1, 1, actor + 1, 1), actor + 1, actor),
        ("approved_by", at(1, 1, 1, actor + 1), actor + 1, actor),
    ] {
        match store.commit(meta, vec![KvEvent::Set(1, 1)]) {
            Err(Error::FieldTooLong { field: f, bytes: b, limit: l }) => assert_eq!((f, b, l), (field, bytes, limit)),
            other => panic!("{field}: expected FieldTooLong, got {other:?}"),
        }
    }
    assert_eq!(store.read().seq(), 1);
}

/// Regression: `segment_bytes` had no upper bound while a reader holds a
/// whole segment in memory and the history index kept byte offsets in 32
/// bits, so a segment past 4 GiB would have pointed history at the wrong
/// bytes. The size is bounded (and the index's offsets are 64-bit).
#[test]
fn a_segment_size_beyond_what_a_reader_holds_is_refused() {
    let dir = TempDir::new("segment-max");
    for bytes in [elbstore::SEGMENT_BYTES_MAX + 1, 5 << 30, u64::MAX] {
        match Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing).segment_bytes(bytes)) {
            Err(Error::InvalidOption { name: "segment_bytes", .. }) => {}
            other => panic!("segment_bytes {bytes}: {other:?}"),
        }
    }
    assert!(!dir.path().exists());
    let store = open(&dir, Options::default().create(Create::IfMissing).segment_bytes(elbstore::SEGMENT_BYTES_MAX));
    assert_eq!(store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap().seq, 1);
}

/// Regression: `snapshot_bytes_max` was enforced when writing a snapshot but
/// not when loading one, so a store opened with a lower limit decoded a
/// snapshot of any size. Over the limit, a snapshot is passed over (and
/// reported), and the log rebuilds the state.
#[test]
fn snapshot_bytes_max_is_enforced_when_loading() {
    let dir = TempDir::new("snapshot-max");
    let store = open(&dir, Options::default().create(Create::IfMissing).snapshot_every_events(None));
    for i in 0..20 {
        store.commit(meta(i), vec![KvEvent::Set(i as u32, i)]).unwrap();
    }
    let snapshot = store.snapshot().unwrap();
    let expected = store.read().state().clone();
    drop(store);
    let payload = snapshot.bytes - (elbstore::SNAPSHOT_HEADER_BYTES + elbstore::SNAPSHOT_TRAILER_BYTES) as u64;
    let store = open(&dir, Options::default().create(Create::IfMissing).snapshot_bytes_max(payload - 1));
    assert!(store.open_report().snapshot.is_none(), "the snapshot over the limit is not used");
    match &store.open_report().rejected_snapshots[..] {
        [elbstore::SnapshotError::TooLarge { path, file_bytes, limit }] => {
            assert_eq!((path, *file_bytes, *limit), (&snapshot.path, snapshot.bytes, payload - 1));
        }
        other => panic!("expected the snapshot to be rejected as too large: {other:?}"),
    }
    assert_eq!(*store.read(), expected);
    drop(store);
    let store = open(&dir, Options::default().create(Create::IfMissing).snapshot_bytes_max(payload));
    assert_eq!(store.open_report().snapshot.as_ref().map(|s| s.seq), Some(20), "at the limit it loads");
}

/// Regression: opening created a missing directory and an empty store in it,
/// so a service with a typo in its data path started on an empty fleet.
/// Opening never creates a store unless asked, and a refusal writes nothing.
#[test]
fn opening_never_creates_a_store_unless_asked() {
    let dir = TempDir::new("create");
    let not_a_store = |options: Options, says: &str| match Store::<Kv>::open(dir.path(), options) {
        Err(Error::NotAStore { path, reason }) => {
            assert_eq!(path, dir.path());
            assert!(reason.contains(says), "{reason}");
        }
        other => panic!("expected NotAStore ({says}), got {other:?}"),
    };
    not_a_store(Options::default(), "does not exist");
    assert!(!dir.path().exists(), "nothing was created");
    std::fs::create_dir_all(dir.path()).unwrap();
    not_a_store(Options::default().create(Create::Never), "no IDENTITY");
    // A reader never creates, even when asked to if the store is missing.
    not_a_store(Options::default().mode(OpenMode::ReadOnly).create(Create::IfMissing), "no IDENTITY");
    assert!(dir_contents(dir.path()).is_empty(), "not even a lock file");
    std::fs::remove_dir(dir.path()).unwrap();
    // Asked: created.
    let store = open(&dir, Options::default().create(Create::IfMissing));
    assert!(store.open_report().created);
    store.commit(meta(1), vec![KvEvent::Set(1, 1)]).unwrap();
    drop(store);
    // An existing store opens by default; Create::New refuses it and writes nothing.
    assert_eq!(open(&dir, Options::default()).read().seq(), 1);
    let before = dir_contents(dir.path());
    assert!(matches!(
        Store::<Kv>::open(dir.path(), Options::default().create(Create::New)),
        Err(Error::DirectoryNotEmpty { .. })
    ));
    assert_eq!(dir_contents(dir.path()), before);
    // Create::New takes only a missing or empty directory.
    let other = TempDir::new("create-new");
    std::fs::create_dir_all(other.path()).unwrap();
    std::fs::write(other.join("notes.txt"), b"not a store").unwrap();
    assert!(matches!(
        Store::<Kv>::open(other.path(), Options::default().create(Create::New)),
        Err(Error::DirectoryNotEmpty { .. })
    ));
    std::fs::remove_file(other.join("notes.txt")).unwrap();
    assert!(open(&other, Options::default().create(Create::New)).open_report().created);
    // A read-only open never creates, and cannot be asked to.
    let missing = TempDir::new("create-read-only");
    for create in [Create::Never, Create::IfMissing] {
        assert!(matches!(
            Store::<Kv>::open(missing.path(), Options::default().mode(OpenMode::ReadOnly).create(create)),
            Err(Error::NotAStore { .. })
        ));
    }
    assert!(matches!(
        Store::<Kv>::open(missing.path(), Options::default().mode(OpenMode::ReadOnly).create(Create::New)),
        Err(Error::InvalidOption { name: "create", .. })
    ));
    assert!(!missing.path().exists());
}

/// A segment is sealed once it holds `segment_bytes` or more, so each sealed
/// segment is at least that long and longer by less than one record, also
/// when many records are framed into one group (a restore copies thousands
/// per fsync).
#[test]
fn segments_are_sealed_at_their_size_when_many_records_share_a_group() {
    let source = TempDir::new("seal-source");
    let store = open(&source, Options::default().create(Create::IfMissing).snapshot_every_events(None));
    for i in 0..120 {
        store.commit(meta(i), (0..8).map(|k| KvEvent::Set(k, i)).collect()).unwrap();
    }
    let target = TempDir::new("seal-target");
    let options = Options::default().segment_bytes(4096);
    store.restore_to(elbstore::Point::Seq(120), target.path(), options, &meta(0)).unwrap();
    let segments = files_with_prefix(target.path(), "wal-");
    assert!(segments.len() >= 3, "{segments:?}");
    let record_bytes = elbstore::FRAME_HEADER_BYTES + 300;
    for sealed in &segments[..segments.len() - 1] {
        let bytes = std::fs::metadata(sealed).unwrap().len() as usize;
        assert!((4096..4096 + record_bytes).contains(&bytes), "{}: {bytes} bytes", sealed.display());
    }
}
