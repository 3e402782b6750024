//! Snapshots: the whole state at a sequence number, in one self-contained
//! file. Like the log, this layer knows nothing of what the state means; it
//! encodes any serializable value.

mod error;
mod file;
mod format;

pub use error::SnapshotError;
pub use file::SnapshotInfo;
pub use format::{FramingProblem, SnapshotHeader, SNAPSHOT_HEADER_BYTES, SNAPSHOT_TRAILER_BYTES};

pub(crate) use file::{list_snapshots, load_snapshot, load_snapshot_with, write_snapshot, Upcast};
pub(crate) use format::snapshot_file_name;
