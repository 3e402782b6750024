//! Fuzz target: see `elbstore::fuzzing::frame_decoder` for the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| elbstore::fuzzing::frame_decoder(data));
