//! One target group's targets: in one sorted array for a small group, in a
//! map's nodes for a large one.
//!
//! A target's id is a [`TargetId`], its text inline when short (instance ids
//! and IP addresses), so a target is held by value: a small group is one
//! allocation holding its targets, a lookup compares ids in place, and a
//! replayed health change overwrites its target where it lies, freeing
//! nothing when the target has no zone and an id that fits inline, as the
//! reference fleet's have (BENCHMARKS.md, "Targets held by value"). Kept in the order
//! `TargetKey` orders one group's keys: by id's text, then by port.
//!
//! The encoding is unchanged: a group's targets are written as the map from
//! `TargetKey` to `Target` they always were.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::elb::{Target, TargetGroupId, TargetId, TargetKey};

/// Where a target is kept in a large group's map: its id and port, in the
/// order `TargetKey` orders one group's keys.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Slot {
    id: TargetId,
    port: u16,
}

impl Slot {
    /// The slot of `key` (its group is the map's).
    pub(super) fn of(key: &TargetKey) -> Slot {
        Slot { id: key.id.clone(), port: key.port }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.id, self.port)
    }
}

/// Where `target` lies against `key` in one group's order.
fn place(target: &Target, key: &TargetKey) -> Ordering {
    target.key.id.cmp(&key.id).then(target.key.port.cmp(&key.port))
}

/// Groups of at most this many targets keep them in one sorted array; a
/// group that grows past it becomes a map. The reference fleet's groups hold
/// 10: an array of 10 is one allocation holding them, where a map kept one
/// node with room for 16 (BENCHMARKS.md "Small groups in one array"), and a
/// copy of a group copies no more entries than a copy of the map's node did.
const FEW: usize = 16;

/// One target group's targets, in key order.
#[derive(Clone)]
pub(super) enum GroupTargets {
    /// Up to [`FEW`] targets, sorted by id and port, each key once.
    Few(Arc<[Target]>),
    /// More (and a group that shrank back since: it stays a map).
    Many(OrdMap<Slot, Target>),
}

impl GroupTargets {
    /// A group of one target.
    pub(super) fn unit(target: &Target) -> GroupTargets {
        GroupTargets::Few(Arc::from([target.clone()]))
    }

    /// The group of `targets`, sorted by key with each key once.
    fn of_sorted(targets: Vec<Target>) -> GroupTargets {
        if targets.len() <= FEW {
            GroupTargets::Few(targets.into())
        } else {
            GroupTargets::Many(targets.into_iter().map(|t| (Slot::of(&t.key), t)).collect())
        }
    }

    pub(super) fn get(&self, key: &TargetKey) -> Option<&Target> {
        match self {
            GroupTargets::Few(few) => few.binary_search_by(|t| place(t, key)).ok().map(|i| &few[i]),
            GroupTargets::Many(many) => many.get(&Slot::of(key)),
        }
    }

    /// Puts `target` in its place: whether the place was empty.
    pub(super) fn put(&mut self, target: &Target) -> bool {
        let few = match self {
            GroupTargets::Few(few) => few,
            GroupTargets::Many(many) => return many.insert(Slot::of(&target.key), target.clone()).is_none(),
        };
        match few.binary_search_by(|t| place(t, &target.key)) {
            Ok(i) => {
                match Arc::get_mut(few) {
                    // The group is this state's alone (a replay, a batch's
                    // second change to it): changed where it lies.
                    Some(targets) => targets[i] = target.clone(),
                    // Shared with an earlier state: copied once, straight
                    // into the new allocation, with `target` in its place.
                    None => {
                        *few = few.iter().enumerate().map(|(j, t)| if j == i { target } else { t }).cloned().collect()
                    }
                }
                false
            }
            Err(i) => {
                let mut targets = Vec::with_capacity(few.len() + 1);
                targets.extend_from_slice(&few[..i]);
                targets.push(target.clone());
                targets.extend_from_slice(&few[i..]);
                *self = GroupTargets::of_sorted(targets);
                true
            }
        }
    }

    /// Takes the target of `key` out: whether it was there.
    pub(super) fn remove(&mut self, key: &TargetKey) -> bool {
        match self {
            GroupTargets::Few(few) => match few.binary_search_by(|t| place(t, key)) {
                Ok(i) => {
                    let mut targets = few.to_vec();
                    targets.remove(i);
                    *few = targets.into();
                    true
                }
                Err(_) => false,
            },
            GroupTargets::Many(many) => many.remove(&Slot::of(key)).is_some(),
        }
    }

    /// Reads every target of a small group (a value to discard), so that
    /// the cache lines its search probes are in cache when it comes.
    pub(super) fn touch(&self) -> u64 {
        match self {
            GroupTargets::Few(few) => few.iter().fold(0, |seen, t| seen ^ u64::from(t.key.port)),
            GroupTargets::Many(_) => 0,
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
    pub(super) fn values(&self) -> impl Iterator<Item = &Target> {
        let (few, many) = match self {
            GroupTargets::Few(few) => (&few[..], None),
            GroupTargets::Many(many) => (&[][..], Some(many)),
        };
        few.iter().chain(many.into_iter().flat_map(|many| many.values()))
    }
}

/// Equal when they hold equal targets, whichever way each keeps them.
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
/// `OrdMap<TargetKey, Arc<Target>>` was before targets were held by value:
/// the same bytes, in the same order.
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
                // In key order, as written; imbl's `From<Vec>` inserts them
                // one by one, as its own decoder of a map does.
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

/// Decodes the targets section's `bytes` as [`Section`] does, except that a
/// group whose bytes are the encoding of `like`'s (the same section of a
/// state in memory) is not decoded: it is `like`'s
/// ([`crate::StateMachine::decode_like`]), unless `like`'s is held as a
/// map that a decode would hold as an array (a group that shrank to
/// [`FEW`] or fewer stays a map), so the groups are held as decoded.
pub(super) fn decode_like(
    bytes: &[u8],
    like: &OrdMap<TargetGroupId, GroupTargets>,
) -> Result<OrdMap<TargetGroupId, GroupTargets>, crate::codec::CodecError> {
    let limit = bytes.len() as u64;
    let as_decoded = |targets: &GroupTargets| matches!(targets, GroupTargets::Few(_)) || targets.len() > FEW;
    super::decode_beside(
        bytes,
        like,
        |rest, targets| as_decoded(targets) && crate::codec::skip_encoding_of(rest, targets),
        |&group, rest| crate::codec::decode_front_seed(rest, limit, Group(group)),
    )
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
        let mut targets: Vec<Target> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(FEW));
        let mut in_order = true;
        while let Some(key) = map.next_key::<TargetKey>()? {
            let target = map.next_value::<Target>()?;
            if key.target_group != self.0 || target.key != key {
                return Err(serde::de::Error::custom(format_args!(
                    "{} is filed under the key {key} of the section's {}",
                    target.key, self.0
                )));
            }
            in_order &= targets.last().is_none_or(|last| place(last, &key) == Ordering::Less);
            targets.push(target);
        }
        if !in_order {
            // Never written so (a group is written in key order): read as a
            // map reads it, a later entry replacing an earlier one.
            let map: OrdMap<Slot, Target> = targets.into_iter().map(|t| (Slot::of(&t.key), t)).collect();
            targets = map.into_iter().map(|(_, t)| t).collect();
        }
        Ok(GroupTargets::of_sorted(targets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(group: u64, id: &str, port: u16) -> TargetKey {
        TargetKey { target_group: TargetGroupId(group), id: id.into(), port }
    }

    fn target(key: TargetKey) -> Target {
        let health = crate::elb::TargetHealth::new(crate::elb::HealthState::Initial, None);
        Target { key, availability_zone: None, health, draining_until: None }
    }

    fn encode<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        crate::codec::encode_into(value, &mut bytes, u64::MAX).unwrap();
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<OrdMap<TargetGroupId, GroupTargets>, crate::codec::CodecError> {
        crate::codec::decode::<Section>(bytes, bytes.len() as u64).map(|section| section.0)
    }

    /// A large group's slots and a small group's search order targets as
    /// `TargetKey` orders one group's keys: by id's text, then by port.
    #[test]
    fn slots_and_places_order_as_their_keys_do() {
        let long = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        let ids = ["", "10.0.0.1", "i-0123456789abcdef0", "i-0123456789abcdef01234", long, "a", "ab", "b", "\u{e9}"];
        let mut keys: Vec<TargetKey> =
            ids.iter().flat_map(|id| [0, 80, 8080, u16::MAX].map(|port| key(7, id, port))).collect();
        keys.sort();
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(Slot::of(a).cmp(&Slot::of(b)), i.cmp(&j), "{a} and {b}");
                assert_eq!(place(&target(a.clone()), b), i.cmp(&j), "{a} and {b}");
            }
        }
    }

    #[test]
    fn a_section_encodes_as_the_maps_of_keys_it_replaced_and_decodes_back() {
        let ids = ["i-0123456789abcdef0", "10.0.0.1", &"x".repeat(100)];
        let (mut section, mut old) = (OrdMap::new(), OrdMap::new());
        for group in [3, 9] {
            let targets: Vec<Target> = ids.iter().map(|id| target(key(group, id, 80))).collect();
            let mut slots = GroupTargets::unit(&targets[0]);
            let mut keys: OrdMap<TargetKey, Target> = OrdMap::new();
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
        let mut model: OrdMap<TargetKey, Target> = OrdMap::unit(key(5, "i-0", 80), target(key(5, "i-0", 80)));
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
                let mut t = target(k.clone());
                t.draining_until = Some(crate::clock::Timestamp(n as u64));
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
        let targets: Vec<Target> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut t = target(k.clone());
                t.draining_until = Some(crate::clock::Timestamp(i as u64));
                t
            })
            .collect();
        struct Unsorted<'a>(&'a [Target]);
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
        let model: OrdMap<TargetKey, Target> = targets.iter().map(|t| (t.key.clone(), t.clone())).collect();
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
            let group: OrdMap<TargetKey, Target> = OrdMap::unit(inner, target(target_key));
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
