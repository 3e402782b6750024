//! One record of the log: a frame around one transaction's payload.
//!
//! The frame is a fixed little-endian header written by hand; the payload is
//! opaque bytes to this layer.

use std::fmt;

use crate::clock::Timestamp;
use crate::identity::{le_u32, le_u64};

/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: usize = 24;

// Format: { crc: u32 | payload_bytes: u32 | seq: u64 | time_ns: u64 | payload: [u8; payload_bytes] }
// crc = CRC32 of bytes 4..24+payload_bytes: the length, sequence number,
// timestamp and payload. A frame with payload_bytes = 0 or seq = 0 is never
// valid, so a zero-filled region can never parse as a record.

/// A decoded frame borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The transaction's sequence number.
    pub seq: u64,
    /// Its commit timestamp.
    pub time: Timestamp,
    /// The opaque payload.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Bytes the frame occupies on disk.
    pub fn encoded_bytes(&self) -> usize {
        FRAME_HEADER_BYTES + self.payload.len()
    }
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameProblem {
    /// Fewer bytes remain than a header, or than the header's payload length.
    Truncated {
        /// Bytes available from the frame's start.
        available: usize,
        /// Bytes the frame needs.
        needed: usize,
    },
    /// The payload length is zero.
    ZeroLength,
    /// The sequence number is zero.
    ZeroSequence,
    /// The payload length is over the configured record limit.
    TooLarge {
        /// The length in the header.
        payload_bytes: u32,
        /// The limit.
        limit: u32,
    },
    /// The checksum does not match.
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::Truncated { available, needed } => {
                write!(f, "truncated frame: {available} bytes available, {needed} needed")
            }
            FrameProblem::ZeroLength => write!(f, "frame with zero payload length"),
            FrameProblem::ZeroSequence => write!(f, "frame with sequence number zero"),
            FrameProblem::TooLarge { payload_bytes, limit } => {
                write!(f, "frame payload of {payload_bytes} bytes exceeds the limit of {limit}")
            }
            FrameProblem::ChecksumMismatch { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
        }
    }
}

/// Appends a frame to `out`. The payload is written by `write_payload`
/// directly into `out`, so encoding a record needs no buffer of its own.
/// On error `out` is left as it was.
pub fn append_frame<E>(
    out: &mut Vec<u8>,
    seq: u64,
    time: Timestamp,
    payload_bytes_max: u32,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    too_large: impl FnOnce(usize) -> E,
) -> Result<usize, E> {
    assert!(seq > 0, "sequence numbers start at 1");
    let start = out.len();
    out.resize(start + FRAME_HEADER_BYTES, 0);
    if let Err(err) = write_payload(out) {
        out.truncate(start);
        return Err(err);
    }
    let payload_bytes = out.len() - start - FRAME_HEADER_BYTES;
    if payload_bytes == 0 || payload_bytes > payload_bytes_max as usize {
        out.truncate(start);
        return Err(too_large(payload_bytes));
    }
    let header = &mut out[start..start + FRAME_HEADER_BYTES];
    header[4..8].copy_from_slice(&(payload_bytes as u32).to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..24].copy_from_slice(&time.as_nanos().to_le_bytes());
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out.len() - start)
}

/// Decodes the frame at the start of `bytes`.
pub fn decode_frame(bytes: &[u8], payload_bytes_max: u32) -> Result<Frame<'_>, FrameProblem> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(FrameProblem::Truncated { available: bytes.len(), needed: FRAME_HEADER_BYTES });
    }
    let stored = le_u32(&bytes[0..4]);
    let payload_bytes = le_u32(&bytes[4..8]);
    let seq = le_u64(&bytes[8..16]);
    let time = Timestamp(le_u64(&bytes[16..24]));
    if payload_bytes == 0 {
        return Err(FrameProblem::ZeroLength);
    }
    if payload_bytes > payload_bytes_max {
        return Err(FrameProblem::TooLarge { payload_bytes, limit: payload_bytes_max });
    }
    let needed = FRAME_HEADER_BYTES + payload_bytes as usize;
    if bytes.len() < needed {
        return Err(FrameProblem::Truncated { available: bytes.len(), needed });
    }
    let computed = crc32fast::hash(&bytes[4..needed]);
    if computed != stored {
        return Err(FrameProblem::ChecksumMismatch { stored, computed });
    }
    if seq == 0 {
        return Err(FrameProblem::ZeroSequence);
    }
    Ok(Frame { seq, time, payload: &bytes[FRAME_HEADER_BYTES..needed] })
}

/// Searches `bytes` from `from` on for any valid frame whose sequence number
/// is at least `seq_min`, returning its offset. Used to tell a torn tail (no
/// valid frame after the damage) from damage in the middle of the log.
pub fn find_valid_frame(bytes: &[u8], from: usize, seq_min: u64, payload_bytes_max: u32) -> Option<usize> {
    let last_start = bytes.len().checked_sub(FRAME_HEADER_BYTES + 1)?;
    for offset in from..=last_start {
        let seq = le_u64(&bytes[offset + 8..offset + 16]);
        // Every record between the damage (just before `from`) and this offset
        // took at least FRAME_HEADER_BYTES + 1 bytes, so a real frame here
        // cannot carry a sequence number beyond this bound. The cheap check
        // skips almost every offset before any CRC is computed.
        let seq_bound = seq_min.saturating_add(((offset + 1 - from) / (FRAME_HEADER_BYTES + 1)) as u64 + 1);
        if seq < seq_min || seq > seq_bound {
            continue;
        }
        if decode_frame(&bytes[offset..], payload_bytes_max).is_ok() {
            return Some(offset);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        append_frame(
            &mut out,
            seq,
            Timestamp(seq * 10),
            1024,
            |o| {
                o.extend_from_slice(payload);
                Ok::<(), ()>(())
            },
            |_| (),
        )
        .unwrap();
        out
    }

    #[test]
    fn frame_layout_is_fixed_little_endian() {
        let bytes = frame(7, b"abc");
        assert_eq!(bytes.len(), 27);
        assert_eq!(&bytes[4..8], &[3, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &[70, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[24..], b"abc");
        assert_eq!(le_u32(&bytes[0..4]), crc32fast::hash(&bytes[4..]));
        let decoded = decode_frame(&bytes, 1024).unwrap();
        assert_eq!((decoded.seq, decoded.time, decoded.payload), (7, Timestamp(70), &b"abc"[..]));
    }

    #[test]
    fn zero_filled_frame_is_never_valid() {
        assert_eq!(decode_frame(&[0; 64], 1024), Err(FrameProblem::ZeroLength));
    }

    #[test]
    fn bit_flip_in_frame_is_detected() {
        let bytes = frame(3, b"payload");
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&damaged, 1024).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn oversized_length_is_refused_before_reading_the_payload() {
        let mut bytes = frame(1, b"x");
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&bytes, 1024), Err(FrameProblem::TooLarge { payload_bytes: u32::MAX, limit: 1024 }));
    }

    #[test]
    fn finds_a_valid_frame_after_garbage() {
        let mut bytes = vec![0xAB; 40];
        let at = bytes.len();
        bytes.extend(frame(9, b"later"));
        assert_eq!(find_valid_frame(&bytes, 0, 8, 1024), Some(at));
        assert_eq!(find_valid_frame(&bytes, 0, 10, 1024), None);
        // Forty bytes of damage can hide at most one record, so sequence number
        // 9 cannot follow 5 there: garbage that happens to checksum would need
        // an impossible sequence number.
        assert_eq!(find_valid_frame(&bytes, 0, 5, 1024), None);
        assert_eq!(find_valid_frame(&bytes, at + 1, 5, 1024), None);
    }
}
