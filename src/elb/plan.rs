//! Turning commands into events, validated against the state.
//!
//! The planner works on a scratch copy of the state (a clone costs a few
//! reference counts) and applies each event as it emits it, so every command
//! of a transaction sees the effects of the commands before it. Any refusal
//! discards the whole transaction.

use std::sync::Arc;

use super::command::{
    Command, CreateListener, CreateLoadBalancer, CreateRule, CreateTargetGroup, ModifyListener, Outcome, Taggable,
    TargetSpec,
};
use super::error::ElbError;
use super::event::{ElbEvent, Entity};
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, CREATIONS_PER_TRANSACTION_MAX};
use super::model::{
    Action, HealthState, IpAddressType, Listener, LoadBalancer, LoadBalancerState, LoadBalancerType, Protocol, Rule,
    Scheme, Tags, Target, TargetGroup, TargetHealth, TargetType,
};
use super::quotas::Settings;
use super::state::ElbState;
use super::validate;
use crate::store::{StateMachine, TxnContext};

type Result<T> = std::result::Result<T, ElbError>;

/// The TLS policy given to HTTPS and TLS listeners that name none.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-2016-08";
/// The highest rule priority.
pub const RULE_PRIORITY_MAX: u32 = 50_000;

/// Validates `commands` in order against `state` and returns the events that
/// carry them out, with one outcome per command. Pure: the same inputs always
/// give the same events.
///
/// ```
/// use elbstore::elb::{plan, fleet, ElbState, Settings, Outcome};
/// use elbstore::{StateMachine, Timestamp, TxnContext};
///
/// let state = ElbState::default();
/// let ctx = TxnContext { seq: 1, time: Timestamp::from_secs(1_356_380_640) };
/// let commands = [elbstore::elb::Command::CreateLoadBalancer(fleet::load_balancer_spec(0))];
/// let (events, outcomes) = plan(&state, &commands, &ctx, &Settings::default()).unwrap();
/// assert!(matches!(outcomes[0], Outcome::LoadBalancerCreated(_)));
/// let mut next = state.clone();
/// for event in &events {
///     next.apply(event);
/// }
/// assert_eq!(next.counts().load_balancers, 1);
/// ```
pub fn plan(
    state: &ElbState,
    commands: &[Command],
    ctx: &TxnContext,
    settings: &Settings,
) -> Result<(Vec<ElbEvent>, Vec<Outcome>)> {
    plan_folded(state, commands, ctx, settings).map(|(events, outcomes, _)| (events, outcomes))
}

/// Like [`plan`], also returning the state with the events applied, which the
/// planner builds anyway while it validates.
pub fn plan_folded(
    state: &ElbState,
    commands: &[Command],
    ctx: &TxnContext,
    settings: &Settings,
) -> Result<(Vec<ElbEvent>, Vec<Outcome>, ElbState)> {
    let mut planner = Planner { state: state.clone(), events: Vec::new(), created: 0, ctx, settings };
    let outcomes = commands.iter().map(|c| planner.command(c)).collect::<Result<Vec<_>>>()?;
    Ok((planner.events, outcomes, planner.state))
}

struct Planner<'a> {
    state: ElbState,
    events: Vec<ElbEvent>,
    created: u64,
    ctx: &'a TxnContext,
    settings: &'a Settings,
}

fn invalid(field: &'static str, value: impl ToString, problem: &'static str) -> ElbError {
    ElbError::InvalidValue { field, value: value.to_string(), problem }
}

impl Planner<'_> {
    fn emit(&mut self, event: ElbEvent) {
        self.state.apply(&event);
        self.events.push(event);
    }

    fn update(&mut self, before: Entity, after: Entity) -> Outcome {
        if before == after {
            return Outcome::Changed(0);
        }
        self.emit(ElbEvent::Updated { before, after });
        Outcome::Changed(1)
    }

    fn next_n(&mut self) -> Result<u64> {
        if self.created >= CREATIONS_PER_TRANSACTION_MAX {
            return Err(ElbError::QuotaExceeded {
                quota: "creations_per_transaction",
                limit: CREATIONS_PER_TRANSACTION_MAX as usize,
            });
        }
        self.created += 1;
        Ok(self.created - 1)
    }

    fn load_balancer(&self, id: LoadBalancerId) -> Result<Arc<LoadBalancer>> {
        self.state.load_balancer(id).cloned().ok_or(ElbError::LoadBalancerNotFound { id })
    }

    fn listener(&self, id: ListenerId) -> Result<Arc<Listener>> {
        self.state.listener(id).cloned().ok_or(ElbError::ListenerNotFound { id })
    }

    fn rule(&self, id: RuleId) -> Result<Arc<Rule>> {
        self.state.rule(id).cloned().ok_or(ElbError::RuleNotFound { id })
    }

    fn target_group(&self, id: TargetGroupId) -> Result<Arc<TargetGroup>> {
        self.state.target_group(id).cloned().ok_or(ElbError::TargetGroupNotFound { id })
    }

    fn command(&mut self, command: &Command) -> Result<Outcome> {
        match command {
            Command::CreateLoadBalancer(c) => self.create_load_balancer(c),
            Command::DeleteLoadBalancer { load_balancer } => self.delete_load_balancer(*load_balancer),
            Command::ModifyLoadBalancerAttributes { load_balancer, attributes } => {
                let lb = self.load_balancer(*load_balancer)?;
                validate::load_balancer_attributes(lb.load_balancer_type, attributes)?;
                let mut after = (*lb).clone();
                after.attributes.extend(attributes.clone());
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::SetSubnets { load_balancer, subnets } => {
                let lb = self.load_balancer(*load_balancer)?;
                validate::subnets(lb.load_balancer_type, subnets)?;
                let after = LoadBalancer { subnets: subnets.clone(), ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::SetSecurityGroups { load_balancer, security_groups } => {
                let lb = self.load_balancer(*load_balancer)?;
                validate::security_groups(lb.load_balancer_type, security_groups, &self.settings.quotas)?;
                let after = LoadBalancer { security_groups: security_groups.clone(), ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::SetIpAddressType { load_balancer, ip_address_type } => {
                let lb = self.load_balancer(*load_balancer)?;
                check_ip_address_type(lb.load_balancer_type, lb.scheme, *ip_address_type)?;
                let after = LoadBalancer { ip_address_type: *ip_address_type, ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::CreateListener(c) => self.create_listener(c),
            Command::ModifyListener(m) => self.modify_listener(m),
            Command::DeleteListener { listener } => {
                let listener = self.listener(*listener)?;
                Ok(Outcome::Changed(self.delete_listener(&listener)))
            }
            Command::AddListenerCertificates { listener, certificates } => {
                let listener = self.listener(*listener)?;
                let mut after = (*listener).clone();
                for certificate in certificates {
                    validate::identifier("certificates", certificate)?;
                    if !after.certificates.contains(certificate) {
                        after.certificates.push(certificate.clone());
                    }
                }
                self.check_certificates(after.protocol, &after.certificates)?;
                Ok(self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after))))
            }
            Command::RemoveListenerCertificates { listener, certificates } => {
                let listener = self.listener(*listener)?;
                let mut after = (*listener).clone();
                after.certificates.retain(|c| !certificates.contains(c));
                self.check_certificates(after.protocol, &after.certificates)?;
                Ok(self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after))))
            }
            Command::CreateRule(c) => self.create_rule(c),
            Command::ModifyRule { rule, conditions, actions } => {
                let rule = self.rule(*rule)?;
                let listener = self.listener(rule.listener)?;
                let lb = self.load_balancer(listener.load_balancer)?;
                let mut after = (*rule).clone();
                if let Some(conditions) = conditions {
                    validate::conditions(conditions, &self.settings.quotas)?;
                    after.conditions = conditions.clone();
                }
                if let Some(actions) = actions {
                    self.check_actions("actions", actions, &lb)?;
                    after.actions = actions.clone();
                }
                Ok(self.update(Entity::Rule(rule), Entity::Rule(Arc::new(after))))
            }
            Command::DeleteRule { rule } => {
                let rule = self.rule(*rule)?;
                self.emit(ElbEvent::Deleted(Entity::Rule(rule)));
                Ok(Outcome::Changed(1))
            }
            Command::SetRulePriorities { priorities } => self.set_rule_priorities(priorities),
            Command::CreateTargetGroup(c) => self.create_target_group(c),
            Command::ModifyTargetGroup { target_group, health_check } => {
                let tg = self.target_group(*target_group)?;
                validate::health_check(health_check)?;
                let after = TargetGroup { health_check: health_check.clone(), ..(*tg).clone() };
                Ok(self.update(Entity::TargetGroup(tg), Entity::TargetGroup(Arc::new(after))))
            }
            Command::ModifyTargetGroupAttributes { target_group, attributes } => {
                let tg = self.target_group(*target_group)?;
                validate::target_group_attributes(attributes)?;
                let mut after = (*tg).clone();
                after.attributes.extend(attributes.clone());
                Ok(self.update(Entity::TargetGroup(tg), Entity::TargetGroup(Arc::new(after))))
            }
            Command::DeleteTargetGroup { target_group } => self.delete_target_group(*target_group),
            Command::RegisterTargets { target_group, targets } => self.register_targets(*target_group, targets),
            Command::DeregisterTargets { target_group, targets } => {
                let tg = self.target_group(*target_group)?;
                let mut changed = 0;
                for spec in targets {
                    let key = target_key(&tg, spec)?;
                    let target =
                        self.state.target(&key).cloned().ok_or(ElbError::TargetNotRegistered { target: key })?;
                    self.emit(ElbEvent::Deleted(Entity::Target(target)));
                    changed += 1;
                }
                Ok(Outcome::Changed(changed))
            }
            Command::AddTags { resource, tags } => self.retag(*resource, |current| current.extend(tags.clone())),
            Command::RemoveTags { resource, keys } => {
                self.retag(*resource, |current| current.retain(|k, _| !keys.contains(k)))
            }
            Command::UpdateTargetHealth { target_group, target, health } => {
                let tg = self.target_group(*target_group)?;
                let key = target_key(&tg, target)?;
                let current = self.state.target(&key).cloned().ok_or(ElbError::TargetNotRegistered { target: key })?;
                if let Some(reason) = &health.reason {
                    if reason.len() > 256 {
                        return Err(invalid("health.reason", reason, "must be at most 256 bytes"));
                    }
                }
                let after = Target { health: health.clone(), ..(*current).clone() };
                Ok(self.update(Entity::Target(current), Entity::Target(Arc::new(after))))
            }
            Command::SetLoadBalancerState { load_balancer, state } => {
                let lb = self.load_balancer(*load_balancer)?;
                let after = LoadBalancer { state: *state, ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
        }
    }

    fn create_load_balancer(&mut self, c: &CreateLoadBalancer) -> Result<Outcome> {
        let quotas = &self.settings.quotas;
        validate::account(&c.account)?;
        validate::name("name", &c.name)?;
        validate::identifier("vpc_id", &c.vpc_id)?;
        validate::subnets(c.load_balancer_type, &c.subnets)?;
        validate::security_groups(c.load_balancer_type, &c.security_groups, quotas)?;
        validate::load_balancer_attributes(c.load_balancer_type, &c.attributes)?;
        validate::tags(&c.tags, quotas)?;
        check_ip_address_type(c.load_balancer_type, c.scheme, c.ip_address_type)?;
        if self.state.load_balancer_by_name(&c.account, &c.name).is_some() {
            return Err(ElbError::DuplicateLoadBalancerName { account: c.account.clone(), name: c.name.clone() });
        }
        if self.state.load_balancer_count(&c.account) >= quotas.load_balancers_per_account {
            return Err(ElbError::QuotaExceeded {
                quota: "load_balancers_per_account",
                limit: quotas.load_balancers_per_account,
            });
        }
        let id = LoadBalancerId::new(self.ctx.seq, self.next_n()?);
        let prefix = if c.scheme == Scheme::Internal { "internal-" } else { "" };
        let lb = LoadBalancer {
            id,
            account: c.account.clone(),
            name: c.name.clone(),
            load_balancer_type: c.load_balancer_type,
            scheme: c.scheme,
            ip_address_type: c.ip_address_type,
            vpc_id: c.vpc_id.clone(),
            subnets: c.subnets.clone(),
            security_groups: c.security_groups.clone(),
            state: LoadBalancerState::Provisioning,
            dns_name: format!("{prefix}{}-{:016x}.{}.elb.amazonaws.com", c.name, id.0, self.settings.region),
            created: self.ctx.time,
            attributes: c.attributes.clone(),
            tags: c.tags.clone(),
        };
        self.emit(ElbEvent::Created(Entity::LoadBalancer(Arc::new(lb))));
        Ok(Outcome::LoadBalancerCreated(id))
    }

    fn delete_load_balancer(&mut self, id: LoadBalancerId) -> Result<Outcome> {
        let lb = self.load_balancer(id)?;
        if lb.deletion_protected() {
            return Err(ElbError::DeletionProtected { load_balancer: id, name: lb.name.clone() });
        }
        let listeners: Vec<Arc<Listener>> = self.state.listeners_of(id).cloned().collect();
        let mut changed = 1;
        for listener in &listeners {
            changed += self.delete_listener(listener);
        }
        self.emit(ElbEvent::Deleted(Entity::LoadBalancer(lb)));
        Ok(Outcome::Changed(changed))
    }

    /// Deletes a listener's rules, then the listener; returns how many resources went.
    fn delete_listener(&mut self, listener: &Arc<Listener>) -> usize {
        let rules: Vec<Arc<Rule>> = self.state.rules_of(listener.id).cloned().collect();
        for rule in &rules {
            self.emit(ElbEvent::Deleted(Entity::Rule(rule.clone())));
        }
        self.emit(ElbEvent::Deleted(Entity::Listener(listener.clone())));
        rules.len() + 1
    }

    fn check_certificates(&self, protocol: Protocol, certificates: &[String]) -> Result<()> {
        if matches!(protocol, Protocol::Https | Protocol::Tls) && certificates.is_empty() {
            return Err(ElbError::CertificateRequired { protocol });
        }
        let limit = self.settings.quotas.certificates_per_listener;
        if certificates.len() > limit {
            return Err(ElbError::QuotaExceeded { quota: "certificates_per_listener", limit });
        }
        certificates.iter().try_for_each(|c| validate::identifier("certificates", c))
    }

    /// Checks actions and that every target group they name can serve `lb`.
    fn check_actions(&self, field: &'static str, actions: &[Action], lb: &LoadBalancer) -> Result<()> {
        validate::actions(field, actions, lb.load_balancer_type, &self.settings.quotas)?;
        for id in actions.iter().flat_map(Action::target_groups) {
            let tg = self.target_group(id)?;
            let incompatible =
                |problem| ElbError::IncompatibleTargetGroup { target_group: id, load_balancer: lb.id, problem };
            if tg.account != lb.account {
                return Err(incompatible("it belongs to another account"));
            }
            if tg.vpc_id.as_ref().is_some_and(|vpc| *vpc != lb.vpc_id) {
                return Err(incompatible("it is in another VPC"));
            }
            let fits = match (lb.load_balancer_type, tg.target_type, tg.protocol) {
                (LoadBalancerType::Application, TargetType::Lambda, _) => true,
                (LoadBalancerType::Application, _, Some(p)) => matches!(p, Protocol::Http | Protocol::Https),
                (LoadBalancerType::Network, TargetType::Lambda, _) => false,
                (LoadBalancerType::Network, _, Some(p)) => {
                    matches!(p, Protocol::Tcp | Protocol::Tls | Protocol::Udp | Protocol::TcpUdp)
                }
                (LoadBalancerType::Gateway, _, Some(p)) => p == Protocol::Geneve,
                (_, _, None) => false,
            };
            if !fits {
                return Err(incompatible("its protocol or target type does not fit the load balancer type"));
            }
        }
        Ok(())
    }

    fn check_port_free(&self, lb: LoadBalancerId, port: u16, except: Option<ListenerId>) -> Result<()> {
        validate::port("port", port)?;
        match self.state.listeners_of(lb).find(|l| l.port == port && Some(l.id) != except) {
            Some(other) => Err(ElbError::PortInUse { load_balancer: lb, port, listener: other.id }),
            None => Ok(()),
        }
    }

    fn create_listener(&mut self, c: &CreateListener) -> Result<Outcome> {
        let lb = self.load_balancer(c.load_balancer)?;
        if !validate::listener_protocol_allowed(lb.load_balancer_type, c.protocol) {
            return Err(ElbError::ProtocolNotAllowed {
                load_balancer_type: lb.load_balancer_type,
                protocol: c.protocol,
            });
        }
        self.check_port_free(lb.id, c.port, None)?;
        self.check_certificates(c.protocol, &c.certificates)?;
        self.check_actions("default_actions", &c.default_actions, &lb)?;
        validate::tags(&c.tags, &self.settings.quotas)?;
        let limit = self.settings.quotas.listeners_per_load_balancer;
        if self.state.listeners_of(lb.id).count() >= limit {
            return Err(ElbError::QuotaExceeded { quota: "listeners_per_load_balancer", limit });
        }
        let secure = matches!(c.protocol, Protocol::Https | Protocol::Tls);
        let id = ListenerId::new(self.ctx.seq, self.next_n()?);
        let listener = Listener {
            id,
            load_balancer: lb.id,
            port: c.port,
            protocol: c.protocol,
            certificates: c.certificates.clone(),
            ssl_policy: if secure {
                Some(c.ssl_policy.clone().unwrap_or_else(|| DEFAULT_SSL_POLICY.into()))
            } else {
                None
            },
            default_actions: c.default_actions.clone(),
            tags: c.tags.clone(),
        };
        self.emit(ElbEvent::Created(Entity::Listener(Arc::new(listener))));
        Ok(Outcome::ListenerCreated(id))
    }

    fn modify_listener(&mut self, m: &ModifyListener) -> Result<Outcome> {
        let listener = self.listener(m.listener)?;
        let lb = self.load_balancer(listener.load_balancer)?;
        let mut after = (*listener).clone();
        if let Some(port) = m.port {
            self.check_port_free(lb.id, port, Some(listener.id))?;
            after.port = port;
        }
        if let Some(protocol) = m.protocol {
            if !validate::listener_protocol_allowed(lb.load_balancer_type, protocol) {
                return Err(ElbError::ProtocolNotAllowed { load_balancer_type: lb.load_balancer_type, protocol });
            }
            after.protocol = protocol;
        }
        if let Some(certificates) = &m.certificates {
            after.certificates = certificates.clone();
        }
        if let Some(actions) = &m.default_actions {
            self.check_actions("default_actions", actions, &lb)?;
            after.default_actions = actions.clone();
        }
        self.check_certificates(after.protocol, &after.certificates)?;
        let secure = matches!(after.protocol, Protocol::Https | Protocol::Tls);
        after.ssl_policy = match (secure, &m.ssl_policy, &after.ssl_policy) {
            (false, _, _) => None,
            (true, Some(policy), _) => Some(policy.clone()),
            (true, None, Some(policy)) => Some(policy.clone()),
            (true, None, None) => Some(DEFAULT_SSL_POLICY.into()),
        };
        Ok(self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after))))
    }

    fn check_priority_free(&self, listener: ListenerId, priority: u32) -> Result<()> {
        if !(1..=RULE_PRIORITY_MAX).contains(&priority) {
            return Err(invalid("priority", priority, "must be between 1 and 50000"));
        }
        match self.state.rules_of(listener).find(|r| r.priority == priority) {
            Some(rule) => Err(ElbError::PriorityInUse { listener, priority, rule: rule.id }),
            None => Ok(()),
        }
    }

    fn create_rule(&mut self, c: &CreateRule) -> Result<Outcome> {
        let listener = self.listener(c.listener)?;
        let lb = self.load_balancer(listener.load_balancer)?;
        if lb.load_balancer_type != LoadBalancerType::Application {
            return Err(ElbError::RulesNotSupported { listener: listener.id });
        }
        self.check_priority_free(listener.id, c.priority)?;
        validate::conditions(&c.conditions, &self.settings.quotas)?;
        self.check_actions("actions", &c.actions, &lb)?;
        validate::tags(&c.tags, &self.settings.quotas)?;
        let limit = self.settings.quotas.rules_per_load_balancer;
        let rules: usize = self.state.listeners_of(lb.id).map(|l| self.state.rules_of(l.id).count()).sum();
        if rules >= limit {
            return Err(ElbError::QuotaExceeded { quota: "rules_per_load_balancer", limit });
        }
        let id = RuleId::new(self.ctx.seq, self.next_n()?);
        let rule = Rule {
            id,
            listener: listener.id,
            priority: c.priority,
            conditions: c.conditions.clone(),
            actions: c.actions.clone(),
            tags: c.tags.clone(),
        };
        self.emit(ElbEvent::Created(Entity::Rule(Arc::new(rule))));
        Ok(Outcome::RuleCreated(id))
    }

    fn set_rule_priorities(&mut self, priorities: &[(RuleId, u32)]) -> Result<Outcome> {
        let mut changes = Vec::with_capacity(priorities.len());
        for &(id, priority) in priorities {
            let rule = self.rule(id)?;
            if !(1..=RULE_PRIORITY_MAX).contains(&priority) {
                return Err(invalid("priority", priority, "must be between 1 and 50000"));
            }
            if changes.iter().any(|(r, _): &(Arc<Rule>, u32)| r.id == id) {
                return Err(invalid("priorities", id, "names a rule twice"));
            }
            changes.push((rule, priority));
        }
        // Every listener touched must end with distinct priorities, so swaps work.
        for (rule, priority) in &changes {
            let clash = self.state.rules_of(rule.listener).find(|other| {
                other.id != rule.id
                    && match changes.iter().find(|(r, _)| r.id == other.id) {
                        Some((_, new)) => new == priority,
                        None => other.priority == *priority,
                    }
            });
            if let Some(other) = clash {
                return Err(ElbError::PriorityInUse { listener: rule.listener, priority: *priority, rule: other.id });
            }
        }
        let mut changed = 0;
        for (rule, priority) in changes {
            let after = Rule { priority, ..(*rule).clone() };
            if let Outcome::Changed(n) = self.update(Entity::Rule(rule), Entity::Rule(Arc::new(after))) {
                changed += n;
            }
        }
        Ok(Outcome::Changed(changed))
    }

    fn create_target_group(&mut self, c: &CreateTargetGroup) -> Result<Outcome> {
        let quotas = &self.settings.quotas;
        validate::account(&c.account)?;
        validate::name("name", &c.name)?;
        validate::target_group_shape(c.protocol, c.port, c.vpc_id.as_deref(), c.target_type)?;
        validate::health_check(&c.health_check)?;
        validate::target_group_attributes(&c.attributes)?;
        validate::tags(&c.tags, quotas)?;
        if self.state.target_group_by_name(&c.account, &c.name).is_some() {
            return Err(ElbError::DuplicateTargetGroupName { account: c.account.clone(), name: c.name.clone() });
        }
        if self.state.target_group_count(&c.account) >= quotas.target_groups_per_account {
            return Err(ElbError::QuotaExceeded {
                quota: "target_groups_per_account",
                limit: quotas.target_groups_per_account,
            });
        }
        let id = TargetGroupId::new(self.ctx.seq, self.next_n()?);
        let tg = TargetGroup {
            id,
            account: c.account.clone(),
            name: c.name.clone(),
            protocol: c.protocol,
            port: c.port,
            vpc_id: c.vpc_id.clone(),
            target_type: c.target_type,
            health_check: c.health_check.clone(),
            attributes: c.attributes.clone(),
            tags: c.tags.clone(),
        };
        self.emit(ElbEvent::Created(Entity::TargetGroup(Arc::new(tg))));
        Ok(Outcome::TargetGroupCreated(id))
    }

    fn delete_target_group(&mut self, id: TargetGroupId) -> Result<Outcome> {
        let tg = self.target_group(id)?;
        if let Some(user) = self.state.users_of(id).next() {
            return Err(ElbError::TargetGroupInUse { target_group: id, used_by: user.clone() });
        }
        let targets: Vec<Arc<Target>> = self.state.targets_of(id).cloned().collect();
        for target in &targets {
            self.emit(ElbEvent::Deleted(Entity::Target(target.clone())));
        }
        self.emit(ElbEvent::Deleted(Entity::TargetGroup(tg)));
        Ok(Outcome::Changed(targets.len() + 1))
    }

    fn register_targets(&mut self, id: TargetGroupId, targets: &[TargetSpec]) -> Result<Outcome> {
        let tg = self.target_group(id)?;
        let limit = self.settings.quotas.targets_per_target_group;
        let mut count = self.state.targets_of(id).count();
        // A group no load balancer uses has its targets marked unused.
        let state = if self.state.users_of(id).next().is_some() { HealthState::Initial } else { HealthState::Unused };
        let mut changed = 0;
        for spec in targets {
            let key = target_key(&tg, spec)?;
            if self.state.target(&key).is_some() {
                continue;
            }
            if count >= limit {
                return Err(ElbError::QuotaExceeded { quota: "targets_per_target_group", limit });
            }
            if let Some(zone) = &spec.availability_zone {
                validate::identifier("availability_zone", zone)?;
            }
            let target = Target {
                key,
                availability_zone: spec.availability_zone.clone(),
                health: TargetHealth { state, reason: None },
            };
            self.emit(ElbEvent::Created(Entity::Target(Arc::new(target))));
            count += 1;
            changed += 1;
        }
        Ok(Outcome::Changed(changed))
    }

    fn retag(&mut self, resource: Taggable, edit: impl FnOnce(&mut Tags)) -> Result<Outcome> {
        let quotas = &self.settings.quotas;
        let (before, after) = match resource {
            Taggable::LoadBalancer(id) => {
                let lb = self.load_balancer(id)?;
                let mut after = (*lb).clone();
                edit(&mut after.tags);
                validate::tags(&after.tags, quotas)?;
                (Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after)))
            }
            Taggable::Listener(id) => {
                let listener = self.listener(id)?;
                let mut after = (*listener).clone();
                edit(&mut after.tags);
                validate::tags(&after.tags, quotas)?;
                (Entity::Listener(listener), Entity::Listener(Arc::new(after)))
            }
            Taggable::Rule(id) => {
                let rule = self.rule(id)?;
                let mut after = (*rule).clone();
                edit(&mut after.tags);
                validate::tags(&after.tags, quotas)?;
                (Entity::Rule(rule), Entity::Rule(Arc::new(after)))
            }
            Taggable::TargetGroup(id) => {
                let tg = self.target_group(id)?;
                let mut after = (*tg).clone();
                edit(&mut after.tags);
                validate::tags(&after.tags, quotas)?;
                (Entity::TargetGroup(tg), Entity::TargetGroup(Arc::new(after)))
            }
        };
        Ok(self.update(before, after))
    }
}

fn check_ip_address_type(lb_type: LoadBalancerType, scheme: Scheme, ip: IpAddressType) -> Result<()> {
    if ip == IpAddressType::DualstackWithoutPublicIpv4
        && !(lb_type == LoadBalancerType::Application && scheme == Scheme::InternetFacing)
    {
        return Err(invalid("ip_address_type", ip, "is only for internet-facing application load balancers"));
    }
    Ok(())
}

/// The key of a target named in a command: its port defaults to the group's.
fn target_key(tg: &TargetGroup, spec: &TargetSpec) -> Result<TargetKey> {
    validate::identifier("targets.id", &spec.id)?;
    let port = match (tg.target_type, spec.port.or(tg.port)) {
        (TargetType::Lambda, _) => 0,
        (_, Some(port)) => {
            validate::port("targets.port", port)?;
            port
        }
        (_, None) => return Err(invalid("targets.port", "none", "is required")),
    };
    Ok(TargetKey { target_group: tg.id, id: spec.id.as_str().into(), port })
}

#[cfg(test)]
mod tests;
