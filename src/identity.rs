//! Who a store is: a random id, a name and an environment, fixed at creation.
//!
//! The id is written into every segment and snapshot header, so files of two
//! stores can never be mixed; the name and environment let a process say which
//! store it expects before it writes.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

use crate::clock::Timestamp;

/// A store's random 128-bit id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StoreId(pub u128);

impl StoreId {
    /// A fresh random id, seeded by the operating system (through the
    /// standard library's randomly keyed hasher), the time and the process id.
    pub fn random() -> StoreId {
        let mut halves = [0u64; 2];
        for (i, half) in halves.iter_mut().enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(crate::clock::Clock::now(&crate::clock::SystemClock).as_nanos());
            hasher.write_u32(std::process::id());
            hasher.write_usize(i);
            *half = hasher.finish();
        }
        StoreId((u128::from(halves[0]) << 64) | u128::from(halves[1]))
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The identity written into a store's `IDENTITY` file when it is created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The random id shared by every file of the store.
    pub id: StoreId,
    /// A human name, e.g. `us-east-1`.
    pub name: String,
    /// The environment, e.g. `production`.
    pub environment: String,
    /// When the store was created.
    pub created: Timestamp,
}

/// The longest name or environment, in bytes.
pub const IDENTITY_FIELD_BYTES_MAX: usize = 255;

const MAGIC: [u8; 8] = *b"ELBSIDNT";
const VERSION: u32 = 1;
const FIXED_BYTES: usize = 48;

/// Why an `IDENTITY` file could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityProblem {
    /// Shorter than its fixed part or its declared fields.
    Truncated,
    /// The magic bytes are wrong: not an identity file.
    BadMagic,
    /// Written by a newer format version.
    UnsupportedVersion(u32),
    /// The checksum does not match the contents.
    ChecksumMismatch,
    /// The name or environment is not UTF-8.
    NotUtf8,
}

impl fmt::Display for IdentityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityProblem::Truncated => write!(f, "file is truncated"),
            IdentityProblem::BadMagic => write!(f, "bad magic bytes"),
            IdentityProblem::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            IdentityProblem::ChecksumMismatch => write!(f, "checksum mismatch"),
            IdentityProblem::NotUtf8 => write!(f, "name or environment is not utf-8"),
        }
    }
}

impl Identity {
    // Format: { magic: [u8; 8] | version: u32 | name_bytes: u32 | environment_bytes: u32
    //         | reserved: u32 | id: u128 | created_ns: u64 | name | environment | crc: u32 }
    // crc = CRC32 of every byte before it.
    pub(crate) fn encode(&self) -> Vec<u8> {
        assert!(self.name.len() <= IDENTITY_FIELD_BYTES_MAX);
        assert!(self.environment.len() <= IDENTITY_FIELD_BYTES_MAX);
        let mut out = Vec::with_capacity(FIXED_BYTES + self.name.len() + self.environment.len() + 4);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.environment.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.id.0.to_le_bytes());
        out.extend_from_slice(&self.created.as_nanos().to_le_bytes());
        debug_assert_eq!(out.len(), FIXED_BYTES);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(self.environment.as_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Identity, IdentityProblem> {
        if bytes.len() < FIXED_BYTES + 4 {
            return Err(IdentityProblem::Truncated);
        }
        if bytes[0..8] != MAGIC {
            return Err(IdentityProblem::BadMagic);
        }
        let name_bytes = le_u32(&bytes[12..16]) as usize;
        let env_bytes = le_u32(&bytes[16..20]) as usize;
        if name_bytes > IDENTITY_FIELD_BYTES_MAX || env_bytes > IDENTITY_FIELD_BYTES_MAX {
            return Err(IdentityProblem::Truncated);
        }
        let total = FIXED_BYTES + name_bytes + env_bytes + 4;
        if bytes.len() != total {
            return Err(IdentityProblem::Truncated);
        }
        let stored = le_u32(&bytes[total - 4..]);
        if crc32fast::hash(&bytes[..total - 4]) != stored {
            return Err(IdentityProblem::ChecksumMismatch);
        }
        let version = le_u32(&bytes[8..12]);
        if version != VERSION {
            return Err(IdentityProblem::UnsupportedVersion(version));
        }
        let id = StoreId(u128::from_le_bytes(bytes[24..40].try_into().expect("16 bytes")));
        let created = Timestamp(u64::from_le_bytes(bytes[40..48].try_into().expect("8 bytes")));
        let name = &bytes[FIXED_BYTES..FIXED_BYTES + name_bytes];
        let environment = &bytes[FIXED_BYTES + name_bytes..FIXED_BYTES + name_bytes + env_bytes];
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| IdentityProblem::NotUtf8);
        Ok(Identity { id, name: text(name)?, environment: text(environment)?, created })
    }
}

pub(crate) fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
}

pub(crate) fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Identity {
        Identity {
            id: StoreId(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
            name: "us-east-1".into(),
            environment: "production".into(),
            created: Timestamp(1_356_380_640_000_000_000),
        }
    }

    #[test]
    fn identity_round_trips() {
        assert_eq!(Identity::decode(&sample().encode()), Ok(sample()));
    }

    #[test]
    fn every_bit_flip_in_identity_is_detected() {
        let bytes = sample().encode();
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(Identity::decode(&damaged).is_err(), "bit {bit} flip went unnoticed");
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(StoreId::random(), StoreId::random());
    }
}
