//! Events: every change to the ELB state, each carrying full values so that
//! it can be undone from the log alone.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};

use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, TrustStoreId};
use super::model::{Listener, LoadBalancer, Rule, Tags, Target, TargetGroup, TrustStore};

/// The kinds of resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    /// Load balancers.
    LoadBalancer,
    /// Listeners.
    Listener,
    /// Listener rules.
    Rule,
    /// Target groups.
    TargetGroup,
    /// Registered targets.
    Target,
    /// Trust stores.
    TrustStore,
}

impl EntityKind {
    /// Every kind.
    pub const ALL: [EntityKind; 6] = [
        EntityKind::LoadBalancer,
        EntityKind::Listener,
        EntityKind::Rule,
        EntityKind::TargetGroup,
        EntityKind::Target,
        EntityKind::TrustStore,
    ];

    /// A plural name for reports, e.g. `load_balancers`.
    pub fn plural(self) -> &'static str {
        match self {
            EntityKind::LoadBalancer => "load_balancers",
            EntityKind::Listener => "listeners",
            EntityKind::Rule => "rules",
            EntityKind::TargetGroup => "target_groups",
            EntityKind::Target => "targets",
            EntityKind::TrustStore => "trust_stores",
        }
    }
}

/// Which resource: its kind and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityKey {
    /// A load balancer.
    LoadBalancer(LoadBalancerId),
    /// A listener.
    Listener(ListenerId),
    /// A listener rule.
    Rule(RuleId),
    /// A target group.
    TargetGroup(TargetGroupId),
    /// A registered target.
    Target(TargetKey),
    /// A trust store.
    TrustStore(TrustStoreId),
}

impl EntityKey {
    /// Its kind.
    pub fn kind(&self) -> EntityKind {
        match self {
            EntityKey::LoadBalancer(_) => EntityKind::LoadBalancer,
            EntityKey::Listener(_) => EntityKind::Listener,
            EntityKey::Rule(_) => EntityKind::Rule,
            EntityKey::TargetGroup(_) => EntityKind::TargetGroup,
            EntityKey::Target(_) => EntityKind::Target,
            EntityKey::TrustStore(_) => EntityKind::TrustStore,
        }
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityKey::LoadBalancer(id) => write!(f, "{id}"),
            EntityKey::Listener(id) => write!(f, "{id}"),
            EntityKey::Rule(id) => write!(f, "{id}"),
            EntityKey::TargetGroup(id) => write!(f, "{id}"),
            EntityKey::Target(key) => write!(f, "{key}"),
            EntityKey::TrustStore(id) => write!(f, "{id}"),
        }
    }
}

/// A whole resource value. Shared (`Arc`) so that the state, the events and
/// readers hold one copy; each is decoded straight into its `Arc`. A target
/// is small and held by value, in the state as here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entity {
    /// A load balancer.
    LoadBalancer(#[serde(deserialize_with = "codec::arc")] Arc<LoadBalancer>),
    /// A listener.
    Listener(#[serde(deserialize_with = "codec::arc")] Arc<Listener>),
    /// A listener rule.
    Rule(#[serde(deserialize_with = "codec::arc")] Arc<Rule>),
    /// A target group.
    TargetGroup(#[serde(deserialize_with = "codec::arc")] Arc<TargetGroup>),
    /// A registered target, by value: its id is inline when short (as the
    /// state holds it), so an event on a target allocates nothing of its
    /// own when decoded, and nothing is shared to follow when applied.
    Target(Target),
    /// A trust store.
    TrustStore(#[serde(deserialize_with = "codec::arc")] Arc<TrustStore>),
}

impl Entity {
    /// Which resource this is.
    pub fn key(&self) -> EntityKey {
        match self {
            Entity::LoadBalancer(lb) => EntityKey::LoadBalancer(lb.id),
            Entity::Listener(l) => EntityKey::Listener(l.id),
            Entity::Rule(r) => EntityKey::Rule(r.id),
            Entity::TargetGroup(tg) => EntityKey::TargetGroup(tg.id),
            Entity::Target(t) => EntityKey::Target(t.key.clone()),
            Entity::TrustStore(ts) => EntityKey::TrustStore(ts.id),
        }
    }

    /// A short human name: the resource's name, port, priority or target id.
    pub fn label(&self) -> String {
        match self {
            Entity::LoadBalancer(lb) => lb.name.clone(),
            Entity::Listener(l) => format!("{}:{}", l.protocol, l.port),
            Entity::Rule(r) => format!("priority {}", r.priority),
            Entity::TargetGroup(tg) => tg.name.clone(),
            Entity::Target(t) => format!("{}:{}", t.key.id, t.key.port),
            Entity::TrustStore(ts) => ts.name.clone(),
        }
    }

    /// Its tags (`None` for targets, which have none).
    pub fn tags(&self) -> Option<&Tags> {
        match self {
            Entity::LoadBalancer(v) => Some(&v.tags),
            Entity::Listener(v) => Some(&v.tags),
            Entity::Rule(v) => Some(&v.tags),
            Entity::TargetGroup(v) => Some(&v.tags),
            Entity::TrustStore(v) => Some(&v.tags),
            Entity::Target(_) => None,
        }
    }

    /// The same resource with other tags (a target, which has none, is returned as it is).
    pub fn with_tags(&self, tags: Tags) -> Entity {
        fn with<T: Clone>(value: &Arc<T>, set: impl FnOnce(&mut T)) -> Arc<T> {
            let mut value = (**value).clone();
            set(&mut value);
            Arc::new(value)
        }
        match self {
            Entity::LoadBalancer(v) => Entity::LoadBalancer(with(v, |v| v.tags = tags)),
            Entity::Listener(v) => Entity::Listener(with(v, |v| v.tags = tags)),
            Entity::Rule(v) => Entity::Rule(with(v, |v| v.tags = tags)),
            Entity::TargetGroup(v) => Entity::TargetGroup(with(v, |v| v.tags = tags)),
            Entity::TrustStore(v) => Entity::TrustStore(with(v, |v| v.tags = tags)),
            Entity::Target(_) => self.clone(),
        }
    }
}

/// One change to the ELB state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElbEvent {
    /// A resource came into being.
    Created(Entity),
    /// A resource changed; both whole values are kept.
    Updated {
        /// The value before.
        before: Entity,
        /// The value after.
        after: Entity,
    },
    /// A resource was removed; its whole last value is kept.
    Deleted(Entity),
}

impl ElbEvent {
    /// The event that undoes this one.
    pub fn inverse(&self) -> ElbEvent {
        match self {
            ElbEvent::Created(e) => ElbEvent::Deleted(e.clone()),
            ElbEvent::Deleted(e) => ElbEvent::Created(e.clone()),
            ElbEvent::Updated { before, after } => ElbEvent::Updated { before: after.clone(), after: before.clone() },
        }
    }

    /// The resource it changes.
    pub fn key(&self) -> EntityKey {
        match self {
            ElbEvent::Created(e) | ElbEvent::Deleted(e) => e.key(),
            ElbEvent::Updated { after, .. } => after.key(),
        }
    }

    /// The value before the event (`None` for a creation).
    pub fn before(&self) -> Option<&Entity> {
        match self {
            ElbEvent::Created(_) => None,
            ElbEvent::Updated { before, .. } | ElbEvent::Deleted(before) => Some(before),
        }
    }

    /// The value after the event (`None` for a deletion).
    pub fn after(&self) -> Option<&Entity> {
        match self {
            ElbEvent::Deleted(_) => None,
            ElbEvent::Updated { after, .. } | ElbEvent::Created(after) => Some(after),
        }
    }
}

/// Decodes one resource's events, oldest first, into what [`codec::decode`]
/// gives for each, sharing values between them: an update's or a deletion's
/// value before whose bytes are the previous event's value after is that
/// value (one `Arc`; a target's, a copy), not a second decode. In a resource's history each
/// version's value before is the last one's value after, so this halves the
/// decoding of an often-updated resource.
///
/// Sharing is exact: an encoded value is read front to back and ends where
/// its fields end, so bytes that begin with a value's whole encoding decode
/// to that value and use exactly its length.
#[derive(Default)]
pub(crate) struct HistoryDecoder {
    /// The last event's value after, and its encoding.
    after: Option<(Vec<u8>, Entity)>,
}

impl HistoryDecoder {
    // `ElbEvent`'s variants in declaration order (a test checks them).
    const CREATED: u32 = 0;
    const UPDATED: u32 = 1;
    const DELETED: u32 = 2;

    /// Decodes the next event from all of `bytes`, allocating at most `limit_bytes`.
    pub(crate) fn decode(&mut self, bytes: &[u8], limit_bytes: u64) -> Result<ElbEvent, CodecError> {
        let mut rest = bytes;
        let event = match codec::variant_front(&mut rest)? {
            Self::CREATED => ElbEvent::Created(self.after(&mut rest, limit_bytes)?),
            Self::UPDATED => {
                let before = self.before(&mut rest, limit_bytes)?;
                ElbEvent::Updated { before, after: self.after(&mut rest, limit_bytes)? }
            }
            Self::DELETED => ElbEvent::Deleted(self.before(&mut rest, limit_bytes)?),
            // Not an event: the codec's own error.
            _ => return codec::decode(bytes, limit_bytes),
        };
        if !rest.is_empty() {
            return Err(CodecError::trailing_bytes(rest.len()));
        }
        Ok(event)
    }

    fn before(&self, rest: &mut &[u8], limit_bytes: u64) -> Result<Entity, CodecError> {
        if let Some((bytes, value)) = &self.after {
            if let Some(after) = rest.strip_prefix(bytes.as_slice()) {
                *rest = after;
                return Ok(value.clone());
            }
        }
        codec::decode_front(rest, limit_bytes)
    }

    fn after(&mut self, rest: &mut &[u8], limit_bytes: u64) -> Result<Entity, CodecError> {
        let start = *rest;
        let value: Entity = codec::decode_front(rest, limit_bytes)?;
        let encoded = &start[..start.len() - rest.len()];
        let mut bytes = self.after.take().map(|(bytes, _)| bytes).unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(encoded);
        self.after = Some((bytes, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::elb::model::{IpAddressType, LoadBalancerState, LoadBalancerType, Scheme, SubnetMapping};

    const LIMIT: u64 = 1 << 20;

    fn load_balancer(tags: usize) -> Entity {
        Entity::LoadBalancer(Arc::new(LoadBalancer {
            id: LoadBalancerId::new(7, 0),
            account: "123456789012".into(),
            name: "web".into(),
            load_balancer_type: LoadBalancerType::Application,
            scheme: Scheme::InternetFacing,
            ip_address_type: IpAddressType::Ipv4,
            vpc_id: "vpc-1".into(),
            subnets: vec![SubnetMapping::new("subnet-a", "us-east-1a")],
            security_groups: vec!["sg-1".into()],
            state: LoadBalancerState::Active,
            dns_name: "web-7.us-east-1.elb.amazonaws.com".into(),
            created: Timestamp::from_secs(1),
            attributes: Default::default(),
            tags: (0..tags).map(|k| (format!("k{k}"), format!("v{k}"))).collect(),
            capacity_units: None,
            ipv4_ipam_pool: None,
        }))
    }

    fn encode(event: &ElbEvent) -> Vec<u8> {
        let mut out = Vec::new();
        codec::encode_into(event, &mut out, LIMIT).unwrap();
        out
    }

    fn shared(a: &Entity, b: &Entity) -> bool {
        matches!((a, b), (Entity::LoadBalancer(a), Entity::LoadBalancer(b)) if Arc::ptr_eq(a, b))
    }

    #[test]
    fn the_history_decoder_knows_the_events_variants() {
        let (v0, v1) = (load_balancer(0), load_balancer(1));
        let events = [
            (ElbEvent::Created(v0.clone()), HistoryDecoder::CREATED),
            (ElbEvent::Updated { before: v0, after: v1.clone() }, HistoryDecoder::UPDATED),
            (ElbEvent::Deleted(v1), HistoryDecoder::DELETED),
        ];
        for (event, variant) in events {
            assert_eq!(codec::variant_front(&mut &encode(&event)[..]).unwrap(), variant, "{event:?}");
        }
    }

    #[test]
    fn the_history_decoder_decodes_as_the_codec_and_shares_each_value_before() {
        let v: Vec<Entity> = (0..4).map(load_balancer).collect();
        let chain = [
            ElbEvent::Created(v[0].clone()),
            ElbEvent::Updated { before: v[0].clone(), after: v[1].clone() },
            ElbEvent::Updated { before: v[1].clone(), after: v[2].clone() },
            // Not the last value after (a gap): decoded, not shared.
            ElbEvent::Updated { before: v[0].clone(), after: v[3].clone() },
            ElbEvent::Deleted(v[3].clone()),
        ];
        let mut decoder = HistoryDecoder::default();
        let mut decoded: Vec<ElbEvent> = Vec::new();
        for event in &chain {
            let bytes = encode(event);
            let one = decoder.decode(&bytes, LIMIT).unwrap();
            assert_eq!(one, codec::decode::<ElbEvent>(&bytes, LIMIT).unwrap());
            assert_eq!(&one, event);
            decoded.push(one);
        }
        let after = |i: usize| decoded[i].after().unwrap();
        let before = |i: usize| decoded[i].before().unwrap();
        assert!(shared(before(1), after(0)) && shared(before(2), after(1)) && shared(before(4), after(3)));
        assert!(!shared(before(3), after(2)), "a value before that is not the last value after is decoded");
    }

    #[test]
    fn the_history_decoder_refuses_what_the_codec_refuses() {
        let (v0, v1) = (load_balancer(0), load_balancer(1));
        let mut decoder = HistoryDecoder::default();
        decoder.decode(&encode(&ElbEvent::Created(v0.clone())), LIMIT).unwrap();
        let update = encode(&ElbEvent::Updated { before: v0, after: v1 });
        let mut trailing = update.clone();
        trailing.push(0);
        let mut unknown = update.clone();
        unknown[0] = 9;
        for bytes in [&trailing[..], &update[..update.len() - 1], &unknown[..], &update[..3], &[]] {
            assert!(codec::decode::<ElbEvent>(bytes, LIMIT).is_err());
            assert!(decoder.decode(bytes, LIMIT).is_err(), "{bytes:?}");
        }
        // Still decoding after the errors.
        assert_eq!(decoder.decode(&update, LIMIT).unwrap(), codec::decode::<ElbEvent>(&update, LIMIT).unwrap());
    }
}
