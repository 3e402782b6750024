//! The ELB state: every resource, and the indexes services look things up by.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};

use super::arn;
use super::event::{ElbEvent, Entity, EntityKey, EntityKind};
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, TrustStoreId};
use super::model::{Listener, LoadBalancer, Rule, Target, TargetGroup, TrustStore};
use crate::store::StateMachine;

mod targets;
use targets::GroupTargets;

/// The state of every ELB resource in one store (one region).
///
/// Maps are structurally shared (`imbl`), so cloning the state, which the
/// store does once per commit group, costs a few reference counts. Snapshots
/// hold only the resources; the indexes are derived from them when first
/// asked for (a name lookup, a planned write), then kept up to date by every
/// change: a state loaded from a snapshot or replayed for time travel that is
/// only read by id never builds them.
#[derive(Clone, Debug, Default)]
pub struct ElbState {
    resources: Resources,
    /// How many targets are registered, in all groups (kept always: counts
    /// are cheap to keep and asked for often).
    target_count: usize,
    /// The indexes, once built.
    index: std::sync::OnceLock<Index>,
}

/// Equal resources; the indexes are built to be compared too, so a test that
/// compares a state kept up to date change by change with one rebuilt from
/// its resources also checks the indexes kept.
impl PartialEq for ElbState {
    fn eq(&self, other: &ElbState) -> bool {
        self.resources == other.resources && self.target_count == other.target_count && self.index() == other.index()
    }
}

impl Eq for ElbState {}

/// The resources themselves: what snapshots hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Resources {
    load_balancers: OrdMap<LoadBalancerId, Arc<LoadBalancer>>,
    listeners: OrdMap<ListenerId, Arc<Listener>>,
    rules: OrdMap<RuleId, Arc<Rule>>,
    target_groups: OrdMap<TargetGroupId, Arc<TargetGroup>>,
    /// Targets under their group: the outer map compares integers, and the
    /// comparisons of target ids stay among one group's targets, held by
    /// value with their ids' text inline when short ([`GroupTargets`]).
    targets: OrdMap<TargetGroupId, GroupTargets>,
    trust_stores: OrdMap<TrustStoreId, Arc<TrustStore>>,
}

/// Everything derivable from the resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Index {
    load_balancer_names: OrdMap<(String, String), LoadBalancerId>,
    target_group_names: OrdMap<(String, String), TargetGroupId>,
    listeners_by_load_balancer: OrdSet<(LoadBalancerId, ListenerId)>,
    rules_by_listener: OrdSet<(ListenerId, RuleId)>,
    target_group_users: OrdSet<(TargetGroupId, EntityKey)>,
    trust_store_names: OrdMap<(String, String), TrustStoreId>,
    /// Listeners whose mutual TLS names a trust store.
    trust_store_users: OrdSet<(TrustStoreId, ListenerId)>,
    /// Application load balancers registered as targets (of `alb` groups).
    load_balancer_targets: OrdSet<(LoadBalancerId, TargetKey)>,
}

impl From<Resources> for ElbState {
    /// Keeps the decoded resource maps as they are; the indexes wait until
    /// they are needed.
    fn from(resources: Resources) -> ElbState {
        let target_count = resources.targets.values().map(GroupTargets::len).sum();
        ElbState { resources, target_count, index: std::sync::OnceLock::new() }
    }
}

// Encoding: a tuple of six sections, each a bincode byte string (u64 length,
// then the bytes) holding the bincode encoding of one map, in this order:
// load balancers, listeners, rules, target groups, targets, trust stores
// (schema 1 had the first five). Each section can
// be found without decoding the others, so a load decodes the target map and
// the rules on a second thread while this one decodes the rest (indexes wait
// for first use). The
// length is computed first (`codec::encoded_len`), so writing still streams.

/// One map, encoded as a byte string: its encoded length, then its encoding.
struct Section<'a, T>(&'a T);

impl<T: Serialize> Serialize for Section<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeTuple};
        let bytes = crate::codec::encoded_len(self.0).map_err(S::Error::custom)?;
        // A u64 length then the bytes: what bincode writes for a byte string.
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&bytes)?;
        tuple.serialize_element(self.0)?;
        tuple.end()
    }
}

impl Serialize for ElbState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let r = &self.resources;
        let mut tuple = serializer.serialize_tuple(SECTIONS)?;
        tuple.serialize_element(&Section(&r.load_balancers))?;
        tuple.serialize_element(&Section(&r.listeners))?;
        tuple.serialize_element(&Section(&r.rules))?;
        tuple.serialize_element(&Section(&r.target_groups))?;
        tuple.serialize_element(&Section(&r.targets))?;
        tuple.serialize_element(&Section(&r.trust_stores))?;
        tuple.end()
    }
}

/// A section's bytes, borrowed from the input when the decoder can lend them.
enum Blob<'de> {
    Borrowed(&'de [u8]),
    Owned(Vec<u8>),
}

impl Blob<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Blob::Borrowed(bytes) => bytes,
            Blob::Owned(bytes) => bytes,
        }
    }

    /// Decodes the one value the section holds, all of its bytes.
    fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::codec::CodecError> {
        let bytes = self.bytes();
        crate::codec::decode(bytes, bytes.len() as u64)
    }

    /// Decodes a section of shared resources by id ([`Shared`]). With
    /// `like`, the same section of a state in memory, a resource whose bytes
    /// are the encoding of `like`'s for its id is not decoded: it is `like`'s.
    fn decode_shared<K, V>(
        &self,
        like: Option<&OrdMap<K, Arc<V>>>,
    ) -> Result<OrdMap<K, Arc<V>>, crate::codec::CodecError>
    where
        K: serde::de::DeserializeOwned + Ord + Clone,
        V: serde::de::DeserializeOwned + Serialize,
    {
        let Some(like) = like else { return Ok(self.decode::<Shared<K, V>>()?.0) };
        let limit = self.bytes().len() as u64;
        decode_beside(
            self.bytes(),
            like,
            |rest, value| crate::codec::skip_encoding_of(rest, &**value),
            |_, rest| Ok(crate::codec::decode_front::<crate::codec::InArc<V>>(rest, limit)?.0),
        )
    }
}

/// Decodes a section's map (`bytes`, in key order as written) beside the
/// same map of a state in memory, `like`, walked in key order with it: for
/// each id, `lend` says whether the bytes from its value on are `like`'s
/// value for that id (and passes over them); if not, `decode` reads the
/// value. Ids out of order, or twice, are decoded, the later one kept, as
/// the plain decode does.
fn decode_beside<'a, K, V>(
    bytes: &'a [u8],
    like: &OrdMap<K, V>,
    lend: impl Fn(&mut &'a [u8], &V) -> bool,
    mut decode: impl FnMut(&K, &mut &'a [u8]) -> Result<V, crate::codec::CodecError>,
) -> Result<OrdMap<K, V>, crate::codec::CodecError>
where
    K: Deserialize<'a> + Ord + Clone,
    V: Clone,
{
    let (mut like, mut map) = (like.iter().peekable(), OrdMap::new());
    crate::codec::read_map(bytes, bytes.len() as u64, |id: K, rest| {
        while like.next_if(|(k, _)| **k < id).is_some() {}
        let value = match like.next_if(|(k, _)| **k == id) {
            Some((_, value)) if lend(rest, value) => value.clone(),
            _ => decode(&id, rest)?,
        };
        map.insert(id, value);
        Ok(())
    })?;
    Ok(map)
}

impl<'de> Deserialize<'de> for Blob<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Blob<'de>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Blob<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a section of bytes")
            }
            fn visit_borrowed_bytes<E>(self, bytes: &'de [u8]) -> Result<Blob<'de>, E> {
                Ok(Blob::Borrowed(bytes))
            }
            fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Blob<'de>, E> {
                Ok(Blob::Owned(bytes.to_vec()))
            }
            fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Blob<'de>, E> {
                Ok(Blob::Owned(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

impl<'de> Deserialize<'de> for ElbState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ElbState, D::Error> {
        DeserializeSeed::deserialize(Like(None), deserializer)
    }
}

/// Decodes an [`ElbState`], keeping from the state it holds each resource
/// (and each group's targets) whose bytes are the encoding of that state's
/// for its id, without decoding them, so that the two states share it
/// ([`StateMachine::decode_like`]). The encoding is deterministic, so the
/// result equals the plain decode's: only where its values live differs
/// (and a group is held as the plain decode holds it: [`targets::decode_like`]).
struct Like<'a>(Option<&'a ElbState>);

impl<'de> DeserializeSeed<'de> for Like<'_> {
    type Value = ElbState;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<ElbState, D::Error> {
        deserializer.deserialize_tuple(SECTIONS, self)
    }
}

impl<'de> serde::de::Visitor<'de> for Like<'_> {
    type Value = ElbState;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("six sections of ELB resources")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ElbState, A::Error> {
        use serde::de::Error;
        let mut sections = Vec::with_capacity(SECTIONS);
        for i in 0..SECTIONS {
            sections.push(seq.next_element::<Blob<'de>>()?.ok_or_else(|| A::Error::invalid_length(i, &self))?);
        }
        decode_sections(&sections, self.0.map(|like| &like.resources)).map_err(A::Error::custom)
    }
}

/// Sections of the encoding.
const SECTIONS: usize = 6;

/// A targets section smaller than this is decoded on the calling thread:
/// starting a thread would cost more than it saves.
const PARALLEL_SECTION_BYTES: usize = 1 << 20;

/// Decodes the six sections: the targets on a second thread (when they are
/// large), the rest on this one. A plain decode (an open) decodes the rules
/// beside the targets too; decoded like a state in memory (time travel),
/// the targets take as long as the other five sections together, so the
/// rules stay on this thread (BENCHMARKS.md, "Time travel on both
/// cores").
/// With `like`, each resource encoded as `like`'s is `like`'s ([`Like`]).
fn decode_sections(sections: &[Blob<'_>], like: Option<&Resources>) -> Result<ElbState, crate::codec::CodecError> {
    type Second = (OrdMap<TargetGroupId, GroupTargets>, Option<OrdMap<RuleId, Arc<Rule>>>);
    let rules_beside_targets = like.is_none();
    let rules = || sections[2].decode_shared(like.map(|r| &r.rules));
    let second = || -> Result<Second, crate::codec::CodecError> {
        let targets = match like {
            Some(like) => targets::decode_like(sections[4].bytes(), &like.targets)?,
            None => sections[4].decode::<targets::Section>()?.0,
        };
        Ok((targets, if rules_beside_targets { Some(rules()?) } else { None }))
    };
    let first = || -> Result<Resources, crate::codec::CodecError> {
        let mut resources = decode_first(sections, like)?;
        if !rules_beside_targets {
            resources.rules = rules()?;
        }
        Ok(resources)
    };
    let join = |first: Result<Resources, _>, second: Result<Second, _>| {
        let mut resources = first?;
        let (targets, rules) = second?;
        resources.targets = targets;
        if let Some(rules) = rules {
            resources.rules = rules;
        }
        Ok(ElbState::from(resources))
    };
    if sections[4].bytes().len() < PARALLEL_SECTION_BYTES {
        return join(first(), second());
    }
    std::thread::scope(|scope| {
        let other = scope.spawn(second);
        let first = first();
        join(first, other.join().expect("decoding a section does not panic"))
    })
}

/// Every section but the targets' and the rules'.
fn decode_first(sections: &[Blob<'_>], like: Option<&Resources>) -> Result<Resources, crate::codec::CodecError> {
    Ok(Resources {
        load_balancers: sections[0].decode_shared(like.map(|r| &r.load_balancers))?,
        listeners: sections[1].decode_shared(like.map(|r| &r.listeners))?,
        rules: OrdMap::new(),
        target_groups: sections[3].decode_shared(like.map(|r| &r.target_groups))?,
        targets: OrdMap::new(),
        trust_stores: sections[5].decode_shared(like.map(|r| &r.trust_stores))?,
    })
}

/// A section of resources by id, each decoded straight into its `Arc`
/// (`codec::arc`): the encoding of the `OrdMap<K, Arc<V>>` it holds.
struct Shared<K, V>(OrdMap<K, Arc<V>>);

impl<'de, K, V> Deserialize<'de> for Shared<K, V>
where
    K: Deserialize<'de> + Ord + Clone,
    V: Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Shared<K, V>, D::Error> {
        struct Visitor<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K, V> serde::de::Visitor<'de> for Visitor<K, V>
        where
            K: Deserialize<'de> + Ord + Clone,
            V: Deserialize<'de>,
        {
            type Value = Shared<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of resources by id")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Shared<K, V>, A::Error> {
                let mut resources = OrdMap::new();
                while let Some((id, crate::codec::InArc(value))) = map.next_entry::<K, crate::codec::InArc<V>>()? {
                    resources.insert(id, value);
                }
                Ok(Shared(resources))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// How many resources of each kind there are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Load balancers.
    pub load_balancers: usize,
    /// Listeners.
    pub listeners: usize,
    /// Listener rules.
    pub rules: usize,
    /// Target groups.
    pub target_groups: usize,
    /// Registered targets.
    pub targets: usize,
    /// Trust stores.
    pub trust_stores: usize,
}

impl Counts {
    /// The count for one kind.
    pub fn of(&self, kind: EntityKind) -> usize {
        match kind {
            EntityKind::LoadBalancer => self.load_balancers,
            EntityKind::Listener => self.listeners,
            EntityKind::Rule => self.rules,
            EntityKind::TargetGroup => self.target_groups,
            EntityKind::Target => self.targets,
            EntityKind::TrustStore => self.trust_stores,
        }
    }
}

impl StateMachine for ElbState {
    type Event = ElbEvent;
    /// The ELB model's schema version. Raising it follows docs/FORMAT.md
    /// ("How to change the model"): the types as they were go, frozen, into
    /// `src/elb/schema/v<N>.rs`, and `upcast_event` reads them.
    /// `tests/fixtures/v1/` holds a store written at version 1, `v2/` one at
    /// version 2 (the ELBv2 fidelity model: trust stores, listener
    /// attributes and mTLS, default certificates, health reasons).
    const SCHEMA_VERSION: u8 = 2;

    fn upcast_event(
        version: u8,
        old: &mut crate::codec::OldBytes<'_>,
    ) -> Result<Vec<ElbEvent>, crate::codec::CodecError> {
        match version {
            1 => Ok(super::schema::upcast_v1(old.decode()?)),
            _ => Err(crate::codec::CodecError::no_upcaster(version.into(), Self::SCHEMA_VERSION)),
        }
    }

    /// Each resource, and each group's targets, encoded as `like`'s is
    /// `like`'s, not decoded: a past state shares them with the head.
    fn decode_like(
        like: &ElbState,
        bytes: &mut crate::codec::OldBytes<'_>,
    ) -> Result<ElbState, crate::codec::CodecError> {
        bytes.decode_seed(Like(Some(like)))
    }

    fn upcast_state(
        version: u8,
        old: &mut crate::codec::OldBytes<'_>,
    ) -> Result<Option<ElbState>, crate::codec::CodecError> {
        match version {
            1 => super::schema::upcast_state_v1(old).map(Some),
            _ => Err(crate::codec::CodecError::no_upcaster(version.into(), Self::SCHEMA_VERSION)),
        }
    }

    /// A live head keeps its indexes built (the first write after an open
    /// builds them), so every view the store publishes after it has them.
    fn committed(&mut self) {
        self.build_indexes();
    }

    fn apply(&mut self, event: &ElbEvent) {
        match event {
            // Health changes are most of the traffic and touch no index.
            ElbEvent::Updated { after: Entity::Target(t), .. } => self.put_target(t),
            _ => {
                if let Some(before) = event.before() {
                    self.remove(before);
                }
                if let Some(after) = event.after() {
                    self.insert(after);
                }
            }
        }
    }

    /// 262,144 health changes visit about 93% of 100,000 target groups (runs
    /// of 65,536 visited half, and replayed slower than one event at a
    /// time); the decoded run, about 90 MiB of health changes, mostly reuses
    /// memory the snapshot's load has just given back (BENCHMARKS.md,
    /// "Replay in target group order").
    const REPLAY_RUN_EVENTS: usize = 1 << 18;

    /// Events on targets are applied after the others, in the order of their
    /// target groups (one target's events keep their order): a replay's
    /// health changes then walk the targets map and the memory it was
    /// decoded into front to back, rather than one random group after
    /// another, each a chain of cache misses (BENCHMARKS.md, "Replay in
    /// target group order").
    ///
    /// The result is the state applying each in turn gives: an event on a
    /// target changes only that target (in its group's entry of the targets
    /// map), the count of targets and that target's index entry, and an
    /// event on anything else changes none of them, so events on different
    /// targets, and a target's event and another kind's, commute. (Events on
    /// other kinds do not all commute, names being unique: they keep their
    /// order.)
    ///
    /// An update from a target to another kind of entity or back (no
    /// command makes one) changes a target and something else at once: a
    /// run holding one is applied each event in turn.
    fn apply_run(&mut self, events: &[ElbEvent]) {
        let mut on_targets: Vec<(TargetGroupId, usize)> = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            match touches(event) {
                Touches::Target(group) => on_targets.push((group, i)),
                Touches::Other => {}
                Touches::Both => {
                    for event in events {
                        self.apply(event);
                    }
                    return;
                }
            }
        }
        // The others first, in order (`on_targets` is still in run order).
        let mut targets = on_targets.iter().map(|&(_, i)| i).peekable();
        for (i, event) in events.iter().enumerate() {
            if targets.next_if_eq(&i).is_none() {
                self.apply(event);
            }
        }
        // By group, then by place in the run: one target's events stay in
        // order. A window's memory is read first, its misses in flight
        // together, then its events applied.
        on_targets.sort_unstable();
        for window in on_targets.chunks(TOUCH_WINDOW) {
            self.touch(window.iter().map(|&(group, i)| (group, &events[i])));
            for &(_, i) in window {
                self.apply(&events[i]);
            }
        }
    }

    /// As [`apply_run`](ElbState::apply_run), the other way round: the
    /// events on no target are undone first, last first, then the events on
    /// targets by target group, each group's last first (one target's events
    /// are undone in the reverse of their order). The result is the state
    /// undoing each in turn, last first, gives (BENCHMARKS.md, "The undo in
    /// target group order").
    fn undo_run(&mut self, events: &[ElbEvent]) -> bool {
        use std::cmp::Reverse;
        // (group, place in the run, reversed): sorted, a group's events come last first.
        let mut on_targets: Vec<(TargetGroupId, Reverse<usize>)> = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate().rev() {
            match touches(event) {
                Touches::Target(group) => on_targets.push((group, Reverse(i))),
                Touches::Other => {}
                Touches::Both => return events.iter().rev().all(|event| self.undo(event)),
            }
        }
        // The others first, last first (`on_targets` is in that order too).
        let mut targets = on_targets.iter().map(|&(_, Reverse(i))| i).peekable();
        for (i, event) in events.iter().enumerate().rev() {
            if targets.next_if_eq(&i).is_none() {
                self.undo(event);
            }
        }
        on_targets.sort_unstable();
        for window in on_targets.chunks(TOUCH_WINDOW) {
            self.touch(window.iter().map(|&(group, Reverse(i))| (group, &events[i])));
            for &(_, Reverse(i)) in window {
                self.undo(&events[i]);
            }
        }
        true
    }

    /// Every event keeps the whole value before and after it, so undoing one
    /// is applying it the other way round: `apply(&event.inverse())`, without
    /// cloning the values.
    fn undo(&mut self, event: &ElbEvent) -> bool {
        match event {
            ElbEvent::Updated { before: Entity::Target(t), .. } => self.put_target(t),
            _ => {
                if let Some(after) = event.after() {
                    self.remove(after);
                }
                if let Some(before) = event.before() {
                    self.insert(before);
                }
            }
        }
        true
    }
}

/// Events on targets whose memory a replay reads at once, before applying
/// them (BENCHMARKS.md, "Misses in flight", "A replay's misses overlapped").
const TOUCH_WINDOW: usize = 16;

/// What an event changes, for [`ElbState::apply_run`].
enum Touches {
    /// A target of this group, and nothing else.
    Target(TargetGroupId),
    /// No target.
    Other,
    /// A target and another kind of entity.
    Both,
}

/// What `event` changes, from the kinds of its values alone. An update of a
/// target changes the target its value after names (`apply` puts that
/// value).
fn touches(event: &ElbEvent) -> Touches {
    match (event.before(), event.after()) {
        (None | Some(Entity::Target(_)), Some(Entity::Target(t))) | (Some(Entity::Target(t)), None) => {
            Touches::Target(t.key.target_group)
        }
        (Some(Entity::Target(_)), Some(_)) | (Some(_), Some(Entity::Target(_))) => Touches::Both,
        _ => Touches::Other,
    }
}

fn users(actions: &[super::model::Action]) -> impl Iterator<Item = TargetGroupId> + '_ {
    actions.iter().flat_map(|a| a.target_groups())
}

/// The trust store a listener's mutual TLS verifies with.
fn trust_store_of(listener: &Listener) -> Option<TrustStoreId> {
    listener.mutual_authentication.as_ref().and_then(|m| m.trust_store)
}

/// The ids an index by (account, name) holds for one account, by name.
fn of_account<'a, V>(names: &'a OrdMap<(String, String), V>, account: &'a str) -> impl Iterator<Item = &'a V> + 'a {
    names.range((account.to_owned(), String::new())..).take_while(move |((a, _), _)| a == account).map(|(_, id)| id)
}

impl Index {
    fn insert(&mut self, entity: &Entity) {
        match entity {
            Entity::LoadBalancer(lb) => {
                self.load_balancer_names.insert((lb.account.clone(), lb.name.clone()), lb.id);
            }
            Entity::Listener(l) => {
                self.listeners_by_load_balancer.insert((l.load_balancer, l.id));
                for tg in users(&l.default_actions) {
                    self.target_group_users.insert((tg, EntityKey::Listener(l.id)));
                }
                if let Some(ts) = trust_store_of(l) {
                    self.trust_store_users.insert((ts, l.id));
                }
            }
            Entity::Rule(rule) => {
                self.rules_by_listener.insert((rule.listener, rule.id));
                for tg in users(&rule.actions) {
                    self.target_group_users.insert((tg, EntityKey::Rule(rule.id)));
                }
            }
            Entity::TargetGroup(tg) => {
                self.target_group_names.insert((tg.account.clone(), tg.name.clone()), tg.id);
            }
            Entity::Target(t) => self.insert_target(&t.key),
            Entity::TrustStore(ts) => {
                self.trust_store_names.insert((ts.account.clone(), ts.name.clone()), ts.id);
            }
        }
    }

    /// Every index of `resources`: each resource indexed as its insertion is.
    fn of(r: &Resources) -> Index {
        let mut index = Index::default();
        r.load_balancers.values().for_each(|lb| index.insert(&Entity::LoadBalancer(lb.clone())));
        r.listeners.values().for_each(|l| index.insert(&Entity::Listener(l.clone())));
        r.rules.values().for_each(|rule| index.insert(&Entity::Rule(rule.clone())));
        r.target_groups.values().for_each(|tg| index.insert(&Entity::TargetGroup(tg.clone())));
        r.trust_stores.values().for_each(|ts| index.insert(&Entity::TrustStore(ts.clone())));
        r.targets.values().flat_map(GroupTargets::values).for_each(|t| index.insert_target(&t.key));
        index
    }

    /// Indexes a target that is a load balancer (of an `alb` group).
    fn insert_target(&mut self, key: &TargetKey) {
        if let Some(lb) = arn::load_balancer_id_of(&key.id) {
            self.load_balancer_targets.insert((lb, key.clone()));
        }
    }

    fn remove(&mut self, entity: &Entity) {
        match entity {
            Entity::LoadBalancer(lb) => {
                self.load_balancer_names.remove(&(lb.account.clone(), lb.name.clone()));
            }
            Entity::Listener(l) => {
                self.listeners_by_load_balancer.remove(&(l.load_balancer, l.id));
                for tg in users(&l.default_actions) {
                    self.target_group_users.remove(&(tg, EntityKey::Listener(l.id)));
                }
                if let Some(ts) = trust_store_of(l) {
                    self.trust_store_users.remove(&(ts, l.id));
                }
            }
            Entity::Rule(rule) => {
                self.rules_by_listener.remove(&(rule.listener, rule.id));
                for tg in users(&rule.actions) {
                    self.target_group_users.remove(&(tg, EntityKey::Rule(rule.id)));
                }
            }
            Entity::TargetGroup(tg) => {
                self.target_group_names.remove(&(tg.account.clone(), tg.name.clone()));
            }
            Entity::Target(t) => {
                if let Some(lb) = arn::load_balancer_id_of(&t.key.id) {
                    self.load_balancer_targets.remove(&(lb, t.key.clone()));
                }
            }
            Entity::TrustStore(ts) => {
                self.trust_store_names.remove(&(ts.account.clone(), ts.name.clone()));
            }
        }
    }
}

impl ElbState {
    /// Builds the indexes now if they were not yet, so that copies of this
    /// state made after it carry them (a planner that copies it repeatedly).
    pub(crate) fn build_indexes(&self) {
        self.index();
    }

    /// The indexes, built now if they were not yet.
    fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::of(&self.resources))
    }

    fn insert(&mut self, entity: &Entity) {
        if let Some(index) = self.index.get_mut() {
            index.insert(entity);
        }
        let r = &mut self.resources;
        match entity {
            Entity::LoadBalancer(lb) => {
                r.load_balancers.insert(lb.id, lb.clone());
            }
            Entity::Listener(l) => {
                r.listeners.insert(l.id, l.clone());
            }
            Entity::Rule(rule) => {
                r.rules.insert(rule.id, rule.clone());
            }
            Entity::TargetGroup(tg) => {
                r.target_groups.insert(tg.id, tg.clone());
            }
            Entity::Target(t) => self.put_target(t),
            Entity::TrustStore(ts) => {
                r.trust_stores.insert(ts.id, ts.clone());
            }
        }
    }

    /// Reads what applying these target events will: each event's target
    /// and every target of its group (a port each, so every cache line of
    /// a small group's array, where its search will probe).
    /// Each read waits for nothing but the lookup before it, so their cache
    /// misses are in flight together, where applying the events one by one
    /// waits for each in turn. Changes nothing.
    fn touch<'a>(&self, events: impl Iterator<Item = (TargetGroupId, &'a ElbEvent)>) {
        let mut groups: Vec<&GroupTargets> = Vec::with_capacity(TOUCH_WINDOW);
        let mut seen = 0u64;
        let mut last = None;
        for (group, event) in events {
            if let Some(Entity::Target(t)) = event.after() {
                seen ^= u64::from(t.key.port);
            }
            if last != Some(group) {
                last = Some(group);
                groups.extend(self.resources.targets.get(&group));
            }
        }
        for targets in groups {
            seen ^= targets.touch();
        }
        std::hint::black_box(seen);
    }

    fn put_target(&mut self, target: &Target) {
        let group = target.key.target_group;
        let added = match self.resources.targets.get_mut(&group) {
            Some(targets) => targets.put(target),
            None => {
                self.resources.targets.insert(group, GroupTargets::unit(target));
                true
            }
        };
        if added {
            self.target_count += 1;
        }
    }

    fn remove(&mut self, entity: &Entity) {
        if let Some(index) = self.index.get_mut() {
            index.remove(entity);
        }
        let r = &mut self.resources;
        match entity {
            Entity::LoadBalancer(lb) => {
                r.load_balancers.remove(&lb.id);
            }
            Entity::Listener(l) => {
                r.listeners.remove(&l.id);
            }
            Entity::Rule(rule) => {
                r.rules.remove(&rule.id);
            }
            Entity::TargetGroup(tg) => {
                r.target_groups.remove(&tg.id);
            }
            Entity::Target(t) => {
                let group = t.key.target_group;
                let (removed, emptied) = match r.targets.get_mut(&group) {
                    Some(targets) => (targets.remove(&t.key), targets.is_empty()),
                    None => (false, false),
                };
                if emptied {
                    r.targets.remove(&group);
                }
                if removed {
                    self.target_count -= 1;
                }
            }
            Entity::TrustStore(ts) => {
                r.trust_stores.remove(&ts.id);
            }
        }
    }

    /// A load balancer by id.
    pub fn load_balancer(&self, id: LoadBalancerId) -> Option<&Arc<LoadBalancer>> {
        self.resources.load_balancers.get(&id)
    }

    /// A load balancer by account and name.
    pub fn load_balancer_by_name(&self, account: &str, name: &str) -> Option<&Arc<LoadBalancer>> {
        let id = self.index().load_balancer_names.get(&(account.to_owned(), name.to_owned()))?;
        self.load_balancer(*id)
    }

    /// Every load balancer, by id.
    pub fn load_balancers(&self) -> impl Iterator<Item = &Arc<LoadBalancer>> {
        self.resources.load_balancers.values()
    }

    /// How many load balancers an account has.
    pub fn load_balancer_count(&self, account: &str) -> usize {
        of_account(&self.index().load_balancer_names, account).count()
    }

    /// A listener by id.
    pub fn listener(&self, id: ListenerId) -> Option<&Arc<Listener>> {
        self.resources.listeners.get(&id)
    }

    /// The listeners of a load balancer, by id.
    pub fn listeners_of(&self, lb: LoadBalancerId) -> impl Iterator<Item = &Arc<Listener>> {
        self.index()
            .listeners_by_load_balancer
            .range((lb, ListenerId(0))..=(lb, ListenerId(u64::MAX)))
            .filter_map(|(_, id)| self.resources.listeners.get(id))
    }

    /// A rule by id.
    pub fn rule(&self, id: RuleId) -> Option<&Arc<Rule>> {
        self.resources.rules.get(&id)
    }

    /// The rules of a listener, by id.
    pub fn rules_of(&self, listener: ListenerId) -> impl Iterator<Item = &Arc<Rule>> {
        self.index()
            .rules_by_listener
            .range((listener, RuleId(0))..=(listener, RuleId(u64::MAX)))
            .filter_map(|(_, id)| self.resources.rules.get(id))
    }

    /// A target group by id.
    pub fn target_group(&self, id: TargetGroupId) -> Option<&Arc<TargetGroup>> {
        self.resources.target_groups.get(&id)
    }

    /// A target group by account and name.
    pub fn target_group_by_name(&self, account: &str, name: &str) -> Option<&Arc<TargetGroup>> {
        let id = self.index().target_group_names.get(&(account.to_owned(), name.to_owned()))?;
        self.target_group(*id)
    }

    /// Every target group, by id.
    pub fn target_groups(&self) -> impl Iterator<Item = &Arc<TargetGroup>> {
        self.resources.target_groups.values()
    }

    /// How many target groups an account has.
    pub fn target_group_count(&self, account: &str) -> usize {
        of_account(&self.index().target_group_names, account).count()
    }

    /// The target groups of an account, by name.
    pub fn target_groups_of_account<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a Arc<TargetGroup>> + 'a {
        of_account(&self.index().target_group_names, account).filter_map(|id| self.resources.target_groups.get(id))
    }

    /// A registered target.
    pub fn target(&self, key: &TargetKey) -> Option<&Target> {
        self.resources.targets.get(&key.target_group)?.get(key)
    }

    /// The targets registered in a group, by id and port.
    pub fn targets_of(&self, tg: TargetGroupId) -> impl Iterator<Item = &Target> {
        self.resources.targets.get(&tg).into_iter().flat_map(|targets| targets.values())
    }

    /// The listeners and rules that forward to a target group.
    pub fn users_of(&self, tg: TargetGroupId) -> impl Iterator<Item = &EntityKey> {
        let from = (tg, EntityKey::LoadBalancer(LoadBalancerId(0)));
        self.index().target_group_users.range(from..).take_while(move |(g, _)| *g == tg).map(|(_, key)| key)
    }

    /// The load balancers whose listeners or rules forward to a target group.
    pub fn load_balancers_using(&self, tg: TargetGroupId) -> Vec<LoadBalancerId> {
        let mut out: Vec<LoadBalancerId> = self
            .users_of(tg)
            .filter_map(|user| match user {
                EntityKey::Listener(id) => self.listener(*id).map(|l| l.load_balancer),
                EntityKey::Rule(id) => self.rule(*id).and_then(|r| self.listener(r.listener)).map(|l| l.load_balancer),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Any resource by key.
    pub fn entity(&self, key: &EntityKey) -> Option<Entity> {
        let r = &self.resources;
        match key {
            EntityKey::LoadBalancer(id) => r.load_balancers.get(id).cloned().map(Entity::LoadBalancer),
            EntityKey::Listener(id) => r.listeners.get(id).cloned().map(Entity::Listener),
            EntityKey::Rule(id) => r.rules.get(id).cloned().map(Entity::Rule),
            EntityKey::TargetGroup(id) => r.target_groups.get(id).cloned().map(Entity::TargetGroup),
            EntityKey::Target(key) => self.target(key).map(|t| Entity::Target(t.clone())),
            EntityKey::TrustStore(id) => r.trust_stores.get(id).cloned().map(Entity::TrustStore),
        }
    }

    /// Every resource of one kind, in key order.
    pub fn entities(&self, kind: EntityKind) -> Box<dyn Iterator<Item = Entity> + '_> {
        let r = &self.resources;
        match kind {
            EntityKind::LoadBalancer => Box::new(r.load_balancers.values().cloned().map(Entity::LoadBalancer)),
            EntityKind::Listener => Box::new(r.listeners.values().cloned().map(Entity::Listener)),
            EntityKind::Rule => Box::new(r.rules.values().cloned().map(Entity::Rule)),
            EntityKind::TargetGroup => Box::new(r.target_groups.values().cloned().map(Entity::TargetGroup)),
            EntityKind::Target => {
                Box::new(r.targets.values().flat_map(|targets| targets.values().map(|t| Entity::Target(t.clone()))))
            }
            EntityKind::TrustStore => Box::new(r.trust_stores.values().cloned().map(Entity::TrustStore)),
        }
    }

    /// How many resources of each kind there are.
    pub fn counts(&self) -> Counts {
        let r = &self.resources;
        Counts {
            load_balancers: r.load_balancers.len(),
            listeners: r.listeners.len(),
            rules: r.rules.len(),
            target_groups: r.target_groups.len(),
            targets: self.target_count,
            trust_stores: r.trust_stores.len(),
        }
    }

    /// The region the store's load balancers were made in, as their DNS
    /// names say (`None` when there are none).
    pub fn region(&self) -> Option<&str> {
        self.resources.load_balancers.values().next().and_then(|lb| arn::region_of_dns_name(&lb.dns_name))
    }

    /// The ARN of a resource, as the API gives it, in `region` (targets have none).
    pub fn arn(&self, region: &str, key: &EntityKey) -> Option<String> {
        match key {
            EntityKey::LoadBalancer(id) => {
                let lb = self.load_balancer(*id)?;
                Some(arn::load_balancer(region, &lb.account, lb.load_balancer_type, &lb.name, *id))
            }
            EntityKey::Listener(id) => {
                let listener = self.listener(*id)?;
                let lb = self.load_balancer(listener.load_balancer)?;
                Some(arn::listener(region, &lb.account, lb.load_balancer_type, &lb.name, lb.id, *id))
            }
            EntityKey::Rule(id) => {
                let rule = self.rule(*id)?;
                let listener = self.listener(rule.listener)?;
                let lb = self.load_balancer(listener.load_balancer)?;
                Some(arn::rule(region, &lb.account, lb.load_balancer_type, &lb.name, (lb.id, listener.id, *id)))
            }
            EntityKey::TargetGroup(id) => {
                let tg = self.target_group(*id)?;
                Some(arn::target_group(region, &tg.account, &tg.name, *id))
            }
            EntityKey::TrustStore(id) => {
                let ts = self.trust_store(*id)?;
                Some(arn::trust_store(region, &ts.account, &ts.name, *id))
            }
            EntityKey::Target(_) => None,
        }
    }

    /// The resource an ARN names, when it exists in this state and the ARN
    /// agrees with it in every part (region, account, type, name, parents).
    pub fn resolve_arn(&self, region: &str, text: &str) -> Option<EntityKey> {
        let parsed = arn::Arn::parse(text)?;
        let key = match parsed.resource {
            arn::Resource::LoadBalancer { id } => EntityKey::LoadBalancer(id),
            arn::Resource::Listener { id, .. } => EntityKey::Listener(id),
            arn::Resource::Rule { id, .. } => EntityKey::Rule(id),
            arn::Resource::TargetGroup { id } => EntityKey::TargetGroup(id),
            arn::Resource::TrustStore { id } => EntityKey::TrustStore(id),
        };
        (self.arn(region, &key)? == text).then_some(key)
    }

    /// How many targets a group has.
    pub fn target_count_of(&self, tg: TargetGroupId) -> usize {
        self.resources.targets.get(&tg).map_or(0, GroupTargets::len)
    }

    /// A trust store by id.
    pub fn trust_store(&self, id: TrustStoreId) -> Option<&Arc<TrustStore>> {
        self.resources.trust_stores.get(&id)
    }

    /// A trust store by account and name.
    pub fn trust_store_by_name(&self, account: &str, name: &str) -> Option<&Arc<TrustStore>> {
        let id = self.index().trust_store_names.get(&(account.to_owned(), name.to_owned()))?;
        self.trust_store(*id)
    }

    /// Every trust store, by id.
    pub fn trust_stores(&self) -> impl Iterator<Item = &Arc<TrustStore>> {
        self.resources.trust_stores.values()
    }

    /// How many trust stores an account has.
    pub fn trust_store_count(&self, account: &str) -> usize {
        of_account(&self.index().trust_store_names, account).count()
    }

    /// The listeners whose mutual TLS uses a trust store.
    pub fn trust_store_users(&self, ts: TrustStoreId) -> impl Iterator<Item = &Arc<Listener>> {
        self.index()
            .trust_store_users
            .range((ts, ListenerId(0))..=(ts, ListenerId(u64::MAX)))
            .filter_map(|(_, id)| self.resources.listeners.get(id))
    }

    /// Where a load balancer is registered as a target (of `alb` target groups).
    pub fn registrations_of(&self, lb: LoadBalancerId) -> impl Iterator<Item = &TargetKey> {
        let from = (lb, TargetKey { target_group: TargetGroupId(0), id: "".into(), port: 0 });
        self.index().load_balancer_targets.range(from..).take_while(move |(l, _)| *l == lb).map(|(_, key)| key)
    }

    /// The load balancers of an account, by name.
    pub fn load_balancers_of<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a Arc<LoadBalancer>> + 'a {
        of_account(&self.index().load_balancer_names, account).filter_map(|id| self.resources.load_balancers.get(id))
    }

    /// The target groups the listeners and rules of a load balancer forward to.
    pub fn target_groups_of(&self, lb: LoadBalancerId) -> std::collections::BTreeSet<TargetGroupId> {
        let mut out = std::collections::BTreeSet::new();
        for listener in self.listeners_of(lb) {
            out.extend(users(&listener.default_actions));
            for rule in self.rules_of(listener.id) {
                out.extend(users(&rule.actions));
            }
        }
        out
    }

    /// The targets registered in the groups a load balancer forwards to.
    pub fn targets_behind(&self, lb: LoadBalancerId) -> usize {
        self.target_groups_of(lb).into_iter().map(|tg| self.target_count_of(tg)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::elb::{fleet, plan::plan_folded, Settings};
    use crate::store::TxnContext;

    fn fleet_state(n: u64) -> ElbState {
        let mut state = ElbState::default();
        for i in 0..n {
            let ctx = TxnContext { seq: i + 1, time: Timestamp::from_secs(1_000 + i) };
            let (_, _, after) =
                plan_folded(&state, &fleet::reference_commands(i, ctx.seq), &ctx, &Settings::in_region("us-east-1"))
                    .unwrap();
            state = after;
        }
        state
    }

    #[test]
    fn the_encoding_is_six_sections_each_decodable_alone() {
        let state = fleet_state(3);
        let mut bytes = Vec::new();
        crate::codec::encode_into(&state, &mut bytes, u64::MAX).unwrap();
        // Section 1: the load balancers, a byte string.
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let lbs: OrdMap<LoadBalancerId, Arc<LoadBalancer>> = crate::codec::decode(&bytes[8..8 + len], 1 << 20).unwrap();
        assert_eq!(lbs.len(), 3);
        let back: ElbState = crate::codec::decode(&bytes, 1 << 24).unwrap();
        assert_eq!(back, state, "resources and rebuilt indexes");
        assert_eq!(back.counts().targets, 30);
    }

    #[test]
    fn a_state_decoded_like_another_shares_what_is_equal_and_equals_the_plain_decode() {
        use crate::elb::{Command, Taggable, TargetSpec};
        let settings = Settings::in_region("us-east-1");
        let change = |state: &ElbState, seq: u64, changes: &[Command]| {
            let ctx = TxnContext { seq, time: Timestamp::from_secs(9_000 + seq) };
            plan_folded(state, changes, &ctx, &settings).unwrap().2
        };
        // The state written: 40 load balancers; load balancer 1 deleted and
        // its group emptied (the head still has both, ids below those that
        // follow), load balancer 2 tagged (the head has it untagged).
        let mut state = fleet_state(40);
        let (lb1, lb2) = (state.load_balancers().nth(1).unwrap().id, state.load_balancers().nth(2).unwrap().id);
        let tg1 = state.target_groups().nth(1).unwrap().id;
        let targets1 = (0..fleet::TARGETS_PER_GROUP).map(|t| TargetSpec::new(fleet::target_id(1, t))).collect();
        let tags = [("team".to_string(), "edge".to_string())].into();
        state = change(&state, 41, &[Command::DeleteLoadBalancer { load_balancer: lb1 }]);
        state = change(&state, 42, &[Command::DeregisterTargets { target_group: tg1, targets: targets1 }]);
        state = change(&state, 43, &[Command::AddTags { resources: vec![Taggable::LoadBalancer(lb2)], tags }]);
        assert!(state.resources.targets.get(&tg1).is_none(), "an emptied group has no entry");
        let mut bytes = Vec::new();
        crate::codec::encode_into(&state, &mut bytes, u64::MAX).unwrap();
        let decode_like = |like: &ElbState| {
            let mut old = crate::codec::OldBytes::new(&bytes, bytes.len() as u64);
            let back = ElbState::decode_like(like, &mut old).unwrap();
            assert_eq!(old.remaining(), 0);
            back
        };
        // The head: 60 load balancers as built, one group's health changed,
        // load balancer 5 deleted.
        let mut later = fleet_state(60);
        let (tg, i) = (later.target_groups().nth(3).unwrap().id, 3);
        let lb5 = later.load_balancers().nth(5).unwrap().id;
        let health = Command::UpdateTargetHealth {
            target_group: tg,
            target: TargetSpec::new(fleet::target_id(i, 0)),
            health: fleet::check_result(false, 7),
        };
        later = change(&later, 61, &[health, Command::DeleteLoadBalancer { load_balancer: lb5 }]);
        let back = decode_like(&later);
        assert_eq!(back, state, "the same state as the plain decode");
        let plain: ElbState = crate::codec::decode(&bytes, bytes.len() as u64).unwrap();
        assert_eq!(back, plain);
        // Shared exactly where equal: every load balancer but the tagged one
        // and the one the head deleted.
        let (ours, theirs) = (&back.resources, &later.resources);
        for (id, lb) in &ours.load_balancers {
            let other = theirs.load_balancers.get(id);
            assert_eq!(other.is_some_and(|other| Arc::ptr_eq(lb, other)), *id != lb2 && *id != lb5, "{id}");
        }
        let shared_rules = ours.rules.iter().filter(|(id, r)| theirs.rules.get(*id).is_some_and(|o| Arc::ptr_eq(r, o)));
        assert_eq!(shared_rules.count(), ours.rules.len() - 2, "all rules but the deleted load balancer's two");
        let few = |targets: &GroupTargets| match targets {
            GroupTargets::Few(few) => few.clone(),
            GroupTargets::Many(_) => panic!("ten targets are few"),
        };
        let mut kept = 0;
        for (group, targets) in &ours.targets {
            let other = theirs.targets.get(group);
            let shared = other.is_some_and(|other| Arc::ptr_eq(&few(targets), &few(other)));
            assert_eq!(shared, other == Some(targets), "{group}: shared where equal");
            kept += usize::from(shared);
        }
        // Not shared: the changed group, and the head's deleted load
        // balancer's (its targets' health changes as it goes).
        assert_ne!(theirs.targets.get(&tg), ours.targets.get(&tg));
        assert_eq!(kept, ours.targets.len() - 2);
        // A state much smaller than the one it is decoded like: the same,
        // sharing each resource equal to the head's.
        let small = fleet_state(10);
        let mut small_bytes = Vec::new();
        crate::codec::encode_into(&small, &mut small_bytes, u64::MAX).unwrap();
        let mut old = crate::codec::OldBytes::new(&small_bytes, small_bytes.len() as u64);
        let back = ElbState::decode_like(&later, &mut old).unwrap();
        assert_eq!(back, small);
        let shared = back
            .resources
            .load_balancers
            .iter()
            .filter(|(id, lb)| later.resources.load_balancers.get(*id).is_some_and(|other| Arc::ptr_eq(lb, other)));
        assert_eq!(shared.count(), 9, "all but the one the head deleted");
        // Like a state with nothing in common, or the empty one: equal, nothing shared.
        assert_eq!(decode_like(&ElbState::default()), state);
        let unrelated = decode_like(&fleet_state(1));
        assert_eq!(unrelated, state);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// A map decoded beside another holds what its bytes say, the later
        /// of an id written twice, with ids in order, out of order and
        /// repeated; each value lent is the other's, and with ids in order
        /// every value equal to the other's is lent.
        #[test]
        fn a_map_decoded_beside_another_is_the_plain_decode(
            written in proptest::collection::vec((0u32..64, 0u64..4), 0..64),
            sorted in proptest::bool::ANY,
            like in proptest::collection::btree_map(0u32..64, 0u64..4, 0..64),
        ) {
            let mut written = written;
            if sorted {
                written.sort_by_key(|&(id, _)| id);
                written.dedup_by_key(|&mut (id, _)| id);
            }
            // A map's encoding is its length, then each key and value: a
            // list of pairs, written in its own order.
            let mut bytes = Vec::new();
            crate::codec::encode_into(&written, &mut bytes, u64::MAX).unwrap();
            let like: OrdMap<u32, Arc<u64>> = like.into_iter().map(|(id, v)| (id, Arc::new(v))).collect();
            let lent = std::cell::Cell::new(0);
            let back = decode_beside(
                &bytes,
                &like,
                |rest, value| {
                    let same = crate::codec::skip_encoding_of(rest, &**value);
                    lent.set(lent.get() + usize::from(same));
                    same
                },
                |_, rest| Ok(Arc::new(crate::codec::decode_front::<u64>(rest, 8)?)),
            )
            .unwrap();
            let plain: OrdMap<u32, Arc<u64>> = written.iter().map(|&(id, v)| (id, Arc::new(v))).collect();
            proptest::prop_assert_eq!(&back, &plain);
            let shared = back.iter().filter(|(id, v)| like.get(*id).is_some_and(|l| Arc::ptr_eq(v, l))).count();
            if sorted {
                // Each id once, in order: every value equal to the other's is lent.
                let equal = plain.iter().filter(|(id, v)| like.get(*id) == Some(*v)).count();
                proptest::prop_assert_eq!((lent.get(), shared), (equal, equal));
            }
            proptest::prop_assert!(shared <= lent.get());
        }
    }

    #[test]
    fn a_group_held_as_a_map_is_not_lent_to_a_decode_that_holds_it_as_an_array() {
        // A group of 20 targets shrunk to 10 stays a map; decoded, it is an array.
        let mut head = ElbState::default();
        let group = TargetGroupId(7);
        let target = |n: u64| Target {
            key: TargetKey { target_group: group, id: format!("i-{n:017x}").into(), port: 80 },
            availability_zone: None,
            health: fleet::check_result(true, n),
            draining_until: None,
        };
        for n in 0..20 {
            head.put_target(&target(n));
        }
        for n in 10..20 {
            head.remove(&Entity::Target(target(n)));
        }
        assert!(matches!(head.resources.targets[&group], GroupTargets::Many(_)));
        let mut bytes = Vec::new();
        crate::codec::encode_into(&head, &mut bytes, u64::MAX).unwrap();
        let mut old = crate::codec::OldBytes::new(&bytes, bytes.len() as u64);
        let back = ElbState::decode_like(&head, &mut old).unwrap();
        assert!(matches!(back.resources.targets[&group], GroupTargets::Few(_)), "held as the plain decode holds it");
        assert_eq!(back, head);
    }

    #[test]
    fn indexes_are_built_when_first_asked_for_and_kept_up_to_date_after() {
        let state = fleet_state(4);
        let mut bytes = Vec::new();
        crate::codec::encode_into(&state, &mut bytes, u64::MAX).unwrap();
        let mut back: ElbState = crate::codec::decode(&bytes, bytes.len() as u64).unwrap();
        assert!(back.index.get().is_none(), "a decoded state has not built its indexes");
        assert_eq!(back.counts().targets, 40, "counts need no index");
        // Changes before the indexes are built: the build sees them.
        let ctx = TxnContext { seq: 100, time: Timestamp::from_secs(5_000) };
        let settings = Settings::in_region("us-east-1");
        let (events, _, _) = plan_folded(&back, &fleet::reference_commands(4, ctx.seq), &ctx, &settings).unwrap();
        events.iter().for_each(|event| back.apply(event));
        assert!(back.index.get().is_none());
        let lb = back.load_balancer_by_name(&fleet::account(4), &fleet::name(4)).expect("indexed when asked").id;
        assert!(back.index.get().is_some());
        // Changes after: kept in the built indexes, as a state rebuilt from
        // its resources (which builds its own) says.
        let delete = [crate::elb::Command::DeleteLoadBalancer { load_balancer: lb }];
        let ctx = TxnContext { seq: 101, time: Timestamp::from_secs(5_001) };
        let (events, _, _) = plan_folded(&back, &delete, &ctx, &settings).unwrap();
        events.iter().for_each(|event| back.apply(event));
        assert!(back.load_balancer_by_name(&fleet::account(4), &fleet::name(4)).is_none());
        let rebuilt = ElbState::from(back.resources.clone());
        assert_eq!(rebuilt.index(), back.index(), "the kept indexes are the rebuilt ones");
        assert_eq!(rebuilt, back);
    }

    #[test]
    fn a_store_s_head_builds_its_indexes_at_its_first_write_and_keeps_them() {
        use crate::elb::{Command, ElbStore, TargetSpec};
        use crate::{Create, Options, SyncPolicy, TxnMeta};
        let dir = std::env::temp_dir().join(format!("elbstore-lazy-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Never);
        let settings = Settings::in_region("us-east-1");
        let store = ElbStore::open(&dir, options.clone(), settings.clone()).unwrap();
        for i in 0..3 {
            store.execute_with(TxnMeta::new("t", "build"), |_, ctx| fleet::reference_commands(i, ctx.seq)).unwrap();
        }
        store.store().snapshot().unwrap();
        drop(store);
        let store = ElbStore::open(&dir, options, settings).unwrap();
        assert!(store.read().state().index.get().is_none(), "loaded from a snapshot: not built yet");
        // A health change plans without a name lookup; the head builds its
        // indexes anyway, so the views published after it share them.
        let tg = store.read().target_groups().next().unwrap().id;
        let view = store.read();
        let name = view.target_group(tg).unwrap().name.clone();
        let i: u64 = name.trim_start_matches("lb-").parse().unwrap();
        let health = Command::UpdateTargetHealth {
            target_group: tg,
            target: TargetSpec::new(fleet::target_id(i, 0)),
            health: fleet::check_result(false, 1),
        };
        drop(view);
        store.execute(TxnMeta::new("t", "health"), vec![health]).unwrap();
        let after = store.read();
        assert!(after.state().index.get().is_some(), "the first write built the head's indexes");
        assert_eq!(after.state().index(), &Index::of(&after.state().resources));
        drop((after, store));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_large_state_decodes_its_targets_and_rules_on_a_second_thread_to_the_same_state() {
        let state = fleet_state(1_500);
        let mut bytes = Vec::new();
        crate::codec::encode_into(&state, &mut bytes, u64::MAX).unwrap();
        let targets_section = crate::codec::encoded_len(&state.resources.targets).unwrap() as usize;
        assert!(targets_section >= PARALLEL_SECTION_BYTES, "{targets_section} bytes take the threaded path");
        let back: ElbState = crate::codec::decode(&bytes, bytes.len() as u64).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.counts().targets, 15_000);
        assert_eq!(back.counts().rules, 3_000);
    }

    #[test]
    fn a_damaged_section_is_an_error_not_a_panic() {
        let state = fleet_state(2);
        let mut bytes = Vec::new();
        crate::codec::encode_into(&state, &mut bytes, u64::MAX).unwrap();
        // A section length one short, or past the end; a cut-off input.
        let mut short = bytes.clone();
        short[0] = short[0].wrapping_sub(1);
        assert!(crate::codec::decode::<ElbState>(&short, 1 << 24).is_err());
        let mut long = bytes.clone();
        long[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(crate::codec::decode::<ElbState>(&long, 1 << 24).is_err());
        assert!(crate::codec::decode::<ElbState>(&bytes[..bytes.len() / 2], 1 << 24).is_err());
    }

    #[test]
    fn a_run_applied_by_target_group_ends_as_each_event_in_turn() {
        use crate::elb::{HealthState, TargetHealth};
        let key = |group: u64, id: &str| TargetKey { target_group: TargetGroupId(group), id: id.into(), port: 80 };
        let target = |group: u64, id: &str, health: HealthState| {
            Entity::Target(Target {
                key: key(group, id),
                availability_zone: None,
                health: TargetHealth::new(health, None),
                draining_until: None,
            })
        };
        let (a, b, c) = (
            target(9, "i-a", HealthState::Initial),
            target(2, "i-b", HealthState::Initial),
            target(9, "i-c", HealthState::Initial),
        );
        let a_up = target(9, "i-a", HealthState::Healthy);
        // An application load balancer as a target: it has an index entry.
        let alb = target(
            5,
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0000000000010000",
            HealthState::Initial,
        );
        let update =
            |before: &Entity, after: &Entity| ElbEvent::Updated { before: before.clone(), after: after.clone() };
        let fleet = fleet_state(2);
        let tg = fleet.target_groups().next().unwrap().clone();
        let mut renamed = (*tg).clone();
        renamed.name.push_str("-renamed");
        // One target created, changed, deleted and created again, between
        // other groups' targets and another kind's events.
        let events = vec![
            ElbEvent::Created(a.clone()),
            ElbEvent::Created(b.clone()),
            update(&a, &a_up),
            ElbEvent::Updated {
                before: Entity::TargetGroup(tg.clone()),
                after: Entity::TargetGroup(Arc::new(renamed)),
            },
            ElbEvent::Deleted(a_up.clone()),
            ElbEvent::Created(c.clone()),
            ElbEvent::Created(a.clone()),
            ElbEvent::Deleted(b.clone()),
            ElbEvent::Created(alb.clone()),
            update(&a, &a_up),
            ElbEvent::Deleted(alb.clone()),
            ElbEvent::Created(alb.clone()),
        ];
        let in_turn = |events: &[ElbEvent]| {
            let mut state = fleet.clone();
            for event in events {
                state.apply(event);
            }
            state
        };
        let built = fleet.clone();
        built.build_indexes();
        let run = |events: &[ElbEvent]| {
            // With the indexes built before the run, and without.
            [fleet.clone(), built.clone()].map(|mut state| {
                state.apply_run(events);
                state
            })
        };
        let expected = in_turn(&events);
        // Undone as a run, by group, the state is the one the run started from.
        for state in run(&events) {
            let mut undone = state.clone();
            assert!(undone.undo_run(&events));
            assert_eq!(undone, fleet);
        }
        assert_eq!(expected.target(&key(9, "i-a")).map(|t| t.health.state), Some(HealthState::Healthy));
        assert!(expected.target(&key(2, "i-b")).is_none());
        assert_eq!(expected.index().load_balancer_targets.len(), 1);
        for state in run(&events) {
            assert_eq!(state, expected);
        }
        // An update from a target to another kind (no command makes one)
        // after the target's creation: the run is applied in turn.
        let mut odd = events.clone();
        odd.push(update(&a_up, &Entity::TargetGroup(tg.clone())));
        let expected = in_turn(&odd);
        assert!(expected.target(&key(9, "i-a")).is_none());
        for state in run(&odd) {
            assert_eq!(state, expected);
            let mut undone = state.clone();
            assert!(undone.undo_run(&odd));
            assert_eq!(undone, fleet);
        }
    }
}
