//! The byte layout of a snapshot file.

use std::fmt;

use crate::clock::Timestamp;
use crate::identity::{le_u32, le_u64, StoreId};

/// Bytes in a snapshot header.
pub const SNAPSHOT_HEADER_BYTES: usize = 64;
/// Bytes in a snapshot trailer.
pub const SNAPSHOT_TRAILER_BYTES: usize = 24;
/// The snapshot format version this code writes. It also reads version 1,
/// which had no schema field: its states are schema version 1.
pub const SNAPSHOT_VERSION: u32 = 2;
const MAGIC: [u8; 8] = *b"ELBSSNAP";
const END_MAGIC: [u8; 8] = *b"ELBSEND\0";

// Format: header | payload | trailer
// header (64 bytes): { magic: [u8; 8] = "ELBSSNAP" | version: u32 | header_bytes: u32 = 64
//                    | store_id: u128 | seq: u64 | time_ns: u64 | schema: u32 | reserved: [u8; 8] | crc: u32 }
//   schema = the StateMachine::SCHEMA_VERSION of the state (version 2; in version 1
//   these bytes were reserved, and the state is schema 1).
//   crc = CRC32 of header bytes 0..60.
// payload: the state, bincode 1 wire format.
// trailer (24 bytes): { payload_bytes: u64 | payload_crc: u32 | trailer_crc: u32 | end_magic: [u8; 8] = "ELBSEND\0" }
//   payload_crc = CRC32 of the payload; trailer_crc = CRC32 of trailer bytes 0..12.
// The payload's length and checksum sit in a trailer so the state can be
// streamed to disk without being held in memory first.

/// The parsed header of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The store it belongs to.
    pub store_id: StoreId,
    /// The sequence number of the last transaction folded into it.
    pub seq: u64,
    /// That transaction's commit timestamp.
    pub time: Timestamp,
    /// The schema version the state was written with.
    pub schema: u32,
}

/// Why a snapshot's framing (header or trailer) is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingProblem {
    /// The file is shorter than a header and a trailer.
    Truncated {
        /// Bytes in the file.
        file_bytes: u64,
    },
    /// The header's magic bytes are wrong.
    BadMagic,
    /// The header's checksum does not match.
    HeaderChecksumMismatch,
    /// A version this code cannot read.
    UnsupportedVersion(u32),
    /// The trailer's magic bytes or checksum are wrong: the file was not
    /// written to the end.
    BadTrailer,
    /// The trailer's payload length disagrees with the file's size.
    LengthMismatch {
        /// The length in the trailer.
        declared: u64,
        /// The length the file's size implies.
        actual: u64,
    },
    /// The payload's checksum does not match.
    PayloadChecksumMismatch {
        /// The checksum in the trailer.
        stored: u32,
        /// The checksum of the payload.
        computed: u32,
    },
}

impl fmt::Display for FramingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingProblem::Truncated { file_bytes } => write!(f, "file of {file_bytes} bytes is too short"),
            FramingProblem::BadMagic => write!(f, "bad magic bytes"),
            FramingProblem::HeaderChecksumMismatch => write!(f, "header checksum mismatch"),
            FramingProblem::UnsupportedVersion(v) => write!(f, "unsupported snapshot format version {v}"),
            FramingProblem::BadTrailer => write!(f, "missing or damaged trailer"),
            FramingProblem::LengthMismatch { declared, actual } => {
                write!(f, "trailer declares {declared} payload bytes but the file holds {actual}")
            }
            FramingProblem::PayloadChecksumMismatch { stored, computed } => {
                write!(f, "payload checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
        }
    }
}

impl SnapshotHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_BYTES] {
        let mut out = [0u8; SNAPSHOT_HEADER_BYTES];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(SNAPSHOT_HEADER_BYTES as u32).to_le_bytes());
        out[16..32].copy_from_slice(&self.store_id.0.to_le_bytes());
        out[32..40].copy_from_slice(&self.seq.to_le_bytes());
        out[40..48].copy_from_slice(&self.time.as_nanos().to_le_bytes());
        out[48..52].copy_from_slice(&self.schema.to_le_bytes());
        let crc = crc32fast::hash(&out[0..60]);
        out[60..64].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses and checks only the header, from the first bytes of a file: for
    /// listing snapshots without reading them whole.
    pub fn decode(bytes: &[u8]) -> Result<SnapshotHeader, FramingProblem> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(FramingProblem::Truncated { file_bytes: bytes.len() as u64 });
        }
        if bytes[0..8] != MAGIC {
            return Err(FramingProblem::BadMagic);
        }
        if crc32fast::hash(&bytes[0..60]) != le_u32(&bytes[60..64]) {
            return Err(FramingProblem::HeaderChecksumMismatch);
        }
        let version = le_u32(&bytes[8..12]);
        let schema = match version {
            1 => 1,
            SNAPSHOT_VERSION => le_u32(&bytes[48..52]),
            _ => return Err(FramingProblem::UnsupportedVersion(version)),
        };
        if le_u32(&bytes[12..16]) != SNAPSHOT_HEADER_BYTES as u32 {
            return Err(FramingProblem::UnsupportedVersion(version));
        }
        Ok(SnapshotHeader {
            store_id: StoreId(u128::from_le_bytes(bytes[16..32].try_into().expect("16 bytes"))),
            seq: le_u64(&bytes[32..40]),
            time: Timestamp(le_u64(&bytes[40..48])),
            schema,
        })
    }

    /// Checks a whole snapshot file's framing and payload checksum; returns the
    /// header and the payload.
    pub fn check(bytes: &[u8]) -> Result<(SnapshotHeader, &[u8]), FramingProblem> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES {
            return Err(FramingProblem::Truncated { file_bytes: bytes.len() as u64 });
        }
        let header = SnapshotHeader::decode(bytes)?;
        let trailer = &bytes[bytes.len() - SNAPSHOT_TRAILER_BYTES..];
        if trailer[16..24] != END_MAGIC || crc32fast::hash(&trailer[0..12]) != le_u32(&trailer[12..16]) {
            return Err(FramingProblem::BadTrailer);
        }
        let declared = le_u64(&trailer[0..8]);
        let actual = (bytes.len() - SNAPSHOT_HEADER_BYTES - SNAPSHOT_TRAILER_BYTES) as u64;
        if declared != actual {
            return Err(FramingProblem::LengthMismatch { declared, actual });
        }
        let payload = &bytes[SNAPSHOT_HEADER_BYTES..bytes.len() - SNAPSHOT_TRAILER_BYTES];
        let stored = le_u32(&trailer[8..12]);
        let computed = payload_checksum(payload);
        if stored != computed {
            return Err(FramingProblem::PayloadChecksumMismatch { stored, computed });
        }
        Ok((header, payload))
    }
}

/// A payload this large has its checksum taken in two halves, the back one
/// on a second thread, and the two combined: a snapshot's load reads it
/// on both cores (BENCHMARKS.md, "Time travel on both cores").
const PARALLEL_CHECKSUM_BYTES: usize = 8 << 20;

/// The CRC-32 of `payload`, as `crc32fast::hash` gives it.
fn payload_checksum(payload: &[u8]) -> u32 {
    if payload.len() < PARALLEL_CHECKSUM_BYTES {
        return crc32fast::hash(payload);
    }
    let (front, back) = payload.split_at(payload.len() / 2);
    std::thread::scope(|scope| {
        let back = scope.spawn(|| {
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(back);
            hasher
        });
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(front);
        hasher.combine(&back.join().expect("a checksum does not panic"));
        hasher.finalize()
    })
}

/// The trailer's bytes for a payload of `payload_bytes` with checksum `payload_crc`.
pub fn encode_trailer(payload_bytes: u64, payload_crc: u32) -> [u8; SNAPSHOT_TRAILER_BYTES] {
    let mut out = [0u8; SNAPSHOT_TRAILER_BYTES];
    out[0..8].copy_from_slice(&payload_bytes.to_le_bytes());
    out[8..12].copy_from_slice(&payload_crc.to_le_bytes());
    let crc = crc32fast::hash(&out[0..12]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    out[16..24].copy_from_slice(&END_MAGIC);
    out
}

const PREFIX: &str = "snapshot-";
const SUFFIX: &str = ".snap";

/// The file name of the snapshot at `seq`, zero-padded so names sort.
pub fn snapshot_file_name(seq: u64) -> String {
    format!("{PREFIX}{seq:020}{SUFFIX}")
}

/// The sequence number in a snapshot file name, if it is one.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_payload_s_checksum_taken_in_halves_is_the_whole_s() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let bytes: Vec<u8> = (0..PARALLEL_CHECKSUM_BYTES + 4097)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for len in [PARALLEL_CHECKSUM_BYTES - 1, PARALLEL_CHECKSUM_BYTES, PARALLEL_CHECKSUM_BYTES + 4097] {
            assert_eq!(payload_checksum(&bytes[..len]), crc32fast::hash(&bytes[..len]), "{len} bytes");
        }
    }

    fn file(payload: &[u8]) -> Vec<u8> {
        let header = SnapshotHeader { store_id: StoreId(7), seq: 12, time: Timestamp(99), schema: 1 };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(payload);
        out.extend_from_slice(&encode_trailer(payload.len() as u64, crc32fast::hash(payload)));
        out
    }

    #[test]
    fn snapshot_framing_round_trips() {
        let bytes = file(b"state bytes");
        let (header, payload) = SnapshotHeader::check(&bytes).unwrap();
        assert_eq!((header.seq, header.time, payload), (12, Timestamp(99), &b"state bytes"[..]));
    }

    #[test]
    fn every_bit_flip_in_a_snapshot_file_is_detected() {
        let bytes = file(b"some state");
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(SnapshotHeader::check(&damaged).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn an_empty_payload_is_a_whole_snapshot_and_anything_shorter_is_truncated() {
        let bytes = file(b"");
        assert_eq!(bytes.len(), SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES);
        assert_eq!(SnapshotHeader::check(&bytes).map(|(_, payload)| payload.len()), Ok(0));
        // A whole header and part of a trailer: too short, whatever the bytes.
        for len in 0..bytes.len() {
            assert_eq!(
                SnapshotHeader::check(&bytes[..len]),
                Err(FramingProblem::Truncated { file_bytes: len as u64 }),
                "length {len}"
            );
        }
    }

    #[test]
    fn truncation_anywhere_is_detected() {
        let bytes = file(b"some state");
        for len in 0..bytes.len() {
            assert!(SnapshotHeader::check(&bytes[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn a_header_of_another_version_is_refused_even_with_a_valid_checksum() {
        let header = SnapshotHeader { store_id: StoreId(7), seq: 12, time: Timestamp(99), schema: 4 };
        let reseal = |edit: &dyn Fn(&mut [u8; SNAPSHOT_HEADER_BYTES])| {
            let mut bytes = header.encode();
            edit(&mut bytes);
            let crc = crc32fast::hash(&bytes[0..60]);
            bytes[60..64].copy_from_slice(&crc.to_le_bytes());
            SnapshotHeader::decode(&bytes)
        };
        assert_eq!(reseal(&|_| ()), Ok(header));
        // Version 1 had no schema field: its states are schema 1.
        assert_eq!(
            reseal(&|b| b[8..12].copy_from_slice(&1u32.to_le_bytes())),
            Ok(SnapshotHeader { schema: 1, ..header })
        );
        assert_eq!(
            reseal(&|b| b[8..12].copy_from_slice(&3u32.to_le_bytes())),
            Err(FramingProblem::UnsupportedVersion(3))
        );
        assert_eq!(
            reseal(&|b| b[8..12].copy_from_slice(&0u32.to_le_bytes())),
            Err(FramingProblem::UnsupportedVersion(0))
        );
        // Another header size is another layout, whatever the version says.
        assert_eq!(
            reseal(&|b| b[12..16].copy_from_slice(&65u32.to_le_bytes())),
            Err(FramingProblem::UnsupportedVersion(2))
        );
        assert_eq!(
            SnapshotHeader::decode(&header.encode()[..SNAPSHOT_HEADER_BYTES - 1]),
            Err(FramingProblem::Truncated { file_bytes: SNAPSHOT_HEADER_BYTES as u64 - 1 })
        );
    }

    #[test]
    fn names_sort_and_parse() {
        assert_eq!(snapshot_file_name(5), "snapshot-00000000000000000005.snap");
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(123)), Some(123));
        assert_eq!(parse_snapshot_file_name("snapshot-5.snap"), None);
    }
}
