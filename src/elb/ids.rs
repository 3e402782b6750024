//! Identifiers of ELB resources.
//!
//! An id is derived from the transaction that created the resource:
//! `seq << 16 | n`, where `n` counts creations within that transaction. Ids
//! are therefore deterministic (replay gives the same ids), never reused, and
//! need no counter in the state, so undoing a creation restores the state
//! exactly.
//!
//! An id's `Debug` is its `Display` text (`tg-0000000000010000`), so ids read
//! the same in logs, assertion messages and field changes as in the API.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Most resources one transaction may create.
pub const CREATIONS_PER_TRANSACTION_MAX: u64 = 1 << 16;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl $name {
            /// The id of the `n`-th resource created by transaction `seq`.
            pub fn new(seq: u64, n: u64) -> $name {
                debug_assert!(n < CREATIONS_PER_TRANSACTION_MAX);
                $name((seq << 16) | n)
            }

            /// The sequence number of the transaction that created it.
            pub fn created_seq(self) -> u64 {
                self.0 >> 16
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "-{:016x}"), self.0)
            }
        }

        /// The `Display` text.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

id_type!(
    /// A load balancer's id.
    LoadBalancerId,
    "lb"
);
id_type!(
    /// A listener's id.
    ListenerId,
    "listener"
);
id_type!(
    /// A listener rule's id.
    RuleId,
    "rule"
);
id_type!(
    /// A target group's id.
    TargetGroupId,
    "tg"
);
id_type!(
    /// A trust store's id.
    TrustStoreId,
    "ts"
);

/// Bytes of a [`TargetId`] kept inline: with its length,
/// three words.
const INLINE: usize = 23;

/// Text kept inline when it fits in 23 bytes, else shared.
#[derive(Clone)]
enum IdText {
    Inline(Inline),
    Shared(Arc<str>),
}

/// Inline text. Word-aligned, so a copy of it is three word moves: a small
/// group's targets are copied whole on each change to one of them, and text
/// of unaligned bytes took 1.7 to 2.1 times as long to copy, in pieces
/// (BENCHMARKS.md, "Target ids copied as words").
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Inline {
    /// Zero past `len`: only `IdText::new` makes one.
    bytes: [u8; INLINE],
    len: u8,
}

/// Inline bytes, zero past their end, as three big-endian words: two inline
/// texts' words, then their lengths, order as the texts do. The words differ
/// first where the texts first differ, or, when one text is the other's
/// start, where the longer goes on with a byte that is not zero; if it goes
/// on with zeros only, the words are equal and the shorter is first. A search
/// in a group compares ids that mostly share their first 17 bytes (an
/// instance's): three word comparisons, not a `memcmp` call.
fn words(bytes: &[u8; INLINE]) -> [u64; 3] {
    let word = |at: usize| {
        let mut word = [0; 8];
        let end = (at + 8).min(INLINE);
        word[..end - at].copy_from_slice(&bytes[at..end]);
        u64::from_be_bytes(word)
    };
    [word(0), word(8), word(16)]
}

/// What a text type keeps its text in.
trait Text: Clone + Ord + std::hash::Hash {
    fn new(text: &str) -> Self;
    fn as_str(&self) -> &str;
    fn as_bytes(&self) -> &[u8];
}

impl Text for Arc<str> {
    fn new(text: &str) -> Arc<str> {
        text.into()
    }

    fn as_str(&self) -> &str {
        self
    }

    fn as_bytes(&self) -> &[u8] {
        str::as_bytes(self)
    }
}

impl Text for IdText {
    fn new(text: &str) -> IdText {
        if text.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            IdText::Inline(Inline { bytes, len: text.len() as u8 })
        } else {
            IdText::Shared(text.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Made only from a whole `str` (`IdText::new`), so always UTF-8;
            // checked again here (a few bytes) since this module allows no
            // `unsafe`. Comparisons and hashing read the bytes without it.
            IdText::Inline(_) => std::str::from_utf8(self.as_bytes()).expect("inline text is a whole str"),
            IdText::Shared(text) => text,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            IdText::Inline(inline) => &inline.bytes[..usize::from(inline.len)],
            IdText::Shared(text) => text.as_bytes(),
        }
    }
}

/// By text, as `str` orders (its bytes).
impl Ord for IdText {
    fn cmp(&self, other: &IdText) -> std::cmp::Ordering {
        match (self, other) {
            (IdText::Inline(a), IdText::Inline(b)) => words(&a.bytes).cmp(&words(&b.bytes)).then(a.len.cmp(&b.len)),
            _ => self.as_bytes().cmp(other.as_bytes()),
        }
    }
}

impl PartialOrd for IdText {
    fn partial_cmp(&self, other: &IdText) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for IdText {
    fn eq(&self, other: &IdText) -> bool {
        match (self, other) {
            (IdText::Inline(a), IdText::Inline(b)) => a.len == b.len && a.bytes == b.bytes,
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for IdText {}

/// By the text's bytes, inline or shared.
impl std::hash::Hash for IdText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident($repr:ty), $expecting:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($repr);

        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                Text::as_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> $name {
                $name(<$repr as Text>::new(text))
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> $name {
                $name::from(text.as_str())
            }
        }

        impl From<&String> for $name {
            fn from(text: &String) -> $name {
                $name::from(text.as_str())
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                Text::as_bytes(&self.0) == other.as_bytes()
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                Text::as_bytes(&self.0) == other.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// The text, quoted, as a `str`'s `Debug`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        /// A string.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        /// Read from the string where the decoder has it: no allocation when
        /// it fits inline.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$name, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<$name, E> {
                        Ok($name::from(text))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

text_type!(
    /// A target's id: an instance id, IP address, Lambda function ARN or ALB
    /// ARN.
    ///
    /// Its text kept inline when it fits in 23 bytes (instance ids and IP
    /// addresses do), so a target holding it is one allocation or none, a
    /// comparison reads no other memory and a copy allocates nothing; a
    /// longer id (an ARN) is shared, and a copy of it is a reference count.
    /// Compares, orders and encodes as its text (a string); hashes its
    /// text's bytes.
    ///
    /// ```
    /// use elbstore::elb::TargetId;
    ///
    /// let id = TargetId::from("i-0123456789abcdef0");
    /// assert_eq!(id, "i-0123456789abcdef0");
    /// assert!(id < TargetId::from("i-1"));
    /// assert_eq!(id.len(), 19);
    /// ```
    TargetId(IdText),
    "a target id"
);

text_type!(
    /// A target's availability zone (`us-east-1a`, or `all` for an IP target
    /// outside the VPC), when one was given.
    ///
    /// Shared, so copying a target copies its zone as a reference count (and
    /// an absent zone, the usual case, as a null pointer), and the field
    /// takes two words (a pointer and a length) where a `String` took three.
    /// Compares, orders and encodes as its text (a string).
    ///
    /// ```
    /// use elbstore::elb::ZoneName;
    ///
    /// let zone = ZoneName::from("us-east-1a");
    /// assert_eq!(zone, "us-east-1a");
    /// assert_eq!(format!("{zone:?}"), "\"us-east-1a\"");
    /// ```
    ZoneName(Arc<str>),
    "an availability zone"
);

/// A registered target: which group, which target, which port.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TargetKey {
    /// The target group it is registered in.
    pub target_group: TargetGroupId,
    /// The instance id, IP address, Lambda function ARN or ALB ARN.
    pub id: TargetId,
    /// The port it receives traffic on (0 for Lambda targets).
    pub port: u16,
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target {}:{} in {}", self.id, self.port, self.target_group)
    }
}

/// The `Display` text.
impl fmt::Debug for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline or shared, a target id compares, orders, hashes and encodes as
    /// its text does, and keys order as they did with the text shared.
    #[test]
    fn a_target_id_is_its_text_inline_or_shared() {
        use std::hash::{BuildHasher, RandomState};
        let exactly = "x".repeat(INLINE);
        let longer = "x".repeat(INLINE + 1);
        let long = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        // Texts that are each other's start, go on with NULs, or differ in
        // each of the three words an inline id compares by.
        let texts = [
            "",
            "\0",
            "a",
            "a\0",
            "a\0\0",
            "a\0b",
            "ab",
            "b",
            "10.0.0.1",
            "i-0123456789abcdef0",
            "i-0123456789abcdef1",
            "i-0123456789abcdeg0",
            "i-0123456789abcdf",
            "i-0123456789abcdef0\0",
            "i-0123456789abcdef0\u{e9}",
            &exactly,
            &longer,
            long,
            "\u{e9}",
            "x\u{e9}",
            "\u{ff}",
        ];
        let hasher = RandomState::new();
        for a in texts {
            let id = TargetId::from(a);
            assert_eq!(matches!(id.0, IdText::Inline(_)), a.len() <= INLINE, "{a}: inline when it fits");
            assert_eq!(id.as_str(), a);
            assert_eq!(id, a);
            assert_eq!(format!("{id}"), a);
            assert_eq!(format!("{id:?}"), format!("{a:?}"));
            let bytes = crate::codec::encode(&id).unwrap();
            assert_eq!(bytes, crate::codec::encode(&a).unwrap(), "{a}: encoded as a string");
            let decoded = crate::codec::decode::<TargetId>(&bytes, 1024).unwrap();
            assert_eq!(decoded, id);
            // Equal ids hash equally however they were made.
            let owned = TargetId::from(a.to_owned());
            assert_eq!(hasher.hash_one(&decoded), hasher.hash_one(&id), "{a}");
            assert_eq!(hasher.hash_one(&owned), hasher.hash_one(&id), "{a}");
            for b in texts {
                let other = TargetId::from(b);
                assert_eq!(id.cmp(&other), a.cmp(b), "{a} against {b}");
                assert_eq!(id == other, a == b, "{a} against {b}");
            }
        }
        assert_eq!(std::mem::size_of::<TargetId>(), 32);
        assert_eq!(std::mem::size_of::<Option<ZoneName>>(), 16, "a null pointer is None");
        assert_eq!(std::mem::size_of::<crate::elb::Target>(), 88);
        // Keys order by group, then by id's text, then by port.
        let mut keys: Vec<TargetKey> = texts
            .iter()
            .flat_map(|id| [(1, 80), (1, 8080), (2, 0)].map(|(g, port)| (g, *id, port)))
            .map(|(g, id, port)| TargetKey { target_group: TargetGroupId(g), id: id.into(), port })
            .collect();
        keys.sort();
        let as_text: Vec<(u64, &str, u16)> = keys.iter().map(|k| (k.target_group.0, k.id.as_str(), k.port)).collect();
        assert!(as_text.is_sorted(), "{as_text:?}");
    }

    /// A zone encodes as the `Option<String>` it replaced did, so events and
    /// snapshots written before it read back unchanged.
    #[test]
    fn a_zone_name_encodes_as_the_string_it_was() {
        for zone in [None, Some("us-east-1a"), Some("all"), Some(""), Some("a-zone-name-longer-than-23-bytes")] {
            let text: Option<String> = zone.map(str::to_owned);
            let name: Option<ZoneName> = zone.map(ZoneName::from);
            let bytes = crate::codec::encode(&name).unwrap();
            assert_eq!(bytes, crate::codec::encode(&text).unwrap(), "{zone:?}");
            assert_eq!(crate::codec::decode::<Option<ZoneName>>(&bytes, 1024).unwrap(), name);
            assert_eq!(format!("{name:?}"), format!("{text:?}"), "as a field change shows it");
            assert_eq!(name.as_deref(), zone);
        }
    }

    #[test]
    fn an_id_s_debug_is_its_display_text() {
        let cases: [(&dyn fmt::Debug, &dyn fmt::Display, &str); 5] = [
            (&LoadBalancerId::new(1, 0), &LoadBalancerId::new(1, 0), "lb-0000000000010000"),
            (&ListenerId::new(2, 1), &ListenerId::new(2, 1), "listener-0000000000020001"),
            (&RuleId::new(3, 2), &RuleId::new(3, 2), "rule-0000000000030002"),
            (&TargetGroupId::new(0x2a, 0xff), &TargetGroupId::new(0x2a, 0xff), "tg-00000000002a00ff"),
            (&TrustStoreId(7), &TrustStoreId(7), "ts-0000000000000007"),
        ];
        for (debug, display, text) in cases {
            assert_eq!(format!("{debug:?}"), text);
            assert_eq!(display.to_string(), text);
        }
        let key = TargetKey { target_group: TargetGroupId::new(1, 0), id: "i-0abc".into(), port: 80 };
        assert_eq!(key.to_string(), "target i-0abc:80 in tg-0000000000010000");
        assert_eq!(format!("{key:?}"), key.to_string());
        // Inside a derived Debug, as in a field change or an assertion message.
        assert_eq!(
            format!("{:?}", (Some(TargetGroupId::new(1, 0)), vec![RuleId(1)])),
            "(Some(tg-0000000000010000), [rule-0000000000000001])"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Ids order and compare as their texts, inline or shared: texts of
        /// a few letters and NULs (so one is often the other's start, or the
        /// same up to trailing NULs) around the inline length.
        #[test]
        fn ids_order_as_their_texts(a in "[ab\\x00]{0,3}", b in "[ab\\x00]{0,3}", fill in 0usize..=INLINE) {
            let prefix = "i".repeat(fill);
            let (a, b) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            let (x, y) = (TargetId::from(a.as_str()), TargetId::from(b.as_str()));
            proptest::prop_assert_eq!(x.cmp(&y), a.cmp(&b), "{:?} against {:?}", a, b);
            proptest::prop_assert_eq!(x == y, a == b);
        }
    }
}
