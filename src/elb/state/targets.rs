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

use crate::elb::{Target, TargetKey};

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

    /// Whether this is the slot of `key`, in any group.
    fn holds(&self, key: &TargetKey) -> bool {
        self.port == key.port && self.id.as_bytes() == key.id.as_bytes()
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

impl<'de> Deserialize<'de> for GroupTargets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<GroupTargets, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = GroupTargets;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of targets by key")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<GroupTargets, A::Error> {
                let mut targets = OrdMap::new();
                while let Some(slot) = map.next_key::<KeySlot>()? {
                    let target: Arc<Target> = map.next_value()?;
                    if !slot.0.holds(&target.key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "target {} is filed under the key {:?}",
                            target.key, slot.0
                        )));
                    }
                    // The target's own key holds the id: a long id is shared
                    // with it rather than kept twice.
                    targets.insert(Slot::of(&target.key), target);
                }
                Ok(GroupTargets(targets))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// A `TargetKey`'s encoding read as a slot: the id is read in place (no
/// allocation when it fits inline); the group is read and dropped (the map's
/// is the outer key).
struct KeySlot(Slot);

impl<'de> Deserialize<'de> for KeySlot {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeySlot, D::Error> {
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target id")
            }
            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Id, E> {
                Ok(Id::of(id, || id.into()))
            }
        }
        struct IdSeed;
        impl<'de> serde::de::DeserializeSeed<'de> for IdSeed {
            type Value = Id;
            fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Id, D::Error> {
                deserializer.deserialize_str(IdVisitor)
            }
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KeySlot;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target key")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeySlot, A::Error> {
                use serde::de::Error;
                seq.next_element::<crate::elb::TargetGroupId>()?.ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let id = seq.next_element_seed(IdSeed)?.ok_or_else(|| A::Error::invalid_length(1, &self))?;
                let port = seq.next_element::<u16>()?.ok_or_else(|| A::Error::invalid_length(2, &self))?;
                Ok(KeySlot(Slot { id, port }))
            }
        }
        deserializer.deserialize_struct("TargetKey", &["target_group", "id", "port"], Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elb::TargetGroupId;

    fn key(id: &str, port: u16) -> TargetKey {
        TargetKey { target_group: TargetGroupId(7), id: id.into(), port }
    }

    fn target(key: TargetKey) -> Arc<Target> {
        let health = crate::elb::TargetHealth::new(crate::elb::HealthState::Initial, None);
        Arc::new(Target { key, availability_zone: None, health, draining_until: None })
    }

    #[test]
    fn slots_order_as_their_keys_do_inline_or_shared() {
        let long = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        let ids = ["", "10.0.0.1", "i-0123456789abcdef0", "i-0123456789abcdef01234", long, "a", "ab", "b", "\u{e9}"];
        let mut keys: Vec<TargetKey> =
            ids.iter().flat_map(|id| [0, 80, 8080, u16::MAX].map(|port| key(id, port))).collect();
        keys.sort();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(Slot::of(a).cmp(&Slot::of(b)), i.cmp(&j), "{a} and {b}");
            }
        }
        assert!(matches!(Slot::of(&key(long, 1)).id, Id::Shared(_)), "a long id is shared");
        assert!(matches!(Slot::of(&key("i-0123456789abcdef0", 1)).id, Id::Inline { .. }));
    }

    #[test]
    fn a_group_encodes_as_the_map_of_keys_it_replaced_and_decodes_back() {
        let targets: Vec<Arc<Target>> =
            ["i-0123456789abcdef0", "10.0.0.1", &"x".repeat(100)].iter().map(|id| target(key(id, 80))).collect();
        let mut group = GroupTargets::default();
        let mut old: OrdMap<TargetKey, Arc<Target>> = OrdMap::new();
        for target in &targets {
            assert!(group.put(target));
            old.insert(target.key.clone(), target.clone());
        }
        assert!(!group.put(&targets[0]), "the slot was taken");
        let bytes = crate::codec::encode(&group).unwrap();
        assert_eq!(bytes, crate::codec::encode(&old).unwrap());
        let back: GroupTargets = crate::codec::decode(&bytes, bytes.len() as u64).unwrap();
        assert_eq!(back, group);
        assert!(back.values().map(|t| &t.key).eq(old.keys()), "the keys' order");
        let mut back = back;
        assert!(back.remove(&targets[2].key));
        assert!(!back.remove(&targets[2].key), "already taken out");
        assert_eq!(back.len(), 2);
        assert_eq!(back.get(&targets[0].key), Some(&targets[0]));
    }

    #[test]
    fn a_target_filed_under_another_key_is_a_decode_error() {
        let mut wrong: OrdMap<TargetKey, Arc<Target>> = OrdMap::new();
        wrong.insert(key("i-2", 80), target(key("i-1", 80)));
        let bytes = crate::codec::encode(&wrong).unwrap();
        let error = crate::codec::decode::<GroupTargets>(&bytes, bytes.len() as u64).unwrap_err();
        assert!(error.to_string().contains("filed under the key i-2:80"), "{error}");
    }
}
