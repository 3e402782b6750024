//! The generic event-sourced store: a state machine, its log and its snapshots.

mod background;
mod commit;
mod error;
mod feed;
mod history;
mod machine;
mod open;
mod options;
mod payload;
mod progress;
mod restore;
mod salvage;
#[cfg(any(test, feature = "replication"))]
pub(crate) mod seed;
mod txn;
mod verify;

/// A state machine for the unit tests of the store's modules.
#[cfg(test)]
pub(crate) mod testing {
    /// The sum of the events.
    #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
    pub(crate) struct Sum(pub i64);

    impl super::StateMachine for Sum {
        type Event = i64;
        fn apply(&mut self, event: &i64) {
            self.0 += event;
        }
    }
}

use std::ops::{Bound, Deref, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use commit::{ACTOR_BYTES_MAX, REASON_BYTES_MAX};
pub use error::{Error, Poison, Result};
pub use feed::Subscription;
pub use history::Point;
pub(crate) use history::{IndexedPieces, IndexedTxn, Piece};
pub use machine::StateMachine;
pub use open::{OpenReport, IDENTITY_FILE, LOCK_FILE};
pub use options::{
    Create, OpenMode, Options, SnapshotRetention, SyncPolicy, DEFAULT_ENVIRONMENT, DEFAULT_NAME,
    RECORD_BYTES_MAX_DEFAULT, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SNAPSHOT_BYTES_MAX_DEFAULT,
    SNAPSHOT_EVERY_EVENTS_DEFAULT,
};
pub(crate) use progress::Reporter;
pub use progress::{Progress, ProgressFn, Work};
pub use restore::{RestoreReport, RESTORED_FROM_FILE};
pub use salvage::{salvage, Damage, SalvageReport};
pub use txn::{Committed, Origin, RequestId, Transaction, TxnContext, TxnMeta};
pub use verify::{verify, VerifyReport};

use crate::clock::{Clock, Timestamp};
use crate::identity::Identity;
use crate::io::{FileSystem, LockGuard};
use crate::snapshot::{SnapshotError, SnapshotInfo};
use crate::wal::{LogCursor, LogWriter, SegmentInfo, WalError};
use background::Background;
use commit::{Groups, Head};

/// The identity of the store in `dir`, read from its `IDENTITY` file
/// without opening it (no replay): what a tool checks before it opens a
/// store for writing. The same refusals as an open for a missing directory,
/// a file, or a directory without an `IDENTITY` file.
#[cfg(feature = "tools")]
pub(crate) fn identity_of(dir: &Path) -> Result<Identity> {
    let fs: Arc<dyn FileSystem> = Arc::new(crate::io::RealFs);
    open::refuse_file(&fs, dir)?;
    salvage::read_identity(&fs, dir)
}

/// A read-only version of the state as of one committed transaction.
/// Cheap to clone; holding one never blocks writers.
#[derive(Debug)]
pub struct View<S> {
    seq: u64,
    time: Timestamp,
    state: Arc<S>,
}

impl<S> Clone for View<S> {
    fn clone(&self) -> View<S> {
        View { seq: self.seq, time: self.time, state: self.state.clone() }
    }
}

impl<S> View<S> {
    /// The sequence number of the last transaction included (0 for none).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Its commit timestamp (zero for none).
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// The state.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state, shared.
    pub fn state_arc(&self) -> Arc<S> {
        self.state.clone()
    }
}

impl<S> Deref for View<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.state
    }
}

/// An event-sourced store of the state machine `S`.
///
/// Every change is a transaction appended to a checksummed write-ahead log;
/// snapshots of the whole state are written in the background so that opening
/// replays only the log after the newest one. All methods take `&self`; share
/// a store between threads with `Arc<Store<S>>` or scoped threads.
///
/// ```
/// use elbstore::{Create, Options, StateMachine, Store, SyncPolicy, TxnMeta};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Counter(i64);
///
/// impl StateMachine for Counter {
///     type Event = i64;
///     fn apply(&mut self, delta: &i64) {
///         self.0 += delta;
///     }
/// }
///
/// let dir = std::env::temp_dir().join(format!("elbstore-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// // Opening never creates a store unless asked.
/// let store: Store<Counter> = Store::open(&dir, Options::default().create(Create::IfMissing))?;
/// let committed = store.commit(TxnMeta::new("ops:alice", "add five"), vec![5])?;
/// assert_eq!(committed.seq, 1);
/// assert_eq!(store.read().0, 5);
/// store.close()?;
///
/// let reopened: Store<Counter> = Store::open(&dir, Options::default())?;
/// assert_eq!(reopened.read().0, 5);
/// # drop(reopened);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), elbstore::Error>(())
/// ```
pub struct Store<S: StateMachine> {
    inner: Arc<Inner<S>>,
    background: Option<Background<S>>,
}

pub(crate) struct Inner<S: StateMachine> {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    identity: Identity,
    options: Options,
    sync: SyncPolicy,
    clock: Arc<dyn Clock>,
    segment_bytes: u64,
    record_bytes_max: u32,
    head: Mutex<Head<S>>,
    /// What appenders framed and no commit group has taken yet.
    staged: Mutex<commit::Staged<S>>,
    writer: Mutex<Option<LogWriter>>,
    groups: Mutex<Groups>,
    poisoned: AtomicBool,
    published: RwLock<View<S>>,
    segments: RwLock<Vec<SegmentInfo>>,
    snapshots: RwLock<Vec<SnapshotInfo>>,
    snapshot_lock: Mutex<()>,
    snapshot_requests: Mutex<Option<std::sync::mpsc::Sender<View<S>>>>,
    snapshot_busy: AtomicBool,
    last_snapshot_error: Mutex<Option<Arc<SnapshotError>>>,
    report: OpenReport,
    history: history::HistoryCache<S>,
    feed: Arc<feed::Feed>,
    _lock: Option<LockGuard>,
}

/// What a companion of the store (the archiver) reads of it without keeping
/// it open: its directory and file system, and its marks while it is open.
#[cfg(feature = "archive")]
pub(crate) struct Probe {
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    pub identity: Identity,
    marks: Box<dyn Fn() -> Marks + Send + Sync>,
}

/// A store's marks at one moment.
#[cfg(feature = "archive")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Marks {
    /// The last durable transaction.
    pub durable: u64,
    /// The last acknowledged (published) transaction and its commit time.
    pub acked: u64,
    pub acked_time: Timestamp,
}

#[cfg(feature = "archive")]
impl Probe {
    /// The marks now; after the store is closed or dropped, as it left them.
    pub fn marks(&self) -> Marks {
        (self.marks)()
    }
}

impl<S: StateMachine> Store<S> {
    /// Opens the store in `dir`. Opening never creates a store unless
    /// `options` ask for it ([`Create::IfMissing`] or [`Create::New`]): by
    /// default a directory without a store is [`Error::NotAStore`] and nothing
    /// is written. The state is the newest valid snapshot plus a replay of the
    /// log after it; see [`Store::open_report`] for what was found.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store<S>> {
        // Byte 0 of a payload is never a schema: what a version-0 machine
        // wrote could not be read back.
        const { assert!(S::SCHEMA_VERSION >= 1, "StateMachine::SCHEMA_VERSION starts at 1") };
        let dir = dir.as_ref().to_path_buf();
        let opened = open::open::<S>(&dir, &options)?;
        let writable = options.mode == OpenMode::ReadWrite;
        let writer = if writable {
            Some(LogWriter::open(
                options.fs.clone(),
                &dir,
                opened.identity.id,
                opened.segments.last(),
                opened.last_seq,
            )?)
        } else {
            None
        };
        let state = Arc::new(opened.state);
        let head = Head {
            state: S::clone(&state),
            next_seq: opened.last_seq + 1,
            last_time: opened.last_time,
            chunks: Vec::new(),
            active_segment_bytes: opened.last_segment_bytes,
            events_since_snapshot: 0,
        };
        let inner = Arc::new(Inner {
            fs: options.fs.clone(),
            identity: opened.identity,
            sync: options.sync,
            clock: options.clock.clone(),
            segment_bytes: options.segment_bytes,
            record_bytes_max: options.record_bytes_max,
            head: Mutex::new(head),
            staged: Mutex::new(commit::Staged::default()),
            writer: Mutex::new(writer),
            groups: Mutex::new(Groups { acked_seq: opened.last_seq, ..Groups::default() }),
            poisoned: AtomicBool::new(false),
            published: RwLock::new(View { seq: opened.last_seq, time: opened.last_time, state }),
            segments: RwLock::new(opened.segments),
            snapshots: RwLock::new(opened.snapshots),
            snapshot_lock: Mutex::new(()),
            snapshot_requests: Mutex::new(None),
            snapshot_busy: AtomicBool::new(false),
            last_snapshot_error: Mutex::new(None),
            report: opened.report,
            history: history::HistoryCache::default(),
            feed: Arc::new(feed::Feed::new(opened.last_seq)),
            _lock: opened.lock,
            options,
            dir,
        });
        let background = if writable { Some(Background::start(&inner)) } else { None };
        Ok(Store { inner, background })
    }

    /// Commits a transaction of `events`, made by `meta.actor` for
    /// `meta.reason`. Returns once the transaction is durable (per the sync
    /// policy) and visible to readers.
    pub fn commit(&self, meta: TxnMeta, events: Vec<S::Event>) -> Result<Committed> {
        self.execute(meta, |_, _| Ok::<_, Error>((events, ()))).map(|(committed, ())| committed)
    }

    /// Runs `f` against the latest state (including transactions not yet
    /// durable, which is safe because a failed fsync poisons the store) and
    /// commits the events it returns as one transaction. If `f` fails, nothing
    /// is written and its error is returned. `f` runs under the store's write
    /// lock: keep it short and free of I/O.
    pub fn execute<R, E: From<Error>>(
        &self,
        meta: TxnMeta,
        f: impl FnOnce(&S, &TxnContext) -> std::result::Result<(Vec<S::Event>, R), E>,
    ) -> std::result::Result<(Committed, R), E> {
        self.execute_folded(meta, |state, ctx| f(state, ctx).map(|(events, result)| (events, result, None)))
    }

    /// Like [`Store::execute`], where `f` may also return the state after its
    /// events, when it computed that state anyway (a validator that applies
    /// each event to a scratch copy as it goes). The store then adopts that
    /// state instead of applying the events a second time under its lock.
    /// The state returned must equal the state `f` was given with the events
    /// applied in order: replay, snapshots and readers rely on it, and the
    /// property tests check it by comparing reopened stores with live ones.
    pub fn execute_folded<R, E: From<Error>>(
        &self,
        meta: TxnMeta,
        f: impl FnOnce(&S, &TxnContext) -> std::result::Result<(Vec<S::Event>, R, Option<S>), E>,
    ) -> std::result::Result<(Committed, R), E> {
        self.execute_framed(meta, f, |_, _| {})
    }

    /// Like [`Store::execute_folded`], with `framed` run on `f`'s result once
    /// the transaction is framed for the log (its record encoded, within the
    /// size limit), still under the head lock, so in commit order. `f` runs
    /// before the record is encoded, which may still refuse the transaction:
    /// what must count only transactions that are written (the deletion
    /// guard's ledger) is recorded in `framed`.
    pub(crate) fn execute_framed<R, E: From<Error>>(
        &self,
        meta: TxnMeta,
        f: impl FnOnce(&S, &TxnContext) -> std::result::Result<(Vec<S::Event>, R, Option<S>), E>,
        framed: impl FnOnce(&TxnContext, &mut R),
    ) -> std::result::Result<(Committed, R), E> {
        if self.inner.options.mode == OpenMode::ReadOnly {
            return Err(Error::ReadOnly { dir: self.inner.dir.clone() }.into());
        }
        let (committed, result) = self.inner.append(&meta, f, framed)?;
        self.inner.wait_acked(committed.seq)?;
        Ok((committed, result))
    }

    /// Makes every transaction written so far durable now (under
    /// `SyncPolicy::Interval` or `Never`, before a mark kept elsewhere may
    /// name it).
    #[cfg(feature = "replication")]
    pub(crate) fn sync_now(&self) -> Result<()> {
        self.inner.sync_log()
    }

    /// The time on the store's clock.
    pub(crate) fn clock_now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Runs the checks a commit of `events` by `meta` passes before anything
    /// is written (attribution, field lengths, a revert mark, the record size limit) and
    /// writes nothing: a dry run calls it so that it refuses exactly what the
    /// real run would. Works on read-only handles.
    pub fn check_transaction(&self, meta: &TxnMeta, events: &[S::Event]) -> Result<()> {
        commit::check_meta(meta)?;
        let seq = self.read().seq() + 1;
        commit::check_reverts(meta, seq)?;
        let limit = self.inner.record_bytes_max;
        let mut bytes = Vec::new();
        payload::encode_into::<S>(meta, events, &mut bytes, limit).map_err(|source| {
            if source.is_size_limit() {
                Error::RecordTooLarge { seq, bytes: limit as usize + 1, limit }
            } else {
                Error::Unencodable { seq, source }
            }
        })?;
        // The limit the log applies to a frame's payload.
        if bytes.len() > limit as usize {
            return Err(Error::RecordTooLarge { seq, bytes: bytes.len(), limit });
        }
        Ok(())
    }

    /// The state as of the last acknowledged transaction. Never includes a
    /// transaction that is not yet durable.
    pub fn read(&self) -> View<S> {
        self.inner.published.read().clone()
    }

    /// The transactions in `range` (by sequence number), read from the log one
    /// segment at a time, up to the last acknowledged one.
    pub fn transactions(&self, range: impl RangeBounds<u64>) -> Transactions<S> {
        Transactions {
            cursor: self.log_cursor(range),
            record_bytes_max: self.inner.record_bytes_max,
            _machine: std::marker::PhantomData,
        }
    }

    /// The durable transactions from `from_seq` on (1 is the first), in
    /// order, without gaps or duplicates, each handed out once it is durable
    /// and published (see [`Subscription`]). `from_seq` may be any point up
    /// to the one after the latest transaction; a later one is
    /// [`Error::PointOutOfRange`] (a consumer that has seen more than this
    /// store holds follows another store, or one restored to an earlier
    /// point). A subscriber reads the log itself, so one that falls behind
    /// costs the writers nothing.
    pub fn subscribe(&self, from_seq: u64) -> Result<Subscription<S>> {
        let (last, time) = {
            let view = self.inner.published.read();
            (view.seq, view.time)
        };
        // A log that starts late has nothing before its first record.
        let floor = self.log_floor();
        if from_seq > last + 1 || (floor > 0 && from_seq <= floor) {
            return Err(Error::PointOutOfRange { point: Point::Seq(from_seq), first: None, last: Some((last, time)) });
        }
        Ok(Subscription::new(&self.inner, from_seq))
    }

    /// Whether the feed keeps transaction `seq` in memory (tests).
    #[cfg(test)]
    pub(crate) fn feed_keeps(&self, seq: u64) -> bool {
        self.inner.feed.keeps(seq)
    }

    /// The last transaction that is durable, which subscribers have been
    /// offered: the published one with `SyncPolicy::Always`; with `Interval`
    /// the one the last interval's fsync covered.
    pub fn durable_seq(&self) -> u64 {
        self.inner.feed.durable()
    }

    /// A cursor over the records in `range`, up to the last acknowledged one.
    pub(crate) fn log_cursor(&self, range: impl RangeBounds<u64>) -> LogCursor {
        let last = self.inner.published.read().seq;
        let from = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.saturating_add(1),
            Bound::Unbounded => 1,
        };
        let to = match range.end_bound() {
            Bound::Included(&n) => n.min(last),
            Bound::Excluded(&n) => n.saturating_sub(1).min(last),
            Bound::Unbounded => last,
        };
        let segments = self.inner.segments.read().clone();
        // A log that starts late holds nothing before its first record.
        let from = from.max(segments.first().map_or(1, |s| s.first_seq));
        LogCursor::new(self.inner.fs.clone(), segments, from, to, self.inner.record_bytes_max)
    }

    /// Writes a snapshot of the current state now, in this thread, and returns
    /// it (or the existing snapshot at the same sequence number).
    pub fn snapshot(&self) -> Result<SnapshotInfo> {
        if self.inner.options.mode == OpenMode::ReadOnly {
            return Err(Error::ReadOnly { dir: self.inner.dir.clone() });
        }
        let view = self.read();
        self.inner.write_snapshot(&view)
    }

    /// The snapshots on disk, oldest first. Older ones are checked only when used.
    pub fn snapshots(&self) -> Vec<SnapshotInfo> {
        self.inner.snapshots.read().clone()
    }

    /// How many records of the log were written with each schema version
    /// (see [`StateMachine::SCHEMA_VERSION`]). Reads the whole log and checks
    /// every record's checksum, without decoding events.
    pub fn record_schemas(&self) -> Result<std::collections::BTreeMap<u8, u64>> {
        let mut counts = std::collections::BTreeMap::new();
        let mut cursor = self.log_cursor(..);
        while let Some(schema) = cursor.next_with(|_, _, frame| Ok(payload::schema_of(frame.payload).unwrap_or(0))) {
            *counts.entry(schema?).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// The log's segments, in sequence order.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.inner.segments.read().clone()
    }

    /// A probe for a companion that must not keep the store open; `None`
    /// for a read-only handle, whose view of what is durable is only what
    /// its files show (another process's unsynced records among it).
    #[cfg(feature = "archive")]
    pub(crate) fn probe(&self) -> Option<Probe> {
        if self.inner.options.mode == OpenMode::ReadOnly {
            return None;
        }
        let weak = Arc::downgrade(&self.inner);
        let durable = self.inner.feed.shared_mark();
        let last = Arc::new(Mutex::new((0, Timestamp(0))));
        Some(Probe {
            dir: self.inner.dir.clone(),
            fs: self.inner.fs.clone(),
            identity: self.inner.identity.clone(),
            marks: Box::new(move || {
                // Once the store is closed, the mark its close left stands,
                // with the last acknowledged seq seen.
                let mut acked = last.lock();
                if let Some(inner) = weak.upgrade() {
                    let published = inner.published.read();
                    *acked = (published.seq, published.time);
                }
                let durable = durable.load(std::sync::atomic::Ordering::Acquire);
                Marks { durable, acked: acked.0.max(durable), acked_time: acked.1 }
            }),
        })
    }

    /// The store's identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What opening the store found: the snapshot used, snapshots passed over,
    /// a torn tail cut off, temporary files removed.
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// The error that poisoned the store, if any.
    pub fn poisoned(&self) -> Option<Error> {
        self.inner.poisoned_error()
    }

    /// The last background snapshot failure, if the most recent attempt failed.
    pub fn last_snapshot_error(&self) -> Option<Arc<SnapshotError>> {
        self.inner.last_snapshot_error.lock().clone()
    }

    /// Waits for any background snapshot, makes the log durable and releases
    /// the store. Dropping the store does the same but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<()> {
        if let Some(background) = self.background.take() {
            background.stop();
        }
        let synced = if self.inner.options.mode == OpenMode::ReadWrite && self.inner.poisoned_error().is_none() {
            self.inner.sync_log()
        } else {
            Ok(())
        };
        self.inner.feed.close();
        synced
    }
}

impl<S: StateMachine> Drop for Store<S> {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

impl<S: StateMachine> std::fmt::Debug for Store<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("identity", &self.inner.identity)
            .field("mode", &self.inner.options.mode)
            .field("seq", &self.inner.published.read().seq)
            .finish_non_exhaustive()
    }
}

/// Transactions read back from the log, events upcast to the current schema
/// version; see [`Store::transactions`].
pub struct Transactions<S> {
    cursor: LogCursor,
    record_bytes_max: u32,
    _machine: std::marker::PhantomData<fn() -> S>,
}

impl<S: StateMachine> Iterator for Transactions<S> {
    type Item = Result<Transaction<S::Event>>;

    fn next(&mut self) -> Option<Self::Item> {
        let limit = self.record_bytes_max;
        let item = self.cursor.next_with(|path, offset, frame| decode_transaction::<S>(path, offset, frame, limit))?;
        Some(item.map_err(Error::from))
    }
}

/// Decodes the transaction in `frame`, read at `offset` of `path`.
pub(crate) fn decode_transaction<S: StateMachine>(
    path: &Path,
    offset: usize,
    frame: &crate::wal::Frame<'_>,
    limit: u32,
) -> std::result::Result<Transaction<S::Event>, WalError> {
    let (meta, events) = payload::decode::<S>(frame.payload, limit)
        .map_err(|source| WalError::undecodable(path, offset as u64, frame.seq, source))?;
    Ok(Transaction { seq: frame.seq, time: frame.time, meta, events })
}
