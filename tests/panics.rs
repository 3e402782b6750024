//! Panics in code that is not the store's, on the commit path: the caller's
//! closure, the state machine's `apply` and `clone`, an event's `Serialize`.
//! A panic leaves nothing pending, poisons the handle with a typed error that
//! names it, never hangs a writer, and every acknowledged commit survives a
//! reopen with its own sequence number.

mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::Duration;

use common::{Kv, KvEvent};
use elbstore::io::{CrashMode, SimFs};
use elbstore::{Create, Error, Options, Poison, StateMachine, Store, SyncPolicy, TxnMeta};
use proptest::prelude::*;
use serde::{Deserialize, Serialize, Serializer};

const DIR: &str = "/store";

/// Clones of [`Fragile`] left before one panics; `u64::MAX` is disarmed. The
/// trigger is process-wide, so every test in this file holds [`ARMING`].
static CLONES_UNTIL_PANIC: AtomicU64 = AtomicU64::new(u64::MAX);
static ARMING: Mutex<()> = Mutex::new(());

/// What every deliberate panic says, so the panic hook can keep them quiet.
const ON_PURPOSE: &str = "panicked on purpose";

fn quiet_deliberate_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.payload().downcast_ref::<&str>().copied().unwrap_or_default();
            if !message.contains(ON_PURPOSE) {
                default(info);
            }
        }));
    });
}

fn arm_clone_panic(after: u64) {
    CLONES_UNTIL_PANIC.store(after, Ordering::SeqCst);
}

fn disarm() {
    CLONES_UNTIL_PANIC.store(u64::MAX, Ordering::SeqCst);
}

/// The key-value machine, with code that panics on demand.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Fragile(Kv);

impl Clone for Fragile {
    fn clone(&self) -> Fragile {
        let left = CLONES_UNTIL_PANIC.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            u64::MAX => None,
            0 | 1 => Some(u64::MAX),
            n => Some(n - 1),
        });
        if left == Ok(1) {
            panic!("clone {ON_PURPOSE}");
        }
        Fragile(self.0.clone())
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
enum FragileEvent {
    Kv(KvEvent),
    PanicInApply,
    PanicInSerialize(Bomb),
}

/// Serializes as far as its variant index, then panics: the encoder has
/// already written part of the record when the panic comes.
#[derive(Clone, Debug, PartialEq, Deserialize)]
struct Bomb;

impl Serialize for Bomb {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("serialize {ON_PURPOSE}")
    }
}

impl Serialize for FragileEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FragileEvent::Kv(event) => serializer.serialize_newtype_variant("FragileEvent", 0, "Kv", event),
            FragileEvent::PanicInApply => serializer.serialize_unit_variant("FragileEvent", 1, "PanicInApply"),
            FragileEvent::PanicInSerialize(bomb) => {
                serializer.serialize_newtype_variant("FragileEvent", 2, "PanicInSerialize", bomb)
            }
        }
    }
}

impl StateMachine for Fragile {
    type Event = FragileEvent;

    fn apply(&mut self, event: &FragileEvent) {
        match event {
            FragileEvent::Kv(event) => self.0.apply(event),
            FragileEvent::PanicInApply => panic!("apply {ON_PURPOSE}"),
            FragileEvent::PanicInSerialize(_) => {}
        }
    }
}

fn options(fs: &SimFs) -> Options {
    Options::default()
        .create(Create::IfMissing)
        .file_system(Arc::new(fs.clone()))
        .sync(SyncPolicy::Always)
        .segment_bytes(4096)
        .snapshot_every_events(None)
}

fn set(w: u32, i: u32) -> Vec<FragileEvent> {
    vec![FragileEvent::Kv(KvEvent::Set(w * 1000 + i, u64::from(i))), FragileEvent::Kv(KvEvent::Mix(w, u64::from(i)))]
}

fn meta(w: u32, i: u32) -> TxnMeta {
    TxnMeta::new(format!("writer-{w}"), format!("change {i}"))
}

/// Acknowledged commits: seq -> (writer, index).
type Acked = BTreeMap<u64, (u32, u32)>;

/// Reopens `image`: every acknowledged commit is there with its own events,
/// the log is gapless, and the next commit gets the next sequence number.
fn check_reopen(image: &SimFs, acked: &Acked, context: &str) {
    let store = Store::<Fragile>::open(DIR, options(image)).unwrap_or_else(|err| panic!("{context}: reopen: {err}"));
    let logged: Vec<_> = store.transactions(..).map(|t| t.unwrap()).collect();
    for (index, txn) in logged.iter().enumerate() {
        assert_eq!(txn.seq, index as u64 + 1, "{context}: gapless");
    }
    for (&seq, &(w, i)) in acked {
        let txn = logged.get(seq as usize - 1).unwrap_or_else(|| panic!("{context}: acknowledged seq {seq} lost"));
        assert_eq!((&txn.meta.actor, &txn.events), (&meta(w, i).actor, &set(w, i)), "{context}: seq {seq}");
    }
    let next = store.commit(meta(99, 0), set(99, 0)).unwrap();
    assert_eq!(next.seq, logged.len() as u64 + 1, "{context}");
}

/// Commits `events` expecting a panic, then checks the handle is poisoned by
/// it, unchanged for readers, and that a reopen holds exactly the earlier commits.
/// With `clone_panics`, the next clone of the state panics instead.
fn panics_and_poisons(events: Vec<FragileEvent>, names: &str, clone_panics: bool) {
    quiet_deliberate_panics();
    // Another test may arm the clone trigger: every test here takes turns.
    let _arming = ARMING.lock().unwrap_or_else(|e| e.into_inner());
    let fs = SimFs::new();
    let store = Store::<Fragile>::open(DIR, options(&fs)).unwrap();
    let mut acked = Acked::new();
    for i in 0..3 {
        acked.insert(store.commit(meta(0, i), set(0, i)).unwrap().seq, (0, i));
    }
    if clone_panics {
        arm_clone_panic(1);
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| store.commit(meta(0, 3), events)));
    disarm();
    assert!(outcome.is_err(), "the panic reaches the caller");
    match store.commit(meta(0, 4), set(0, 4)) {
        Err(Error::Poisoned { cause }) => match cause.as_ref() {
            Poison::Panic { seq, message } => {
                assert_eq!(*seq, 4, "the panic is named with the transaction it interrupted");
                assert!(message.contains(names), "{message}");
            }
            other => panic!("poisoned by {other}, not the panic"),
        },
        other => panic!("a commit after the panic: {other:?}"),
    }
    assert_eq!(store.read().seq(), 3, "readers still see the last acknowledged state");
    assert!(store.poisoned().is_some());
    drop(store);
    for mode in [CrashMode::KeepUnsynced, CrashMode::DropUnsynced] {
        let image = fs.crash_image(mode);
        let logged = Store::<Fragile>::open(DIR, options(&image)).unwrap().transactions(..).count();
        assert_eq!(logged, acked.len(), "{names}, {mode:?}: the interrupted transaction never reaches the log");
        check_reopen(&image, &acked, &format!("{names}, {mode:?}"));
    }
}

/// Regression: a panic in `apply` left the framed record pending and the
/// sequence number unmoved; the next commit reused the number, both records
/// were written and acknowledged, and every later open panicked replaying the
/// first.
#[test]
fn a_panic_in_apply_leaves_nothing_pending_and_poisons_the_store() {
    panics_and_poisons(vec![FragileEvent::Kv(KvEvent::Set(1, 1)), FragileEvent::PanicInApply], "apply", false);
}

/// Regression: a panic in an event's `Serialize` left a partly encoded record
/// in the pending buffer, written with the next group.
#[test]
fn a_panic_in_serialize_leaves_nothing_pending_and_poisons_the_store() {
    panics_and_poisons(
        vec![FragileEvent::Kv(KvEvent::Set(1, 1)), FragileEvent::PanicInSerialize(Bomb)],
        "serialize",
        false,
    );
}

/// A transaction large enough that its appender clones the state for the
/// commit group (under the head lock, so the group needs none): a panic in
/// that clone poisons the store and names the transaction, and it is never
/// written, though it was framed and applied to the head.
#[test]
fn a_panic_while_a_large_transaction_s_state_is_staged_poisons_the_store() {
    let events = (0..100).map(|k| FragileEvent::Kv(KvEvent::Set(5000 + k, u64::from(k)))).collect();
    panics_and_poisons(events, "clone", true);
}

/// Runs `writers` threads of `per_writer` commits each; the `panic_at`-th
/// commit of writer 0 carries `bomb` if given. Each writer stops at its first
/// failure or panic. Returns what was acknowledged and what poisoned the
/// store, or `None` if a writer did not finish within a minute (a hang).
fn workload(
    fs: &SimFs,
    writers: u32,
    per_writer: u32,
    bomb: Option<(u32, FragileEvent)>,
) -> Option<(Acked, Option<Error>)> {
    let store = Arc::new(Store::<Fragile>::open(DIR, options(fs)).unwrap());
    let (done, finished) = mpsc::channel();
    for w in 0..writers {
        let (store, done, bomb) = (store.clone(), done.clone(), bomb.clone());
        std::thread::spawn(move || {
            let mut mine = Vec::new();
            for i in 0..per_writer {
                let mut events = set(w, i);
                if let Some((at, event)) = &bomb {
                    if w == 0 && i == *at {
                        events.push(event.clone());
                    }
                }
                match catch_unwind(AssertUnwindSafe(|| store.commit(meta(w, i), events))) {
                    Ok(Ok(committed)) => mine.push((committed.seq, (w, i))),
                    Ok(Err(Error::Poisoned { .. })) | Err(_) => break,
                    Ok(Err(other)) => panic!("writer {w}: {other}"),
                }
            }
            let _ = done.send(mine);
        });
    }
    drop(done);
    let mut acked = Acked::new();
    for _ in 0..writers {
        let mine = finished.recv_timeout(Duration::from_secs(60)).ok()?;
        for (seq, who) in mine {
            assert!(acked.insert(seq, who).is_none(), "sequence number {seq} acknowledged twice");
        }
    }
    Some((acked, store.poisoned()))
}

/// Regression: a panic while the group leader cloned the state left
/// `leader_active` set, and every writer then waited forever for a leader
/// that was gone. (The leader clones the state after small transactions; a
/// large one's appender clones it, tested below.)
#[test]
fn a_panic_while_the_state_is_cloned_for_a_group_never_hangs_a_writer() {
    quiet_deliberate_panics();
    let _arming = ARMING.lock().unwrap_or_else(|e| e.into_inner());
    let fs = SimFs::new();
    // The open clones once; the third group's leader panics.
    arm_clone_panic(4);
    let acked = workload(&fs, 4, 20, None);
    disarm();
    let (acked, poison) = acked.expect("no writer hangs after a panic in the leader");
    assert!(acked.len() < 80, "the panic stopped the workload");
    // The poison names the first transaction of the group whose leader panicked.
    let first_unacknowledged = acked.keys().max().map_or(1, |seq| seq + 1);
    match poison {
        Some(Error::Poisoned { cause }) => match cause.as_ref() {
            Poison::Panic { seq, message } => {
                assert_eq!(*seq, first_unacknowledged);
                assert!(message.contains("clone"), "{message}");
            }
            other => panic!("poisoned by {other}"),
        },
        other => panic!("expected the store poisoned by the panic, got {other:?}"),
    }
    check_reopen(&fs.crash_image(CrashMode::DropUnsynced), &acked, "clone panic");
}

#[derive(Clone, Debug)]
enum Inject {
    Apply,
    Serialize,
    Clone,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A panic in `apply`, `Serialize` or `clone` at a random point of a
    /// concurrent workload: no writer hangs, no sequence number is
    /// acknowledged twice, and every acknowledged commit survives a reopen
    /// after a process crash and after a power loss.
    #[test]
    fn a_panic_anywhere_in_a_concurrent_workload_strands_nothing_acknowledged(
        writers in 2u32..5,
        per_writer in 2u32..12,
        inject in prop_oneof![Just(Inject::Apply), Just(Inject::Serialize), Just(Inject::Clone)],
        at in 0u32..12,
    ) {
        quiet_deliberate_panics();
        let _arming = ARMING.lock().unwrap_or_else(|e| e.into_inner());
        let fs = SimFs::new();
        let bomb = match inject {
            Inject::Apply => Some((at % per_writer, FragileEvent::PanicInApply)),
            Inject::Serialize => Some((at % per_writer, FragileEvent::PanicInSerialize(Bomb))),
            Inject::Clone => {
                arm_clone_panic(u64::from(at) + 2);
                None
            }
        };
        let outcome = workload(&fs, writers, per_writer, bomb);
        disarm();
        let (acked, _) = outcome.expect("no writer hangs");
        for mode in [CrashMode::KeepUnsynced, CrashMode::DropUnsynced] {
            check_reopen(&fs.crash_image(mode), &acked, &format!("{inject:?} at {at}, {mode:?}"));
        }
    }
}
