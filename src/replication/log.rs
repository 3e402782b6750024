//! The replicated log's storage (openraft's `RaftLogStorage`), kept in
//! elbstore's own segment format in the replica's `raft/` directory.
//!
//! Raft asks a log for three things an append-only file does not do in place:
//! overwrite the vote, cut an uncommitted suffix when a new leader says so,
//! and drop a prefix once a snapshot covers it. Here all three are records
//! appended like entries: the log is a sequence of `Record`s in frames
//! numbered 1, 2, 3, ... (the frame's `seq` is the record's number, not a
//! Raft index), and its meaning is the replay of those records in order:
//!
//! - `Entry(e)` puts `e` at its index, dropping any entry at or after it;
//! - `Truncate(i)` drops every entry at index `i` or after;
//! - `Purge(id)` drops every entry up to `id`'s index and remembers `id`;
//! - `Vote(v)` and `Committed(c)` replace the vote and the committed mark.
//!
//! Recovery cuts a torn tail exactly as the store's log does. Each segment
//! after the first begins with the vote, purge mark and committed mark as
//! they were when it started, so once purged, whole leading segments are
//! deleted without losing them. docs/FORMAT.md, "The replicated log", has the
//! byte layout.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{NodeId, TypeConfig};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::codec;
use crate::identity::StoreId;
use crate::io::FileSystem;
use crate::wal::{self, LogWriter, SegmentHeader, SegmentInfo, TailRepair, WalError, SEGMENT_HEADER_BYTES};

type Entry = openraft::Entry<TypeConfig>;

/// The largest record (one entry) the log writes or reads.
pub const RECORD_BYTES_MAX: u32 = 64 << 20;

/// The size at which a segment of the replicated log is sealed.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// One record of the replicated log.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Record {
    /// An entry at its index; entries at or after that index are dropped.
    Entry(Entry),
    /// The vote.
    Vote(Vote<NodeId>),
    /// Entries at this index and after are dropped.
    Truncate(u64),
    /// Entries up to this log id are dropped (a snapshot holds them).
    Purge(LogId<NodeId>),
    /// The last committed log id known (a hint for a faster restart).
    Committed(Option<LogId<NodeId>>),
}

/// What a replicated log holds, in brief.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSummary {
    /// The vote.
    pub vote: Option<Vote<NodeId>>,
    /// The last entry dropped because a snapshot holds it.
    pub purged: Option<LogId<NodeId>>,
    /// The last entry (or the purge mark, when no entry follows it).
    pub last: Option<LogId<NodeId>>,
}

/// A segment and the highest entry index written to it.
#[derive(Clone, Debug)]
struct Segment {
    info: SegmentInfo,
    max_index: u64,
}

/// What the records say, replayed.
#[derive(Debug, Default)]
struct Replayed {
    entries: BTreeMap<u64, Entry>,
    vote: Option<Vote<NodeId>>,
    purged: Option<LogId<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

impl Replayed {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Entry(entry) => {
                self.entries.split_off(&entry.log_id.index);
                self.entries.insert(entry.log_id.index, entry);
            }
            Record::Truncate(index) => {
                self.entries.split_off(&index);
            }
            Record::Purge(id) => {
                let kept = self.entries.split_off(&(id.index + 1));
                self.entries = kept;
                if self.purged.is_none_or(|purged| purged < id) {
                    self.purged = Some(id);
                }
            }
            Record::Vote(vote) => self.vote = Some(vote),
            Record::Committed(committed) => self.committed = committed,
        }
    }
}

struct Inner {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    writer: LogWriter,
    segments: Vec<Segment>,
    /// Bytes in the active segment, when there is one.
    active_bytes: Option<u64>,
    next_record: u64,
    /// The last record's time: each record's is later (the segment format
    /// requires strictly increasing times).
    last_time: Timestamp,
    segment_bytes: u64,
    state: Replayed,
    /// Why the log failed, once a write or fsync has: it takes no more.
    failed: Option<String>,
}

/// The replicated log in `dir`: openraft's log storage, and its reader.
///
/// Appends of entries are written at once and made durable by a flusher
/// thread, which fsyncs once for every append written since its last fsync
/// and then tells openraft each of them is durable: the Raft core goes on
/// taking writes while the disk syncs, and one fsync covers many of them
/// (group commit). A vote, a truncation and a purge are fsynced before they
/// return.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    flusher: std::sync::mpsc::Sender<LogFlushed<TypeConfig>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("LogStore").field("dir", &inner.dir).field("next_record", &inner.next_record).finish()
    }
}

/// A failure of the replicated log's files.
#[derive(Debug)]
pub struct LogError(pub WalError);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "replicated log: {}", self.0)
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl LogStore {
    /// Opens the replicated log in `dir`, creating it if missing, and
    /// replays it. A torn tail (a record cut by a crash before its fsync) is
    /// cut off and kept beside it, as in the store's log.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Result<LogStore, LogError> {
        LogStore::open_with(fs, dir, SEGMENT_BYTES)
    }

    /// [`LogStore::open`] with segments sealed at `segment_bytes`.
    pub fn open_with(fs: Arc<dyn FileSystem>, dir: &Path, segment_bytes: u64) -> Result<LogStore, LogError> {
        let io = |op: &'static str| {
            let dir = dir.to_path_buf();
            move |source| LogError(WalError::Io { op, path: dir, source })
        };
        fs.create_dir_all(dir).map_err(io("create directory"))?;
        for name in fs.list_dir(dir).map_err(io("list"))? {
            if name.ends_with(".log.tmp") {
                fs.remove_file(&dir.join(&name)).map_err(io("remove"))?;
            }
        }
        let listed = wal::list_segments(fs.as_ref(), dir).map_err(io("list"))?;
        // The log's id is its first segment's: every segment must carry it.
        let (id, after) = match listed.first() {
            Some(first) => {
                let bytes = fs.read_range(&first.path, 0, SEGMENT_HEADER_BYTES).map_err(io("read"))?;
                let header = SegmentHeader::decode(&bytes)
                    .map_err(|problem| LogError(WalError::BadHeader { path: first.path.clone(), problem }))?;
                (header.store_id, first.first_seq - 1)
            }
            None => (StoreId::random(), 0),
        };
        let mut state = Replayed::default();
        let mut max_index: BTreeMap<PathBuf, u64> = BTreeMap::new();
        let recovered = wal::recover(&fs, dir, id, after, TailRepair::Cut, RECORD_BYTES_MAX, |path, offset, frame| {
            let record: Record = codec::decode(frame.payload, u64::from(RECORD_BYTES_MAX))
                .map_err(|source| WalError::undecodable(path, offset as u64, frame.seq, source))?;
            if let Record::Entry(entry) = &record {
                let max = max_index.entry(path.to_path_buf()).or_default();
                *max = (*max).max(entry.log_id.index);
            }
            state.apply(record);
            Ok(())
        })
        .map_err(LogError)?;
        wal::make_durable(&fs, dir, &recovered).map_err(LogError)?;
        let writer =
            LogWriter::open(fs.clone(), dir, id, recovered.segments.last(), recovered.last_seq).map_err(LogError)?;
        let segments = recovered
            .segments
            .iter()
            .map(|info| Segment { info: info.clone(), max_index: max_index.get(&info.path).copied().unwrap_or(0) })
            .collect();
        let inner = Inner {
            fs,
            dir: dir.to_path_buf(),
            writer,
            segments,
            active_bytes: recovered.last_segment_bytes,
            next_record: recovered.last_seq + 1,
            last_time: recovered.last.map_or(Timestamp(0), |last| last.time),
            segment_bytes,
            state,
            failed: None,
        };
        let inner = Arc::new(Mutex::new(inner));
        let (flusher, pending) = std::sync::mpsc::channel();
        let flushed = inner.clone();
        std::thread::Builder::new()
            .name("elbstore-raft-flush".into())
            .spawn(move || flush(&flushed, &pending))
            .map_err(|source| LogError(WalError::Io { op: "start the flusher of", path: dir.to_path_buf(), source }))?;
        Ok(LogStore { inner, flusher })
    }

    /// Appends `record` and fsyncs it (tests).
    #[cfg(test)]
    pub(crate) fn write_for_test(&self, record: Record) {
        self.inner.lock().write(vec![record], true).unwrap();
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: u64) -> Option<Entry> {
        self.inner.lock().state.entries.get(&index).cloned()
    }

    /// The segments' paths, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.inner.lock().segments.iter().map(|s| s.info.path.clone()).collect()
    }

    /// The vote, the purge mark and the last log id.
    pub fn summary(&self) -> LogSummary {
        let inner = self.inner.lock();
        let last = inner.state.entries.values().next_back().map(|e| e.log_id).or(inner.state.purged);
        LogSummary { vote: inner.state.vote, purged: inner.state.purged, last }
    }
}

/// The flusher: for every batch of appends written, one fsync, then each
/// append's callback, in order. Ends when the log is dropped.
fn flush(inner: &Mutex<Inner>, pending: &std::sync::mpsc::Receiver<LogFlushed<TypeConfig>>) {
    while let Ok(first) = pending.recv() {
        let batch: Vec<LogFlushed<TypeConfig>> = std::iter::once(first).chain(pending.try_iter()).collect();
        let synced = {
            let mut inner = inner.lock();
            match &inner.failed {
                Some(failed) => Err(failed.clone()),
                None => inner.writer.sync().map_err(|err| {
                    let text = err.to_string();
                    inner.failed = Some(text.clone());
                    text
                }),
            }
        };
        for callback in batch {
            callback.log_io_completed(synced.clone().map_err(std::io::Error::other));
        }
    }
}

impl Inner {
    /// Appends `records` (and applies them to the replayed state), fsyncing
    /// when `sync`. A segment that has reached its size is sealed first, and
    /// the new one starts with the vote and marks.
    fn write(&mut self, records: Vec<Record>, sync: bool) -> Result<(), WalError> {
        if let Some(failed) = &self.failed {
            let failed = std::io::Error::other(failed.clone());
            return Err(WalError::Io { op: "write after a failure in", path: self.dir.clone(), source: failed });
        }
        let written = self.write_records(records, sync);
        if let Err(err @ WalError::Io { .. }) = &written {
            // A failed write or fsync is never retried: the log stops here.
            // (A record that cannot be encoded was never written: nothing
            // to stop for.)
            self.failed = Some(err.to_string());
        }
        written
    }

    fn write_records(&mut self, records: Vec<Record>, sync: bool) -> Result<(), WalError> {
        let now = SystemClock.now().max(Timestamp(self.last_time.as_nanos() + 1));
        let mut frames = Vec::new();
        let mut framed = Vec::with_capacity(records.len() + 3);
        if self.active_bytes.is_none_or(|bytes| bytes >= self.segment_bytes) {
            let info = self.writer.start_segment(self.next_record, now)?;
            self.segments.push(Segment { info, max_index: 0 });
            self.active_bytes = Some(SEGMENT_HEADER_BYTES as u64);
            framed.extend(self.state.vote.map(Record::Vote));
            framed.extend(self.state.purged.map(Record::Purge));
            if self.state.committed.is_some() {
                framed.push(Record::Committed(self.state.committed));
            }
        }
        framed.extend(records);
        let first = self.next_record;
        for (n, record) in framed.iter().enumerate() {
            let seq = first + n as u64;
            wal::append_frame(
                &mut frames,
                seq,
                Timestamp(now.as_nanos() + n as u64),
                RECORD_BYTES_MAX,
                |out| codec::encode_into(record, out, u64::from(RECORD_BYTES_MAX)),
                |bytes| codec::CodecError::upcast(format!("a record of {bytes} bytes is over the limit")),
            )
            .map_err(|source| WalError::undecodable(&self.dir, 0, seq, source))?;
        }
        let last = first + framed.len() as u64 - 1;
        let bytes = frames.len() as u64;
        self.writer.append(&mut frames, last)?;
        if sync {
            self.writer.sync()?;
        }
        self.next_record = last + 1;
        self.last_time = Timestamp(now.as_nanos() + framed.len() as u64 - 1);
        *self.active_bytes.get_or_insert(0) += bytes;
        let segment = self.segments.last_mut().expect("a segment was started");
        for record in framed {
            if let Record::Entry(entry) = &record {
                segment.max_index = segment.max_index.max(entry.log_id.index);
            }
            self.state.apply(record);
        }
        Ok(())
    }

    /// Deletes the leading sealed segments that hold nothing after the purge mark.
    fn delete_purged_segments(&mut self) -> Result<(), WalError> {
        let Some(purged) = self.state.purged else { return Ok(()) };
        while self.segments.len() > 1 && self.segments[0].max_index <= purged.index {
            let segment = self.segments.remove(0);
            let path = &segment.info.path;
            self.fs.remove_file(path).map_err(|source| WalError::Io { op: "remove", path: path.clone(), source })?;
        }
        self.fs.sync_dir(&self.dir).map_err(|source| WalError::Io {
            op: "fsync directory",
            path: self.dir.clone(),
            source,
        })
    }
}

fn write_error(err: WalError) -> StorageError<NodeId> {
    StorageIOError::write_logs(AnyError::new(&LogError(err))).into()
}

/// Runs blocking file work from async code without stalling the runtime's
/// other tasks (on a multi-threaded runtime).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(self.entries_from(range))
    }
}

impl LogStore {
    /// The entries of `range` one index after another from its start, and
    /// none past a missing index. Replication sends what this returns after
    /// the log id just before the range's start: entries that began later
    /// (their start purged since the range was chosen) would be a request
    /// whose entries do not follow its previous log id, which a follower
    /// must not append. An empty answer makes the leader try again, and it
    /// sends a snapshot once it sees the purge.
    fn entries_from(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        use std::ops::Bound;
        let inner = self.inner.lock();
        let mut next = match range.start_bound() {
            Bound::Included(&start) => Some(start),
            Bound::Excluded(&start) => Some(start + 1),
            Bound::Unbounded => None,
        };
        inner
            .state
            .entries
            .range(range)
            .map_while(|(&index, entry)| {
                let follows = next.is_none_or(|next| index == next);
                next = Some(index + 1);
                follows.then(|| entry.clone())
            })
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.inner.lock();
        let last = inner.state.entries.values().next_back().map(|e| e.log_id).or(inner.state.purged);
        Ok(LogState { last_purged_log_id: inner.state.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        blocking(|| self.inner.lock().write(vec![Record::Vote(vote)], true))
            .map_err(|err| StorageIOError::write_vote(AnyError::new(&LogError(err))).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().state.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock();
        if inner.state.committed == committed {
            return Ok(());
        }
        // A hint: made durable by the next fsync, not waited for.
        inner.write(vec![Record::Committed(committed)], false).map_err(write_error)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().state.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let records: Vec<Record> = entries.into_iter().map(Record::Entry).collect();
        if records.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // Written now (readable at once), durable when the flusher says.
        self.inner.lock().write(records, false).map_err(write_error)?;
        self.flusher.send(callback).map_err(|_| {
            let gone = std::io::Error::other("the flusher of the replicated log has stopped");
            write_error(WalError::Io { op: "flush", path: self.inner.lock().dir.clone(), source: gone })
        })
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        blocking(|| self.inner.lock().write(vec![Record::Truncate(log_id.index)], true)).map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        blocking(|| {
            let mut inner = self.inner.lock();
            inner.write(vec![Record::Purge(log_id)], true)?;
            inner.delete_purged_segments()
        })
        .map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::io::RealFs;

    fn entry(term: u64, index: u64) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload: EntryPayload::Blank }
    }

    fn indexes(log: &LogStore) -> Vec<(u64, u64)> {
        log.inner.lock().state.entries.values().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("elbstore-raft-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Truncation and purge are records: after a reopen the log says what it
    /// said before, and purged leading segments are gone from the disk.
    #[test]
    fn truncate_purge_and_vote_survive_a_reopen_and_purged_segments_are_deleted() {
        let dir = temp_dir("replay");
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let log = LogStore::open_with(fs.clone(), &dir, 1024).unwrap();
        {
            let mut inner = log.inner.lock();
            for i in 1..=50 {
                inner.write(vec![Record::Entry(entry(1, i))], i % 10 == 0).unwrap();
            }
            inner.write(vec![Record::Vote(Vote::new(2, 3))], true).unwrap();
            inner.write(vec![Record::Truncate(41)], true).unwrap();
            for i in 41..=60 {
                inner.write(vec![Record::Entry(entry(2, i))], false).unwrap();
            }
            inner.write(vec![Record::Entry(entry(3, 55))], true).unwrap();
        }
        let before = indexes(&log);
        assert_eq!(before.len(), 55);
        assert_eq!(before[39], (1, 40));
        assert_eq!(before[40], (2, 41));
        assert_eq!(*before.last().unwrap(), (3, 55), "an entry drops the ones after it");
        assert!(log.segment_paths().len() > 2, "small segments roll: {:?}", log.segment_paths());
        drop(log);
        let log = LogStore::open_with(fs.clone(), &dir, 1024).unwrap();
        assert_eq!(indexes(&log), before);
        assert_eq!(log.summary().vote, Some(Vote::new(2, 3)));
        let segments = log.segment_paths().len();
        {
            let mut inner = log.inner.lock();
            inner.write(vec![Record::Purge(LogId::new(CommittedLeaderId::new(2, 1), 50))], true).unwrap();
            inner.delete_purged_segments().unwrap();
        }
        assert!(log.segment_paths().len() < segments, "leading segments deleted");
        let after = indexes(&log);
        assert_eq!(after.first(), Some(&(2, 51)));
        drop(log);
        let log = LogStore::open_with(fs, &dir, 1024).unwrap();
        assert_eq!(indexes(&log), after);
        let summary = log.summary();
        assert_eq!(summary.vote, Some(Vote::new(2, 3)));
        assert_eq!((summary.purged.map(|p| p.index), summary.last.map(|l| l.index)), (Some(50), Some(55)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A range whose start is purged reads as nothing, not as the entries
    /// after the purge: replication would send those after the log id just
    /// before the range, a request no follower may append.
    #[test]
    fn entries_are_read_only_from_the_start_of_the_range() {
        let dir = temp_dir("entries-from");
        let log = LogStore::open_with(Arc::new(RealFs), &dir, 1 << 20).unwrap();
        {
            let mut inner = log.inner.lock();
            for i in 1..=20 {
                inner.write(vec![Record::Entry(entry(1, i))], i == 20).unwrap();
            }
        }
        let read = |range: std::ops::Range<u64>| -> Vec<u64> {
            log.entries_from(range).iter().map(|e| e.log_id.index).collect()
        };
        assert_eq!(read(3..7), vec![3, 4, 5, 6]);
        assert_eq!(read(18..30), vec![18, 19, 20], "fewer past the end");
        log.inner.lock().write(vec![Record::Purge(LogId::new(CommittedLeaderId::new(1, 1), 10))], true).unwrap();
        assert_eq!(read(11..15), vec![11, 12, 13, 14]);
        assert_eq!(read(8..15), Vec::<u64>::new(), "the start is purged");
        assert_eq!(log.entries_from(..).first().map(|e| e.log_id.index), Some(11));
        drop(log);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A record cut short by a crash is cut off at the next open, like the
    /// store's torn tail; the entries before it stay.
    #[test]
    fn a_torn_last_record_is_cut_and_the_rest_kept() {
        let dir = temp_dir("torn");
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let log = LogStore::open(fs.clone(), &dir).unwrap();
        log.inner.lock().write((1..=3).map(|i| Record::Entry(entry(1, i))).collect(), true).unwrap();
        let path = log.segment_paths()[0].clone();
        drop(log);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 5).unwrap();
        let log = LogStore::open(fs, &dir).unwrap();
        assert_eq!(indexes(&log), vec![(1, 1), (1, 2)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
