//! Reading history: points in time, an index from sequence number to time and
//! byte offset, and the state as of any point.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::error::{Error, Result};
use super::machine::StateMachine;
use super::payload;
use super::{Store, View};
use crate::clock::Timestamp;
use crate::snapshot;
use crate::wal::{decode_frame, LogCursor, WalError, FRAME_HEADER_BYTES};

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
    offset: u32,
}

/// Sequence number -> (time, offset) for seqs 1..=len, built lazily from the
/// log and caught up before each use, so opening a store never pays for it
/// and writers never touch it; and the most recently loaded snapshot, kept
/// because the same snapshot serves many nearby points.
pub(crate) struct HistoryCache<S> {
    entries: Mutex<Vec<Entry>>,
    snapshot: Mutex<Option<(u64, Arc<S>)>>,
}

impl<S> Default for HistoryCache<S> {
    fn default() -> HistoryCache<S> {
        HistoryCache { entries: Mutex::new(Vec::new()), snapshot: Mutex::new(None) }
    }
}

impl<S: StateMachine> Store<S> {
    /// Brings the index up to the last acknowledged transaction.
    fn index_through(&self, last: u64) -> Result<parking_lot::MutexGuard<'_, Vec<Entry>>> {
        let mut entries = self.inner.history.entries.lock();
        let have = entries.len() as u64;
        if have < last {
            let segments = self.inner.segments.read().clone();
            let mut cursor =
                LogCursor::new(self.inner.fs.clone(), segments, have + 1, last, self.inner.record_bytes_max);
            entries.reserve((last - have) as usize);
            while let Some(item) = cursor.next_with(|_, offset, frame| Ok((frame.time, offset))) {
                let (time, offset) = item?;
                entries.push(Entry { time, offset: offset as u32 });
            }
            if (entries.len() as u64) < last {
                return Err(Error::Wal(WalError::SequenceGap {
                    path: self.inner.dir.clone(),
                    offset: 0,
                    expected: entries.len() as u64 + 1,
                    found: last,
                }));
            }
        }
        Ok(entries)
    }

    /// The sequence number and time a point names, checked against the history.
    pub fn resolve(&self, point: Point) -> Result<(u64, Timestamp)> {
        let view = self.read();
        let last = view.seq();
        let entries = self.index_through(last)?;
        let time_of = |seq: u64| if seq == 0 { Timestamp(0) } else { entries[seq as usize - 1].time };
        let out_of_range = || Error::PointOutOfRange {
            point,
            first: entries.first().map(|e| (1, e.time)),
            last: entries.last().map(|e| (last, e.time)),
        };
        let seq = match point {
            Point::Seq(n) if n <= last => n,
            Point::Before(n) | Point::After(n) if n == 0 || n > last => return Err(out_of_range()),
            Point::Before(n) => n - 1,
            Point::After(n) => n,
            Point::Time(t) => {
                let (Some(first), Some(newest)) = (entries.first(), entries.last()) else { return Err(out_of_range()) };
                if t < first.time || t > newest.time.max(self.inner.clock.now()) {
                    return Err(out_of_range());
                }
                entries.partition_point(|e| e.time <= t) as u64
            }
            Point::Seq(_) => return Err(out_of_range()),
        };
        Ok((seq, time_of(seq)))
    }

    /// The state as of `point`, read-only: the newest snapshot at or before it
    /// plus a replay of the log up to it. Writers are not disturbed.
    pub fn state_at(&self, point: Point) -> Result<View<S>> {
        let (seq, time) = self.resolve(point)?;
        let current = self.read();
        if seq == current.seq() {
            return Ok(current);
        }
        drop(current);
        let (base_seq, mut state) = self.base_for(seq);
        if base_seq < seq {
            let offset = self.index_through(seq)?.get(base_seq as usize).map(|e| e.offset);
            let segments = self.inner.segments.read().clone();
            let (fs, limit) = (self.inner.fs.clone(), self.inner.record_bytes_max);
            let mut cursor = match offset {
                Some(offset) => LogCursor::new_at(fs, segments, base_seq + 1, offset, seq, limit),
                None => LogCursor::new(fs, segments, base_seq + 1, seq, limit),
            };
            let state_mut = Arc::make_mut(&mut state);
            while let Some(item) = cursor.next_with(|path, offset, frame| {
                let (_meta, events) = payload::decode::<S::Event>(frame.payload, limit).map_err(|source| {
                    WalError::Undecodable { path: path.to_path_buf(), offset: offset as u64, seq: frame.seq, source }
                })?;
                for event in &events {
                    state_mut.apply(event);
                }
                Ok(())
            }) {
                item?;
            }
        }
        Ok(View { seq, time, state })
    }

    /// The newest usable snapshot at or before `seq` (or the empty state).
    fn base_for(&self, seq: u64) -> (u64, Arc<S>) {
        let cached = self.inner.history.snapshot.lock().clone();
        let candidates: Vec<snapshot::SnapshotInfo> =
            self.inner.snapshots.read().iter().filter(|s| s.seq <= seq).cloned().collect();
        for info in candidates.iter().rev() {
            if let Some((cached_seq, state)) = &cached {
                if *cached_seq >= info.seq && *cached_seq <= seq {
                    return (*cached_seq, state.clone());
                }
            }
            match snapshot::load_snapshot::<S>(
                &self.inner.fs,
                &info.path,
                self.inner.identity.id,
                self.inner.options.snapshot_bytes_max,
            ) {
                Ok((_, state)) => {
                    let state = Arc::new(state);
                    *self.inner.history.snapshot.lock() = Some((info.seq, state.clone()));
                    return (info.seq, state);
                }
                // A damaged snapshot is skipped here as on open; `verify` reports it.
                Err(_) => continue,
            }
        }
        match cached {
            Some((cached_seq, state)) if cached_seq <= seq => (cached_seq, state),
            _ => (0, Arc::new(S::default())),
        }
    }

    /// One transaction by sequence number.
    pub fn transaction(&self, seq: u64) -> Result<super::Transaction<S::Event>> {
        let last = self.read().seq();
        if seq == 0 || seq > last {
            return Err(Error::PointOutOfRange { point: Point::Seq(seq), first: None, last: None });
        }
        let offset = u64::from(self.index_through(last)?[seq as usize - 1].offset);
        let path = {
            let segments = self.inner.segments.read();
            let index = segments.partition_point(|s| s.first_seq <= seq).saturating_sub(1);
            segments[index].path.clone()
        };
        // Read just the frame: its header for the length, then the whole frame.
        let limit = self.inner.record_bytes_max;
        let fs = &self.inner.fs;
        let io = |source| Error::Wal(WalError::Io { op: "read", path: path.clone(), source });
        let head = fs.read_range(&path, offset, FRAME_HEADER_BYTES).map_err(io)?;
        let payload_bytes = head.get(4..8).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
        let bytes = fs
            .read_range(&path, offset, FRAME_HEADER_BYTES + payload_bytes.min(limit) as usize)
            .map_err(|source| Error::Wal(WalError::Io { op: "read", path: path.clone(), source }))?;
        let frame = decode_frame(&bytes, limit)
            .map_err(|problem| Error::Wal(WalError::Corrupted { path: path.clone(), offset, problem }))?;
        if frame.seq != seq {
            let (expected, found) = (seq, frame.seq);
            return Err(Error::Wal(WalError::SequenceGap { path, offset, expected, found }));
        }
        let (meta, events) = payload::decode::<S::Event>(frame.payload, limit)
            .map_err(|source| Error::Wal(WalError::Undecodable { path: path.clone(), offset, seq, source }))?;
        Ok(super::Transaction { seq, time: frame.time, meta, events })
    }
}
