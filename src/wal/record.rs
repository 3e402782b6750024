//! One record of the log: a frame around one transaction's payload.
//!
//! The frame is a fixed little-endian header written by hand; the payload is
//! opaque bytes to this layer.

use std::fmt;

use crate::clock::Timestamp;
use crate::identity::{le_u32, le_u64};

/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: usize = 32;

// Format: { crc: u32 | payload_bytes: u32 | seq: u64 | time_ns: u64 | synced_seq: u64
//         | payload: [u8; payload_bytes] }
// crc = CRC32 of bytes 4..32+payload_bytes: the length, sequence number,
// timestamp, synced mark and payload. A frame with payload_bytes = 0 or
// seq = 0 is never valid, so a zero-filled region can never parse as a record;
// nor is seq = u64::MAX, so "the next record" always has a number.
// synced_seq: every record up to this sequence number was durable (fsynced)
// before this frame was written, so synced_seq < seq. Filled in when the frame
// is written, not when it is framed (see `seal_frames`): recovery uses it to
// tell damage in the synced region (an error) from a hole in the region that
// was never synced (cut like a torn tail).

/// A decoded frame borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The transaction's sequence number.
    pub seq: u64,
    /// Its commit timestamp.
    pub time: Timestamp,
    /// Every record up to this sequence number was durable before this frame
    /// was written.
    pub synced_seq: u64,
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
    /// The sequence number is zero or `u64::MAX`: a record's is 1 to
    /// `u64::MAX - 1`, so the next one always exists.
    SequenceOutOfRange {
        /// The sequence number.
        seq: u64,
    },
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
    /// The frame is whole and its checksum is valid, but its payload is over
    /// the configured record limit: a record written under a larger limit.
    OverLimit {
        /// The frame's sequence number.
        seq: u64,
        /// Its payload length.
        payload_bytes: u32,
        /// The limit.
        limit: u32,
    },
    /// Bytes of a record read on their own (an indexed event, or the
    /// metadata before it) no longer match the checksum taken of them when
    /// the whole record was read and its own checksum held.
    ChangedSinceIndexed {
        /// Which bytes, counted from the frame's start.
        bytes: std::ops::Range<u64>,
        /// Their checksum when the record was indexed.
        indexed: u32,
        /// Their checksum now.
        computed: u32,
    },
    /// The frame claims its own record (or a later one) was durable before it
    /// was written.
    SyncedAhead {
        /// The frame's sequence number.
        seq: u64,
        /// Its synced mark.
        synced_seq: u64,
    },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameProblem::Truncated { available, needed } => {
                write!(f, "truncated frame: {available} bytes available, {needed} needed")
            }
            FrameProblem::ZeroLength => write!(f, "frame with zero payload length"),
            FrameProblem::SequenceOutOfRange { seq } => write!(f, "frame with sequence number {seq}, out of range"),
            FrameProblem::TooLarge { payload_bytes, limit } => {
                write!(f, "frame payload of {payload_bytes} bytes exceeds the limit of {limit}")
            }
            FrameProblem::ChecksumMismatch { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
            FrameProblem::OverLimit { seq, payload_bytes, limit } => write!(
                f,
                "record of sequence number {seq} has a {payload_bytes}-byte payload, over the record limit of {limit}"
            ),
            FrameProblem::ChangedSinceIndexed { bytes, indexed, computed } => write!(
                f,
                "bytes {}..{} changed since the record was indexed: checksum {indexed:#010x} then, {computed:#010x} now",
                bytes.start, bytes.end
            ),
            FrameProblem::SyncedAhead { seq, synced_seq } => {
                write!(f, "frame of sequence number {seq} claims records through {synced_seq} were durable before it")
            }
        }
    }
}

/// The one record limit, applied the same way when a frame is written and
/// when it is read: the payload (its version byte included) may be at most
/// `payload_bytes_max` bytes.
fn over_limit(payload_bytes: usize, payload_bytes_max: u32) -> bool {
    payload_bytes > payload_bytes_max as usize
}

/// Appends a frame to `out`. The payload is written by `write_payload`
/// directly into `out`, so encoding a record needs no buffer of its own.
/// The checksum and the synced mark are left for [`seal_frames`], which runs
/// when the frame is written. On error `out` is left as it was.
pub fn append_frame<E>(
    out: &mut Vec<u8>,
    seq: u64,
    time: Timestamp,
    payload_bytes_max: u32,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    too_large: impl FnOnce(usize) -> E,
) -> Result<usize, E> {
    assert!(seq > 0 && seq < u64::MAX, "sequence numbers run from 1 to u64::MAX - 1");
    let start = out.len();
    out.resize(start + FRAME_HEADER_BYTES, 0);
    if let Err(err) = write_payload(out) {
        out.truncate(start);
        return Err(err);
    }
    let payload_bytes = out.len() - start - FRAME_HEADER_BYTES;
    if payload_bytes == 0 || over_limit(payload_bytes, payload_bytes_max) {
        out.truncate(start);
        return Err(too_large(payload_bytes));
    }
    let header = &mut out[start..start + FRAME_HEADER_BYTES];
    header[4..8].copy_from_slice(&(payload_bytes as u32).to_le_bytes());
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..24].copy_from_slice(&time.as_nanos().to_le_bytes());
    Ok(out.len() - start)
}

/// Completes the frames in `frames` (back to back, as [`append_frame`] left
/// them) just before they are written: sets each one's synced mark to
/// `synced_seq`, the last record durable now, and computes its checksum.
pub fn seal_frames(frames: &mut [u8], synced_seq: u64) {
    let mut offset = 0;
    while offset < frames.len() {
        let frame = &mut frames[offset..];
        let payload_bytes = le_u32(&frame[4..8]) as usize;
        let end = FRAME_HEADER_BYTES + payload_bytes;
        assert!(synced_seq < le_u64(&frame[8..16]), "a frame is sealed before its record is durable");
        frame[24..32].copy_from_slice(&synced_seq.to_le_bytes());
        let crc = crc32fast::hash(&frame[4..end]);
        frame[0..4].copy_from_slice(&crc.to_le_bytes());
        offset += end;
    }
}

/// Decodes the frame at the start of `bytes`. A frame that is whole and
/// valid but longer than `payload_bytes_max` is [`FrameProblem::OverLimit`]:
/// a record written under a larger limit, never damage.
pub fn decode_frame(bytes: &[u8], payload_bytes_max: u32) -> Result<Frame<'_>, FrameProblem> {
    match decode_any_length(bytes) {
        Ok(frame) if over_limit(frame.payload.len(), payload_bytes_max) => Err(FrameProblem::OverLimit {
            seq: frame.seq,
            payload_bytes: frame.payload.len() as u32,
            limit: payload_bytes_max,
        }),
        Ok(frame) => Ok(frame),
        Err(problem @ (FrameProblem::Truncated { .. } | FrameProblem::ChecksumMismatch { .. })) => {
            match bytes.get(4..8).map(le_u32) {
                Some(payload_bytes) if over_limit(payload_bytes as usize, payload_bytes_max) => {
                    Err(FrameProblem::TooLarge { payload_bytes, limit: payload_bytes_max })
                }
                _ => Err(problem),
            }
        }
        Err(problem) => Err(problem),
    }
}

/// Decodes a whole, valid frame of any length. Reads no byte beyond `bytes`,
/// so the length field can make it check at most the bytes it was given.
fn decode_any_length(bytes: &[u8]) -> Result<Frame<'_>, FrameProblem> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(FrameProblem::Truncated { available: bytes.len(), needed: FRAME_HEADER_BYTES });
    }
    let stored = le_u32(&bytes[0..4]);
    let payload_bytes = le_u32(&bytes[4..8]);
    let seq = le_u64(&bytes[8..16]);
    let time = Timestamp(le_u64(&bytes[16..24]));
    let synced_seq = le_u64(&bytes[24..32]);
    if payload_bytes == 0 {
        return Err(FrameProblem::ZeroLength);
    }
    let needed = FRAME_HEADER_BYTES + payload_bytes as usize;
    if bytes.len() < needed {
        return Err(FrameProblem::Truncated { available: bytes.len(), needed });
    }
    let computed = crc32fast::hash(&bytes[4..needed]);
    if computed != stored {
        return Err(FrameProblem::ChecksumMismatch { stored, computed });
    }
    if seq == 0 || seq == u64::MAX {
        return Err(FrameProblem::SequenceOutOfRange { seq });
    }
    if synced_seq >= seq {
        return Err(FrameProblem::SyncedAhead { seq, synced_seq });
    }
    Ok(Frame { seq, time, synced_seq, payload: &bytes[FRAME_HEADER_BYTES..needed] })
}

/// Searches `bytes` from `start` on, where record `seq_at_start` was to
/// begin, for a whole, valid frame (of any length) that can be a later
/// record: its offset. Used to look past damage.
pub fn find_valid_frame(bytes: &[u8], start: usize, seq_at_start: u64) -> Option<usize> {
    for offset in start..bytes.len() {
        let Some(seq) = bytes.get(offset + 8..offset + 16).map(le_u64) else { break };
        // Every record between `start` and this offset took at least
        // FRAME_HEADER_BYTES + 1 bytes, so a real frame here cannot carry a
        // sequence number past this bound. The cheap check skips almost every
        // offset before any CRC is computed, and makes garbage that happens
        // to checksum count only if its sequence number fits its place.
        let seq_max = seq_at_start.saturating_add(((offset - start) / (FRAME_HEADER_BYTES + 1)) as u64);
        if seq < seq_at_start || seq > seq_max {
            continue;
        }
        if decode_any_length(&bytes[offset..]).is_ok() {
            return Some(offset);
        }
    }
    None
}

/// What the valid frames after a damaged one say: how many there are, and
/// the highest synced mark among them (`None` when there are none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AfterDamage {
    pub frames: u64,
    pub synced_seq: Option<u64>,
}

/// Looks past damage at `damage`, where record `expected` was to begin:
/// every valid frame after it, in order.
pub(crate) fn after_damage(bytes: &[u8], damage: usize, expected: u64) -> AfterDamage {
    let mut found = AfterDamage::default();
    frames_after(bytes, damage, expected, |_, frame| {
        found.frames += 1;
        found.synced_seq = found.synced_seq.max(Some(frame.synced_seq));
    });
    found
}

/// Calls `visit` with the offset of every whole, valid frame (of any length)
/// found from `start` on, where record `seq_at_start` was to begin, in order:
/// each one must fit its place (see [`find_valid_frame`]), and the search goes
/// on after its end from the next sequence number.
pub(crate) fn frames_after(bytes: &[u8], start: usize, seq_at_start: u64, mut visit: impl FnMut(usize, &Frame<'_>)) {
    let (mut start, mut seq) = (start, seq_at_start);
    while let Some(offset) = find_valid_frame(bytes, start, seq) {
        let Ok(frame) = decode_any_length(&bytes[offset..]) else { break };
        visit(offset, &frame);
        start = offset + frame.encoded_bytes();
        seq = frame.seq.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, payload: &[u8]) -> Vec<u8> {
        sealed(seq, payload, seq - 1)
    }

    fn sealed(seq: u64, payload: &[u8], synced_seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        append_frame(
            &mut out,
            seq,
            Timestamp(seq.wrapping_mul(10)),
            1024,
            |o| {
                o.extend_from_slice(payload);
                Ok::<(), ()>(())
            },
            |_| (),
        )
        .unwrap();
        seal_frames(&mut out, synced_seq);
        out
    }

    #[test]
    fn frame_layout_is_fixed_little_endian() {
        let bytes = sealed(7, b"abc", 5);
        assert_eq!(bytes.len(), 35);
        assert_eq!(&bytes[4..8], &[3, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[16..24], &[70, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[24..32], &[5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[32..], b"abc");
        assert_eq!(le_u32(&bytes[0..4]), crc32fast::hash(&bytes[4..]));
        let decoded = decode_frame(&bytes, 1024).unwrap();
        assert_eq!(
            (decoded.seq, decoded.time, decoded.synced_seq, decoded.payload),
            (7, Timestamp(70), 5, &b"abc"[..])
        );
    }

    #[test]
    fn a_frame_cut_anywhere_says_how_many_bytes_it_needs() {
        let bytes = frame(3, b"payload");
        for len in 0..bytes.len() {
            let needed = if len < FRAME_HEADER_BYTES { FRAME_HEADER_BYTES } else { bytes.len() };
            assert_eq!(decode_frame(&bytes[..len], 1024), Err(FrameProblem::Truncated { available: len, needed }));
        }
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
    fn a_whole_valid_frame_over_the_limit_is_over_limit_not_damage() {
        let bytes = frame(3, &[7; 100]);
        assert_eq!(decode_frame(&bytes, 100).map(|f| f.payload.len()), Ok(100), "at the limit");
        assert_eq!(decode_frame(&bytes, 99), Err(FrameProblem::OverLimit { seq: 3, payload_bytes: 100, limit: 99 }));
        // Cut short or damaged, the same length is damage.
        assert_eq!(
            decode_frame(&bytes[..bytes.len() - 1], 99),
            Err(FrameProblem::TooLarge { payload_bytes: 100, limit: 99 })
        );
        assert_eq!(
            decode_frame(&bytes[..bytes.len() - 1], 100),
            Err(FrameProblem::Truncated { available: bytes.len() - 1, needed: bytes.len() })
        );
        let mut damaged = bytes.clone();
        damaged[40] ^= 1;
        assert!(matches!(decode_frame(&damaged, 99), Err(FrameProblem::TooLarge { .. })));
        assert!(matches!(decode_frame(&damaged, 100), Err(FrameProblem::ChecksumMismatch { .. })));
    }

    /// A minimal frame: a one-byte payload.
    fn minimal(seq: u64) -> Vec<u8> {
        let bytes = frame(seq, b"m");
        assert_eq!(bytes.len(), FRAME_HEADER_BYTES + 1);
        bytes
    }

    /// `prefix` bytes before `start`, `gap` bytes of zeros from `start`, then
    /// a valid frame of `seq`.
    fn after_gap(prefix: usize, gap: usize, seq: u64) -> Vec<u8> {
        let mut bytes = vec![0xAB; prefix];
        bytes.resize(prefix + gap, 0);
        bytes.extend(frame(seq, b"later"));
        bytes
    }

    #[test]
    fn a_frame_after_damage_counts_only_if_its_sequence_number_fits_its_place() {
        let (prefix, s) = (7, 20);
        // Right at the start: the record that was due there.
        assert_eq!(find_valid_frame(&after_gap(prefix, 0, s), prefix, s), Some(prefix));
        assert_eq!(find_valid_frame(&after_gap(prefix, 0, s + 1), prefix, s), None, "no room for a record before it");
        assert_eq!(find_valid_frame(&after_gap(prefix, 0, s - 1), prefix, s), None, "an earlier record");
        // After one minimal record's worth of bytes: one record may be missing.
        let one = FRAME_HEADER_BYTES + 1;
        assert_eq!(find_valid_frame(&after_gap(prefix, one, s + 1), prefix, s), Some(prefix + one));
        assert_eq!(find_valid_frame(&after_gap(prefix, one, s + 2), prefix, s), None);
        assert_eq!(find_valid_frame(&after_gap(prefix, one - 1, s + 1), prefix, s), None, "32 bytes hold no record");
        // 64 bytes hold one record, 66 hold two.
        assert_eq!(find_valid_frame(&after_gap(prefix, 2 * one - 2, s + 2), prefix, s), None);
        assert_eq!(find_valid_frame(&after_gap(prefix, 2 * one, s + 2), prefix, s), Some(prefix + 2 * one));
        // Garbage, then the real thing.
        let mut bytes = vec![0xAB; 40];
        bytes.extend(frame(9, b"later"));
        assert_eq!(find_valid_frame(&bytes, 0, 8), Some(40));
        assert_eq!(find_valid_frame(&bytes, 0, 10), None);
        assert_eq!(find_valid_frame(&bytes, 41, 8), None);
        assert_eq!(find_valid_frame(&bytes[..bytes.len() - 1], 0, 8), None, "a frame cut short is not whole");
    }

    #[test]
    fn sequence_numbers_zero_and_the_largest_are_never_valid() {
        for seq in [0, u64::MAX] {
            let mut bytes = frame(5, b"x");
            bytes[8..16].copy_from_slice(&seq.to_le_bytes());
            let crc = crc32fast::hash(&bytes[4..]);
            bytes[0..4].copy_from_slice(&crc.to_le_bytes());
            assert_eq!(decode_frame(&bytes, 1024), Err(FrameProblem::SequenceOutOfRange { seq }));
        }
        assert!(decode_frame(&frame(u64::MAX - 1, b"x"), 1024).is_ok());
    }

    #[test]
    fn a_frame_that_claims_itself_durable_is_not_valid() {
        let mut bytes = frame(4, b"x");
        bytes[24..32].copy_from_slice(&4u64.to_le_bytes());
        let crc = crc32fast::hash(&bytes[4..]);
        bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_frame(&bytes, 1024), Err(FrameProblem::SyncedAhead { seq: 4, synced_seq: 4 }));
        assert_eq!(decode_frame(&sealed(4, b"x", 3), 1024).map(|f| f.synced_seq), Ok(3));
    }

    #[test]
    fn sealing_marks_and_checksums_every_frame_of_a_group() {
        let mut group = Vec::new();
        for seq in 5..8 {
            append_frame(
                &mut group,
                seq,
                Timestamp(seq),
                1024,
                |o| {
                    o.extend_from_slice(&[seq as u8; 3]);
                    Ok::<_, ()>(())
                },
                |_| (),
            )
            .unwrap();
        }
        seal_frames(&mut group, 4);
        let mut offset = 0;
        for seq in 5..8 {
            let frame = decode_frame(&group[offset..], 1024).unwrap();
            assert_eq!((frame.seq, frame.synced_seq, frame.payload), (seq, 4, &[seq as u8; 3][..]));
            offset += frame.encoded_bytes();
        }
        assert_eq!(offset, group.len());
    }

    #[test]
    fn after_damage_counts_the_later_frames_and_their_highest_mark() {
        // Record 9 was due at 0; 50 bytes of zeros hold one record at most.
        let mut bytes = vec![0u8; 50];
        let later: Vec<u8> = [sealed(10, b"a", 7), sealed(11, b"bb", 8), sealed(12, b"c", 8)].concat();
        bytes.extend_from_slice(&later);
        assert_eq!(after_damage(&bytes, 0, 9), AfterDamage { frames: 3, synced_seq: Some(8) });
        assert_eq!(after_damage(&bytes, 0, 13), AfterDamage::default(), "no frame can be record 13 or later");
        assert_eq!(after_damage(&[0u8; 100], 0, 9), AfterDamage::default());
        // A frame after the later ones that is itself damaged ends the search.
        let mut cut = bytes.clone();
        cut.truncate(bytes.len() - 2);
        assert_eq!(after_damage(&cut, 0, 9), AfterDamage { frames: 2, synced_seq: Some(8) });
        // Damage the size of one minimal record, then frames back to back,
        // the first longer than the damage.
        let mut tight = vec![0xAB; FRAME_HEADER_BYTES + 1];
        tight.extend([frame(10, &[1; 100]), minimal(11), minimal(12)].concat());
        assert_eq!(after_damage(&tight, 0, 9), AfterDamage { frames: 3, synced_seq: Some(11) });
    }
}
