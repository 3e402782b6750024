//! The one place in the crate that uses `unsafe`: memory-mapping snapshots.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Deref;

/// The bytes of a whole file: memory-mapped from disk, or owned (simulated
/// file systems, empty files).
#[derive(Debug)]
pub enum FileBytes {
    /// A read-only memory map of an immutable file.
    Mapped(memmap2::Mmap),
    /// Bytes held in memory.
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `file` read-only.
    pub(crate) fn map(file: &File) -> io::Result<FileBytes> {
        if file.metadata()?.len() == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: a mapped file must not be modified or truncated while the map
        // lives, or reads through the map would change under us (or fault).
        // The store maps only snapshot files, which are written to a temporary
        // name, fsynced and then renamed into place; after the rename nothing
        // in the store writes to or truncates them, and retention only unlinks
        // them, which leaves an existing mapping intact. The bytes are treated
        // as untrusted input: the snapshot loader checks length and CRC32
        // before decoding, and decoding never trusts a length field beyond the
        // mapped size. Another process editing a snapshot in place is outside
        // this contract, as documented in docs/FORMAT.md.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(FileBytes::Mapped(map))
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Owned(bytes) => bytes,
        }
    }
}
