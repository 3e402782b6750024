//! The only module that speaks bincode.
//!
//! Payloads use the bincode 1 wire format: fixed-width little-endian integers,
//! `u64` length prefixes for strings, sequences and maps, `u32` enum variant
//! indices. Decoding is bounded by an explicit byte limit, so a corrupt length
//! field can never make the decoder allocate more than the caller allows, and
//! trailing bytes are rejected.

use std::fmt;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a payload could not be encoded or decoded.
#[derive(Debug)]
pub struct CodecError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Bincode(bincode::Error),
    /// Written with a schema version newer than this build knows.
    NewerSchema {
        found: u32,
        known: u8,
    },
    /// Written with an older schema version that nothing upcasts.
    NoUpcaster {
        found: u32,
        known: u8,
    },
    /// An upcaster refused the old value.
    Upcast(String),
}

impl CodecError {
    fn bincode(inner: bincode::Error) -> CodecError {
        CodecError { kind: Kind::Bincode(inner) }
    }

    fn custom(message: String) -> CodecError {
        CodecError::bincode(Box::new(bincode::ErrorKind::Custom(message)))
    }

    /// A payload whose leading version byte this code does not know.
    pub(crate) fn unsupported_version(version: u8) -> CodecError {
        CodecError::custom(format!("unsupported payload version {version}"))
    }

    /// A record payload in a layout newer than the `known` one this build reads.
    pub(crate) fn unsupported_layout(found: u8, known: u8) -> CodecError {
        CodecError::custom(format!("payload layout {found} is newer than this build reads (up to {known})"))
    }

    /// A value written with schema version `found`, newer than the `known`
    /// this build reads up to.
    pub(crate) fn newer_schema(found: u32, known: u8) -> CodecError {
        CodecError { kind: Kind::NewerSchema { found, known } }
    }

    /// A value written with an older schema version `found` that the state
    /// machine has no upcaster for.
    pub fn no_upcaster(found: u32, known: u8) -> CodecError {
        CodecError { kind: Kind::NoUpcaster { found, known } }
    }

    /// An upcaster's refusal of an old value it cannot turn into a current one.
    pub fn upcast(message: impl Into<String>) -> CodecError {
        CodecError { kind: Kind::Upcast(message.into()) }
    }

    /// A byte range that does not lie inside the input.
    #[cfg(test)]
    pub(crate) fn span_outside(start: u32, end: u32, len: usize) -> CodecError {
        CodecError::custom(format!("bytes {start}..{end} are not inside the {len}-byte input"))
    }

    /// Bytes left over after a complete value.
    pub(crate) fn trailing_bytes(bytes: usize) -> CodecError {
        CodecError::custom(format!("{bytes} bytes left over after the value"))
    }

    /// Whether encoding stopped because the size limit was reached.
    pub(crate) fn is_size_limit(&self) -> bool {
        matches!(&self.kind, Kind::Bincode(inner) if matches!(**inner, bincode::ErrorKind::SizeLimit))
    }

    /// `(found, known)` when the value was written with a schema version newer
    /// than this build reads up to.
    pub fn newer_schema_version(&self) -> Option<(u32, u8)> {
        match self.kind {
            Kind::NewerSchema { found, known } => Some((found, known)),
            _ => None,
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bincode(inner) => write!(f, "{inner}"),
            Kind::NewerSchema { found, known } => {
                write!(f, "written by a newer version: schema {found}, this build reads up to {known}")
            }
            Kind::NoUpcaster { found, known } => {
                write!(f, "written with schema {found}, and nothing upcasts it to this build's schema {known}")
            }
            Kind::Upcast(message) => write!(f, "upcasting an old value failed: {message}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// The bincode 1 wire format: fixed-width integers, little-endian.
fn wire() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_little_endian()
}

fn options(limit_bytes: u64) -> impl Options {
    wire().with_limit(limit_bytes).reject_trailing_bytes()
}

/// Appends the encoding of `value` to `out`; fails if it would exceed `limit_bytes`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    limit_bytes: u64,
) -> Result<(), CodecError> {
    options(limit_bytes).serialize_into(out, value).map_err(CodecError::bincode)
}

/// The encoding of `value`, with no limit but memory (small metadata).
#[cfg(feature = "replication")]
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out, u64::MAX)?;
    Ok(out)
}

/// Streams the encoding of `value` into `writer`; fails if it would exceed `limit_bytes`.
pub(crate) fn encode_to_writer<T: Serialize + ?Sized, W: std::io::Write>(
    value: &T,
    writer: W,
    limit_bytes: u64,
) -> Result<(), CodecError> {
    options(limit_bytes).serialize_into(writer, value).map_err(CodecError::bincode)
}

/// The number of bytes `value` encodes to, computed without encoding it.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<u64, CodecError> {
    options(u64::MAX).serialized_size(value).map_err(CodecError::bincode)
}

/// Decodes exactly one `T` from all of `bytes`, allocating at most `limit_bytes`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], limit_bytes: u64) -> Result<T, CodecError> {
    options(limit_bytes).deserialize(bytes).map_err(CodecError::bincode)
}

/// Decodes one `T` from the front of `bytes`, allocating at most
/// `limit_bytes`, and advances `bytes` past it: the caller learns where the
/// value ended, so it can index values inside a larger encoding.
pub(crate) fn decode_front<T: DeserializeOwned>(bytes: &mut &[u8], limit_bytes: u64) -> Result<T, CodecError> {
    decode_front_seed(bytes, limit_bytes, std::marker::PhantomData::<T>)
}

/// Decodes one value from the front of `bytes` through `seed` (a decoder
/// that carries context, such as a state to share values with), allocating
/// at most `limit_bytes`, and advances `bytes` past it.
pub(crate) fn decode_front_seed<'a, T: serde::de::DeserializeSeed<'a>>(
    bytes: &mut &'a [u8],
    limit_bytes: u64,
    seed: T,
) -> Result<T::Value, CodecError> {
    let options = wire().with_limit(limit_bytes);
    let mut deserializer = bincode::Deserializer::with_bincode_read(FrontReader { rest: bytes }, options);
    seed.deserialize(&mut deserializer).map_err(CodecError::bincode)
}

/// Decodes all of `bytes` with `decode`, a state machine's own decoder
/// reading from the front ([`OldBytes`]), allocating at most `limit_bytes`,
/// and refuses what it leaves, as [`decode`] refuses trailing bytes.
pub(crate) fn decode_whole<T>(
    bytes: &[u8],
    limit_bytes: u64,
    decode: impl FnOnce(&mut OldBytes<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    let mut old = OldBytes::new(bytes, limit_bytes);
    let value = decode(&mut old)?;
    match old.remaining() {
        0 => Ok(value),
        left => Err(CodecError::trailing_bytes(left)),
    }
}

/// Reads a map as bincode writes one (its length as a `u64`, then each key
/// and its value), allocating at most `limit_bytes` for each key: `entry`
/// is given each key and the bytes from its value on, and must advance them
/// past the value ([`decode_front`], [`skip_encoding_of`]). Bytes left after
/// the last entry are refused, as [`decode`] refuses them.
pub(crate) fn read_map<'a, K: serde::Deserialize<'a>>(
    mut bytes: &'a [u8],
    limit_bytes: u64,
    mut entry: impl FnMut(K, &mut &'a [u8]) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let len: u64 = decode_front(&mut bytes, 8)?;
    // Each entry takes a byte at least (no key type here is empty): a
    // count the bytes cannot hold is refused before it is walked.
    if len > bytes.len() as u64 {
        return Err(CodecError::custom(format!("a map of {len} entries in {} bytes", bytes.len())));
    }
    for _ in 0..len {
        let key = decode_front_seed(&mut bytes, limit_bytes, std::marker::PhantomData::<K>)?;
        entry(key, &mut bytes)?;
    }
    match bytes.len() {
        0 => Ok(()),
        left => Err(CodecError::trailing_bytes(left)),
    }
}

/// Whether `bytes` begin with the encoding of `value`; if so they are
/// advanced past it. The encoding is compared as it is written, stopping at
/// the first byte that differs, and kept nowhere. It is deterministic and
/// says where it ends, so those bytes decode to a value equal to `value`,
/// and need not be decoded.
pub(crate) fn skip_encoding_of<T: Serialize + ?Sized>(bytes: &mut &[u8], value: &T) -> bool {
    /// Takes the bytes written while they are the ones expected.
    struct Same<'a>(&'a [u8]);
    impl std::io::Write for Same<'_> {
        fn write(&mut self, written: &[u8]) -> std::io::Result<usize> {
            match self.0.strip_prefix(written) {
                Some(rest) => {
                    self.0 = rest;
                    Ok(written.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut same = Same(bytes);
    // No limit: a bounded encoder measures the value before writing it.
    if wire().serialize_into(&mut same, value).is_err() {
        return false;
    }
    *bytes = same.0;
    true
}

/// Reads from the front of a slice and leaves it advanced past what was
/// read. Strings are checked where they lie, as bincode's own slice reader
/// does (its generic reader copies each through a scratch buffer first).
struct FrontReader<'a, 'b> {
    rest: &'b mut &'a [u8],
}

impl<'a> FrontReader<'a, '_> {
    fn take(&mut self, length: usize) -> std::io::Result<&'a [u8]> {
        if length > self.rest.len() {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let (taken, rest) = self.rest.split_at(length);
        *self.rest = rest;
        Ok(taken)
    }
}

impl std::io::Read for FrontReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.rest.len());
        buf[..n].copy_from_slice(self.take(n)?);
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        buf.copy_from_slice(self.take(buf.len())?);
        Ok(())
    }
}

impl<'a> bincode::BincodeRead<'a> for FrontReader<'a, '_> {
    fn forward_read_str<V: serde::de::Visitor<'a>>(&mut self, length: usize, visitor: V) -> bincode::Result<V::Value> {
        let string = std::str::from_utf8(self.take(length)?).map_err(bincode::ErrorKind::InvalidUtf8Encoding)?;
        visitor.visit_borrowed_str(string)
    }

    fn get_byte_buffer(&mut self, length: usize) -> bincode::Result<Vec<u8>> {
        Ok(self.take(length)?.to_vec())
    }

    fn forward_read_bytes<V: serde::de::Visitor<'a>>(
        &mut self,
        length: usize,
        visitor: V,
    ) -> bincode::Result<V::Value> {
        visitor.visit_borrowed_bytes(self.take(length)?)
    }
}

/// Reads the variant index from the front of an enum value's encoding (a
/// `u32`, the variant's place in declaration order, then that variant's
/// fields in order, each decodable with [`decode_front`]).
pub(crate) fn variant_front(bytes: &mut &[u8]) -> Result<u32, CodecError> {
    decode_front(bytes, 4)
}

/// Decodes an `Arc<T>` straight into its own allocation, for
/// `#[serde(deserialize_with = "...")]`. serde's `Arc<T>` decodes a `Box<T>`
/// and then moves it into an `Arc`: two allocations, a copy and a free for
/// every shared value a snapshot or a replay decodes. The encoding is `T`'s
/// either way.
pub(crate) fn arc<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    deserializer: D,
) -> Result<std::sync::Arc<T>, D::Error> {
    T::deserialize(deserializer).map(std::sync::Arc::new)
}

/// A value decoded straight into an `Arc`, as [`arc`] decodes it: for
/// collections of shared values (`map.next_value::<InArc<T>>()`).
pub(crate) struct InArc<T>(pub(crate) std::sync::Arc<T>);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for InArc<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<InArc<T>, D::Error> {
        arc(deserializer).map(InArc)
    }
}

/// Encoded bytes handed to a state machine's own decoder: written with an
/// older schema version, to an upcaster
/// ([`crate::StateMachine::upcast_event`], [`crate::StateMachine::upcast_state`])
/// to decode with that version's frozen types; or a snapshot of this
/// build's version, to [`crate::StateMachine::decode_like`].
///
/// Each [`OldBytes::decode`] (or [`OldBytes::decode_seed`]) reads one value
/// from the front, in the bincode 1 wire format, bounded by the store's
/// record or snapshot limit.
#[derive(Debug)]
pub struct OldBytes<'a> {
    rest: &'a [u8],
    limit_bytes: u64,
}

impl<'a> OldBytes<'a> {
    pub(crate) fn new(bytes: &'a [u8], limit_bytes: u64) -> OldBytes<'a> {
        OldBytes { rest: bytes, limit_bytes }
    }

    /// Decodes the next value, as the type the older version wrote.
    pub fn decode<T: DeserializeOwned>(&mut self) -> Result<T, CodecError> {
        decode_front(&mut self.rest, self.limit_bytes)
    }

    /// Decodes the next value through `seed`, a decoder that carries
    /// context (serde's `DeserializeSeed`), such as a state in memory to
    /// share equal values with.
    pub fn decode_seed<T: serde::de::DeserializeSeed<'a>>(&mut self, seed: T) -> Result<T::Value, CodecError> {
        decode_front_seed(&mut self.rest, self.limit_bytes, seed)
    }

    /// The bytes not decoded yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_values_and_target_ids_decode_in_place_from_the_same_bytes() {
        use std::sync::Arc;
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Shared {
            id: crate::elb::TargetId,
            #[serde(deserialize_with = "arc")]
            value: Arc<(u16, String)>,
        }
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Serdes {
            id: Arc<str>,
            value: Arc<(u16, String)>,
        }
        let ids = ["", "i-0123456789abcdef0", "caf\u{e9} \"quoted\"", &"x".repeat(300)];
        for id in ids {
            let ours = Shared { id: id.into(), value: Arc::new((80, id.to_owned())) };
            let theirs = Serdes { id: id.into(), value: Arc::new((80, id.to_owned())) };
            let bytes = encode(&ours).unwrap();
            assert_eq!(bytes, encode(&theirs).unwrap(), "the same encoding");
            // From a whole slice, from the front of one (strings borrowed)...
            assert_eq!(decode::<Shared>(&bytes, 1024).unwrap(), ours);
            let mut front = &bytes[..];
            assert_eq!(decode_front::<Shared>(&mut front, 1024).unwrap(), ours);
            assert!(front.is_empty());
            let InArc(value) = decode::<InArc<(u16, String)>>(&encode(&*ours.value).unwrap(), 1024).unwrap();
            assert_eq!(value, ours.value);
            // ...and from a decoder that hands over owned and escaped strings.
            let json = serde_json::to_string(&ours).unwrap();
            assert_eq!(serde_json::from_str::<Shared>(&json).unwrap(), ours);
        }
        // Refused as serde's own refuses it: a truncated string.
        assert!(decode::<Shared>(
            &encode(&Serdes { id: "abc".into(), value: Arc::new((1, "x".into())) }).unwrap()[..10],
            1024
        )
        .is_err());
    }

    #[test]
    fn wire_format_is_bincode_1_fixint_little_endian() {
        let mut out = Vec::new();
        encode_into(&(7u32, "ab".to_string()), &mut out, 1024).unwrap();
        assert_eq!(out, [7, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        let back: (u32, String) = decode(&out, 1024).unwrap();
        assert_eq!(back, (7, "ab".to_string()));
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // A vector claiming u64::MAX elements must fail on the limit, not abort on allocation.
        let bytes = [0xff; 8];
        assert!(decode::<Vec<u64>>(&bytes, 1 << 20).is_err());
    }

    #[test]
    fn huge_string_length_is_refused_without_allocating() {
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        assert!(decode::<String>(&bytes, 1 << 20).is_err());
    }

    #[test]
    fn decoding_from_the_front_reads_as_decoding_the_whole() {
        type Value = (Vec<(String, Option<u32>)>, std::collections::BTreeMap<String, String>, char);
        let value: Value = (vec![("é".into(), Some(3)), (String::new(), None)], [("k".into(), "v".into())].into(), 'x');
        let mut out = Vec::new();
        encode_into(&value, &mut out, 1024).unwrap();
        let mut rest = &out[..];
        assert_eq!(decode_front::<Value>(&mut rest, 1024).unwrap(), value);
        assert!(rest.is_empty());
        assert_eq!(decode::<Value>(&out, 1024).unwrap(), value);
        // Not UTF-8, and cut short: refused both ways.
        let mut bad = Vec::new();
        encode_into(&"ab".to_string(), &mut bad, 1024).unwrap();
        bad[8] = 0xff;
        assert!(decode_front::<String>(&mut &bad[..], 1024).is_err());
        assert!(decode::<String>(&bad, 1024).is_err());
        assert!(decode_front::<String>(&mut &bad[..9], 1024).is_err());
    }

    #[test]
    fn decoding_from_the_front_stops_at_the_value_and_is_bounded() {
        let mut out = Vec::new();
        encode_into(&("ab".to_string(), 9u64), &mut out, 1024).unwrap();
        let mut rest = &out[..];
        assert_eq!(decode_front::<String>(&mut rest, 1024).unwrap(), "ab");
        assert_eq!(rest.len(), 8);
        assert_eq!(decode_front::<u64>(&mut rest, 1024).unwrap(), 9);
        assert!(rest.is_empty());
        assert!(decode_front::<u64>(&mut rest, 1024).is_err());
        let huge = u64::MAX.to_le_bytes();
        assert!(decode_front::<String>(&mut &huge[..], 1 << 20).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        assert!(decode::<u32>(&[1, 0, 0, 0, 9], 64).is_err());
    }

    #[test]
    fn a_map_read_entry_by_entry_skips_values_it_already_has_and_decodes_the_rest() {
        let map: std::collections::BTreeMap<u32, String> =
            [(1, "one".to_string()), (2, "two".to_string()), (3, "three".to_string())].into();
        let mut bytes = Vec::new();
        encode_into(&map, &mut bytes, u64::MAX).unwrap();
        // Known values: 1 as written, 2 different (a prefix of it too), 3 unknown.
        let known = |key: u32| match key {
            1 => Some("one"),
            2 => Some("tw"),
            _ => None,
        };
        let (mut back, mut skipped) = (Vec::new(), Vec::new());
        read_map(&bytes, 64, |key: u32, rest| {
            if known(key).is_some_and(|value| skip_encoding_of(rest, value)) {
                skipped.push(key);
                back.push((key, known(key).unwrap().to_string()));
            } else {
                back.push((key, decode_front::<String>(rest, 64)?));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(skipped, [1]);
        assert_eq!(back, map.into_iter().collect::<Vec<_>>());
        // Refused as `decode` refuses: bytes after the map, and a map cut short.
        let noop = |_: u32, rest: &mut &[u8]| decode_front::<String>(rest, 64).map(drop);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_map(&longer, 64, noop).is_err());
        assert!(read_map(&bytes[..bytes.len() - 1], 64, noop).is_err());
        // A count the bytes cannot hold is refused before any entry is read.
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_map(&huge, 64, |_: u32, _: &mut &[u8]| panic!("no entry is read")).is_err());
        // A value that differs after its first bytes leaves the input where it was.
        let mut rest: &[u8] = &bytes[8 + 4..];
        assert!(!skip_encoding_of(&mut rest, "onf"));
        assert_eq!(rest, &bytes[8 + 4..]);
    }
}
