//! Guardrails from the incident: identity, read-only handles, attribution,
//! bulk-deletion approval, the per-actor window, alarms, and repair paths
//! under the same rules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{dir_contents, TempDir};
use elbstore::elb::{
    fleet, Alarm, AlarmKind, Command, ConflictReason, ElbError, ElbStore, HistoryFilter, LoadBalancerId, OnConflict,
    RevertMode, RevertSelection, Settings, DELETION_PROTECTION,
};
use elbstore::{Create, Error, ManualClock, OpenMode, Options, SyncPolicy, Timestamp, TxnMeta};
use parking_lot::Mutex;

const NAME: &str = "us-east-1";
const ENV: &str = "production";

fn options(clock: &ManualClock) -> Options {
    Options::default()
        .create(Create::IfMissing)
        .identity(NAME, ENV)
        .sync(SyncPolicy::Never)
        .snapshot_every_events(None)
        .segment_bytes(16 * 1024)
        .clock(Arc::new(clock.clone()))
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_secs(1_356_380_640))
}

/// A store with `n` reference load balancers, and the alarms it raises.
fn fleet_store(dir: &TempDir, clock: &ManualClock, n: u64) -> (ElbStore, Arc<Mutex<Vec<Alarm>>>) {
    let seen: Arc<Mutex<Vec<Alarm>>> = Arc::default();
    let sink = seen.clone();
    let observer: elbstore::elb::Observer = Arc::new(move |alarm: &Alarm| sink.lock().push(alarm.clone()));
    let store =
        ElbStore::open_observed(dir.path(), options(clock), Settings::in_region("us-east-1"), Some(observer)).unwrap();
    for i in 0..n {
        store
            .execute_with(TxnMeta::new("svc:provisioning", "build"), |_, ctx| fleet::reference_commands(i, ctx.seq))
            .unwrap();
        clock.advance(Duration::from_millis(1));
    }
    (store, seen)
}

fn ids(store: &ElbStore, range: std::ops::Range<u64>) -> Vec<LoadBalancerId> {
    let view = store.read();
    range.map(|i| view.load_balancer_by_name(&fleet::account(i), &fleet::name(i)).unwrap().id).collect()
}

fn delete(ids: &[LoadBalancerId]) -> Vec<Command> {
    ids.iter().map(|&id| Command::DeleteLoadBalancer { load_balancer: id }).collect()
}

#[test]
fn a_process_naming_another_store_is_refused_writes_nothing_and_raises_an_alarm() {
    let dir = TempDir::new("wrong-store");
    let clock = clock();
    let (store, _) = fleet_store(&dir, &clock, 2);
    store.close().unwrap();
    let before = dir_contents(dir.path());
    let seen: Arc<Mutex<Vec<Alarm>>> = Arc::default();
    let sink = seen.clone();
    let observer: elbstore::elb::Observer = Arc::new(move |alarm: &Alarm| sink.lock().push(alarm.clone()));
    let staging = options(&clock).identity(NAME, "staging");
    let err =
        ElbStore::open_observed(dir.path(), staging, Settings::in_region("us-east-1"), Some(observer)).unwrap_err();
    match &err {
        ElbError::Store(Error::WrongStore { expected_environment, found, .. }) => {
            assert_eq!(expected_environment, "staging");
            assert_eq!((found.name.as_str(), found.environment.as_str()), (NAME, ENV));
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("us-east-1/production") && message.contains("us-east-1/staging"), "{message}");
    assert!(matches!(&seen.lock()[..], [Alarm { kind: AlarmKind::WrongStore { .. }, .. }]));
    // An unnamed writer is refused too: it means the store called "unnamed".
    assert!(matches!(
        ElbStore::open(dir.path(), Options::default().create(Create::IfMissing), Settings::in_region("us-east-1")),
        Err(ElbError::Store(Error::WrongStore { .. }))
    ));
    // A reader that names nothing may look.
    assert!(ElbStore::open(
        dir.path(),
        Options::default().create(Create::IfMissing).mode(OpenMode::ReadOnly),
        Settings::in_region("us-east-1")
    )
    .is_ok());
    // The id can be pinned as well.
    let wrong_id = options(&clock).expect_id(elbstore::StoreId(7));
    assert!(matches!(
        ElbStore::open(dir.path(), wrong_id, Settings::in_region("us-east-1")),
        Err(ElbError::Store(Error::WrongStore { .. }))
    ));
    assert_eq!(dir_contents(dir.path()), before, "no refused open changed a byte");
}

#[test]
fn a_read_only_handle_cannot_write_and_attribution_is_required() {
    let dir = TempDir::new("readonly-elb");
    let clock = clock();
    let (store, _) = fleet_store(&dir, &clock, 1);
    let id = ids(&store, 0..1)[0];
    for (meta, field) in [(TxnMeta::new("", "why"), "actor"), (TxnMeta::new("ops:a", ""), "reason")] {
        let err = store.execute(meta, delete(&[id])).unwrap_err();
        assert!(matches!(err, ElbError::Store(Error::MissingAttribution { field: f }) if f == field), "{err}");
    }
    store.close().unwrap();
    let before = dir_contents(dir.path());
    let reader = ElbStore::open(
        dir.path(),
        Options::default().create(Create::IfMissing).mode(OpenMode::ReadOnly),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    let err = reader.execute(TxnMeta::new("ops:a", "try"), delete(&[id])).unwrap_err();
    assert!(matches!(err, ElbError::Store(Error::ReadOnly { .. })), "{err}");
    drop(reader);
    assert_eq!(dir_contents(dir.path()), before);
}

#[test]
fn a_bulk_deletion_needs_an_approval_which_is_kept_in_history() {
    let dir = TempDir::new("bulk");
    let clock = clock();
    let (store, _) = fleet_store(&dir, &clock, 120);
    let victims = ids(&store, 0..51);
    let seq = store.read().seq();
    let err = store.execute(TxnMeta::new("maint:cleanup", "remove stale"), delete(&victims)).unwrap_err();
    match &err {
        ElbError::BulkDeletionRefused { count: 51, limit: 50, window: None, .. } => {}
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("51") && message.contains("50") && message.contains("approver"), "{message}");
    assert_eq!(store.read().seq(), seq, "nothing written");
    assert_eq!(store.read().counts().load_balancers, 120);
    // Approving one's own change is no approval.
    let self_approved = TxnMeta::new("maint:cleanup", "remove stale").with_approval("CHG-2012", "maint:cleanup");
    assert!(matches!(store.execute(self_approved, delete(&victims)), Err(ElbError::BulkDeletionRefused { .. })));
    let approved = TxnMeta::new("maint:cleanup", "remove stale").with_approval("CHG-2012", "ops:lead");
    let applied = store.execute(approved, delete(&victims)).unwrap();
    assert_eq!(store.read().counts().load_balancers, 69);
    let txn = store.store().transaction(applied.committed.unwrap().seq).unwrap();
    assert_eq!(txn.meta.ticket.as_deref(), Some("CHG-2012"));
    assert_eq!(txn.meta.approved_by.as_deref(), Some("ops:lead"));
    let listed: Vec<_> = store
        .history(HistoryFilter { actor: Some("maint:cleanup".into()), ..HistoryFilter::default() })
        .unwrap()
        .map(|t| t.unwrap().meta)
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].approved_by.as_deref(), Some("ops:lead"));
}

#[test]
fn deleting_just_under_the_limit_again_and_again_is_caught_by_the_window() {
    let dir = TempDir::new("window");
    let clock = clock();
    let (store, _) = fleet_store(&dir, &clock, 120);
    let all = ids(&store, 0..120);
    // The fleet was built long before the window: a reopen reads only the
    // segments the window can reach.
    clock.advance(Duration::from_secs(7200));
    let mut deleting = TxnMeta::new("maint:cleanup", "remove stale");
    deleting.reason = "batch".into();
    let mut done = Vec::new();
    for batch in all[..49].chunks(7) {
        clock.advance(Duration::from_secs(60));
        let applied = store.execute(deleting.clone(), delete(batch)).unwrap();
        done.push(applied.committed.unwrap().seq);
    }
    clock.advance(Duration::from_secs(60));
    let err = store.execute(deleting.clone(), delete(&all[49..51])).unwrap_err();
    match err {
        ElbError::BulkDeletionRefused { count: 51, limit: 50, window: Some((actor, _)), transactions } => {
            assert_eq!(actor, "maint:cleanup");
            assert_eq!(transactions, done);
        }
        other => panic!("{other:?}"),
    }
    // Another actor is not held to this actor's window.
    store.execute(TxnMeta::new("customer:9", "my own"), delete(&all[100..101])).unwrap();
    // The window survives a restart.
    drop(store);
    let store = ElbStore::open(dir.path(), options(&clock), Settings::in_region("us-east-1")).unwrap();
    assert!(matches!(store.execute(deleting.clone(), delete(&all[49..51])), Err(ElbError::BulkDeletionRefused { .. })));
    // After the window, the actor may delete again.
    clock.advance(Duration::from_secs(3600));
    store.execute(deleting, delete(&all[49..51])).unwrap();
}

#[test]
fn the_alarm_fires_exactly_once_per_crossing_with_the_right_transactions() {
    let dir = TempDir::new("alarm");
    let clock = clock();
    let (store, seen) = fleet_store(&dir, &clock, 1000);
    let all = ids(&store, 0..1000);
    // 4 + 4 deletions: under the alarm's 10.
    let a = store.execute(TxnMeta::new("maint:a", "x"), delete(&all[0..4])).unwrap().committed.unwrap().seq;
    let b = store.execute(TxnMeta::new("maint:b", "x"), delete(&all[4..8])).unwrap().committed.unwrap().seq;
    assert!(seen.lock().is_empty());
    // Three more cross it: one alarm naming all three transactions and both actors.
    let applied = store.execute(TxnMeta::new("maint:a", "x"), delete(&all[8..11])).unwrap();
    let c = applied.committed.unwrap().seq;
    assert_eq!(applied.alarms.len(), 1);
    {
        let seen = seen.lock();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, AlarmKind::Deletions { count: 11, threshold: 10 });
        assert_eq!(seen[0].transactions, vec![a, b, c]);
        assert_eq!(seen[0].actors, vec!["maint:a".to_owned(), "maint:b".to_owned()]);
    }
    // Staying above the threshold raises nothing new.
    store.execute(TxnMeta::new("maint:a", "x"), delete(&all[11..12])).unwrap();
    assert_eq!(seen.lock().len(), 1);
    assert!(store.guard_status().unwrap().deletion_alarm_raised);
    // Once the window has moved on, a new crossing fires again.
    clock.advance(Duration::from_secs(3700));
    store.execute(TxnMeta::new("customer", "one"), delete(&all[12..13])).unwrap();
    assert!(!store.guard_status().unwrap().deletion_alarm_raised);
    let d = store.execute(TxnMeta::new("maint:c", "x"), delete(&all[13..24])).unwrap().committed.unwrap().seq;
    let seen = seen.lock();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].transactions.last(), Some(&d));
    assert_eq!(store.alarms().len(), 2);
}

#[test]
fn the_fleet_drop_alarm_fires_when_the_fleet_shrinks_past_the_threshold() {
    let dir = TempDir::new("fleet-drop");
    let clock = clock();
    let settings = Settings {
        alarms: elbstore::elb::AlarmThresholds { deletions_in_window: 1000, ..Default::default() },
        ..Settings::in_region("us-east-1")
    };
    let seen: Arc<Mutex<Vec<Alarm>>> = Arc::default();
    let sink = seen.clone();
    let observer: elbstore::elb::Observer = Arc::new(move |alarm: &Alarm| sink.lock().push(alarm.clone()));
    let store = ElbStore::open_observed(dir.path(), options(&clock), settings, Some(observer)).unwrap();
    for i in 0..100 {
        store.execute_with(TxnMeta::new("build", "b"), |_, ctx| fleet::reference_commands(i, ctx.seq)).unwrap();
    }
    let all = ids(&store, 0..100);
    store.execute(TxnMeta::new("maint", "two"), delete(&all[0..2])).unwrap();
    assert!(seen.lock().is_empty(), "2% is not more than 2%");
    let c = store.execute(TxnMeta::new("maint", "one more"), delete(&all[2..3])).unwrap().committed.unwrap().seq;
    let seen = seen.lock();
    assert!(matches!(&seen[..], [Alarm { kind: AlarmKind::FleetDrop { peak: 100, now: 97, .. }, .. }]));
    assert_eq!(seen[0].transactions.last(), Some(&c));
}

#[test]
fn repairs_go_through_the_same_guard_and_deletion_protection() {
    let dir = TempDir::new("repair-guard");
    let clock = clock();
    let (store, _) = fleet_store(&dir, &clock, 10);
    // One transaction creates 60 load balancers (creating needs no approval).
    let created = store
        .execute_with(TxnMeta::new("svc:import", "bulk import"), |_, _| {
            (1000..1060).map(|i| Command::CreateLoadBalancer(fleet::load_balancer_spec(i))).collect()
        })
        .unwrap()
        .committed
        .unwrap()
        .seq;
    // Reverting it would delete 60: refused without an approval, like any deletion.
    let undo = RevertSelection::Transactions(vec![created]);
    let err = store
        .revert(undo.clone(), TxnMeta::new("ops:a", "undo import"), RevertMode::Apply, OnConflict::Abort)
        .unwrap_err();
    assert!(matches!(err, ElbError::BulkDeletionRefused { count: 60, .. }), "{err}");
    // Deletion protection on one of them is honoured by the revert too.
    let protected = store.read().load_balancer_by_name(&fleet::account(1000), &fleet::name(1000)).unwrap().id;
    store
        .execute(
            TxnMeta::new("customer", "protect"),
            vec![Command::ModifyLoadBalancerAttributes {
                load_balancer: protected,
                attributes: [(DELETION_PROTECTION.to_owned(), "true".to_owned())].into(),
            }],
        )
        .unwrap();
    let meta = TxnMeta::new("ops:a", "undo import").with_approval("CHG-9", "ops:b");
    let plan = store.revert(undo, meta, RevertMode::Apply, OnConflict::SkipConflicting).unwrap();
    assert!(plan.committed.is_some());
    let conflict = plan.conflicts.iter().find(|c| c.key == elbstore::elb::EntityKey::LoadBalancer(protected)).unwrap();
    // The protected one changed since (its attribute), so it conflicts either way.
    assert!(matches!(conflict.reason, ConflictReason::ChangedSince { .. } | ConflictReason::DeletionProtected));
    assert!(store.read().load_balancer(protected).is_some());
    assert_eq!(store.read().counts().load_balancers, 11);
}

#[test]
fn deletion_protection_alone_blocks_a_revert() {
    let dir = TempDir::new("protect-revert");
    let clock = clock();
    let (store, _) = fleet_store(&dir, &clock, 1);
    // Created already protected, then the creation is reverted.
    let spec = fleet::load_balancer_spec(7);
    let protect = Command::ModifyLoadBalancerAttributes {
        load_balancer: LoadBalancerId::new(store.read().seq() + 1, 0),
        attributes: [(DELETION_PROTECTION.to_owned(), "true".to_owned())].into(),
    };
    let seq = store
        .execute(TxnMeta::new("svc", "create"), vec![Command::CreateLoadBalancer(spec), protect])
        .unwrap()
        .committed
        .unwrap()
        .seq;
    let plan = store
        .revert(
            RevertSelection::Transactions(vec![seq]),
            TxnMeta::new("ops", "undo"),
            RevertMode::DryRun,
            OnConflict::Abort,
        )
        .unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].reason, ConflictReason::DeletionProtected);
}

#[test]
fn a_transaction_refused_after_the_guard_s_check_is_not_counted_by_it() {
    // Records big enough for one load balancer's build or deletion, not for
    // seven deletions at once (the test checks the refusal's cause).
    const RECORD_BYTES_MAX: u32 = 8_000;
    let dir = TempDir::new("refused-after-check");
    let clock = clock();
    let options = options(&clock).record_bytes_max(RECORD_BYTES_MAX);
    let store = ElbStore::open(dir.path(), options.clone(), Settings::in_region("us-east-1")).unwrap();
    for i in 0..60 {
        store
            .execute_with(TxnMeta::new("svc:provisioning", "build"), |_, ctx| fleet::reference_commands(i, ctx.seq))
            .unwrap();
    }
    let all = ids(&store, 0..60);
    clock.advance(Duration::from_secs(7200));
    let deleting = TxnMeta::new("maint:cleanup", "remove stale");
    let delete_one = |id: LoadBalancerId| {
        clock.advance(Duration::from_secs(1));
        store.execute(deleting.clone(), delete(&[id]))
    };
    for &id in &all[..43] {
        delete_one(id).unwrap();
    }
    // Seven more make the window's 50: the guard lets them through, and the
    // record's size limit refuses them.
    match store.execute(deleting.clone(), delete(&all[43..50])) {
        Err(ElbError::Store(Error::RecordTooLarge { limit: RECORD_BYTES_MAX, .. })) => {}
        other => panic!("{other:?}"),
    }
    // They were not deleted, so the guard does not count them: seven more,
    // one a transaction, are the window's 50, and the next is refused.
    for &id in &all[43..50] {
        delete_one(id).unwrap();
    }
    assert!(matches!(delete_one(all[50]), Err(ElbError::BulkDeletionRefused { count: 51, limit: 50, .. })));
    assert_eq!(store.read().load_balancers().count(), 10);
    // The ledger rebuilt from the log on a reopen counts the same 50.
    drop(store);
    let store = ElbStore::open(dir.path(), options, Settings::in_region("us-east-1")).unwrap();
    let refused = store.execute(deleting.clone(), delete(&all[50..51]));
    assert!(matches!(refused, Err(ElbError::BulkDeletionRefused { count: 51, limit: 50, .. })), "{refused:?}");
}
