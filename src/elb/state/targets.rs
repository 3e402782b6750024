//! One target group's targets, keyed for comparisons that stay in the map's
//! own nodes.
//!
//! A group's targets were kept under their [`TargetKey`], whose id is an
//! `Arc<str>`: every comparison of a lookup or an insert followed that pointer
//! to the id's bytes somewhere else on the heap, and replaying a health change
//! on a large state spent a fifth of its time there (BENCHMARKS.md, "Target
//! ids compared in place"). Here the key is a [`Slot`]: the id's bytes inline
//! when they fit (instance ids and IPv4 addresses do), shared with the
//! target's own key when they do not, and the port. Ordered as `TargetKey`
//! orders one group's keys, so iteration order is unchanged.
//!
//! The encoding is unchanged too: a group's targets are written as the map from
//! `TargetKey` to `Target` they always were, and read back into slots.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::elb::{Target, TargetGroupId, TargetKey};

/// Id bytes kept inline: a slot stays 32 bytes, like the `TargetKey` it
/// replaces in the map.
const INLINE: usize = 22;

/// A target id: inline when short, else shared with the target's key.
#[derive(Clone)]
enum Id {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Id {
    /// `id`'s bytes inline when they fit, else `shared()` (called only then).
    fn of(id: &str, shared: impl FnOnce() -> Arc<str>) -> Id {
        if id.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..id.len()].copy_from_slice(id.as_bytes());
            Id::Inline { len: id.len() as u8, bytes }
        } else {
            Id::Shared(shared())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Id::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Id::Shared(id) => id.as_bytes(),
        }
    }
}

/// Where a target is kept in its group's map: its id and port.
#[derive(Clone)]
pub(super) struct Slot {
    id: Id,
    port: u16,
}

impl Slot {
    /// The slot of `key` (its group is the map's).
    pub(super) fn of(key: &TargetKey) -> Slot {
        Slot { id: Id::of(&key.id, || key.id.clone()), port: key.port }
    }
}

/// The order of `TargetKey` within one group: by id's bytes (as `str`
/// orders), then by port.
impl Ord for Slot {
    fn cmp(&self, other: &Slot) -> Ordering {
        self.id.as_bytes().cmp(other.id.as_bytes()).then(self.port.cmp(&other.port))
    }
}

impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Slot) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Slot) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Slot {}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", String::from_utf8_lossy(self.id.as_bytes()), self.port)
    }
}

/// One target group's targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct GroupTargets(OrdMap<Slot, Arc<Target>>);

impl GroupTargets {
    /// A group of one target.
    pub(super) fn unit(target: &Arc<Target>) -> GroupTargets {
        GroupTargets(OrdMap::unit(Slot::of(&target.key), target.clone()))
    }

    pub(super) fn get(&self, key: &TargetKey) -> Option<&Arc<Target>> {
        self.0.get(&Slot::of(key))
    }

    /// Puts `target` in its slot: whether the slot was empty.
    pub(super) fn put(&mut self, target: &Arc<Target>) -> bool {
        self.0.insert(Slot::of(&target.key), target.clone()).is_none()
    }

    /// Takes the target of `key` out: whether it was there.
    pub(super) fn remove(&mut self, key: &TargetKey) -> bool {
        self.0.remove(&Slot::of(key)).is_some()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The targets, by id and port.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.0.values()
    }
}

/// Written as a map from each target's key to the target, as the group's
/// `OrdMap<TargetKey, Arc<Target>>` was: the same bytes, in the same order.
impl Serialize for GroupTargets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for target in self.0.values() {
            map.serialize_entry(&target.key, target)?;
        }
        map.end()
    }
}

/// The targets section: target groups by id, each with its targets. Every
/// target's key (in the map and in the target) must name the group it is
/// filed under.
pub(super) struct Section(pub(super) OrdMap<TargetGroupId, GroupTargets>);

impl<'de> Deserialize<'de> for Section {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Section, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Section;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of target groups' targets")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Section, A::Error> {
                // In key order, as written: built in bulk, as imbl builds a
                // decoded map.
                let mut groups = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(group) = map.next_key::<TargetGroupId>()? {
                    let targets = map.next_value_seed(Group(group))?;
                    groups.push((group, targets));
                }
                Ok(Section(OrdMap::from(groups)))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Reads one group's targets, written as a map from `TargetKey` to `Target`.
struct Group(TargetGroupId);

impl<'de> serde::de::DeserializeSeed<'de> for Group {
    type Value = GroupTargets;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<GroupTargets, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Group {
    type Value = GroupTargets;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of targets by key")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<GroupTargets, A::Error> {
        let mut targets = OrdMap::new();
        while let Some(KeySlot(group, slot)) = map.next_key::<KeySlot>()? {
            let crate::codec::InArc(target) = map.next_value::<crate::codec::InArc<Target>>()?;
            // The target's own key holds the id: a long id is shared with it
            // rather than kept twice.
            let own = Slot::of(&target.key);
            if group != self.0 || target.key.target_group != self.0 || own != slot {
                return Err(serde::de::Error::custom(format_args!(
                    "{} is filed under the key {slot:?} in {group} of the section's {}",
                    target.key, self.0
                )));
            }
            targets.insert(own, target);
        }
        Ok(GroupTargets(targets))
    }
}

/// A target id's string read in place: no allocation when it fits inline.
impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target id")
            }
            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Id, E> {
                Ok(Id::of(id, || id.into()))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A `TargetKey`'s encoding read as its group and slot: the id is read in
/// place (no allocation when it fits inline).
struct KeySlot(TargetGroupId, Slot);

impl<'de> Deserialize<'de> for KeySlot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeySlot, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeySlot;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target key")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeySlot, A::Error> {
                use serde::de::Error;
                let group = seq.next_element::<TargetGroupId>()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let id = seq.next_element::<Id>()?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let port = seq.next_element::<u16>()?.ok_or_else(|| A::Error::invalid_length(2, &self))?;
                Ok(KeySlot(group, Slot { id, port }))
            }
        }
        deserializer.deserialize_struct("TargetKey", &["target_group", "id", "port"], Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: u64, id: &str, port: u16) -> TargetKey {
        TargetKey { target_group: TargetGroupId(group), id: id.into(), port }
    }

    fn target(key: TargetKey) -> Arc<Target> {
        let health = crate::elb::TargetHealth::new(crate::elb::HealthState::Initial, None);
        Arc::new(Target { key, availability_zone: None, health, draining_until: None })
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        crate::codec::encode_into(value, &mut bytes, u64::MAX).unwrap();
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<OrdMap<TargetGroupId, GroupTargets>, crate::codec::CodecError> {
        crate::codec::decode::<Section>(bytes, bytes.len() as u64).map(|section| section.0)
    }

    #[test]
    fn slots_order_as_their_keys_do_inline_or_shared() {
        let long = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        let ids = ["", "10.0.0.1", "i-0123456789abcdef0", "i-0123456789abcdef01234", long, "a", "ab", "b", "\u{e9}"];
        let mut keys: Vec<TargetKey> =
            ids.iter().flat_map(|id| [0, 80, 8080, u16::MAX].map(|port| key(7, id, port))).collect();
        keys.sort();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(Slot::of(a).cmp(&Slot::of(b)), i.cmp(&j), "{a} and {b}");
            }
        }
        assert!(matches!(Slot::of(&key(7, long, 1)).id, Id::Shared(_)), "a long id is shared");
        assert!(matches!(Slot::of(&key(7, "i-0123456789abcdef0", 1)).id, Id::Inline { .. }));
    }

    #[test]
    fn a_section_encodes_as_the_maps_of_keys_it_replaced_and_decodes_back() {
        let ids = ["i-0123456789abcdef0", "10.0.0.1", &"x".repeat(100)];
        let (mut section, mut old) = (OrdMap::new(), OrdMap::new());
        for group in [3, 9] {
            let targets: Vec<Arc<Target>> = ids.iter().map(|id| target(key(group, id, 80))).collect();
            let mut slots = GroupTargets::unit(&targets[0]);
            let mut keys: OrdMap<TargetKey, Arc<Target>> = OrdMap::new();
            for target in &targets {
                slots.put(target);
                keys.insert(target.key.clone(), target.clone());
            }
            assert!(!slots.put(&targets[0]), "the slot was taken");
            assert_eq!(slots.len(), 3);
            assert!(slots.values().map(|t| &t.key).eq(keys.keys()), "the keys' order");
            section.insert(TargetGroupId(group), slots);
            old.insert(TargetGroupId(group), keys);
        }
        let bytes = encode(&section);
        assert_eq!(bytes, encode(&old), "the bytes of the map it replaced");
        let mut back = decode(&bytes).unwrap();
        assert_eq!(back, section);
        let group = back.get_mut(&TargetGroupId(9)).unwrap();
        let long = key(9, ids[2], 80);
        assert_eq!(group.get(&long).map(|t| &t.key), Some(&long));
        assert!(group.remove(&long));
        assert!(!group.remove(&long), "already taken out");
        assert_eq!(group.len(), 2);
    }

    #[test]
    fn a_target_filed_under_another_key_or_group_is_a_decode_error() {
        let filed = |outer: u64, inner: TargetKey, target_key: TargetKey| {
            let group: OrdMap<TargetKey, Arc<Target>> = OrdMap::unit(inner, target(target_key));
            decode(&encode(&OrdMap::unit(TargetGroupId(outer), group)))
        };
        assert!(filed(1, key(1, "i-1", 80), key(1, "i-1", 80)).is_ok());
        for (outer, inner, own) in [
            (1, key(1, "i-2", 80), key(1, "i-1", 80)),
            (1, key(1, "i-1", 81), key(1, "i-1", 80)),
            (1, key(2, "i-1", 80), key(1, "i-1", 80)),
            (1, key(1, "i-1", 80), key(2, "i-1", 80)),
            (2, key(1, "i-1", 80), key(1, "i-1", 80)),
        ] {
            let error = filed(outer, inner.clone(), own.clone()).unwrap_err();
            assert!(error.to_string().contains("is filed under the key"), "{inner} {own}: {error}");
        }
    }
}
