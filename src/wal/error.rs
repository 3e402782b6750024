//! Errors of the write-ahead log.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::record::FrameProblem;
use super::segment::HeaderProblem;
use crate::clock::Timestamp;
use crate::codec::CodecError;
use crate::identity::StoreId;

/// An error of the write-ahead log. Every variant names the file involved and,
/// where it applies, the byte offset and sequence number.
#[derive(Debug)]
#[non_exhaustive]
pub enum WalError {
    /// A file operation failed.
    Io {
        /// What was being done, e.g. `fsync`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A segment's header is not valid.
    BadHeader {
        /// The segment.
        path: PathBuf,
        /// What is wrong.
        problem: HeaderProblem,
    },
    /// A segment belongs to another store.
    ForeignSegment {
        /// The segment.
        path: PathBuf,
        /// This store's id.
        expected: StoreId,
        /// The id in the segment's header.
        found: StoreId,
    },
    /// A segment's file name and header disagree on its first sequence number.
    NameMismatch {
        /// The segment.
        path: PathBuf,
        /// The sequence number in the name.
        name_seq: u64,
        /// The sequence number in the header.
        header_seq: u64,
    },
    /// A damaged record that is not a torn tail: valid records follow it, or
    /// it is in a sealed segment.
    Corrupted {
        /// The segment.
        path: PathBuf,
        /// The byte offset of the damaged frame.
        offset: u64,
        /// What is wrong with it.
        problem: FrameProblem,
    },
    /// A whole record with a valid checksum is longer than the configured
    /// record limit: it was written under a larger `record_bytes_max`. Never
    /// cut: open it with a limit at least this large.
    RecordOverLimit {
        /// The segment.
        path: PathBuf,
        /// The byte offset of the record.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// Its payload length.
        payload_bytes: u32,
        /// The configured limit.
        limit: u32,
    },
    /// Sequence numbers are not gapless and increasing by one.
    SequenceGap {
        /// The segment.
        path: PathBuf,
        /// The byte offset of the record (the header's size for a segment's start).
        offset: u64,
        /// The sequence number that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A record's timestamp is not later than its predecessor's.
    TimeWentBackwards {
        /// The segment.
        path: PathBuf,
        /// The byte offset of the record.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// The previous record's timestamp.
        previous: Timestamp,
        /// This record's timestamp.
        found: Timestamp,
    },
    /// The log ends before a record the store acknowledged: its files were
    /// cut or removed under a running store.
    LogEndsEarly {
        /// The last segment read.
        path: PathBuf,
        /// Where it ends.
        offset: u64,
        /// The sequence number that should come next.
        expected: u64,
    },
    /// A sealed segment holds no records.
    EmptySealedSegment {
        /// The segment.
        path: PathBuf,
    },
    /// A record's checksum is valid but its payload does not decode: the log
    /// was written by an incompatible version.
    Undecodable {
        /// The segment.
        path: PathBuf,
        /// The byte offset of the record.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// The decoder's complaint.
        source: CodecError,
    },
    /// A record was written with a schema version newer than this build
    /// knows: a newer version of the program wrote to this store.
    NewerSchema {
        /// The segment.
        path: PathBuf,
        /// The byte offset of the record.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// The record's schema version.
        found: u32,
        /// The newest schema version this build reads.
        known: u8,
    },
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io { op, path, source } => write!(f, "{op} failed on {}: {source}", path.display()),
            WalError::BadHeader { path, problem } => {
                write!(f, "segment {} has an invalid header: {problem}", path.display())
            }
            WalError::ForeignSegment { path, expected, found } => {
                write!(f, "segment {} belongs to store {found}, not to this store {expected}", path.display())
            }
            WalError::NameMismatch { path, name_seq, header_seq } => write!(
                f,
                "segment {} is named for sequence number {name_seq} but its header says {header_seq}",
                path.display()
            ),
            WalError::Corrupted { path, offset, problem } => {
                write!(f, "corrupted record in {} at byte offset {offset}: {problem}", path.display())
            }
            WalError::RecordOverLimit { path, offset, seq, payload_bytes, limit } => write!(
                f,
                "record of sequence number {seq} in {} at byte offset {offset} has a {payload_bytes}-byte payload, \
                 over the record limit of {limit}; it was written under a larger record_bytes_max",
                path.display()
            ),
            WalError::SequenceGap { path, offset, expected, found } => write!(
                f,
                "sequence gap in {} at byte offset {offset}: expected sequence number {expected}, found {found}",
                path.display()
            ),
            WalError::TimeWentBackwards { path, offset, seq, previous, found } => write!(
                f,
                "timestamp of sequence number {seq} in {} at byte offset {offset} is {found}, not after {previous}",
                path.display()
            ),
            WalError::LogEndsEarly { path, offset, expected } => write!(
                f,
                "the log ends at byte offset {offset} of {} before sequence number {expected}, which the store \
                 acknowledged",
                path.display()
            ),
            WalError::EmptySealedSegment { path } => {
                write!(f, "sealed segment {} holds no records", path.display())
            }
            WalError::Undecodable { path, offset, seq, source } => write!(
                f,
                "record of sequence number {seq} in {} at byte offset {offset} does not decode: {source}",
                path.display()
            ),
            WalError::NewerSchema { path, offset, seq, found, known } => write!(
                f,
                "record of sequence number {seq} in {} at byte offset {offset} was written by a newer version: \
                 schema {found}, this build reads up to {known}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source),
            WalError::Undecodable { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl WalError {
    /// The error for the record `seq` at `offset` of `path` whose payload does
    /// not decode: [`WalError::NewerSchema`] when a newer version wrote it,
    /// [`WalError::Undecodable`] otherwise.
    pub(crate) fn undecodable(path: &std::path::Path, offset: u64, seq: u64, source: CodecError) -> WalError {
        let path = path.to_path_buf();
        match source.newer_schema_version() {
            Some((found, known)) => WalError::NewerSchema { path, offset, seq, found, known },
            None => WalError::Undecodable { path, offset, seq, source },
        }
    }

    /// The error for a frame at `offset` of `path` that does not decode: a
    /// whole record over the limit is [`WalError::RecordOverLimit`], anything
    /// else [`WalError::Corrupted`].
    pub(crate) fn bad_frame(path: &std::path::Path, offset: usize, problem: FrameProblem) -> WalError {
        let (path, offset) = (path.to_path_buf(), offset as u64);
        match problem {
            FrameProblem::OverLimit { seq, payload_bytes, limit } => {
                WalError::RecordOverLimit { path, offset, seq, payload_bytes, limit }
            }
            problem => WalError::Corrupted { path, offset, problem },
        }
    }
}

/// Builds the `map_err` closure for an I/O call on `path`.
pub(crate) fn io_err<'p>(op: &'static str, path: &'p std::path::Path) -> impl FnOnce(io::Error) -> WalError + 'p {
    move |source| WalError::Io { op, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    /// Every message names the segment (and offset and sequence number where
    /// they apply); the I/O and codec causes are the error's source.
    #[test]
    fn every_log_error_names_its_segment_and_keeps_its_cause() {
        let path = PathBuf::from("/store/wal-00000000000000000001.log");
        let time = Timestamp(5);
        let cases: Vec<(WalError, &[&str], bool)> = vec![
            (
                WalError::Io { op: "fsync", path: path.clone(), source: io::Error::other("gone") },
                &["fsync failed"],
                true,
            ),
            (WalError::BadHeader { path: path.clone(), problem: HeaderProblem::BadMagic }, &["invalid header"], false),
            (
                WalError::ForeignSegment { path: path.clone(), expected: StoreId(1), found: StoreId(2) },
                &["belongs to store"],
                false,
            ),
            (WalError::NameMismatch { path: path.clone(), name_seq: 1, header_seq: 2 }, &["header says 2"], false),
            (
                WalError::Corrupted { path: path.clone(), offset: 96, problem: FrameProblem::ZeroLength },
                &["offset 96", "zero payload"],
                false,
            ),
            (
                WalError::RecordOverLimit { path: path.clone(), offset: 96, seq: 3, payload_bytes: 70, limit: 64 },
                &["offset 96", "sequence number 3", "70-byte", "limit of 64"],
                false,
            ),
            (
                WalError::SequenceGap { path: path.clone(), offset: 96, expected: 4, found: 6 },
                &["offset 96", "expected sequence number 4, found 6"],
                false,
            ),
            (
                WalError::TimeWentBackwards { path: path.clone(), offset: 96, seq: 4, previous: time, found: time },
                &["offset 96", "sequence number 4"],
                false,
            ),
            (
                WalError::LogEndsEarly { path: path.clone(), offset: 96, expected: 4 },
                &["offset 96", "before sequence number 4"],
                false,
            ),
            (WalError::EmptySealedSegment { path: path.clone() }, &["holds no records"], false),
            (
                WalError::Undecodable {
                    path: path.clone(),
                    offset: 96,
                    seq: 4,
                    source: CodecError::unsupported_version(9),
                },
                &["offset 96", "sequence number 4", "does not decode"],
                true,
            ),
        ];
        for (err, says, has_source) in cases {
            let text = err.to_string();
            assert!(text.contains(path.to_str().unwrap()), "{text}");
            for part in says {
                assert!(text.contains(part), "{text} lacks {part}");
            }
            assert_eq!(err.source().is_some(), has_source, "{text}");
        }
    }
}
