//! Errors of the store.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::codec::CodecError;
use crate::identity::IdentityProblem;
use crate::snapshot::SnapshotError;
use crate::wal::WalError;

/// The crate's `Result`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the store. Messages name the file, offset, sequence number or
/// field involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The write-ahead log failed or is damaged.
    Wal(WalError),
    /// Snapshot loading or writing failed.
    Snapshot(SnapshotError),
    /// A file operation outside the log and snapshots failed.
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another process holds the store's write lock.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The directory is not a store and this open may not create one.
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// Why it is not one.
        reason: &'static str,
    },
    /// The store's `IDENTITY` file is damaged.
    BadIdentity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: IdentityProblem,
    },
    /// The store is not the one the caller named.
    WrongStore {
        /// The store's directory.
        path: PathBuf,
        /// The name the caller expected.
        expected_name: String,
        /// The environment the caller expected.
        expected_environment: String,
        /// The store's identity.
        found: Box<crate::identity::Identity>,
    },
    /// The handle was opened read-only.
    ReadOnly {
        /// The store's directory.
        dir: PathBuf,
    },
    /// An earlier write or fsync failed, or code on the commit path panicked;
    /// no later write can succeed on this handle. Reopen the store to recover
    /// every acknowledged commit.
    Poisoned {
        /// The failure that poisoned the store.
        cause: Arc<Poison>,
    },
    /// A transaction with no events.
    EmptyTransaction,
    /// The last commit's timestamp is the largest one there is: no later
    /// commit can have a strictly greater one.
    TimeExhausted {
        /// The last commit's timestamp.
        last: crate::clock::Timestamp,
    },
    /// The log holds the largest sequence number a commit may have.
    SequenceExhausted {
        /// The last sequence number.
        last: u64,
    },
    /// A transaction without an actor or a reason.
    MissingAttribution {
        /// `actor` or `reason`.
        field: &'static str,
    },
    /// A metadata field is longer than allowed.
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// A transaction marked as the revert of a transaction that is not
    /// before it (sequence number 0, or its own or a later one).
    RevertsNotEarlier {
        /// The sequence number it would have had.
        seq: u64,
        /// The transaction it names.
        reverts: u64,
    },
    /// An encoded transaction exceeds the record limit.
    RecordTooLarge {
        /// The sequence number it would have had.
        seq: u64,
        /// Its encoded size (the limit plus one when encoding stopped at the limit).
        bytes: usize,
        /// The limit.
        limit: u32,
    },
    /// A transaction could not be encoded.
    Unencodable {
        /// The sequence number it would have had.
        seq: u64,
        /// The encoder's complaint.
        source: CodecError,
    },
    /// The newest usable snapshot is ahead of the end of the log: records it
    /// covers are missing from the log.
    LogBehindSnapshot {
        /// The snapshot.
        snapshot: PathBuf,
        /// Its sequence number.
        snapshot_seq: u64,
        /// The last sequence number in the log (0 when empty).
        log_last_seq: u64,
    },
    /// A point in history before the first transaction, after the last (in
    /// the future), or naming a transaction that does not exist.
    PointOutOfRange {
        /// The point asked for.
        point: super::Point,
        /// The first transaction's sequence number and time, if any.
        first: Option<(u64, crate::clock::Timestamp)>,
        /// The last transaction's sequence number and time, if any.
        last: Option<(u64, crate::clock::Timestamp)>,
    },
    /// A snapshot that loads but does not equal the replay of the log up to
    /// its sequence number.
    SnapshotMismatch {
        /// The snapshot.
        path: PathBuf,
        /// Its sequence number.
        seq: u64,
    },
    /// The last segment ends in a torn or damaged record (a writer's next open
    /// cuts it off and keeps it aside).
    TornTail {
        /// The segment.
        path: PathBuf,
        /// Where the last whole record ends.
        offset: u64,
        /// What is wrong with the bytes there.
        problem: crate::wal::FrameProblem,
    },
    /// A directory that already holds files, where a new store was asked
    /// for (a restore target, or [`Create::New`](crate::Create::New)).
    DirectoryNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// An option is out of range.
    InvalidOption {
        /// The option.
        name: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The log's first segment starts after sequence number 1: the segments
    /// before it were removed (the store itself never removes one), so the
    /// history cannot be replayed from the start.
    LogStartsLate {
        /// The first segment found.
        path: PathBuf,
        /// Its first sequence number.
        first_seq: u64,
    },
    /// A copy of a store being written (a replica's snapshot with the log
    /// through it) does not hold together: its log and snapshot disagree.
    CopyMismatch {
        /// The file of the copy that disagrees.
        path: PathBuf,
        /// How.
        problem: String,
    },
    /// The store was closed or dropped: its subscriptions end (a consumer
    /// resumes from `Subscription::next_seq` on the store reopened).
    Closed {
        /// The store's directory.
        dir: PathBuf,
    },
    /// An in-memory history index points at an event that is not the one it
    /// names: the log changed under a running store.
    IndexMismatch {
        /// The transaction the index named.
        seq: u64,
        /// The resource it was looked up for.
        key: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wal(err) => write!(f, "write-ahead log: {err}"),
            Error::Snapshot(err) => write!(f, "snapshot: {err}"),
            Error::Io { op, path, source } => write!(f, "{op} failed on {}: {source}", path.display()),
            Error::Locked { path } => {
                write!(f, "another process has the store open for writing (lock {} is held)", path.display())
            }
            Error::NotAStore { path, reason } => write!(f, "{} is not a store: {reason}", path.display()),
            Error::BadIdentity { path, problem } => {
                write!(f, "identity file {} is damaged: {problem}", path.display())
            }
            Error::WrongStore { path, expected_name, expected_environment, found } => write!(
                f,
                "store {} is {}/{} (id {}), not the expected {expected_name}/{expected_environment}; refusing to open it",
                path.display(),
                found.name,
                found.environment,
                found.id
            ),
            Error::ReadOnly { dir } => write!(f, "store {} is open read-only", dir.display()),
            Error::Poisoned { cause } => {
                write!(f, "store refuses writes after an earlier failure and must be reopened: {cause}")
            }
            Error::EmptyTransaction => write!(f, "transaction has no events"),
            Error::TimeExhausted { last } => {
                write!(f, "the last commit's timestamp {last} is the largest there is; no later commit can follow it")
            }
            Error::SequenceExhausted { last } => {
                write!(f, "the log ends at sequence number {last}, the largest a commit may have")
            }
            Error::MissingAttribution { field } => write!(f, "transaction has no {field}"),
            Error::FieldTooLong { field, bytes, limit } => {
                write!(f, "transaction {field} is {bytes} bytes long, over the limit of {limit}")
            }
            Error::RevertsNotEarlier { seq, reverts } => write!(
                f,
                "transaction {seq} is marked as the revert of transaction {reverts}, which is not an earlier transaction"
            ),
            Error::RecordTooLarge { seq, bytes, limit } => {
                write!(f, "transaction {seq} encodes to {bytes} bytes, over the record limit of {limit}")
            }
            Error::Unencodable { seq, source } => write!(f, "transaction {seq} could not be encoded: {source}"),
            Error::LogBehindSnapshot { snapshot, snapshot_seq, log_last_seq } => write!(
                f,
                "snapshot {} is at sequence number {snapshot_seq} but the log ends at {log_last_seq}",
                snapshot.display()
            ),
            Error::PointOutOfRange { point, first, last } => match (first, last) {
                (Some((first_seq, first_time)), Some((last_seq, last_time))) => write!(
                    f,
                    "point {point} is outside the history, which runs from transaction {first_seq} at {first_time} \
                     to transaction {last_seq} at {last_time}"
                ),
                _ => write!(f, "point {point} does not name a transaction in this store"),
            },
            Error::SnapshotMismatch { path, seq } => write!(
                f,
                "snapshot {} does not equal the replay of the log up to sequence number {seq}",
                path.display()
            ),
            Error::TornTail { path, offset, problem } => {
                write!(f, "the log ends in a torn record in {} at byte offset {offset}: {problem}", path.display())
            }
            Error::DirectoryNotEmpty { path } => {
                write!(f, "{} is not empty; a new store, restored or created, goes only into a new or empty directory", path.display())
            }
            Error::InvalidOption { name, problem } => write!(f, "option {name} {problem}"),
            Error::LogStartsLate { path, first_seq } => write!(
                f,
                "the log starts at sequence number {first_seq}, in {}: the segments before it were removed, so the \
                 history cannot be replayed from sequence number 1",
                path.display()
            ),
            Error::CopyMismatch { path, problem } => write!(f, "copying a store, {}: {problem}", path.display()),
            Error::Closed { dir } => write!(f, "the store in {} is closed", dir.display()),
            Error::IndexMismatch { seq, key } => {
                write!(f, "the history index names an event of {key} in transaction {seq}, which holds another there")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Wal(err) => Some(err),
            Error::Snapshot(err) => Some(err),
            Error::Io { source, .. } => Some(source),
            Error::Poisoned { cause } => Some(cause.as_ref()),
            Error::Unencodable { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Why a store refuses writes until it is reopened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Poison {
    /// A write or fsync of the log failed. It is never retried: the kernel may
    /// have dropped the unsynced pages, so a retry could report success for
    /// data that is gone.
    Io(WalError),
    /// Code on the commit path panicked: the caller's closure, the state
    /// machine's `apply` or `clone`, or an event's `Serialize`. The head state
    /// may be half-applied; the transaction was not written.
    Panic {
        /// The sequence number the transaction being committed would have had.
        seq: u64,
        /// The panic's message.
        message: String,
    },
}

impl Poison {
    /// The cause for a panic caught while committing transaction `seq`.
    pub(crate) fn panic(seq: u64, payload: &(dyn std::any::Any + Send)) -> Poison {
        Poison::Panic { seq, message: panic_message(payload) }
    }
}

/// The message a panic was raised with.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a payload that is not a string".to_owned())
}

impl fmt::Display for Poison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Poison::Io(err) => write!(f, "{err}"),
            Poison::Panic { seq, message } => write!(f, "a panic while committing transaction {seq}: {message}"),
        }
    }
}

impl std::error::Error for Poison {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Poison::Io(err) => Some(err),
            Poison::Panic { .. } => None,
        }
    }
}

impl From<WalError> for Error {
    fn from(err: WalError) -> Error {
        Error::Wal(err)
    }
}

impl From<SnapshotError> for Error {
    fn from(err: SnapshotError) -> Error {
        Error::Snapshot(err)
    }
}

pub(crate) fn io_err<'p>(op: &'static str, path: &'p std::path::Path) -> impl FnOnce(io::Error) -> Error + 'p {
    move |source| Error::Io { op, path: path.to_path_buf(), source }
}
