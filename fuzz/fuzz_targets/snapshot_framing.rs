//! Snapshot framing checks never panic, and an accepted file's payload is
//! exactly the bytes between header and trailer.
#![no_main]

use elbstore::{SnapshotHeader, SNAPSHOT_HEADER_BYTES, SNAPSHOT_TRAILER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_header, payload)) = SnapshotHeader::check(data) {
        assert_eq!(payload.len() + SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES, data.len());
    }
});
