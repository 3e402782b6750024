//! The seam under every byte the store reads or writes; for tests, not for
//! services, which use the real file system (the default) without naming it.
//!
//! All file I/O goes through [`FileSystem`], so tests can swap the real file
//! system ([`RealFs`]) for a simulated one (`SimFs`, feature `testing`) that drops un-synced
//! data, tears writes and fails chosen calls. Nothing above this module
//! touches `std::fs`.

mod mmap;
mod real;
#[cfg(any(test, feature = "testing"))]
mod sim;

use std::any::Any;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use mmap::FileBytes;
pub use real::RealFs;
#[cfg(any(test, feature = "testing"))]
pub use sim::{CrashMode, FaultKind, FaultMode, SimFs, SIM_PAGE_BYTES};

/// An exclusive lock on a file, released when dropped.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// The file operations the store needs, and nothing more.
///
/// Paths are absolute or relative to the process working directory. Every
/// mutating call is one step a crash can interrupt; the store treats any error
/// from a mutating call as fatal for the open handle (see "poisoning" in
/// ARCHITECTURE.md).
pub trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names (not paths) of the regular files in `dir`, in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Whether `path` names an existing file or directory.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// The length of the file at `path` in bytes.
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    /// Reads the whole file.
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Reads up to `len` bytes starting at `offset`; fewer when the file ends first.
    fn read_range(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Like [`FileSystem::read_range`], appending to `buf` (whose memory a
    /// caller reading a file a piece at a time keeps from piece to piece).
    fn read_range_into(&self, path: &Path, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.extend_from_slice(&self.read_range(path, offset, len)?);
        Ok(())
    }
    /// `read_range` for each `(offset, len)` of `ranges`, in order, with the
    /// file opened once (the real file system's positioned reads: one system
    /// call a range, where `read_range` makes four).
    fn read_ranges(&self, path: &Path, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        ranges.iter().map(|&(offset, len)| self.read_range(path, offset, len)).collect()
    }
    /// `path` opened for positioned reads, for a caller that reads one file
    /// often and keeps it open across calls (an entity's history reading the
    /// log's segments); `None` when this file system has no such handle and
    /// every read goes through [`FileSystem::read_ranges`] (the default).
    fn open_reader(&self, _path: &Path) -> io::Result<Option<Arc<dyn ReadAt>>> {
        Ok(None)
    }
    /// A read-only view of a whole file that will not change while it is held.
    /// The real file system memory-maps it; callers must only use this on
    /// files that are immutable once renamed into place (snapshots).
    fn map_file(&self, path: &Path) -> io::Result<FileBytes>;
    /// Creates a new file for writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive advisory lock on `path`, creating the file if needed.
    /// Returns `Ok(None)` when another holder has it.
    fn try_lock_exclusive(&self, path: &Path) -> io::Result<Option<LockGuard>>;
}

/// A file opened for positioned reads ([`FileSystem::open_reader`]).
pub trait ReadAt: Send + Sync + fmt::Debug {
    /// `read_range` for each `(offset, len)` of `ranges`, in order, on this
    /// open file.
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>>;
}

/// A file opened for appending.
pub trait WritableFile: Send + fmt::Debug {
    /// Appends all of `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the file's data and length durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes; later appends go to the new end.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}
