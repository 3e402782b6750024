//! Reading history: points in time, an index from sequence number to time and
//! byte offset, and the state as of any point.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::{Error, Result};
use super::machine::{Run, StateMachine};
use super::payload;
use super::{Reporter, Store, View, Work};
use crate::clock::Timestamp;
use crate::io::ReadAt;
use crate::snapshot;
use crate::wal::{decode_frame, FrameProblem, LogCursor, WalError, FRAME_HEADER_BYTES};

/// A point in a store's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// The state after transaction `n` (0 is the empty state before the first).
    Seq(u64),
    /// The state after the last transaction committed at or before this time.
    Time(Timestamp),
    /// The state just before transaction `n`.
    Before(u64),
    /// The state just after transaction `n`.
    After(u64),
}

impl Point {
    /// Parses `seq:N`, `before:N`, `after:N` or an RFC 3339 time.
    ///
    /// ```
    /// use elbstore::{Point, Timestamp};
    /// assert_eq!(Point::parse("seq:42"), Some(Point::Seq(42)));
    /// assert_eq!(Point::parse("before:7"), Some(Point::Before(7)));
    /// assert_eq!(Point::parse("2012-12-24T20:24:00Z"), Some(Point::Time(Timestamp::from_secs(1_356_380_640))));
    /// assert_eq!(Point::parse("yesterday"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Point> {
        let number = |rest: &str| rest.parse::<u64>().ok();
        if let Some(rest) = text.strip_prefix("seq:") {
            return number(rest).map(Point::Seq);
        }
        if let Some(rest) = text.strip_prefix("before:") {
            return number(rest).map(Point::Before);
        }
        if let Some(rest) = text.strip_prefix("after:") {
            return number(rest).map(Point::After);
        }
        Timestamp::parse_rfc3339(text).map(Point::Time)
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::Seq(n) => write!(f, "seq:{n}"),
            Point::Time(t) => write!(f, "{t}"),
            Point::Before(n) => write!(f, "before:{n}"),
            Point::After(n) => write!(f, "after:{n}"),
        }
    }
}

/// Where one transaction is: its time and its byte offset in its segment.
#[derive(Clone, Copy, Debug)]
struct Entry {
    time: Timestamp,
    /// Segments are at most `SEGMENT_BYTES_MAX` plus one record, but a u64
    /// costs nothing here: the entry is 16 bytes either way.
    offset: u64,
}

/// Where a transaction not indexed yet is, and those before the log's first
/// record (a log that starts late) always are: no time, no place.
const UNKNOWN: Entry = Entry { time: Timestamp(0), offset: u64::MAX };

/// Sequence number -> (time, offset), built lazily a log segment at a time,
/// each from its start as far as a use needs ([`Store::index_range`]), so
/// opening a store never pays for it, writers never touch it, and a point
/// late in a long log reads only its own segment.
#[derive(Default)]
struct Index {
    /// Transaction `s` at `s - 1`: [`UNKNOWN`] where not indexed.
    entries: Vec<Entry>,
    /// For each segment indexed, by its first sequence number: the last
    /// transaction indexed in it and where the record after that starts.
    segments: BTreeMap<u64, (u64, u64)>,
}

/// The history index, and checkpoints of states in memory.
pub(crate) struct HistoryCache<S> {
    index: Mutex<Index>,
    pub(crate) checkpoints: Mutex<Checkpoints<S>>,
    /// Log segments kept open for reads of single records and events, the
    /// most recently opened last. A segment is never replaced or removed
    /// while its store is open, so a kept reader reads what a new one would.
    readers: Mutex<Vec<(std::path::PathBuf, Arc<dyn ReadAt>)>>,
    /// Set when the state machine refused an undo ([`StateMachine::undo`]):
    /// time travel then only replays forward.
    undo_refused: AtomicBool,
}

/// How many log segments [`HistoryCache`] keeps open.
const READERS_KEPT: usize = 16;

impl<S> Default for HistoryCache<S> {
    fn default() -> HistoryCache<S> {
        HistoryCache {
            index: Mutex::new(Index::default()),
            checkpoints: Mutex::new(Checkpoints::default()),
            readers: Mutex::new(Vec::new()),
            undo_refused: AtomicBool::new(false),
        }
    }
}

/// States kept in memory at chosen sequence numbers, so that a point in
/// history is a short replay from one of them rather than a snapshot load.
///
/// States that descend from the same base share structure; two states decoded
/// from different snapshots share nothing, each costing a whole state's memory.
/// So checkpoints are kept from two lineages at most: the states this store
/// published (the head's lineage) and one lineage decoded from a snapshot (or
/// replayed from the empty state). Starting a new one drops the other's
/// checkpoints. At most `max` are kept; the least recently used goes first.
pub(crate) struct Checkpoints<S> {
    states: BTreeMap<u64, Checkpoint<S>>,
    tick: u64,
    /// The lineage decoded from a snapshot whose checkpoints are kept.
    kept_lineage: u64,
    lineages: u64,
}

struct Checkpoint<S> {
    state: Arc<S>,
    used: u64,
    lineage: u64,
}

/// The lineage of the states a store publishes as it commits.
pub(crate) const HEAD_LINEAGE: u64 = 0;

impl<S> Default for Checkpoints<S> {
    fn default() -> Checkpoints<S> {
        Checkpoints { states: BTreeMap::new(), tick: 0, kept_lineage: HEAD_LINEAGE, lineages: HEAD_LINEAGE }
    }
}

impl<S> Checkpoints<S> {
    /// The sequence numbers checkpointed, in order.
    #[cfg(test)]
    pub(crate) fn seqs(&self) -> Vec<u64> {
        self.states.keys().copied().collect()
    }

    /// A new lineage, for a state decoded from a snapshot or started empty.
    fn new_lineage(&mut self) -> u64 {
        self.lineages += 1;
        self.lineages
    }

    /// Keeps `state` as the state after `seq`, evicting the least recently
    /// used checkpoints beyond `max`, and those of another decoded lineage.
    pub(crate) fn insert(&mut self, seq: u64, state: Arc<S>, lineage: u64, max: usize) {
        if max == 0 {
            return;
        }
        if lineage != HEAD_LINEAGE && lineage != self.kept_lineage {
            self.states.retain(|_, c| c.lineage == HEAD_LINEAGE);
            self.kept_lineage = lineage;
        }
        self.tick += 1;
        self.states.insert(seq, Checkpoint { state, used: self.tick, lineage });
        while self.states.len() > max {
            let oldest = self.states.iter().min_by_key(|(_, c)| c.used).map(|(seq, _)| *seq);
            if let Some(oldest) = oldest {
                self.states.remove(&oldest);
            }
        }
    }

    /// The oldest checkpoint after `seq`, marked as used.
    fn after(&mut self, seq: u64) -> Option<Base<S>> {
        self.tick += 1;
        let tick = self.tick;
        let (at, c) = self.states.range_mut(seq + 1..).next()?;
        c.used = tick;
        Some(Base { seq: *at, state: c.state.clone(), lineage: c.lineage })
    }

    /// How far behind `seq` the newest checkpoint at or before it is.
    fn distance_back(&self, seq: u64) -> Option<u64> {
        self.states.range(..=seq).next_back().map(|(at, _)| seq - at)
    }

    /// The newest checkpoint at or before `seq`, marked as used.
    fn at_or_before(&mut self, seq: u64) -> Option<Base<S>> {
        self.tick += 1;
        let tick = self.tick;
        let (at, c) = self.states.range_mut(..=seq).next_back()?;
        c.used = tick;
        Some(Base { seq: *at, state: c.state.clone(), lineage: c.lineage })
    }
}

/// Where a replay starts.
struct Base<S> {
    seq: u64,
    state: Arc<S>,
    lineage: u64,
}

/// A checkpoint this many spacings behind a point is still preferred to
/// loading a newer snapshot: the replay is shorter than the load, and it adds
/// to the lineage in memory instead of starting another one.
const REPLAY_RATHER_THAN_LOAD_SPACINGS: u64 = 16;

/// Undoing back from a later state in memory is preferred to loading a
/// snapshot and replaying forward while the log to undo is at most the
/// snapshot's size over this. A byte of log is read, checked, decoded and
/// undone, more work than decoding a byte of snapshot; the margin leaves
/// out the forward way's own replay (BENCHMARKS.md, "Time travel undoes
/// from the head").
const UNDO_RATHER_THAN_LOAD_RATIO: u64 = 3;

/// A replay of this many transactions or more reads and decodes the log on
/// a second thread ([`Store::decoded`]); a shorter one does not pay for
/// starting a thread.
const REPLAY_ON_TWO_THREADS_FROM: u64 = 256;

/// Transactions, and events, the reading thread hands over at once: enough
/// that the handing over costs nothing beside the decoding, few enough that
/// the applying thread starts soon.
const REPLAY_BATCH_TRANSACTIONS: usize = 256;
const REPLAY_BATCH_EVENTS: usize = 4096;

/// Batches read ahead of the applying thread: it never waits while the
/// reader is ahead, and the memory read ahead stays a few batches.
const REPLAY_BATCHES_IN_FLIGHT: usize = 4;

/// A transaction read from the log: its sequence number and events.
type Decoded<E> = std::result::Result<(u64, Vec<E>), WalError>;

/// The cursor's next transaction, its sequence number and decoded events;
/// a record that does not decode is an error naming its file and offset.
fn next_decoded<S: StateMachine>(cursor: &mut LogCursor, limit: u32) -> Option<Decoded<S::Event>> {
    cursor.next_with(|path, offset, frame| {
        let (_meta, events) = payload::decode::<S>(frame.payload, limit)
            .map_err(|source| WalError::undecodable(path, offset as u64, frame.seq, source))?;
        Ok((frame.seq, events))
    })
}

/// The last transaction segment `i` of `segments` holds, the one before the
/// next segment's first; `None` for the newest, which grows.
fn segment_end(segments: &[crate::wal::SegmentInfo], i: usize) -> Option<u64> {
    segments.get(i + 1).map(|next| next.first_seq.saturating_sub(1))
}

impl<S: StateMachine> Store<S> {
    /// Indexes transactions `from..=to` (at most the last acknowledged
    /// one), each segment they are in from its start or from where it was
    /// indexed before: the index then holds them, and the transactions before
    /// them in their segments.
    fn index_range(&self, from: u64, to: u64) -> Result<parking_lot::MutexGuard<'_, Index>> {
        let mut index = self.inner.history.index.lock();
        self.extend_index(&mut index, from, to)?;
        Ok(index)
    }

    /// [`Store::index_range`] on the index, locked.
    fn extend_index(&self, index: &mut Index, from: u64, to: u64) -> Result<()> {
        let floor = self.log_floor();
        let had = index.entries.len() as u64;
        if had < to {
            index.entries.resize(to as usize, UNKNOWN);
            // A log that starts late (its history before trimmed, as a restore
            // from an archive with a retention writes it): the transactions
            // before it have no time and no place; `resolve` refuses them. The
            // state at the floor is a snapshot's, which has its time.
            if (had..to).contains(&(floor.wrapping_sub(1))) {
                if let Some(snapshot) = self.snapshots().iter().find(|s| s.seq == floor) {
                    index.entries[floor as usize - 1].time = snapshot.time;
                }
            }
        }
        // Each segment to read: the first transaction to index in it (and
        // where it starts), and the last. A range already indexed clones
        // nothing.
        let reads: Vec<(crate::wal::SegmentInfo, u64, u64, u64)> = {
            let segments = self.inner.segments.read();
            let first = segments.partition_point(|s| s.first_seq <= from).saturating_sub(1);
            let mut reads = Vec::new();
            for (i, segment) in segments.iter().enumerate().skip(first) {
                if segment.first_seq > to {
                    break;
                }
                let last = to.min(segment_end(&segments, i).unwrap_or(u64::MAX));
                if last < from.max(floor + 1) {
                    continue;
                }
                let (done, offset) = index
                    .segments
                    .get(&segment.first_seq)
                    .copied()
                    .unwrap_or((segment.first_seq.saturating_sub(1), crate::wal::SEGMENT_HEADER_BYTES as u64));
                if done < last {
                    reads.push((segment.clone(), done + 1, offset, last));
                }
            }
            reads
        };
        let work = reads.iter().map(|&(_, start, _, last)| last + 1 - start).sum();
        if work == 0 {
            return Ok(());
        }
        let mut progress = Reporter::new(self.inner.options.progress.as_ref(), Work::Index, work);
        let mut done = 0;
        for (segment, start, offset, last) in reads {
            let (fs, limit) = (self.inner.fs.clone(), self.inner.record_bytes_max);
            let first_seq = segment.first_seq;
            let mut cursor = LogCursor::new_at(fs, vec![segment], start, offset, last, limit);
            let mut indexed = None;
            let mut failed = None;
            while let Some(item) = cursor
                .next_with(|_, offset, frame| Ok((frame.seq, frame.time, offset as u64, frame.encoded_bytes() as u64)))
            {
                match item {
                    Ok((seq, time, offset, bytes)) => {
                        index.entries[seq as usize - 1] = Entry { time, offset };
                        indexed = Some((seq, offset + bytes));
                        done += 1;
                        progress.at(done);
                    }
                    Err(err) => failed = Some(err),
                }
            }
            // What was read is kept, even before a failure.
            if let Some(indexed) = indexed {
                index.segments.insert(first_seq, indexed);
            }
            if let Some(err) = failed {
                return Err(err.into());
            }
        }
        progress.finish();
        Ok(())
    }

    /// The last transaction the segment holding `seq` can hold
    /// ([`segment_end`]), `u64::MAX` for the newest.
    fn segment_last(&self, seq: u64) -> u64 {
        let segments = self.inner.segments.read();
        let at = segments.partition_point(|s| s.first_seq <= seq).saturating_sub(1);
        segment_end(&segments, at).unwrap_or(u64::MAX)
    }

    /// The last transaction before the log's first record: 0, unless the log
    /// starts late.
    pub(crate) fn log_floor(&self) -> u64 {
        self.inner.segments.read().first().map_or(0, |s| s.first_seq.saturating_sub(1))
    }

    /// The sequence number and time a point names, checked against the history.
    ///
    /// A point named by sequence number indexes the log only as far as it
    /// (its time is its record's); a time, or a point out of range, indexes
    /// the whole log.
    pub fn resolve(&self, point: Point) -> Result<(u64, Timestamp)> {
        let view = self.read();
        let last = view.seq();
        // With a log that starts late, the first point is the state just
        // before its first record (a snapshot there says what it was).
        let floor = self.log_floor().min(last);
        let named = match point {
            Point::Seq(n) | Point::After(n) if n < floor => None,
            Point::Before(n) if n <= floor && floor > 0 => None,
            Point::Seq(n) if n <= last => Some(n),
            Point::Before(n) | Point::After(n) if n == 0 || n > last => None,
            Point::Before(n) => Some(n - 1),
            Point::After(n) => Some(n),
            Point::Seq(_) | Point::Time(_) => None,
        };
        let seq = match named {
            Some(seq) => seq,
            None => {
                let index = self.index_range(1, last)?;
                let entries = &index.entries[..last as usize];
                let out_of_range = || Error::PointOutOfRange {
                    point,
                    first: entries.get(floor as usize).map(|e| (floor + 1, e.time)),
                    last: entries.last().map(|e| (last, e.time)),
                };
                let Point::Time(t) = point else { return Err(out_of_range()) };
                let (Some(first), Some(newest)) = (entries.get(floor as usize), entries.last()) else {
                    return Err(out_of_range());
                };
                if t < first.time || t > newest.time.max(self.inner.clock.now()) {
                    return Err(out_of_range());
                }
                entries.partition_point(|e| e.time <= t) as u64
            }
        };
        let time = if seq == 0 { Timestamp(0) } else { self.index_range(seq, seq)?.entries[seq as usize - 1].time };
        Ok((seq, time))
    }

    /// The state as of `point`, read-only: the newest snapshot at or before it
    /// plus a replay of the log up to it. Writers are not disturbed.
    pub fn state_at(&self, point: Point) -> Result<View<S>> {
        let (seq, time) = self.resolve(point)?;
        let current = self.read();
        if seq == current.seq() {
            return Ok(current);
        }
        // The head's state lends a snapshot loaded on the forward way its equal parts.
        let head = current.state.clone();
        // A record the undo cannot read (damage after the point) is no reason
        // to fail: the forward way may not need it, and reports its own.
        if let Ok(Some(view)) = self.undone_to(seq, time, current) {
            return Ok(view);
        }
        let Base { seq: base_seq, mut state, lineage } = self.base_for(seq, &head);
        if base_seq < self.log_floor() {
            // The log starts late and no snapshot at or before `seq` is
            // where it continues from: that state is gone with the history.
            let first = self.snapshots().iter().find(|s| s.seq >= self.log_floor()).map(|s| (s.seq, s.time));
            return Err(Error::PointOutOfRange { point, first, last: Some((self.read().seq(), self.read().time())) });
        }
        if base_seq < seq {
            let cursor = self.cursor(base_seq + 1, seq)?;
            let (every, max) = (self.inner.options.checkpoint_every, self.inner.options.checkpoints_max);
            let state_mut = Arc::make_mut(&mut state);
            let mut progress = Reporter::new(self.inner.options.progress.as_ref(), Work::Replay, seq - base_seq);
            let mut run = Run::<S>::new();
            self.decoded(cursor, seq - base_seq, |at, events| {
                progress.at(at - base_seq);
                run.push(state_mut, events);
                // Passing a checkpoint position: keep the state there for the next read.
                if at.is_multiple_of(every) {
                    run.apply(state_mut);
                    let checkpoint = Arc::new(state_mut.clone());
                    self.inner.history.checkpoints.lock().insert(at, checkpoint, lineage, max);
                }
            })?;
            run.apply(state_mut);
            progress.finish();
        }
        Ok(View { seq, time, state })
    }

    /// The state after `seq`, by undoing the transactions after it, newest
    /// first, from the nearest later state in memory (a checkpoint, or the
    /// head's view `current`), when that is the shorter way: the earlier
    /// checkpoints in memory are farther, and the log to undo is no longer
    /// than the log the forward way replays from an earlier checkpoint (or
    /// from the start), or a third of the snapshot it would load. `None` when
    /// replaying forward is the shorter way, or when the state machine cannot
    /// undo ([`StateMachine::undo`]).
    fn undone_to(&self, seq: u64, time: Timestamp, current: View<S>) -> Result<Option<View<S>>> {
        if self.inner.history.undo_refused.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let (every, max) = (self.inner.options.checkpoint_every, self.inner.options.checkpoints_max);
        let near = every.saturating_mul(REPLAY_RATHER_THAN_LOAD_SPACINGS);
        let (later, behind) = {
            let mut checkpoints = self.inner.history.checkpoints.lock();
            (checkpoints.after(seq).filter(|c| c.seq < current.seq()), checkpoints.distance_back(seq))
        };
        // A checkpoint farther behind than `near` is passed over for a snapshot (`base_for`).
        let behind = behind.filter(|&behind| behind <= near);
        let head = current.seq();
        let later = later.unwrap_or(Base { seq: head, state: current.state, lineage: HEAD_LINEAGE });
        let back = later.seq - seq;
        if back > near || behind.is_some_and(|behind| behind <= back) {
            return Ok(None);
        }
        // What the forward way reads: the log from the earlier checkpoint,
        // else the newest snapshot at or before `seq` (weighed by the ratio),
        // else the whole log from the empty state.
        let forward = match behind {
            Some(behind) => self.log_bytes_estimate(seq - behind, seq, head),
            None => {
                let snapshot =
                    self.inner.snapshots.read().iter().filter(|s| s.seq <= seq).max_by_key(|s| s.seq).map(|s| s.bytes);
                match snapshot {
                    Some(bytes) => bytes / UNDO_RATHER_THAN_LOAD_RATIO,
                    None => self.log_bytes_estimate(0, seq, head),
                }
            }
        };
        if self.log_bytes_estimate(seq, later.seq, head) > forward {
            return Ok(None);
        }
        let Base { mut state, lineage, .. } = later;
        let state_mut = Arc::make_mut(&mut state);
        // The newest transaction first, alone: a state machine that cannot
        // undo says so before the rest of the log is read.
        if !self.undo_all(state_mut, &self.transaction(later.seq)?.events) {
            return Ok(None);
        }
        let mut txns: Vec<Vec<S::Event>> = Vec::with_capacity(back as usize - 1);
        if back > 1 {
            let limit = self.inner.record_bytes_max;
            let mut cursor = self.cursor(seq + 1, later.seq - 1)?;
            let mut progress = Reporter::new(self.inner.options.progress.as_ref(), Work::Replay, back - 1);
            while let Some(item) = next_decoded::<S>(&mut cursor, limit) {
                let (at, events) = item?;
                progress.at(at - seq);
                txns.push(events);
            }
            progress.finish();
        }
        // `txns[i]` is transaction `seq + 1 + i`: undoing it leaves the state
        // after `seq + i`. Undone in runs of whole transactions, newest
        // first, each run ending where a checkpoint is kept.
        let mut end = txns.len();
        while end > 0 {
            let mut start = end - 1;
            let mut events = txns[start].len();
            while start > 0 && events < S::REPLAY_RUN_EVENTS && !(seq + start as u64).is_multiple_of(every) {
                start -= 1;
                events += txns[start].len();
            }
            let run: Vec<S::Event> = if start + 1 == end {
                std::mem::take(&mut txns[start])
            } else {
                let mut run = Vec::with_capacity(events);
                // Each transaction's own vector freed as it is emptied.
                txns[start..end].iter_mut().for_each(|txn| run.extend(std::mem::take(txn)));
                run
            };
            if !self.undo_all(state_mut, &run) {
                return Ok(None);
            }
            let at = seq + start as u64;
            if at != seq && at.is_multiple_of(every) {
                let checkpoint = Arc::new(state_mut.clone());
                self.inner.history.checkpoints.lock().insert(at, checkpoint, lineage, max);
            }
            end = start;
        }
        Ok(Some(View { seq, time, state }))
    }

    /// Undoes `events`, a run of whole transactions, last first
    /// ([`StateMachine::undo_run`]); `false`, and no undo tried again on this
    /// store, if the state machine refuses.
    fn undo_all(&self, state: &mut S, events: &[S::Event]) -> bool {
        let undone = state.undo_run(events);
        if !undone {
            self.inner.history.undo_refused.store(true, Ordering::Relaxed);
        }
        undone
    }

    /// Reads and decodes the `count` transactions of `cursor` and hands
    /// each one's sequence number and events to `each`, in order. A long run
    /// is read and decoded on a second thread while `each` applies what came
    /// before: decoding is about two fifths of a replay of creations on one
    /// thread, and the replays of the reference store's points took 5-20%
    /// less (BENCHMARKS.md, "Time travel on both cores"). The first record
    /// that cannot be read or decoded is the error, after `each` has had
    /// every transaction before it, as when read on one thread.
    fn decoded(&self, mut cursor: LogCursor, count: u64, mut each: impl FnMut(u64, Vec<S::Event>)) -> Result<()> {
        let limit = self.inner.record_bytes_max;
        let next = move |cursor: &mut LogCursor| next_decoded::<S>(cursor, limit);
        if count < REPLAY_ON_TWO_THREADS_FROM {
            while let Some(item) = next(&mut cursor) {
                let (at, events) = item?;
                each(at, events);
            }
            return Ok(());
        }
        type Batch<E> = std::result::Result<Vec<(u64, Vec<E>)>, WalError>;
        let (send, receive) = std::sync::mpsc::sync_channel::<Batch<S::Event>>(REPLAY_BATCHES_IN_FLIGHT);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(REPLAY_BATCH_TRANSACTIONS);
                let mut events = 0;
                while let Some(item) = next(&mut cursor) {
                    match item {
                        Ok(txn) => {
                            events += txn.1.len();
                            batch.push(txn);
                        }
                        Err(e) => {
                            // What came before the damage is applied first.
                            let _ = send.send(Ok(batch));
                            let _ = send.send(Err(e));
                            return;
                        }
                    }
                    if batch.len() >= REPLAY_BATCH_TRANSACTIONS || events >= REPLAY_BATCH_EVENTS {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(REPLAY_BATCH_TRANSACTIONS));
                        events = 0;
                        // The receiver stops only on an error, after which nothing is sent.
                        if send.send(Ok(full)).is_err() {
                            return;
                        }
                    }
                }
                let _ = send.send(Ok(batch));
            });
            for batch in receive {
                for (at, events) in batch? {
                    each(at, events);
                }
            }
            Ok(())
        })
    }

    /// A cursor over transactions `from..=to`, starting at `from`'s offset
    /// from the index (its segment indexed through `from` if it is not yet).
    fn cursor(&self, from: u64, to: u64) -> Result<LogCursor> {
        let offset = self.index_range(from, from)?.entries.get(from as usize - 1).map(|e| e.offset);
        let offset = offset.filter(|&offset| offset != UNKNOWN.offset);
        let segments = self.inner.segments.read().clone();
        let (fs, limit) = (self.inner.fs.clone(), self.inner.record_bytes_max);
        Ok(match offset {
            Some(offset) => LogCursor::new_at(fs, segments, from, offset, to, limit),
            None => LogCursor::new(fs, segments, from, to, limit),
        })
    }

    /// About how many bytes of log hold the transactions after `from`
    /// through `to` (`head` is the last the log holds): whole segments by
    /// their length, a segment in part by its share of its transactions.
    fn log_bytes_estimate(&self, from: u64, to: u64, head: u64) -> u64 {
        let segments = self.inner.segments.read().clone();
        let mut bytes = 0u64;
        for (i, segment) in segments.iter().enumerate() {
            let first = segment.first_seq;
            let last = segment_end(&segments, i).unwrap_or(head);
            let (lo, hi) = ((from + 1).max(first), to.min(last));
            if lo > hi || last < first {
                continue;
            }
            let Ok(len) = self.inner.fs.file_len(&segment.path) else { continue };
            let share = (hi - lo + 1) as u128 * len as u128 / (last - first + 1) as u128;
            bytes = bytes.saturating_add(share as u64);
        }
        bytes
    }

    /// Where to start replaying for `seq`: a checkpoint at or before it, unless
    /// it is far behind and a newer snapshot is on disk; else the newest usable
    /// snapshot at or before it, decoded sharing `like`'s equal parts
    /// ([`StateMachine::decode_like`]); else the empty state.
    fn base_for(&self, seq: u64, like: &S) -> Base<S> {
        let (every, max) = (self.inner.options.checkpoint_every, self.inner.options.checkpoints_max);
        let mut best = self.inner.history.checkpoints.lock().at_or_before(seq);
        let near = every.saturating_mul(REPLAY_RATHER_THAN_LOAD_SPACINGS);
        if let Some(best) = best.take_if(|best| seq - best.seq <= near) {
            return best;
        }
        let candidates: Vec<snapshot::SnapshotInfo> =
            self.inner.snapshots.read().iter().filter(|s| s.seq <= seq).cloned().collect();
        for info in candidates.iter().rev() {
            if best.as_ref().is_some_and(|best| best.seq >= info.seq) {
                break;
            }
            match super::open::load_snapshot_like::<S>(
                &self.inner.fs,
                &info.path,
                self.inner.identity.id,
                self.inner.options.snapshot_bytes_max,
                like,
            ) {
                Ok((_, state)) => {
                    let state = Arc::new(state);
                    let mut checkpoints = self.inner.history.checkpoints.lock();
                    let lineage = checkpoints.new_lineage();
                    checkpoints.insert(info.seq, state.clone(), lineage, max);
                    return Base { seq: info.seq, state, lineage };
                }
                // A damaged snapshot is skipped here as on open; `verify` reports it.
                Err(_) => continue,
            }
        }
        best.unwrap_or_else(|| {
            let lineage = self.inner.history.checkpoints.lock().new_lineage();
            Base { seq: 0, state: Arc::new(S::default()), lineage }
        })
    }

    /// One transaction by sequence number.
    pub fn transaction(&self, seq: u64) -> Result<super::Transaction<S::Event>> {
        let limit = self.inner.record_bytes_max;
        self.with_record(seq, |frame| {
            let (meta, events) = payload::decode::<S>(frame.payload, limit)?;
            Ok(super::Transaction { seq, time: frame.time, meta, events })
        })
    }

    /// For each transaction of `wanted`, in that order: its time, metadata and
    /// only the events at its pieces (from [`Store::transactions_indexed`]),
    /// and whether they were upcast from an older schema (then a piece may
    /// give several events, or none). Only the frame header, the payload's
    /// head and those events are read, each checked against the checksum taken
    /// when the whole record was indexed; nearby pieces of one segment are
    /// read together, and each segment is opened once (an entity's history:
    /// its versions' bytes, not the whole records that hold them). Events of
    /// the current schema are decoded by `decode`, in order (see
    /// [`payload::decode_pieces`]).
    #[allow(clippy::type_complexity)]
    pub(crate) fn transactions_pieces(
        &self,
        wanted: &[IndexedPieces],
        mut decode: impl FnMut(&[u8], u64) -> std::result::Result<S::Event, crate::codec::CodecError>,
    ) -> Result<Vec<(Timestamp, super::TxnMeta, Vec<S::Event>, bool)>> {
        let limit = self.inner.record_bytes_max;
        let seqs: Vec<u64> = wanted.iter().map(|w| w.seq).collect();
        let places = self.places(&seqs)?;
        // Every piece as (segment, offset in it, length, checksum); the frame
        // header, read unchecked beside the head, only to see it is this
        // record (its time is the index's, from the record checked whole).
        let mut reads: Vec<PieceRead<'_>> = Vec::new();
        for (place, w) in places.iter().zip(wanted) {
            let payload = place.offset + FRAME_HEADER_BYTES as u64;
            let (path, frame) = (&place.path, place.offset);
            reads.push(PieceRead { path, frame, at: frame, len: FRAME_HEADER_BYTES, crc: None });
            for piece in std::iter::once(&w.head).chain(&w.events) {
                let (at, len) = (payload + u64::from(piece.span.start), piece.span.len());
                reads.push(PieceRead { path, frame, at, len, crc: Some(piece.crc) });
            }
        }
        let (runs, located) = self.read_pieces(&reads)?;
        let mut bytes = located.into_iter().map(|(run, range)| &runs[run][range]);
        let mut out = Vec::with_capacity(wanted.len());
        for (place, w) in places.iter().zip(wanted) {
            let (path, offset) = (&place.path, place.offset);
            let header = bytes.next().expect("one read for each frame header");
            let seq = crate::identity::le_u64(&header[8..16]);
            if seq != w.seq {
                let (expected, found) = (w.seq, seq);
                return Err(Error::Wal(WalError::SequenceGap { path: path.clone(), offset, expected, found }));
            }
            let head = bytes.next().expect("one read for each head");
            let pieces: Vec<&[u8]> = bytes.by_ref().take(w.events.len()).collect();
            let (meta, events) = payload::decode_pieces::<S>(head, &pieces, limit, &mut decode)
                .map_err(|source| Error::Wal(WalError::undecodable(path, offset, w.seq, source)))?;
            let upcast = payload::schema_of(head) != Some(S::SCHEMA_VERSION);
            out.push((place.time, meta, events, upcast));
        }
        Ok(out)
    }

    /// Reads `reads`, each checked against its checksum: the bytes read, and
    /// for each of `reads`, in order, which of them and where it is there.
    /// Reads of one segment less than a page apart are one read, and each
    /// segment is opened once.
    #[allow(clippy::type_complexity)]
    fn read_pieces(&self, reads: &[PieceRead<'_>]) -> Result<(Vec<Vec<u8>>, Vec<(usize, std::ops::Range<usize>)>)> {
        const GAP: u64 = 4096;
        let mut order: Vec<usize> = (0..reads.len()).collect();
        order.sort_by(|&a, &b| (reads[a].path.as_os_str(), reads[a].at).cmp(&(reads[b].path.as_os_str(), reads[b].at)));
        let (mut runs, mut located) = (Vec::new(), vec![(0, 0..0); reads.len()]);
        for segment in order.chunk_by(|&a, &b| reads[a].path.as_os_str() == reads[b].path.as_os_str()) {
            let path = reads[segment[0]].path;
            // Runs of reads close enough to read as one: (start, end, reads).
            let mut spans: Vec<(u64, u64, &[usize])> = Vec::new();
            let mut first = 0;
            for (k, &i) in segment.iter().enumerate() {
                let (at, end) = (reads[i].at, reads[i].at + reads[i].len as u64);
                match spans.last_mut() {
                    Some(run) if at < run.1 + GAP => {
                        run.1 = run.1.max(end);
                        run.2 = &segment[first..=k];
                    }
                    _ => {
                        first = k;
                        spans.push((at, end, &segment[k..=k]));
                    }
                }
            }
            let ranges: Vec<(u64, usize)> =
                spans.iter().map(|&(start, end, _)| (start, (end - start) as usize)).collect();
            let read = self.read_segment(path, &ranges).map_err(read_error(path))?;
            for ((start, _, ids), run) in spans.into_iter().zip(read) {
                for &i in ids {
                    let PieceRead { frame, at, len, crc, .. } = reads[i];
                    let from = (at - start) as usize;
                    // Errors name the record's frame, as every log error does.
                    let corrupted =
                        |problem| Error::Wal(WalError::Corrupted { path: path.to_path_buf(), offset: frame, problem });
                    let Some(piece) = run.get(from..from + len) else {
                        let before = (at - frame) as usize;
                        let available = before + run.len().saturating_sub(from);
                        return Err(corrupted(FrameProblem::Truncated { available, needed: before + len }));
                    };
                    if let Some(indexed) = crc {
                        let computed = crc32fast::hash(piece);
                        if computed != indexed {
                            let bytes = at - frame..at - frame + len as u64;
                            return Err(corrupted(FrameProblem::ChangedSinceIndexed { bytes, indexed, computed }));
                        }
                    }
                    located[i] = (runs.len(), from..from + len);
                }
                runs.push(run);
            }
        }
        Ok((runs, located))
    }

    /// `ranges` of log segment `path`, one buffer each, through a reader kept
    /// open for it (the file system's `read_ranges` when it has no readers).
    /// A kept reader that fails is closed, and the read tried once more on a
    /// new one.
    fn read_segment(&self, path: &std::path::Path, ranges: &[(u64, usize)]) -> std::io::Result<Vec<Vec<u8>>> {
        let readers = &self.inner.history.readers;
        let same = |p: &std::path::PathBuf| p.as_os_str() == path.as_os_str();
        let kept = {
            let mut readers = readers.lock();
            // Most recently used last.
            let at = readers.iter().position(|(p, _)| same(p));
            at.map(|at| {
                let entry = readers.remove(at);
                let reader = entry.1.clone();
                readers.push(entry);
                reader
            })
        };
        let read = match kept.map(|reader| reader.read_ranges(ranges)) {
            Some(Ok(read)) => Ok(read),
            stale => {
                if stale.is_some() {
                    readers.lock().retain(|(p, _)| !same(p));
                }
                match self.inner.fs.open_reader(path)? {
                    None => self.inner.fs.read_ranges(path, ranges),
                    Some(reader) => {
                        let read = reader.read_ranges(ranges)?;
                        let mut readers = readers.lock();
                        if !readers.iter().any(|(p, _)| same(p)) {
                            if readers.len() >= READERS_KEPT {
                                readers.remove(0);
                            }
                            readers.push((path.to_path_buf(), reader));
                        }
                        Ok(read)
                    }
                }
            }
        }?;
        if read.len() != ranges.len() {
            let message = format!("{} buffers read for {} ranges", read.len(), ranges.len());
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
        }
        Ok(read)
    }

    /// Reads the record of transaction `seq` at its indexed offset, checks its
    /// checksum and sequence number, and decodes it with `decode`. A record
    /// of known length is one read; the log's last, header first, then whole.
    fn with_record<T>(
        &self,
        seq: u64,
        decode: impl FnOnce(&crate::wal::Frame<'_>) -> std::result::Result<T, crate::codec::CodecError>,
    ) -> Result<T> {
        let place = self.places(&[seq])?.remove(0);
        let bytes = match place.known_bytes {
            Some(len) => self.read_one(&place.path, place.offset, len)?,
            None => self.read_frame_bytes(&place.path, place.offset)?,
        };
        Self::decode_record(&place, seq, &bytes, self.inner.record_bytes_max, decode)
    }

    /// Up to `len` bytes of log segment `path` at `offset` (fewer where the
    /// file ends), through [`Store::read_segment`].
    fn read_one(&self, path: &std::path::Path, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut read = self.read_segment(path, &[(offset, len)]).map_err(read_error(path))?;
        Ok(read.pop().expect("read_segment gives one buffer a range"))
    }

    /// Where each transaction of `seqs` has its record: its segment, offset
    /// and length (when the next record, in the same segment, says where it
    /// ends).
    fn places(&self, seqs: &[u64]) -> Result<Vec<Place>> {
        let last = self.read().seq();
        // A log that starts late holds no record at or before its floor.
        let floor = self.log_floor();
        if let Some(&seq) = seqs.iter().find(|&&seq| seq <= floor || seq > last) {
            return Err(Error::PointOutOfRange { point: Point::Seq(seq), first: None, last: None });
        }
        // Offsets under the index's lock, then paths under the segments' (one lock at a time).
        let offsets: Vec<(u64, Option<usize>, Timestamp)> = {
            let mut index = self.inner.history.index.lock();
            for &seq in seqs {
                // And the next when it is in the same segment, for where this one ends.
                let next = (seq + 1).min(last).min(self.segment_last(seq));
                self.extend_index(&mut index, seq, next)?;
            }
            let entries = &index.entries;
            seqs.iter()
                .map(|&seq| {
                    let Entry { time, offset } = entries[seq as usize - 1];
                    // The next record, when it is in the same segment, starts where this one ends.
                    let next = entries
                        .get(seq as usize)
                        .map(|e| e.offset)
                        .filter(|&next| next > offset && next != UNKNOWN.offset);
                    (offset, next.map(|next| (next - offset) as usize), time)
                })
                .collect()
        };
        let segments = self.inner.segments.read();
        let places = seqs
            .iter()
            .zip(offsets)
            .map(|(&seq, (offset, known_bytes, time))| {
                let index = segments.partition_point(|s| s.first_seq <= seq).saturating_sub(1);
                Place { path: segments[index].path.clone(), offset, known_bytes, time }
            })
            .collect();
        Ok(places)
    }

    /// Checks the frame in `bytes` (its checksum, that it is record `seq`)
    /// and decodes it with `decode`.
    fn decode_record<T>(
        place: &Place,
        seq: u64,
        bytes: &[u8],
        limit: u32,
        decode: impl FnOnce(&crate::wal::Frame<'_>) -> std::result::Result<T, crate::codec::CodecError>,
    ) -> Result<T> {
        let (path, offset) = (&place.path, place.offset);
        let frame = decode_frame(bytes, limit)
            .map_err(|problem| Error::Wal(WalError::Corrupted { path: path.clone(), offset, problem }))?;
        if frame.seq != seq {
            let (expected, found) = (seq, frame.seq);
            return Err(Error::Wal(WalError::SequenceGap { path: path.clone(), offset, expected, found }));
        }
        decode(&frame).map_err(|source| Error::Wal(WalError::undecodable(path, offset, seq, source)))
    }

    /// The transactions in `range`, each with where its payload's head and
    /// each of its events are and their checksums, for indexes that later
    /// read and decode single events ([`Store::transactions_pieces`]). Each
    /// record is read whole and its own checksum checked first.
    pub(crate) fn transactions_indexed(
        &self,
        range: impl std::ops::RangeBounds<u64>,
    ) -> impl Iterator<Item = Result<IndexedTxn<S::Event>>> {
        let limit = self.inner.record_bytes_max;
        let mut cursor = self.log_cursor(range);
        std::iter::from_fn(move || {
            let item = cursor.next_with(|path, offset, frame| {
                let (_meta, head, events) = payload::decode_spanned::<S>(frame.payload, limit)
                    .map_err(|source| WalError::undecodable(path, offset as u64, frame.seq, source))?;
                let piece = |span: std::ops::Range<u32>| {
                    let crc = crc32fast::hash(&frame.payload[span.start as usize..span.end as usize]);
                    Piece { span, crc }
                };
                let mut pieces: Vec<(S::Event, Piece)> = Vec::with_capacity(events.len());
                for (event, span) in events {
                    // Events upcast from one old event share its bytes: one checksum.
                    let piece = match pieces.last() {
                        Some((_, last)) if last.span == span => last.clone(),
                        _ => piece(span),
                    };
                    pieces.push((event, piece));
                }
                Ok(IndexedTxn { seq: frame.seq, head: piece(0..head), events: pieces })
            })?;
            Some(item.map_err(Error::from))
        })
    }

    /// The bytes of the frame at `offset` in `path`: its header for the length,
    /// then the whole frame (or as much as the file holds; `decode_frame` judges).
    fn read_frame_bytes(&self, path: &std::path::Path, offset: u64) -> Result<Vec<u8>> {
        let head = self.read_one(path, offset, FRAME_HEADER_BYTES)?;
        let payload_bytes = head.get(4..8).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        let limit = self.inner.record_bytes_max;
        self.read_one(path, offset, FRAME_HEADER_BYTES + payload_bytes.min(limit) as usize)
    }

    /// The transactions committed after `since`, oldest first. Reading starts
    /// at the last segment whose first record is at or before `since`, so the
    /// cost follows the length of the window, not of the history. A segment
    /// whose first record cannot be read is not skipped over.
    pub fn transactions_after(&self, since: Timestamp) -> impl Iterator<Item = Result<super::Transaction<S::Event>>> {
        let segments = self.inner.segments.read().clone();
        let limit = self.inner.record_bytes_max;
        let mut from = self.log_floor() + 1;
        for segment in &segments {
            let first_time = self
                .read_frame_bytes(&segment.path, crate::wal::SEGMENT_HEADER_BYTES as u64)
                .ok()
                .and_then(|bytes| decode_frame(&bytes, limit).ok().map(|frame| (frame.seq, frame.time)));
            match first_time {
                Some((seq, time)) if seq == segment.first_seq && time <= since => from = seq,
                _ => break,
            }
        }
        self.transactions(from..).filter(move |txn| txn.as_ref().map_or(true, |txn| txn.time > since))
    }
}

/// The error of a failed read of the log file at `path`.
fn read_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + Copy + '_ {
    move |source| Error::Wal(WalError::Io { op: "read", path: path.to_path_buf(), source })
}

/// Bytes of a record's payload and their checksum, taken when the whole
/// record was read and its own checksum held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Where the bytes are in the payload.
    pub(crate) span: std::ops::Range<u32>,
    /// Their CRC32.
    pub(crate) crc: u32,
}

/// One transaction as an index sees it (see [`Store::transactions_indexed`]).
pub(crate) struct IndexedTxn<E> {
    pub(crate) seq: u64,
    /// The payload's head: everything before its event count.
    pub(crate) head: Piece,
    /// Each event, with its bytes.
    pub(crate) events: Vec<(E, Piece)>,
}

/// The pieces of one transaction to read (see [`Store::transactions_pieces`]).
pub(crate) struct IndexedPieces {
    pub(crate) seq: u64,
    pub(crate) head: Piece,
    pub(crate) events: Vec<Piece>,
}

/// One read of [`Store::read_pieces`]: bytes of a segment, and their checksum
/// if they are to be checked.
#[derive(Clone, Copy)]
struct PieceRead<'a> {
    path: &'a std::path::Path,
    /// Where the record's frame starts.
    frame: u64,
    /// Where the bytes start.
    at: u64,
    len: usize,
    crc: Option<u32>,
}

/// Where a transaction's record is (see `Store::places`).
struct Place {
    path: std::path::PathBuf,
    offset: u64,
    known_bytes: Option<usize>,
    /// The commit time, from the index (read from the checked record).
    time: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept reader whose every read fails, as one on a file system that
    /// went away (EIO, ESTALE).
    #[derive(Debug)]
    struct Failing;

    impl ReadAt for Failing {
        fn read_ranges(&self, _: &[(u64, usize)]) -> std::io::Result<Vec<Vec<u8>>> {
            Err(std::io::Error::other("gone"))
        }
    }

    /// Reads of records across many segments keep at most `READERS_KEPT`
    /// open, the most recently used last; a kept reader that fails is
    /// replaced and the read still answers.
    #[test]
    fn kept_segment_readers_are_bounded_recent_and_replaced_when_they_fail() {
        use super::super::testing::Sum;
        use super::super::{Create, Options, SyncPolicy, TxnMeta};
        let dir = std::env::temp_dir().join(format!("elbstore-kept-readers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Never).segment_bytes(4096);
        let store = Store::<Sum>::open(&dir, options).unwrap();
        let mut seq = 0;
        while store.inner.segments.read().len() < READERS_KEPT + 4 {
            seq = store.commit(TxnMeta::new("a", "b"), vec![seq as i64 + 1]).unwrap().seq;
        }
        // A transaction after the ones read below: none of them is the log's last.
        store.commit(TxnMeta::new("a", "b"), vec![0]).unwrap();
        let paths = |store: &Store<Sum>| -> Vec<std::path::PathBuf> {
            store.inner.history.readers.lock().iter().map(|(p, _)| p.clone()).collect()
        };
        for n in 1..=seq {
            assert_eq!(store.transaction(n).unwrap().events, [n as i64]);
            assert!(paths(&store).len() <= READERS_KEPT);
        }
        let segments: Vec<_> = store.inner.segments.read().iter().map(|s| s.path.clone()).collect();
        assert_eq!(paths(&store), segments[segments.len() - READERS_KEPT..], "the most recent, in order of use");
        // A hit moves its segment to the end.
        assert_eq!(store.transaction(seq - 200).unwrap().events, [(seq - 200) as i64]);
        let used = paths(&store).last().cloned().unwrap();
        assert_ne!(used, segments[segments.len() - 1]);
        // A failing kept reader is closed, and the read goes through a new one.
        store.inner.history.readers.lock().last_mut().unwrap().1 = Arc::new(Failing);
        assert_eq!(store.transaction(seq - 200).unwrap().events, [(seq - 200) as i64]);
        assert_eq!(paths(&store).iter().filter(|p| **p == used).count(), 1);
        assert_eq!(store.transaction(seq - 200).unwrap().events, [(seq - 200) as i64]);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn seqs(checkpoints: &Checkpoints<u64>) -> Vec<u64> {
        checkpoints.states.keys().copied().collect()
    }

    fn at(c: &mut Checkpoints<u64>, seq: u64) -> Option<(u64, u64)> {
        c.at_or_before(seq).map(|b| (b.seq, *b.state))
    }

    #[test]
    fn checkpoints_answer_with_the_newest_at_or_before_a_point() {
        let mut c = Checkpoints::default();
        for seq in [10, 20, 30] {
            c.insert(seq, Arc::new(seq * 100), HEAD_LINEAGE, 8);
        }
        assert_eq!(at(&mut c, 9), None);
        assert_eq!(at(&mut c, 10), Some((10, 1000)));
        assert_eq!(at(&mut c, 29), Some((20, 2000)));
        assert_eq!(at(&mut c, u64::MAX), Some((30, 3000)));
    }

    #[test]
    fn checkpoints_beyond_the_limit_evict_the_least_recently_used() {
        let mut c = Checkpoints::default();
        c.insert(10, Arc::new(1), HEAD_LINEAGE, 3);
        c.insert(20, Arc::new(2), HEAD_LINEAGE, 3);
        c.insert(30, Arc::new(3), HEAD_LINEAGE, 3);
        // 10 is used again, so 20 is now the least recently used.
        assert!(c.at_or_before(15).is_some());
        c.insert(40, Arc::new(4), HEAD_LINEAGE, 3);
        assert_eq!(seqs(&c), [10, 30, 40]);
        c.insert(50, Arc::new(5), HEAD_LINEAGE, 3);
        assert_eq!(seqs(&c), [10, 40, 50]);
    }

    #[test]
    fn one_decoded_lineage_is_kept_beside_the_head() {
        let mut c = Checkpoints::default();
        c.insert(100, Arc::new(1), HEAD_LINEAGE, 8);
        let first = c.new_lineage();
        c.insert(10, Arc::new(2), first, 8);
        c.insert(20, Arc::new(3), first, 8);
        assert_eq!(seqs(&c), [10, 20, 100]);
        // Decoding another snapshot drops the first lineage, never the head's.
        let second = c.new_lineage();
        c.insert(50, Arc::new(4), second, 8);
        assert_eq!(seqs(&c), [50, 100]);
        c.insert(60, Arc::new(5), second, 8);
        assert_eq!(seqs(&c), [50, 60, 100]);
    }

    #[test]
    fn a_limit_of_zero_keeps_nothing() {
        let mut c = Checkpoints::default();
        c.insert(10, Arc::new(1), HEAD_LINEAGE, 0);
        assert!(c.at_or_before(10).is_none());
        assert!(seqs(&c).is_empty());
    }
}
