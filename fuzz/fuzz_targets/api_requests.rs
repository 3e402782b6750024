//! Fuzz target: see `elbstore::fuzzing::api_requests` for the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    elbstore::fuzzing::api_requests(data);
});
