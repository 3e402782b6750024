//! Fuzz target: see `elbstore::fuzzing::open_directory` for the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| elbstore::fuzzing::open_directory(data));
