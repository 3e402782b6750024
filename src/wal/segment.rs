//! Segment files: a fixed header followed by frames.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::clock::Timestamp;
use crate::identity::{le_u32, le_u64, StoreId};

/// Bytes in a segment header.
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// The segment format version this code writes and reads.
pub const SEGMENT_VERSION: u32 = 2;
const MAGIC: [u8; 8] = *b"ELBSWAL\0";

// Format: { magic: [u8; 8] = "ELBSWAL\0" | version: u32 | header_bytes: u32 = 64
//         | store_id: u128 | first_seq: u64 | created_ns: u64 | reserved: [u8; 12]
//         | crc: u32 }
// crc = CRC32 of bytes 0..60. Frames follow from byte 64.

/// The parsed header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The store the segment belongs to.
    pub store_id: StoreId,
    /// The sequence number of its first record.
    pub first_seq: u64,
    /// When it was created.
    pub created: Timestamp,
}

/// Why a segment header is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The file is shorter than a header.
    Truncated {
        /// Bytes in the file.
        file_bytes: u64,
    },
    /// The magic bytes are wrong.
    BadMagic,
    /// The checksum does not match.
    ChecksumMismatch,
    /// A version this code cannot read.
    UnsupportedVersion(u32),
    /// The first sequence number is zero.
    ZeroFirstSeq,
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::Truncated { file_bytes } => {
                write!(f, "file of {file_bytes} bytes is shorter than a {SEGMENT_HEADER_BYTES}-byte header")
            }
            HeaderProblem::BadMagic => write!(f, "bad magic bytes"),
            HeaderProblem::ChecksumMismatch => write!(f, "header checksum mismatch"),
            HeaderProblem::UnsupportedVersion(v) => write!(f, "unsupported segment format version {v}"),
            HeaderProblem::ZeroFirstSeq => write!(f, "first sequence number is zero"),
        }
    }
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        out[16..32].copy_from_slice(&self.store_id.0.to_le_bytes());
        out[32..40].copy_from_slice(&self.first_seq.to_le_bytes());
        out[40..48].copy_from_slice(&self.created.as_nanos().to_le_bytes());
        let crc = crc32fast::hash(&out[0..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a header from the start of a segment's bytes.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
        if bytes.len() < SEGMENT_HEADER_BYTES {
            return Err(HeaderProblem::Truncated { file_bytes: bytes.len() as u64 });
        }
        if bytes[0..8] != MAGIC {
            return Err(HeaderProblem::BadMagic);
        }
        if crc32fast::hash(&bytes[0..60]) != le_u32(&bytes[60..64]) {
            return Err(HeaderProblem::ChecksumMismatch);
        }
        let version = le_u32(&bytes[8..12]);
        if version != SEGMENT_VERSION || le_u32(&bytes[12..16]) != SEGMENT_HEADER_BYTES as u32 {
            return Err(HeaderProblem::UnsupportedVersion(version));
        }
        let first_seq = le_u64(&bytes[32..40]);
        if first_seq == 0 {
            return Err(HeaderProblem::ZeroFirstSeq);
        }
        Ok(SegmentHeader {
            store_id: StoreId(u128::from_le_bytes(bytes[16..32].try_into().expect("16 bytes"))),
            first_seq,
            created: Timestamp(le_u64(&bytes[40..48])),
        })
    }
}

const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";

/// The file name of the segment whose first record is `first_seq`:
/// zero-padded so names sort in sequence order.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// The first sequence number encoded in a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, in sequence order (by the first sequence number
/// in their names; other files are passed over).
pub(crate) fn list_segments(fs: &dyn crate::io::FileSystem, dir: &Path) -> std::io::Result<Vec<SegmentInfo>> {
    let mut segments: Vec<SegmentInfo> = fs
        .list_dir(dir)?
        .iter()
        .filter_map(|name| parse_segment_file_name(name).map(|seq| SegmentInfo::new(dir, seq)))
        .collect();
    segments.sort_by_key(|s| s.first_seq);
    Ok(segments)
}

/// A segment as listed on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its path.
    pub path: PathBuf,
    /// The sequence number of its first record.
    pub first_seq: u64,
}

impl SegmentInfo {
    pub(crate) fn new(dir: &Path, first_seq: u64) -> SegmentInfo {
        SegmentInfo { path: dir.join(segment_file_name(first_seq)), first_seq }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_every_bit_flip() {
        let header = SegmentHeader { store_id: StoreId(42), first_seq: 1001, created: Timestamp(5) };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for bit in 0..SEGMENT_HEADER_BYTES * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&damaged).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_header_of_another_version_or_size_is_refused_even_with_a_valid_checksum() {
        let header = SegmentHeader { store_id: StoreId(42), first_seq: 1001, created: Timestamp(5) };
        let reseal = |at: usize, value: u32| {
            let mut bytes = header.encode();
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
            let crc = crc32fast::hash(&bytes[0..60]);
            bytes[60..64].copy_from_slice(&crc.to_le_bytes());
            SegmentHeader::decode(&bytes)
        };
        assert_eq!(reseal(8, SEGMENT_VERSION), Ok(header));
        assert_eq!(reseal(8, 1), Err(HeaderProblem::UnsupportedVersion(1)));
        assert_eq!(reseal(8, 3), Err(HeaderProblem::UnsupportedVersion(3)));
        assert_eq!(reseal(12, 65), Err(HeaderProblem::UnsupportedVersion(SEGMENT_VERSION)));
        let mut zero_first = header.encode();
        zero_first[32..40].copy_from_slice(&0u64.to_le_bytes());
        let crc = crc32fast::hash(&zero_first[0..60]);
        zero_first[60..64].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(SegmentHeader::decode(&zero_first), Err(HeaderProblem::ZeroFirstSeq));
    }

    #[test]
    fn every_header_problem_says_what_is_wrong() {
        for (problem, says) in [
            (HeaderProblem::Truncated { file_bytes: 10 }, "10 bytes"),
            (HeaderProblem::BadMagic, "magic"),
            (HeaderProblem::ChecksumMismatch, "checksum"),
            (HeaderProblem::UnsupportedVersion(7), "version 7"),
            (HeaderProblem::ZeroFirstSeq, "zero"),
        ] {
            assert!(problem.to_string().contains(says), "{problem}");
        }
    }

    #[test]
    fn file_names_sort_by_sequence_and_parse_back() {
        assert_eq!(segment_file_name(42), "wal-00000000000000000042.log");
        assert_eq!(parse_segment_file_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert!(segment_file_name(9) < segment_file_name(10));
        for bad in ["wal-42.log", "wal-0000000000000000004x.log", "wal-00000000000000000042.log.tmp"] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
