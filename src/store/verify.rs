//! Checking a whole store offline: every checksum, sequence continuity, and
//! that every snapshot equals a replay of the log up to its sequence number.

use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::machine::StateMachine;
use super::options::{OpenMode, Options};
use super::payload;
use super::{Reporter, Store, Work};
use crate::snapshot::SnapshotError;
use crate::wal::{self, Last, WalError};

/// What [`verify`] found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segments read.
    pub segments: usize,
    /// Transactions read and replayed.
    pub transactions: u64,
    /// Snapshots loaded and compared with the replay.
    pub snapshots_checked: usize,
    /// Every problem, in the order found; empty when the store is sound.
    pub problems: Vec<Error>,
    /// Where the last segment ended in a partial record that changed while
    /// it was checked: a writer beside the check was writing it. Everything
    /// before it was checked; it is not a problem.
    pub tail_being_written: Option<(PathBuf, u64)>,
    /// Records read, by the schema version they were written with. Every one
    /// of them was decoded, upcast to the current version and replayed.
    pub record_schemas: std::collections::BTreeMap<u8, u64>,
    /// Snapshots of an older schema version that the state machine does not
    /// upcast: opens pass them over and rebuild from the log.
    pub older_schema_snapshots: usize,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads the store in `dir` read-only and checks everything: segment headers,
/// every frame's checksum, gapless sequence numbers and increasing timestamps
/// across all segments, that every payload decodes, and that every snapshot
/// loads and equals the fold of the log up to its sequence number. Changes no
/// byte. Returns an error only when the store cannot be read at all.
pub fn verify<S: StateMachine + PartialEq>(dir: impl AsRef<Path>, options: Options) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let options = options.mode(OpenMode::ReadOnly);
    let mut report = VerifyReport::default();
    let store = match Store::<S>::open(dir, options.clone()) {
        Ok(store) => store,
        Err(
            err
            @ (Error::Wal(_) | Error::LogBehindSnapshot { .. } | Error::Snapshot(SnapshotError::NewerSchema { .. })),
        ) => {
            report.problems.push(err);
            return Ok(report);
        }
        Err(err) => return Err(err),
    };
    let fs = options.fs.clone();
    let id = store.identity().id;
    let limit = options.record_bytes_max;
    // The snapshots the open listed, before it read the log: a writer beside
    // this check may add newer ones (and the segments they cover) after.
    let mut snapshots: Vec<(u64, PathBuf)> = store.open_report().listed_snapshots.clone();
    snapshots.reverse();
    let mut state = S::default();
    let segments = store.segments();
    // A log that starts late (history before it trimmed, as a restore from an
    // archive with a retention writes it) is replayed from the oldest
    // snapshot that the log reaches; its records up to that snapshot are
    // read and checked but not applied, and older snapshots cannot be checked.
    let first_seq = segments.first().map_or(1, |s| s.first_seq);
    let mut replay_after = 0;
    if first_seq > 1 {
        snapshots.retain(|(seq, _)| *seq + 1 >= first_seq);
        let Some((base, path)) = snapshots.pop() else {
            let path = segments[0].path.clone();
            report.problems.push(Error::LogStartsLate { path, first_seq });
            return Ok(report);
        };
        match super::open::load_snapshot::<S>(&fs, &path, id, options.snapshot_bytes_max) {
            Ok((_, loaded)) => state = loaded,
            Err(err) => {
                report.problems.push(Error::Snapshot(err));
                return Ok(report);
            }
        }
        report.snapshots_checked += 1;
        replay_after = base;
    }
    let mut check_snapshots_at = |seq: u64, state: &S, report: &mut VerifyReport| {
        while snapshots.last().is_some_and(|(s, _)| *s <= seq) {
            let (snap_seq, path) = snapshots.pop().expect("checked");
            if snap_seq < seq {
                continue;
            }
            match super::open::load_snapshot::<S>(&fs, &path, id, options.snapshot_bytes_max) {
                Ok((_, loaded)) if loaded == *state => report.snapshots_checked += 1,
                Ok(_) => report.problems.push(Error::SnapshotMismatch { path, seq: snap_seq }),
                // Removed since it was listed: retention in a writer beside this check.
                Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                // Passed over by opens, which rebuild from the log checked here.
                Err(SnapshotError::OlderSchema { .. }) => report.older_schema_snapshots += 1,
                Err(err) => report.problems.push(Error::Snapshot(err)),
            }
        }
    };
    check_snapshots_at(replay_after, &state, &mut report);
    let mut last: Option<Last> = None;
    let mut progress = Reporter::new(options.progress.as_ref(), Work::Verify, segments.len() as u64);
    for (index, segment) in segments.iter().enumerate() {
        progress.at(index as u64);
        report.segments += 1;
        let bytes = match fs.read_file(&segment.path) {
            Ok(bytes) => bytes,
            Err(source) => {
                report.problems.push(Error::Wal(WalError::Io { op: "read", path: segment.path.clone(), source }));
                return Ok(report);
            }
        };
        let header = match wal::check_header(&segment.path, &bytes, id, segment.first_seq) {
            Ok(header) => header,
            Err(err) => {
                report.problems.push(Error::Wal(err));
                return Ok(report);
            }
        };
        let scanned = wal::scan_segment(&segment.path, bytes.as_slice(), &header, last, limit, |offset, frame| {
            let (_meta, events) = payload::decode::<S>(frame.payload, limit)
                .map_err(|source| WalError::undecodable(&segment.path, offset as u64, frame.seq, source))?;
            if frame.seq > replay_after {
                for event in &events {
                    state.apply(event);
                }
            }
            report.transactions += 1;
            *report.record_schemas.entry(payload::schema_of(frame.payload).unwrap_or(0)).or_default() += 1;
            check_snapshots_at(frame.seq, &state, &mut report);
            Ok(())
        });
        match scanned {
            Ok(scanned) => {
                if let Some((offset, problem)) = scanned.damage {
                    let expected = scanned.last.map_or(header.first_seq, |l| l.seq.saturating_add(1));
                    let last_segment = index + 1 == segments.len();
                    let path = segment.path.clone();
                    if wal::tail_frames(&bytes, offset, expected, last_segment).is_none() {
                        report.problems.push(Error::Wal(WalError::Corrupted { path, offset: offset as u64, problem }));
                        return Ok(report);
                    }
                    if is_being_written(&fs, &path, bytes.len() as u64) {
                        report.tail_being_written = Some((path, offset as u64));
                        last = scanned.last.or(last);
                        break;
                    }
                    report.problems.push(Error::TornTail { path, offset: offset as u64, problem });
                    return Ok(report);
                }
                if scanned.last.is_none() && index + 1 != segments.len() {
                    report.problems.push(Error::Wal(WalError::EmptySealedSegment { path: segment.path.clone() }));
                }
                last = scanned.last.or(last);
            }
            Err(err) => {
                report.problems.push(Error::Wal(err));
                return Ok(report);
            }
        }
    }
    progress.finish();
    // Snapshots beyond the end of the log cover records that are missing.
    for (seq, path) in snapshots.into_iter().rev() {
        let log_last_seq = last.map_or(0, |l| l.seq);
        report.problems.push(Error::LogBehindSnapshot { snapshot: path, snapshot_seq: seq, log_last_seq });
    }
    Ok(report)
}

/// Whether the segment at `path`, read as `read_bytes` long, is changing: a
/// writer beside a read-only check may be in the middle of a write (a reader
/// can see part of one) or of the cut of a torn tail. A tail that stays the
/// same for a moment is torn for real.
fn is_being_written(fs: &std::sync::Arc<dyn crate::io::FileSystem>, path: &Path, read_bytes: u64) -> bool {
    const ATTEMPTS: u32 = 5;
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(PAUSE);
        }
        if fs.file_len(path).is_ok_and(|now| now != read_bytes) {
            return true;
        }
    }
    false
}
