//! The ELB state: every resource, and the indexes services look things up by.

use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::event::{ElbEvent, Entity, EntityKey, EntityKind};
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey};
use super::model::{Listener, LoadBalancer, Rule, Target, TargetGroup};
use crate::store::StateMachine;

/// The state of every ELB resource in one store (one region).
///
/// Maps are structurally shared (`imbl`), so cloning the state, which the
/// store does once per commit group, costs a few reference counts. Snapshots
/// hold only the resources; the indexes are rebuilt when a snapshot is loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Resources", into = "Resources")]
pub struct ElbState {
    resources: Resources,
    index: Index,
}

/// The resources themselves: what snapshots hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Resources {
    load_balancers: OrdMap<LoadBalancerId, Arc<LoadBalancer>>,
    listeners: OrdMap<ListenerId, Arc<Listener>>,
    rules: OrdMap<RuleId, Arc<Rule>>,
    target_groups: OrdMap<TargetGroupId, Arc<TargetGroup>>,
    targets: OrdMap<TargetKey, Arc<Target>>,
}

/// Everything derivable from the resources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Index {
    load_balancer_names: OrdMap<(String, String), LoadBalancerId>,
    target_group_names: OrdMap<(String, String), TargetGroupId>,
    listeners_by_load_balancer: OrdSet<(LoadBalancerId, ListenerId)>,
    rules_by_listener: OrdSet<(ListenerId, RuleId)>,
    target_group_users: OrdSet<(TargetGroupId, EntityKey)>,
}

impl From<Resources> for ElbState {
    fn from(resources: Resources) -> ElbState {
        let mut state = ElbState { resources: Resources::default(), index: Index::default() };
        let Resources { load_balancers, listeners, rules, target_groups, targets } = resources;
        for lb in load_balancers.values() {
            state.insert(&Entity::LoadBalancer(lb.clone()));
        }
        for listener in listeners.values() {
            state.insert(&Entity::Listener(listener.clone()));
        }
        for rule in rules.values() {
            state.insert(&Entity::Rule(rule.clone()));
        }
        for tg in target_groups.values() {
            state.insert(&Entity::TargetGroup(tg.clone()));
        }
        state.resources.targets = targets;
        state
    }
}

impl From<ElbState> for Resources {
    fn from(state: ElbState) -> Resources {
        state.resources
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
        }
    }
}

impl StateMachine for ElbState {
    type Event = ElbEvent;

    fn apply(&mut self, event: &ElbEvent) {
        match event {
            // Health changes are most of the traffic and touch no index.
            ElbEvent::Updated { after: Entity::Target(t), .. } => {
                self.resources.targets.insert(t.key.clone(), t.clone());
            }
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
}

fn users(actions: &[super::model::Action]) -> impl Iterator<Item = TargetGroupId> + '_ {
    actions.iter().flat_map(|a| a.target_groups())
}

impl ElbState {
    fn insert(&mut self, entity: &Entity) {
        let (r, i) = (&mut self.resources, &mut self.index);
        match entity {
            Entity::LoadBalancer(lb) => {
                i.load_balancer_names.insert((lb.account.clone(), lb.name.clone()), lb.id);
                r.load_balancers.insert(lb.id, lb.clone());
            }
            Entity::Listener(l) => {
                i.listeners_by_load_balancer.insert((l.load_balancer, l.id));
                for tg in users(&l.default_actions) {
                    i.target_group_users.insert((tg, EntityKey::Listener(l.id)));
                }
                r.listeners.insert(l.id, l.clone());
            }
            Entity::Rule(rule) => {
                i.rules_by_listener.insert((rule.listener, rule.id));
                for tg in users(&rule.actions) {
                    i.target_group_users.insert((tg, EntityKey::Rule(rule.id)));
                }
                r.rules.insert(rule.id, rule.clone());
            }
            Entity::TargetGroup(tg) => {
                i.target_group_names.insert((tg.account.clone(), tg.name.clone()), tg.id);
                r.target_groups.insert(tg.id, tg.clone());
            }
            Entity::Target(t) => {
                r.targets.insert(t.key.clone(), t.clone());
            }
        }
    }

    fn remove(&mut self, entity: &Entity) {
        let (r, i) = (&mut self.resources, &mut self.index);
        match entity {
            Entity::LoadBalancer(lb) => {
                i.load_balancer_names.remove(&(lb.account.clone(), lb.name.clone()));
                r.load_balancers.remove(&lb.id);
            }
            Entity::Listener(l) => {
                i.listeners_by_load_balancer.remove(&(l.load_balancer, l.id));
                for tg in users(&l.default_actions) {
                    i.target_group_users.remove(&(tg, EntityKey::Listener(l.id)));
                }
                r.listeners.remove(&l.id);
            }
            Entity::Rule(rule) => {
                i.rules_by_listener.remove(&(rule.listener, rule.id));
                for tg in users(&rule.actions) {
                    i.target_group_users.remove(&(tg, EntityKey::Rule(rule.id)));
                }
                r.rules.remove(&rule.id);
            }
            Entity::TargetGroup(tg) => {
                i.target_group_names.remove(&(tg.account.clone(), tg.name.clone()));
                r.target_groups.remove(&tg.id);
            }
            Entity::Target(t) => {
                r.targets.remove(&t.key);
            }
        }
    }

    /// A load balancer by id.
    pub fn load_balancer(&self, id: LoadBalancerId) -> Option<&Arc<LoadBalancer>> {
        self.resources.load_balancers.get(&id)
    }

    /// A load balancer by account and name.
    pub fn load_balancer_by_name(&self, account: &str, name: &str) -> Option<&Arc<LoadBalancer>> {
        let id = self.index.load_balancer_names.get(&(account.to_owned(), name.to_owned()))?;
        self.load_balancer(*id)
    }

    /// Every load balancer, by id.
    pub fn load_balancers(&self) -> impl Iterator<Item = &Arc<LoadBalancer>> {
        self.resources.load_balancers.values()
    }

    /// How many load balancers an account has.
    pub fn load_balancer_count(&self, account: &str) -> usize {
        let from = (account.to_owned(), String::new());
        self.index.load_balancer_names.range(from..).take_while(|((a, _), _)| a == account).count()
    }

    /// A listener by id.
    pub fn listener(&self, id: ListenerId) -> Option<&Arc<Listener>> {
        self.resources.listeners.get(&id)
    }

    /// The listeners of a load balancer, by id.
    pub fn listeners_of(&self, lb: LoadBalancerId) -> impl Iterator<Item = &Arc<Listener>> {
        self.index
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
        self.index
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
        let id = self.index.target_group_names.get(&(account.to_owned(), name.to_owned()))?;
        self.target_group(*id)
    }

    /// Every target group, by id.
    pub fn target_groups(&self) -> impl Iterator<Item = &Arc<TargetGroup>> {
        self.resources.target_groups.values()
    }

    /// How many target groups an account has.
    pub fn target_group_count(&self, account: &str) -> usize {
        let from = (account.to_owned(), String::new());
        self.index.target_group_names.range(from..).take_while(|((a, _), _)| a == account).count()
    }

    /// A registered target.
    pub fn target(&self, key: &TargetKey) -> Option<&Arc<Target>> {
        self.resources.targets.get(key)
    }

    /// The targets registered in a group, by id and port.
    pub fn targets_of(&self, tg: TargetGroupId) -> impl Iterator<Item = &Arc<Target>> {
        let from = TargetKey { target_group: tg, id: String::new(), port: 0 };
        self.resources.targets.range(from..).map(|(_, t)| t).take_while(move |t| t.key.target_group == tg)
    }

    /// The listeners and rules that forward to a target group.
    pub fn users_of(&self, tg: TargetGroupId) -> impl Iterator<Item = &EntityKey> {
        let from = (tg, EntityKey::LoadBalancer(LoadBalancerId(0)));
        self.index.target_group_users.range(from..).take_while(move |(g, _)| *g == tg).map(|(_, key)| key)
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
            EntityKey::Target(key) => r.targets.get(key).cloned().map(Entity::Target),
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
            EntityKind::Target => Box::new(r.targets.values().cloned().map(Entity::Target)),
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
            targets: r.targets.len(),
        }
    }
}
