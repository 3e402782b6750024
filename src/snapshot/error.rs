//! Errors of the snapshot layer.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::format::FramingProblem;
use crate::codec::CodecError;
use crate::identity::StoreId;

/// An error reading or writing a snapshot. Every variant names the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file operation failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The header, trailer or payload checksum is not valid.
    Damaged {
        /// The snapshot.
        path: PathBuf,
        /// What is wrong.
        problem: FramingProblem,
    },
    /// The snapshot belongs to another store.
    Foreign {
        /// The snapshot.
        path: PathBuf,
        /// This store's id.
        expected: StoreId,
        /// The id in the snapshot.
        found: StoreId,
    },
    /// The file name and the header disagree on the sequence number.
    NameMismatch {
        /// The snapshot.
        path: PathBuf,
        /// The sequence number in the name.
        name_seq: u64,
        /// The sequence number in the header.
        header_seq: u64,
    },
    /// The file is larger than `snapshot_bytes_max` allows; it is not read.
    TooLarge {
        /// The snapshot.
        path: PathBuf,
        /// Its size.
        file_bytes: u64,
        /// The payload limit.
        limit: u64,
    },
    /// The checksum is valid but the state does not decode: written by an
    /// incompatible version.
    Undecodable {
        /// The snapshot.
        path: PathBuf,
        /// The decoder's complaint.
        source: CodecError,
    },
    /// The state was written with a schema version newer than this build
    /// knows: a newer version of the program wrote to this store.
    NewerSchema {
        /// The snapshot.
        path: PathBuf,
        /// The state's schema version.
        found: u32,
        /// The newest schema version this build reads.
        known: u8,
    },
    /// The state was written with an older schema version that the state
    /// machine does not upcast (see `StateMachine::upcast_state`): the
    /// snapshot is passed over and the state rebuilt from the log. Not damage.
    OlderSchema {
        /// The snapshot.
        path: PathBuf,
        /// The state's schema version.
        found: u32,
        /// The schema version this build writes.
        known: u8,
    },
    /// Encoding the state panicked (the state's `Serialize`); the snapshot
    /// was not written. The log is unaffected.
    Panicked {
        /// The snapshot being written.
        path: PathBuf,
        /// The panic's message.
        message: String,
    },
    /// The state could not be encoded (for example it exceeds the size limit).
    Unencodable {
        /// The snapshot being written.
        path: PathBuf,
        /// The encoder's complaint.
        source: CodecError,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io { op, path, source } => write!(f, "{op} failed on {}: {source}", path.display()),
            SnapshotError::Damaged { path, problem } => write!(f, "snapshot {} is damaged: {problem}", path.display()),
            SnapshotError::Foreign { path, expected, found } => {
                write!(f, "snapshot {} belongs to store {found}, not to this store {expected}", path.display())
            }
            SnapshotError::NameMismatch { path, name_seq, header_seq } => write!(
                f,
                "snapshot {} is named for sequence number {name_seq} but its header says {header_seq}",
                path.display()
            ),
            SnapshotError::TooLarge { path, file_bytes, limit } => write!(
                f,
                "snapshot {} is {file_bytes} bytes, over the snapshot limit of {limit} payload bytes",
                path.display()
            ),
            SnapshotError::Undecodable { path, source } => {
                write!(f, "snapshot {} does not decode: {source}", path.display())
            }
            SnapshotError::NewerSchema { path, found, known } => write!(
                f,
                "snapshot {} was written by a newer version: schema {found}, this build reads up to {known}",
                path.display()
            ),
            SnapshotError::OlderSchema { path, found, known } => write!(
                f,
                "snapshot {} holds a schema {found} state, which this build (schema {known}) rebuilds from the log",
                path.display()
            ),
            SnapshotError::Panicked { path, message } => {
                write!(f, "encoding the state into snapshot {} panicked: {message}", path.display())
            }
            SnapshotError::Unencodable { path, source } => {
                write!(f, "state could not be encoded into snapshot {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io { source, .. } => Some(source),
            SnapshotError::Undecodable { source, .. } | SnapshotError::Unencodable { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(crate) fn io_err<'p>(op: &'static str, path: &'p std::path::Path) -> impl FnOnce(io::Error) -> SnapshotError + 'p {
    move |source| SnapshotError::Io { op, path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::snapshot::FramingProblem;

    /// Every message names the snapshot; the I/O and codec causes are the
    /// error's source, so a caller can walk the chain.
    #[test]
    fn every_snapshot_error_names_its_file_and_keeps_its_cause() {
        let path = PathBuf::from("/store/snapshot-00000000000000000007.snap");
        let codec = || crate::codec::CodecError::unsupported_version(9);
        let cases: Vec<(SnapshotError, &str, bool)> = vec![
            (
                SnapshotError::Io { op: "map", path: path.clone(), source: io::Error::other("disk gone") },
                "map failed",
                true,
            ),
            (SnapshotError::Damaged { path: path.clone(), problem: FramingProblem::BadMagic }, "bad magic", false),
            (
                SnapshotError::Foreign { path: path.clone(), expected: StoreId(1), found: StoreId(2) },
                "belongs to store",
                false,
            ),
            (SnapshotError::NameMismatch { path: path.clone(), name_seq: 7, header_seq: 8 }, "header says 8", false),
            (SnapshotError::TooLarge { path: path.clone(), file_bytes: 100, limit: 10 }, "100 bytes", false),
            (SnapshotError::Undecodable { path: path.clone(), source: codec() }, "does not decode", true),
            (SnapshotError::Panicked { path: path.clone(), message: "boom".into() }, "panicked: boom", false),
            (SnapshotError::Unencodable { path: path.clone(), source: codec() }, "could not be encoded", true),
        ];
        for (err, says, has_source) in cases {
            let text = err.to_string();
            assert!(text.contains(path.to_str().unwrap()) && text.contains(says), "{text}");
            assert_eq!(err.source().is_some(), has_source, "{text}");
        }
    }
}
