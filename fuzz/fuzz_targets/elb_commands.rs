//! Fuzz target: see `elbstore::fuzzing::elb_commands` for the invariants it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| elbstore::fuzzing::elb_commands(data));
