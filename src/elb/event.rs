//! Events: every change to the ELB state, each carrying full values so that
//! it can be undone from the log alone.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

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
/// readers hold one copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entity {
    /// A load balancer.
    LoadBalancer(Arc<LoadBalancer>),
    /// A listener.
    Listener(Arc<Listener>),
    /// A listener rule.
    Rule(Arc<Rule>),
    /// A target group.
    TargetGroup(Arc<TargetGroup>),
    /// A registered target.
    Target(Arc<Target>),
    /// A trust store.
    TrustStore(Arc<TrustStore>),
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
