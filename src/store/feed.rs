//! The change feed: a [`Subscription`] hands out the store's transactions
//! from a sequence number on, in order, without gaps or duplicates, and only
//! once they are durable.
//!
//! The writer publishes one number, the last durable transaction (the
//! *durable mark*), and wakes the subscribers waiting for it. While a
//! subscription exists, the leader of each commit group also keeps the
//! group's sealed records in a bounded list; a subscriber that keeps up
//! decodes them from there, and one that falls behind reads the log files,
//! a bounded window at a time, from where it stopped. So a slow subscriber
//! costs the writers nothing and holds no more memory than one read window,
//! however far behind it is; a subscriber holds no reference that keeps the
//! store open, and dropping it releases its buffer and nothing else.
//!
//! With [`SyncPolicy::Always`](super::SyncPolicy::Always) the mark follows
//! every commit group; with `Interval` it follows the interval's fsync; with
//! `Never` it moves only when the log is synced anyway (a segment is synced
//! before the next starts, and at [`Store::close`](super::Store::close)).
//! A poisoned store's subscribers get [`Error::Poisoned`] once they have
//! what was durable; a closed store's get [`Error::Closed`].
//!
//! On a store opened [read-only](super::OpenMode::ReadOnly) beside a writer
//! in another process, there is no mark to wait on: the subscription polls
//! the log files and learns what is durable from the log itself. Every
//! frame carries the last sequence number that was durable when it was
//! written, and a segment is synced before the next one is started; so a
//! transaction is offered once a later frame (checked whole, by its
//! checksum) or a later segment vouches for it. The newest commit group
//! waits for the writer's next one.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::error::{Error, Result};
use super::machine::StateMachine;
use super::txn::Transaction;
use super::{payload, Inner};
use crate::wal::{decode_frame, FrameProblem, WalError, SEGMENT_HEADER_BYTES};

/// The most bytes one read from the log takes into a subscriber's window
/// (a record larger than this is read whole).
const READ_WINDOW_BYTES: usize = 1 << 20;

/// How often a subscription on a read-only store looks for new records.
const POLL: Duration = Duration::from_millis(10);

/// The newest commit groups kept in memory for subscribers that keep up:
/// at most this many bytes of records...
const RECENT_BYTES_MAX: usize = 8 << 20;
/// ...and at most this many chunks.
const RECENT_CHUNKS_MAX: usize = 4096;

/// The durable mark, shared by the store and its subscribers, and the
/// newest commit groups' records.
#[derive(Debug)]
pub(crate) struct Feed {
    mark: Mutex<Mark>,
    /// The durable mark again, for companions that read it without the
    /// feed (the archiver): it outlives the store, so a last look after a
    /// close sees the mark the close left.
    shared: Arc<std::sync::atomic::AtomicU64>,
    advanced: Condvar,
    recent: Mutex<Recents>,
}

#[derive(Debug, Default)]
struct Recents {
    chunks: std::collections::VecDeque<Arc<Recent>>,
    bytes: usize,
}

/// Records of a commit group as written to the log: whole, sealed frames.
#[derive(Debug)]
pub(crate) struct Recent {
    /// The segment they are in.
    pub segment: crate::wal::SegmentInfo,
    /// Where they start in it.
    pub offset: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct Mark {
    /// The last transaction that is durable and published.
    durable: u64,
    /// The store was closed (or dropped): the mark moves no more.
    closed: bool,
    /// The store is poisoned: the mark moves no more.
    stopped: bool,
}

impl Feed {
    pub(crate) fn new(durable: u64) -> Feed {
        Feed {
            mark: Mutex::new(Mark { durable, closed: false, stopped: false }),
            shared: Arc::new(std::sync::atomic::AtomicU64::new(durable)),
            advanced: Condvar::new(),
            recent: Mutex::new(Recents::default()),
        }
    }

    /// Whether any subscription is open (each holds the feed).
    pub(crate) fn has_subscribers(self: &Arc<Feed>) -> bool {
        Arc::strong_count(self) > 1
    }

    /// Keeps the records of a group just written for the subscribers that
    /// keep up, dropping the oldest past the bounds; with no subscriber
    /// left, drops them all.
    pub(crate) fn offer(self: &Arc<Feed>, written: Vec<Recent>) {
        if written.is_empty() {
            return;
        }
        let mut recent = self.recent.lock();
        if !self.has_subscribers() {
            *recent = Recents::default();
            return;
        }
        for chunk in written {
            recent.bytes += chunk.bytes.len();
            recent.chunks.push_back(Arc::new(chunk));
        }
        while recent.bytes > RECENT_BYTES_MAX || recent.chunks.len() > RECENT_CHUNKS_MAX {
            let Some(old) = recent.chunks.pop_front() else { break };
            recent.bytes -= old.bytes.len();
        }
    }

    #[cfg(test)]
    pub(crate) fn keeps(&self, seq: u64) -> bool {
        self.recent_with(seq).is_some()
    }

    /// The kept records that hold `seq`, if they are still kept.
    fn recent_with(&self, seq: u64) -> Option<Arc<Recent>> {
        let recent = self.recent.lock();
        let index = recent.chunks.partition_point(|c| c.last_seq < seq);
        recent.chunks.get(index).filter(|c| c.first_seq <= seq).cloned()
    }

    /// Moves the mark forward to `durable` (never back) and wakes the
    /// subscribers.
    pub(crate) fn advance(&self, durable: u64) {
        if self.raise(durable) {
            self.wake();
        }
    }

    /// Moves the mark forward to `durable` (never back) without waking
    /// anyone: a subscriber that looks sees it, one asleep waits for
    /// [`Feed::wake`]. Says whether it moved.
    pub(crate) fn raise(&self, durable: u64) -> bool {
        let mut mark = self.mark.lock();
        let moved = durable > mark.durable;
        mark.durable = mark.durable.max(durable);
        self.shared.store(mark.durable, std::sync::atomic::Ordering::Release);
        moved
    }

    /// The durable mark, shared (see `shared`).
    #[cfg(feature = "archive")]
    pub(crate) fn shared_mark(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.shared.clone()
    }

    /// Wakes the subscribers waiting for the mark to move.
    pub(crate) fn wake(&self) {
        self.advanced.notify_all();
    }

    /// The store is closing: wakes every waiting subscriber for good and
    /// lets go of the kept records.
    pub(crate) fn close(&self) {
        self.mark.lock().closed = true;
        self.advanced.notify_all();
        *self.recent.lock() = Recents::default();
    }

    /// The store is poisoned: the mark will not move again.
    pub(crate) fn stop(&self) {
        self.mark.lock().stopped = true;
        self.advanced.notify_all();
    }

    /// The last durable transaction.
    pub(crate) fn durable(&self) -> u64 {
        self.mark.lock().durable
    }

    /// Waits until the mark reaches `seq`, the store closes, or `deadline`
    /// passes; returns the mark as it is then.
    fn wait_for(&self, seq: u64, deadline: Option<Instant>) -> Mark {
        let mut mark = self.mark.lock();
        while mark.durable < seq && !mark.closed && !mark.stopped {
            match deadline {
                None => self.advanced.wait(&mut mark),
                Some(deadline) => {
                    if self.advanced.wait_until(&mut mark, deadline).timed_out() {
                        break;
                    }
                }
            }
        }
        *mark
    }
}

/// The store's durable transactions from a sequence number on; see
/// [`Store::subscribe`](super::Store::subscribe).
///
/// # Example
///
/// ```
/// use elbstore::{Create, Options, StateMachine, Store, TxnMeta};
/// # #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
/// # struct Counter(u64);
/// # impl StateMachine for Counter {
/// #     type Event = u64;
/// #     fn apply(&mut self, by: &u64) { self.0 += by; }
/// # }
/// # let dir = std::env::temp_dir().join(format!("elbstore-doc-feed-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let store: Store<Counter> = Store::open(&dir, Options::default().create(Create::IfMissing))?;
/// let mut feed = store.subscribe(1)?;
/// store.commit(TxnMeta::new("ops:alice", "count"), vec![2])?;
/// store.commit(TxnMeta::new("ops:alice", "count"), vec![3])?;
/// let first = feed.recv()?;
/// assert_eq!((first.seq, first.events), (1, vec![2]));
/// assert_eq!(feed.try_recv()?.map(|txn| txn.seq), Some(2));
/// assert_eq!(feed.try_recv()?.map(|txn| txn.seq), None, "nothing more yet");
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), elbstore::Error>(())
/// ```
pub struct Subscription<S: StateMachine> {
    inner: Weak<Inner<S>>,
    feed: Arc<Feed>,
    dir: PathBuf,
    next_seq: u64,
    /// Reading from the feed's kept records: which, and how far.
    memory: Option<(Arc<Recent>, usize)>,
    window: Option<Window>,
    /// On a read-only store: what the log itself shows durable.
    tail: Option<Tail>,
}

/// What a subscription on a read-only store has learnt from the log.
#[derive(Debug)]
struct Tail {
    /// The last transaction a frame or a later segment vouches for.
    durable: u64,
    /// The segments as last listed.
    segments: Vec<crate::wal::SegmentInfo>,
    /// The segment and offset of the next frame to examine for its mark.
    probe: Option<(PathBuf, u64, u64)>,
}

impl<S: StateMachine> Drop for Subscription<S> {
    fn drop(&mut self) {
        // The store and this subscription hold the feed: the last subscriber
        // lets go of the kept records.
        if Arc::strong_count(&self.feed) <= 2 {
            *self.feed.recent.lock() = Recents::default();
        }
    }
}

/// Where a subscriber is in the log: bytes of one segment read but not yet
/// handed out.
#[derive(Debug)]
struct Window {
    path: PathBuf,
    /// The segment's first sequence number.
    first_seq: u64,
    /// The file offset of `bytes[0]`.
    offset: u64,
    bytes: Vec<u8>,
    /// How far into `bytes` the records are handed out.
    at: usize,
}

impl<S: StateMachine> Subscription<S> {
    pub(crate) fn new(inner: &Arc<Inner<S>>, from_seq: u64) -> Subscription<S> {
        let read_only = inner.options.mode == super::OpenMode::ReadOnly;
        Subscription {
            inner: Arc::downgrade(inner),
            feed: inner.feed.clone(),
            dir: inner.dir.clone(),
            next_seq: from_seq.max(1),
            memory: None,
            window: None,
            tail: read_only.then(|| Tail { durable: 0, segments: inner.segments.read().clone(), probe: None }),
        }
    }

    /// The sequence number of the next transaction this subscription hands out.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The next transaction, waiting for it to become durable. Fails with
    /// [`Error::Closed`] once the store is closed or dropped (a consumer
    /// resumes from [`Subscription::next_seq`] on the store reopened).
    pub fn recv(&mut self) -> Result<Transaction<S::Event>> {
        loop {
            // A wait without a deadline ends with a transaction or an error.
            if let Some(txn) = self.receive(None)? {
                return Ok(txn);
            }
        }
    }

    /// The next transaction if it becomes durable within `timeout` (a
    /// timeout too long to represent waits without one).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Transaction<S::Event>>> {
        self.receive(Instant::now().checked_add(timeout))
    }

    /// The next transaction if it is durable now, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Transaction<S::Event>>> {
        self.receive(Some(Instant::now()))
    }

    fn receive(&mut self, deadline: Option<Instant>) -> Result<Option<Transaction<S::Event>>> {
        if self.tail.is_some() {
            return self.receive_polling(deadline);
        }
        let mark = self.feed.wait_for(self.next_seq, deadline);
        if mark.closed {
            return Err(Error::Closed { dir: self.dir.clone() });
        }
        let Some(inner) = self.inner.upgrade() else { return Err(Error::Closed { dir: self.dir.clone() }) };
        if mark.durable < self.next_seq {
            if mark.stopped {
                if let Some(err) = inner.poisoned_error() {
                    return Err(err);
                }
            }
            return Ok(None);
        }
        let txn = self.read_next(&inner)?;
        self.next_seq += 1;
        Ok(Some(txn))
    }

    /// On a read-only store: polls the log until it vouches for `next_seq`.
    fn receive_polling(&mut self, deadline: Option<Instant>) -> Result<Option<Transaction<S::Event>>> {
        loop {
            let Some(inner) = self.inner.upgrade() else { return Err(Error::Closed { dir: self.dir.clone() }) };
            let tail = self.tail.as_mut().expect("a polling subscription has a tail");
            if tail.durable < self.next_seq {
                learn(&inner, tail, self.next_seq)?;
            }
            if tail.durable >= self.next_seq {
                let txn = self.read_next(&inner)?;
                self.next_seq += 1;
                return Ok(Some(txn));
            }
            drop(inner);
            let now = Instant::now();
            match deadline {
                Some(deadline) if now >= deadline => return Ok(None),
                Some(deadline) => std::thread::sleep(POLL.min(deadline - now)),
                None => std::thread::sleep(POLL),
            }
        }
    }

    /// Reads transaction `next_seq`, which is durable, from the feed's kept
    /// records when it is among them, else from the log.
    fn read_next(&mut self, inner: &Inner<S>) -> Result<Transaction<S::Event>> {
        if self.tail.is_none() {
            if let Some(txn) = self.read_kept(inner)? {
                return Ok(txn);
            }
        }
        self.read_logged(inner)
    }

    /// `next_seq` from the feed's kept records, if they still hold it. The
    /// log position moves along, so a subscriber that falls behind the kept
    /// records goes on from the log where it left off.
    fn read_kept(&mut self, inner: &Inner<S>) -> Result<Option<Transaction<S::Event>>> {
        let seq = self.next_seq;
        let holds = |chunk: &Recent| chunk.first_seq <= seq && seq <= chunk.last_seq;
        if !self.memory.as_ref().is_some_and(|(chunk, _)| holds(chunk)) {
            let Some(chunk) = self.feed.recent_with(seq) else { return Ok(None) };
            self.memory = Some((chunk, 0));
        }
        let (chunk, at) = self.memory.as_mut().expect("set above");
        let path = &chunk.segment.path;
        // Kept records are whole, sealed frames: any problem is damage.
        let txn = step::<S>(&chunk.bytes, at, seq, inner.record_bytes_max, path, chunk.offset)?.map_err(|problem| {
            Error::Wal(WalError::Corrupted { path: path.clone(), offset: chunk.offset + *at as u64, problem })
        })?;
        // The log goes on right after this record.
        self.window = Some(Window {
            path: path.clone(),
            first_seq: chunk.segment.first_seq,
            offset: chunk.offset + *at as u64,
            bytes: Vec::new(),
            at: 0,
        });
        Ok(Some(txn))
    }

    /// `next_seq` from the log files.
    fn read_logged(&mut self, inner: &Inner<S>) -> Result<Transaction<S::Event>> {
        let seq = self.next_seq;
        // The segment list, when a window opens or a segment ends.
        let segments = |tail: &Option<Tail>| match tail {
            Some(tail) => tail.segments.clone(),
            None => inner.segments.read().clone(),
        };
        // On a read-only store the bytes past the durable records may be a
        // write in progress, or a tail the writer cut and wrote anew after a
        // restart: damage there is read again once before it is believed.
        let mut reread = false;
        loop {
            let window = match &mut self.window {
                Some(window) => window,
                None => self.window.insert(open_window(inner, &segments(&self.tail), seq)?),
            };
            match step::<S>(&window.bytes, &mut window.at, seq, inner.record_bytes_max, &window.path, window.offset)? {
                Ok(txn) => return Ok(txn),
                Err(FrameProblem::Truncated { needed, .. }) => {
                    if !fill(inner, window, needed)? {
                        // This segment has nothing more: `seq` starts the next one.
                        let segments = segments(&self.tail);
                        let first_seq = window.first_seq;
                        if !window.bytes.is_empty() || !segments.iter().any(|s| s.first_seq > first_seq) {
                            let (path, offset) = (window.path.clone(), window.offset + window.bytes.len() as u64);
                            return Err(Error::Wal(WalError::LogEndsEarly { path, offset, expected: seq }));
                        }
                        self.window = Some(open_window(inner, &segments, seq)?);
                    }
                }
                Err(_) if self.tail.is_some() && !reread => {
                    reread = true;
                    window.bytes.truncate(window.at);
                }
                Err(problem) => {
                    let offset = window.offset + window.at as u64;
                    return Err(Error::Wal(WalError::Corrupted { path: window.path.clone(), offset, problem }));
                }
            }
        }
    }
}

/// Skips the records before `seq` in `bytes[*at..]` and decodes `seq`,
/// moving `*at` past each record only once it is decoded (a retry after an
/// undecodable record meets the same error). `base` is the file offset of
/// `bytes[0]` in `path`, for errors. A frame that is short or damaged comes
/// back as its problem, for the caller to read more or to report.
fn step<S: StateMachine>(
    bytes: &[u8],
    at: &mut usize,
    seq: u64,
    limit: u32,
    path: &std::path::Path,
    base: u64,
) -> Result<std::result::Result<Transaction<S::Event>, FrameProblem>> {
    loop {
        let offset = base + *at as u64;
        let frame = match decode_frame(&bytes[*at..], limit) {
            Ok(frame) => frame,
            Err(problem) => return Ok(Err(problem)),
        };
        let encoded = frame.encoded_bytes();
        if frame.seq < seq {
            *at += encoded;
            continue;
        }
        if frame.seq != seq {
            let (path, expected, found) = (path.to_path_buf(), seq, frame.seq);
            return Err(Error::Wal(WalError::SequenceGap { path, offset, expected, found }));
        }
        let (meta, events) = payload::decode::<S>(frame.payload, limit)
            .map_err(|source| Error::Wal(WalError::undecodable(path, offset, seq, source)))?;
        *at += encoded;
        return Ok(Ok(Transaction { seq, time: frame.time, meta, events }));
    }
}

/// A window at the start of the segment that holds `seq`.
fn open_window<S: StateMachine>(inner: &Inner<S>, segments: &[crate::wal::SegmentInfo], seq: u64) -> Result<Window> {
    let index = segments.partition_point(|s| s.first_seq <= seq).saturating_sub(1);
    let Some(segment) = segments.get(index) else {
        let path = inner.dir.clone();
        return Err(Error::Wal(WalError::LogEndsEarly { path, offset: 0, expected: seq }));
    };
    Ok(Window {
        path: segment.path.clone(),
        first_seq: segment.first_seq,
        offset: SEGMENT_HEADER_BYTES as u64,
        bytes: Vec::new(),
        at: 0,
    })
}

/// Reads more of the window's segment, at least `needed` bytes past the
/// records handed out when the file has them. Returns false when the
/// segment has nothing more (a durable record is then in the next one, or
/// lost).
fn fill<S: StateMachine>(inner: &Inner<S>, window: &mut Window, needed: usize) -> Result<bool> {
    // Drop what was handed out.
    window.offset += window.at as u64;
    window.bytes.drain(..window.at);
    window.at = 0;
    let path = &window.path;
    let file_len = inner.fs.file_len(path).map_err(|source| Error::Io { op: "stat", path: path.clone(), source })?;
    let end = window.offset + window.bytes.len() as u64;
    let len = (file_len.saturating_sub(end) as usize).min(needed.max(READ_WINDOW_BYTES));
    if len == 0 {
        return Ok(false);
    }
    let more =
        inner.fs.read_range(path, end, len).map_err(|source| Error::Io { op: "read", path: path.clone(), source })?;
    window.bytes.extend_from_slice(&more);
    Ok(!more.is_empty())
}

/// Lists the segments again and reads frames past the last one examined,
/// moving `tail.durable` to the highest transaction a whole frame's mark or
/// a later segment vouches for.
fn learn<S: StateMachine>(inner: &Inner<S>, tail: &mut Tail, next_seq: u64) -> Result<()> {
    tail.segments = crate::wal::list_segments(inner.fs.as_ref(), &inner.dir).map_err(|source| Error::Io {
        op: "list",
        path: inner.dir.clone(),
        source,
    })?;
    // A segment is synced before the next one starts.
    if let Some(last) = tail.segments.last() {
        tail.durable = tail.durable.max(last.first_seq.saturating_sub(1));
    }
    // Examine frames from the one after the newest vouched for, in the last segment.
    let Some(last) = tail.segments.last().cloned() else { return Ok(()) };
    let (mut offset, mut expected) = match &tail.probe {
        Some((path, offset, expected)) if *path == last.path => (*offset, *expected),
        _ => (SEGMENT_HEADER_BYTES as u64, last.first_seq),
    };
    let limit = inner.record_bytes_max;
    let io = |op: &'static str| {
        let path = last.path.clone();
        move |source| Error::Io { op, path, source }
    };
    let file_len = inner.fs.file_len(&last.path).map_err(io("stat"))?;
    let header = crate::wal::FRAME_HEADER_BYTES as u64;
    while offset + header <= file_len {
        let head = inner.fs.read_range(&last.path, offset, header as usize).map_err(io("read"))?;
        let needed = match decode_frame(&head, limit) {
            Err(FrameProblem::Truncated { needed, .. }) => needed as u64,
            // Over this reader's limit, or a length that is not one: the
            // whole frame, if the file holds it, tells which.
            Err(FrameProblem::TooLarge { payload_bytes, .. }) => header + u64::from(payload_bytes),
            Ok(frame) => frame.encoded_bytes() as u64,
            // Bytes that do not start a frame: a write in progress, or a
            // torn tail the writer will cut; nothing past them vouches.
            Err(_) => break,
        };
        if offset + needed > file_len {
            break;
        }
        let bytes = inner.fs.read_range(&last.path, offset, needed as usize).map_err(io("read"))?;
        let frame = match decode_frame(&bytes, limit) {
            Ok(frame) => frame,
            // A whole, valid record longer than this reader takes: waiting
            // would never end; say so.
            Err(problem @ FrameProblem::OverLimit { .. }) => {
                return Err(Error::Wal(WalError::bad_frame(&last.path, offset as usize, problem)))
            }
            Err(_) => break,
        };
        if frame.seq != expected {
            break;
        }
        tail.durable = tail.durable.max(frame.synced_seq);
        offset += needed;
        expected += 1;
        if tail.durable >= next_seq {
            break;
        }
    }
    tail.probe = Some((last.path, offset, expected));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::io::{CrashMode, SimFs};
    use crate::store::testing::Sum;
    use crate::store::{Create, Error, Options, Store, SyncPolicy, TxnMeta};

    fn options(fs: &SimFs, sync: SyncPolicy) -> Options {
        Options::default()
            .create(Create::IfMissing)
            .file_system(Arc::new(fs.clone()))
            .sync(sync)
            .segment_bytes(4096)
            .snapshot_every_events(None)
    }

    fn commit(store: &Store<Sum>, n: i64) -> u64 {
        store.commit(TxnMeta::new("test:writer", format!("add {n}")), vec![n]).unwrap().seq
    }

    #[test]
    fn a_subscriber_gets_every_transaction_from_its_start_across_segments() {
        let fs = SimFs::new();
        let store: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap();
        for n in 1..=300 {
            commit(&store, n);
        }
        assert!(store.segments().len() > 3, "small segments: the feed crosses several");
        for from in [0, 1, 2, 150, 299, 300, 301] {
            let mut feed = store.subscribe(from).unwrap();
            let mut seen = Vec::new();
            while let Some(txn) = feed.try_recv().unwrap() {
                assert_eq!(txn.events, vec![txn.seq as i64], "transaction {} is the one committed", txn.seq);
                assert_eq!(txn.meta.reason, format!("add {}", txn.seq));
                seen.push(txn.seq);
            }
            let expected: Vec<u64> = (from.max(1)..=300).collect();
            assert_eq!(seen, expected, "from {from}");
            assert_eq!(feed.next_seq(), 301);
        }
        let err = store.subscribe(302).err().expect("past the head");
        assert!(matches!(err, Error::PointOutOfRange { .. }), "{err}");
    }

    #[test]
    fn a_waiting_subscriber_is_woken_by_a_commit_and_a_timeout_ends_a_wait() {
        let fs = SimFs::new();
        let store: Arc<Store<Sum>> = Arc::new(Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap());
        let mut feed = store.subscribe(1).unwrap();
        assert!(feed.recv_timeout(Duration::from_millis(20)).unwrap().is_none());
        let waiter = std::thread::spawn(move || {
            let txn = feed.recv().unwrap();
            (txn.seq, feed)
        });
        std::thread::sleep(Duration::from_millis(20));
        commit(&store, 7);
        let (seq, mut feed) = waiter.join().unwrap();
        assert_eq!(seq, 1);
        assert!(feed.try_recv().unwrap().is_none());
        // Closing the store ends every wait.
        let closer = std::thread::spawn(move || feed.recv());
        std::thread::sleep(Duration::from_millis(20));
        Arc::try_unwrap(store).ok().unwrap().close().unwrap();
        assert!(matches!(closer.join().unwrap(), Err(Error::Closed { .. })));
    }

    /// A poisoned store's subscribers are told, not left waiting; a timeout
    /// too long to represent is a wait without one.
    #[test]
    fn a_poisoned_store_ends_the_wait_with_the_poison() {
        use crate::io::{FaultKind, FaultMode};
        let fs = SimFs::new();
        let store: Arc<Store<Sum>> = Arc::new(Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap());
        commit(&store, 1);
        let mut feed = store.subscribe(1).unwrap();
        assert_eq!(feed.recv_timeout(Duration::MAX).unwrap().map(|t| t.seq), Some(1));
        let waiter = std::thread::spawn(move || feed.recv_timeout(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        fs.fail_call(fs.mutating_calls() + 1, FaultKind::Eio, FaultMode::Forever);
        assert!(store.commit(TxnMeta::new("test:writer", "fails"), vec![2]).is_err());
        let ended = waiter.join().unwrap();
        assert!(matches!(ended, Err(Error::Poisoned { .. })), "{ended:?}");
    }

    /// Only durable transactions are offered: with `Never` nothing until the
    /// log is synced; a power loss after that loses nothing offered.
    #[test]
    fn nothing_is_offered_before_it_is_durable() {
        let fs = SimFs::new();
        let store: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Never)).unwrap();
        let mut feed = store.subscribe(1).unwrap();
        for n in 1..=5 {
            commit(&store, n);
        }
        assert_eq!(store.read().seq(), 5);
        assert_eq!(store.durable_seq(), 0);
        assert!(feed.try_recv().unwrap().is_none(), "acknowledged but not durable");
        // A power loss now loses all five; nothing was offered.
        let image = fs.crash_image(CrashMode::DropUnsynced);
        let lost: Store<Sum> = Store::open("/s", options(&image, SyncPolicy::Never)).unwrap();
        assert_eq!(lost.read().seq(), 0);
        drop(lost);
        store.inner.sync_log().unwrap();
        assert_eq!(store.durable_seq(), 5);
        let seen: Vec<u64> = std::iter::from_fn(|| feed.try_recv().unwrap()).map(|txn| txn.seq).collect();
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    }

    /// A read-only handle beside a writer (another process, in life) learns
    /// from the log what is durable: a transaction once a later frame
    /// vouches for it, everything before a segment once the next starts.
    #[test]
    fn a_read_only_subscriber_follows_a_writer_by_the_marks_in_the_log() {
        use crate::store::OpenMode;
        let fs = SimFs::new();
        let writer: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap();
        commit(&writer, 1);
        let reader: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always).mode(OpenMode::ReadOnly)).unwrap();
        let mut feed = reader.subscribe(1).unwrap();
        // Transaction 1 is durable, but no later frame says so yet.
        assert!(feed.recv_timeout(Duration::from_millis(30)).unwrap().is_none());
        commit(&writer, 2);
        assert_eq!(feed.recv_timeout(Duration::from_secs(5)).unwrap().map(|t| t.seq), Some(1));
        assert!(feed.try_recv().unwrap().is_none(), "2 waits for the next group");
        // Enough to roll several segments: each roll vouches for the one before.
        for n in 3..=200 {
            commit(&writer, n);
        }
        let seen: Vec<u64> = std::iter::from_fn(|| feed.try_recv().unwrap()).map(|t| t.seq).collect();
        assert_eq!(seen, (2..=199).collect::<Vec<_>>());
        // What a power loss now would keep holds everything offered.
        let image = fs.crash_image(CrashMode::DropUnsynced);
        let kept: Store<Sum> = Store::open("/s", options(&image, SyncPolicy::Always)).unwrap();
        assert!(kept.read().seq() >= 199);
    }

    /// Subscribers that keep up read the newest groups from memory; one that
    /// falls behind the kept records (over 4096 groups here) goes on from
    /// the log where it left off, and back to memory once caught up; each
    /// sees every transaction once, in order, as committed.
    #[test]
    fn kept_records_and_the_log_hand_over_without_a_gap() {
        let fs = SimFs::new();
        let store: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap();
        let mut fast = store.subscribe(1).unwrap();
        let mut slow = store.subscribe(1).unwrap();
        let check = |feed: &mut super::Subscription<Sum>, upto: u64| {
            while feed.next_seq() <= upto {
                let txn = feed.try_recv().unwrap().expect("durable");
                assert_eq!((txn.events[0], txn.meta.reason), (txn.seq as i64, format!("add {}", txn.seq)));
            }
        };
        for n in 1..=10 {
            commit(&store, n);
        }
        check(&mut fast, 5);
        check(&mut slow, 3);
        // Past the kept records' bound: the slow one's next is only in the log.
        for n in 11..=5000 {
            commit(&store, n);
            if n % 7 == 0 {
                check(&mut fast, n as u64);
            }
        }
        assert!(!store.feed_keeps(4) && store.feed_keeps(5000), "the oldest dropped, the newest kept");
        check(&mut slow, 4990);
        check(&mut fast, 5000);
        for n in 5001..=5010 {
            commit(&store, n);
        }
        check(&mut slow, 5010);
        check(&mut fast, 5010);
        assert!(slow.try_recv().unwrap().is_none() && fast.try_recv().unwrap().is_none());
        // The last subscriber gone, nothing is kept.
        drop((slow, fast));
        assert!(!store.feed_keeps(5010));
        commit(&store, 5011);
        assert!(!store.feed_keeps(5011), "nothing kept without a subscriber");
    }

    /// A record longer than a read-only reader's limit, written after it
    /// opened, is an error naming it, not a wait that never ends.
    #[test]
    fn a_read_only_reader_says_when_a_record_is_over_its_limit() {
        use crate::store::OpenMode;
        let fs = SimFs::new();
        let writer: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap();
        commit(&writer, 1);
        let reader_options = options(&fs, SyncPolicy::Always).mode(OpenMode::ReadOnly).record_bytes_max(256);
        let reader: Store<Sum> = Store::open("/s", reader_options).unwrap();
        let mut feed = reader.subscribe(2).unwrap();
        writer.commit(TxnMeta::new("test:writer", "x".repeat(1000)), vec![2]).unwrap();
        commit(&writer, 3);
        match feed.recv_timeout(Duration::from_secs(5)) {
            Err(Error::Wal(crate::wal::WalError::RecordOverLimit { seq: 2, limit: 256, .. })) => {}
            other => panic!("expected the record over the limit, got {other:?}"),
        }
    }

    /// A subscriber dropped mid-way holds nothing: the store closes and
    /// reopens (its lock free) while the subscription object is gone, and a
    /// subscription left alive past a close says Closed.
    #[test]
    fn a_subscription_does_not_keep_the_store_open() {
        let fs = SimFs::new();
        let store: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap();
        commit(&store, 1);
        let mut kept = store.subscribe(1).unwrap();
        store.close().unwrap();
        assert!(matches!(kept.try_recv(), Err(Error::Closed { .. })));
        let again: Store<Sum> = Store::open("/s", options(&fs, SyncPolicy::Always)).unwrap();
        let mut resumed = again.subscribe(kept.next_seq()).unwrap();
        assert_eq!(resumed.try_recv().unwrap().map(|txn| txn.seq), Some(1));
    }
}
