//! One target group's targets, keyed for comparisons that stay beside the
//! targets: in one sorted array for a small group, in a map's nodes for a
//! large one.
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

/// Where a target is kept in its group: its id and port.
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

/// Groups of at most this many targets keep them in one sorted array; a
/// group that grows past it becomes a map. The reference fleet's groups hold
/// 10: an array of 10 is one allocation of their 10 entries, where the map
/// kept one node with room for 16 (29 MiB less at the peak of the 100k
/// fleet's open, BENCHMARKS.md "Small groups in one array"), and a copy of
/// a group copies no more entries than a copy of the map's node did.
const FEW: usize = 16;

/// One target group's targets, in slot order.
#[derive(Clone)]
pub(super) enum GroupTargets {
    /// Up to [`FEW`] targets, sorted by slot, each slot once.
    Few(Arc<[(Slot, Arc<Target>)]>),
    /// More (and a group that shrank back since: it stays a map).
    Many(OrdMap<Slot, Arc<Target>>),
}

impl GroupTargets {
    /// A group of one target.
    pub(super) fn unit(target: &Arc<Target>) -> GroupTargets {
        GroupTargets::Few(Arc::from([(Slot::of(&target.key), target.clone())]))
    }

    /// The group of `entries`, sorted by slot with each slot once.
    fn of_sorted(entries: Vec<(Slot, Arc<Target>)>) -> GroupTargets {
        if entries.len() <= FEW {
            GroupTargets::Few(entries.into())
        } else {
            GroupTargets::Many(OrdMap::from_iter(entries))
        }
    }

    pub(super) fn get(&self, key: &TargetKey) -> Option<&Arc<Target>> {
        let slot = Slot::of(key);
        match self {
            GroupTargets::Few(few) => few.binary_search_by(|(s, _)| s.cmp(&slot)).ok().map(|i| &few[i].1),
            GroupTargets::Many(many) => many.get(&slot),
        }
    }

    /// Puts `target` in its slot: whether the slot was empty.
    pub(super) fn put(&mut self, target: &Arc<Target>) -> bool {
        let slot = Slot::of(&target.key);
        let few = match self {
            GroupTargets::Few(few) => few,
            GroupTargets::Many(many) => return many.insert(slot, target.clone()).is_none(),
        };
        match few.binary_search_by(|(s, _)| s.cmp(&slot)) {
            Ok(i) => {
                match Arc::get_mut(few) {
                    // The group is this state's alone (a replay, a batch's
                    // second change to it): changed in place.
                    Some(entries) => entries[i] = (slot, target.clone()),
                    None => {
                        let mut entries = few.to_vec();
                        entries[i] = (slot, target.clone());
                        *few = entries.into();
                    }
                }
                false
            }
            Err(i) => {
                let mut entries = Vec::with_capacity(few.len() + 1);
                entries.extend_from_slice(&few[..i]);
                entries.push((slot, target.clone()));
                entries.extend_from_slice(&few[i..]);
                *self = GroupTargets::of_sorted(entries);
                true
            }
        }
    }

    /// Takes the target of `key` out: whether it was there.
    pub(super) fn remove(&mut self, key: &TargetKey) -> bool {
        let slot = Slot::of(key);
        match self {
            GroupTargets::Few(few) => match few.binary_search_by(|(s, _)| s.cmp(&slot)) {
                Ok(i) => {
                    let mut entries = few.to_vec();
                    entries.remove(i);
                    *few = entries.into();
                    true
                }
                Err(_) => false,
            },
            GroupTargets::Many(many) => many.remove(&slot).is_some(),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            GroupTargets::Few(few) => few.len(),
            GroupTargets::Many(many) => many.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets, by id and port.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Target>> {
        let (few, many) = match self {
            GroupTargets::Few(few) => (&few[..], None),
            GroupTargets::Many(many) => (&[][..], Some(many)),
        };
        few.iter().map(|(_, target)| target).chain(many.into_iter().flat_map(|many| many.values()))
    }
}

/// Equal when they hold equal targets, whichever way each keeps them (a
/// slot is its target's key).
impl PartialEq for GroupTargets {
    fn eq(&self, other: &GroupTargets) -> bool {
        self.len() == other.len() && self.values().eq(other.values())
    }
}

impl Eq for GroupTargets {}

impl fmt::Debug for GroupTargets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

/// Written as a map from each target's key to the target, as the group's
/// `OrdMap<TargetKey, Arc<Target>>` was: the same bytes, in the same order.
impl Serialize for GroupTargets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for target in self.values() {
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
        let mut targets = Vec::with_capacity(map.size_hint().unwrap_or(0).min(FEW));
        let mut in_order = true;
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
            in_order &= targets.last().is_none_or(|(last, _): &(Slot, _)| *last < own);
            targets.push((own, target));
        }
        if !in_order {
            // Never written so (a group is written in slot order): read as a
            // map reads it, a later entry replacing an earlier one.
            targets = OrdMap::<Slot, Arc<Target>>::from_iter(targets).into_iter().collect();
        }
        Ok(GroupTargets::of_sorted(targets))
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

    /// A group put to, taken from and shared along the way holds what a map
    /// of its keys holds, as an array up to `FEW` targets and a map past
    /// it, and encodes and decodes back to the same targets either way.
    #[test]
    fn a_group_holds_what_a_map_of_its_keys_holds_as_an_array_or_a_map() {
        let mut group = GroupTargets::unit(&target(key(5, "i-0", 80)));
        let mut model: OrdMap<TargetKey, Arc<Target>> = OrdMap::unit(key(5, "i-0", 80), target(key(5, "i-0", 80)));
        let mut kept = Vec::new();
        let long = "x".repeat(40);
        // Then grows to 2 * FEW, shrinks, grows again, empties: each step checked.
        let ids: Vec<String> =
            (0..2 * FEW).map(|i| if i % 5 == 0 { format!("{long}{i}") } else { format!("i-{i}") }).collect();
        // First as an array: puts, puts again to the same slots, takes.
        let mut steps: Vec<(bool, &str)> = ids[..FEW / 2].iter().map(|id| (true, id.as_str())).collect();
        steps.extend(ids[..FEW / 2].iter().rev().map(|id| (true, id.as_str())));
        steps.extend(ids[..FEW / 2].iter().step_by(3).map(|id| (false, id.as_str())));
        steps.extend(ids.iter().map(|id| (true, id.as_str())));
        steps.extend(ids.iter().rev().step_by(2).map(|id| (false, id.as_str())));
        steps.extend(ids.iter().map(|id| (true, id.as_str())));
        steps.extend(ids.iter().map(|id| (false, id.as_str())));
        steps.push((false, "i-0"));
        for (n, &(put, id)) in steps.iter().enumerate() {
            let k = key(5, id, 80);
            if n % 7 == 0 {
                kept.push((group.clone(), model.clone())); // shared: the next change copies
            }
            if put {
                let mut t = (*target(k.clone())).clone();
                t.draining_until = Some(crate::clock::Timestamp(n as u64));
                let t = Arc::new(t);
                assert_eq!(group.put(&t), model.insert(k.clone(), t).is_none(), "step {n}: put {id}");
            } else {
                assert_eq!(group.remove(&k), model.remove(&k).is_some(), "step {n}: remove {id}");
            }
            assert_eq!(group.len(), model.len(), "step {n}");
            assert!(group.values().eq(model.values()), "step {n}: the targets in key order");
            assert_eq!(group.get(&k), model.get(&k), "step {n}");
            if model.len() > FEW {
                assert!(matches!(group, GroupTargets::Many(_)), "step {n}: past FEW, a map");
            } else if n < 2 * FEW {
                assert!(matches!(group, GroupTargets::Few(_)), "step {n}: not yet past FEW, an array");
            }
            let section = OrdMap::unit(TargetGroupId(5), group.clone());
            if !group.is_empty() {
                let back = decode(&encode(&section)).unwrap();
                assert_eq!(back, section, "step {n}: decoded back");
                let many = matches!(back[&TargetGroupId(5)], GroupTargets::Many(_));
                assert_eq!(many, model.len() > FEW, "step {n}: decoded as its size says");
            }
        }
        assert!(group.is_empty());
        // The copies kept along the way were not changed by later steps.
        assert!(kept.len() > 10);
        for (copy, then) in &kept {
            assert!(copy.values().eq(then.values()), "{copy:?}");
        }
        // Equal by their targets, whichever way each keeps them.
        let few = GroupTargets::unit(&target(key(5, "i-1", 80)));
        let mut many = GroupTargets::Many(OrdMap::new());
        assert!(many.put(&target(key(5, "i-1", 80))));
        assert_eq!(few, many);
    }

    /// A group written out of slot order (never written so) reads as a map
    /// of its keys would: sorted, a later entry replacing an earlier one.
    #[test]
    fn a_group_written_out_of_order_reads_as_a_map_of_it_would() {
        use serde::ser::{SerializeMap, Serializer};
        let keys = [
            key(2, "i-b", 80),
            key(2, "i-a", 80),
            key(2, "i-b", 80),
            key(2, "i-a", 79),
            key(2, "i-c", 1),
            key(2, "i-c", 1),
        ];
        let targets: Vec<Arc<Target>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut t = (*target(k.clone())).clone();
                t.draining_until = Some(crate::clock::Timestamp(i as u64));
                Arc::new(t)
            })
            .collect();
        struct Unsorted<'a>(&'a [Arc<Target>]);
        impl Serialize for Unsorted<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for t in self.0 {
                    map.serialize_entry(&t.key, t)?;
                }
                map.end()
            }
        }
        let section = OrdMap::unit(TargetGroupId(2), Unsorted(&targets));
        let back = decode(&encode(&section)).unwrap();
        let model: OrdMap<TargetKey, Arc<Target>> = targets.iter().map(|t| (t.key.clone(), t.clone())).collect();
        let group = &back[&TargetGroupId(2)];
        assert!(group.values().eq(model.values()), "{group:?}");
        assert_eq!(group.get(&keys[0]).unwrap().draining_until, Some(crate::clock::Timestamp(2)), "the later entry");
        assert_eq!(
            group.get(&keys[4]).unwrap().draining_until,
            Some(crate::clock::Timestamp(5)),
            "the later of two in a row"
        );
        assert_eq!(group.len(), 4);
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
