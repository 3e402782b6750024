//! The record frame decoder never panics and never accepts a frame whose
//! checksum, length or sequence number is invalid.
#![no_main]

use elbstore::{decode_frame, FRAME_HEADER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limit = 1 << 16;
    if let Ok(frame) = decode_frame(data, limit) {
        assert!(frame.seq > 0);
        assert!(!frame.payload.is_empty() && frame.payload.len() <= limit as usize);
        assert!(frame.encoded_bytes() <= data.len());
        assert_eq!(frame.encoded_bytes(), FRAME_HEADER_BYTES + frame.payload.len());
    }
});
