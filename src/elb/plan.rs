//! Turning commands into events, validated against the state.
//!
//! The planner works on a scratch copy of the state (a clone costs a few
//! reference counts) and applies each event as it emits it, so every command
//! of a transaction sees the effects of the commands before it. Any refusal
//! discards the whole transaction.

use std::borrow::Cow;
use std::sync::Arc;

use std::collections::BTreeSet;

use super::arn;
use super::command::{
    Command, CreateListener, CreateLoadBalancer, CreateRule, CreateTargetGroup, CreateTrustStore, ModifyHealthCheck,
    ModifyListener, Outcome, Taggable, TargetSpec,
};
use super::error::ElbError;
use super::event::{ElbEvent, Entity};
use super::ids::{
    ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, TrustStoreId, ZoneName, CREATIONS_PER_TRANSACTION_MAX,
};
use super::integrity;
use super::model::{
    Action, Attributes, HealthReason, HealthState, IpAddressType, Listener, LoadBalancer, LoadBalancerState,
    LoadBalancerType, MutualAuthentication, MutualAuthenticationMode, Protocol, Revocation, Rule, Scheme, Tags, Target,
    TargetGroup, TargetHealth, TargetType, TrustStore,
};
use super::quotas::Settings;
use super::state::ElbState;
use super::validate::{self, invalid, misconfigured};
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
/// let (events, outcomes) = plan(&state, &commands, &ctx, &Settings::in_region("us-east-1")).unwrap();
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
    let mut outcomes = Vec::with_capacity(commands.len());
    for command in commands {
        let first = planner.events.len();
        outcomes.push(planner.command(command)?);
        planner.follow_usage(first);
    }
    Ok((planner.events, outcomes, planner.state))
}

struct Planner<'a> {
    state: ElbState,
    events: Vec<ElbEvent>,
    created: u64,
    ctx: &'a TxnContext,
    settings: &'a Settings,
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

    fn trust_store(&self, id: TrustStoreId) -> Result<Arc<TrustStore>> {
        self.state.trust_store(id).cloned().ok_or(ElbError::TrustStoreNotFound { id })
    }

    /// A resource that carries tags, or the error naming it as missing.
    fn taggable(&self, resource: Taggable) -> Result<Entity> {
        Ok(match resource {
            Taggable::LoadBalancer(id) => Entity::LoadBalancer(self.load_balancer(id)?),
            Taggable::Listener(id) => Entity::Listener(self.listener(id)?),
            Taggable::Rule(id) => Entity::Rule(self.rule(id)?),
            Taggable::TargetGroup(id) => Entity::TargetGroup(self.target_group(id)?),
            Taggable::TrustStore(id) => Entity::TrustStore(self.trust_store(id)?),
        })
    }

    /// The region new resources are made in: the settings', else the one the
    /// store's load balancers name.
    fn region(&self) -> Result<String> {
        if let Some(region) = &self.settings.region {
            return Ok(region.clone());
        }
        self.state.region().map(str::to_owned).ok_or(ElbError::RegionUnknown)
    }

    fn command(&mut self, command: &Command) -> Result<Outcome> {
        let quotas = &self.settings.quotas;
        match command {
            Command::CreateLoadBalancer(c) => self.create_load_balancer(c),
            Command::DeleteLoadBalancer { load_balancer } => self.delete_load_balancer(*load_balancer),
            Command::ModifyLoadBalancerAttributes { load_balancer, attributes } => {
                let lb = self.load_balancer(*load_balancer)?;
                validate::load_balancer_attributes(lb.load_balancer_type, &lb.attributes, attributes)?;
                let mut after = (*lb).clone();
                after.attributes.extend(attributes.clone());
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::SetSubnets { load_balancer, subnets } => {
                let lb = self.load_balancer(*load_balancer)?;
                validate::subnets(lb.load_balancer_type, subnets)?;
                // SetSubnets: a gateway load balancer's list "must include all
                // subnets that were enabled previously".
                if lb.load_balancer_type == LoadBalancerType::Gateway {
                    if let Some(gone) = lb.subnets.iter().find(|s| !subnets.contains(s)) {
                        return Err(misconfigured(
                            "subnets",
                            format!("a gateway load balancer keeps its subnets; {} is missing", gone.subnet_id),
                        ));
                    }
                }
                let after = LoadBalancer { subnets: subnets.clone(), ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::SetSecurityGroups { load_balancer, security_groups } => {
                let lb = self.load_balancer(*load_balancer)?;
                validate::security_groups(lb.load_balancer_type, security_groups, quotas)?;
                // SetSecurityGroups: "You can't associate a security group with a
                // Network Load Balancer that was created without one."
                if lb.load_balancer_type == LoadBalancerType::Network && lb.security_groups.is_empty() {
                    return Err(misconfigured(
                        "security_groups",
                        "a network load balancer created without security groups can't be given any",
                    ));
                }
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
                if !secure(listener.protocol) {
                    return Err(misconfigured("certificates", "only HTTPS and TLS listeners have certificates"));
                }
                let mut after = (*listener).clone();
                for certificate in certificates {
                    validate::certificate(certificate)?;
                    if after.default_certificate.as_ref() != Some(certificate)
                        && !after.certificates.contains(certificate)
                    {
                        after.certificates.push(certificate.clone());
                    }
                }
                let added = after.certificates.len() - listener.certificates.len();
                self.check_certificate_quota(listener.load_balancer, added)?;
                Ok(self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after))))
            }
            Command::RemoveListenerCertificates { listener, certificates } => {
                let listener = self.listener(*listener)?;
                // RemoveListenerCertificates: "You can't remove the default certificate."
                if let Some(default) = certificates.iter().find(|c| listener.default_certificate.as_ref() == Some(c)) {
                    return Err(ElbError::OperationNotPermitted {
                        problem: format!(
                            "{default} is the listener's default certificate; replace it with ModifyListener"
                        ),
                    });
                }
                let mut after = (*listener).clone();
                after.certificates.retain(|c| !certificates.contains(c));
                Ok(self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after))))
            }
            Command::CreateRule(c) => self.create_rule(c),
            Command::ModifyRule { rule, conditions, actions } => {
                let rule = self.rule(*rule)?;
                let listener = self.listener(rule.listener)?;
                let lb = self.load_balancer(listener.load_balancer)?;
                let mut after = (*rule).clone();
                if let Some(conditions) = conditions {
                    validate::conditions(conditions, quotas)?;
                    after.conditions = conditions.clone();
                }
                if let Some(actions) = actions {
                    self.check_actions("actions", actions, &lb, listener.protocol)?;
                    after.actions = actions.clone();
                }
                let outcome = self.update(Entity::Rule(rule), Entity::Rule(Arc::new(after)));
                self.check_load_balancer_quotas(&lb)?;
                Ok(outcome)
            }
            Command::DeleteRule { rule } => {
                let rule = self.rule(*rule)?;
                self.emit(ElbEvent::Deleted(Entity::Rule(rule)));
                Ok(Outcome::Changed(1))
            }
            Command::SetRulePriorities { priorities } => self.set_rule_priorities(priorities),
            Command::CreateTargetGroup(c) => self.create_target_group(c),
            Command::ModifyTargetGroup { target_group, health_check } => {
                self.modify_target_group(*target_group, health_check)
            }
            Command::ModifyTargetGroupAttributes { target_group, attributes } => {
                let tg = self.target_group(*target_group)?;
                validate::target_group_attributes(tg.protocol, tg.target_type, &tg.attributes, attributes)?;
                let mut after = (*tg).clone();
                after.attributes.extend(attributes.clone());
                Ok(self.update(Entity::TargetGroup(tg), Entity::TargetGroup(Arc::new(after))))
            }
            Command::DeleteTargetGroup { target_group } => self.delete_target_group(*target_group),
            Command::RegisterTargets { target_group, targets } => self.register_targets(*target_group, targets),
            Command::DeregisterTargets { target_group, targets } => self.deregister_targets(*target_group, targets),
            Command::AddTags { resources, tags } => {
                validate::tags(tags, quotas)?;
                self.retag(resources, |current| current.extend(tags.clone()))
            }
            Command::RemoveTags { resources, keys } => {
                validate::tag_keys(keys)?;
                self.retag(resources, |current| current.retain(|k, _| !keys.contains(k)))
            }
            Command::ModifyListenerAttributes { listener, attributes } => {
                let listener = self.listener(*listener)?;
                let lb = self.load_balancer(listener.load_balancer)?;
                validate::listener_attributes(lb.load_balancer_type, attributes)?;
                let mut after = (*listener).clone();
                after.attributes.extend(attributes.clone());
                Ok(self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after))))
            }
            Command::CreateTrustStore(c) => self.create_trust_store(c),
            Command::ModifyTrustStore { trust_store, ca_certificates_bundle } => {
                let ts = self.trust_store(*trust_store)?;
                validate::s3_object("ca_certificates_bundle", ca_certificates_bundle)?;
                let after = TrustStore { ca_certificates_bundle: ca_certificates_bundle.clone(), ..(*ts).clone() };
                Ok(self.update(Entity::TrustStore(ts), Entity::TrustStore(Arc::new(after))))
            }
            Command::DeleteTrustStore { trust_store } => {
                let ts = self.trust_store(*trust_store)?;
                if let Some(listener) = self.state.trust_store_users(ts.id).next() {
                    return Err(ElbError::TrustStoreInUse { trust_store: ts.id, listener: listener.id });
                }
                self.emit(ElbEvent::Deleted(Entity::TrustStore(ts)));
                Ok(Outcome::Changed(1))
            }
            Command::AddTrustStoreRevocations { trust_store, revocations } => {
                let ts = self.trust_store(*trust_store)?;
                let limit = quotas.revocation_lists_per_trust_store;
                if ts.revocations.len() + revocations.len() > limit {
                    return Err(ElbError::QuotaExceeded { quota: "revocation_lists_per_trust_store", limit });
                }
                let mut after = (*ts).clone();
                let mut ids = Vec::with_capacity(revocations.len());
                for content in revocations {
                    validate::s3_object("revocation_contents", content)?;
                    let id = TrustStoreId::new(self.ctx.seq, self.next_n()?).0;
                    after.revocations.insert(id, Revocation { content: content.clone() });
                    ids.push(id);
                }
                self.update(Entity::TrustStore(ts), Entity::TrustStore(Arc::new(after)));
                Ok(Outcome::RevocationsAdded(ids))
            }
            Command::RemoveTrustStoreRevocations { trust_store, revocation_ids } => {
                let ts = self.trust_store(*trust_store)?;
                let mut after = (*ts).clone();
                for &revocation_id in revocation_ids {
                    if after.revocations.remove(&revocation_id).is_none() {
                        return Err(ElbError::RevocationNotFound { trust_store: ts.id, revocation_id });
                    }
                }
                Ok(self.update(Entity::TrustStore(ts), Entity::TrustStore(Arc::new(after))))
            }
            Command::DeleteSharedTrustStoreAssociation { trust_store, listener } => {
                let ts = self.trust_store(*trust_store)?;
                let not_found = ElbError::TrustStoreAssociationNotFound { trust_store: ts.id, listener: *listener };
                let Some(l) = self.state.listener(*listener).cloned() else { return Err(not_found) };
                let Some(mtls) = l.mutual_authentication.as_ref().filter(|m| m.trust_store == Some(ts.id)) else {
                    return Err(not_found);
                };
                let lb = self.load_balancer(l.load_balancer)?;
                if lb.account == ts.account {
                    return Err(ElbError::DeleteAssociationSameAccount { trust_store: ts.id, listener: l.id });
                }
                let mtls = MutualAuthentication { association_removed: true, ..mtls.clone() };
                let after = Listener { mutual_authentication: Some(mtls), ..(*l).clone() };
                Ok(self.update(Entity::Listener(l), Entity::Listener(Arc::new(after))))
            }
            Command::ModifyCapacityReservation { load_balancer, capacity_units } => {
                let lb = self.load_balancer(*load_balancer)?;
                if lb.load_balancer_type == LoadBalancerType::Gateway {
                    return Err(ElbError::OperationNotPermitted {
                        problem: "gateway load balancers have no capacity reservation".into(),
                    });
                }
                if let Some(units) = capacity_units {
                    if *units == 0 {
                        return Err(invalid(
                            "minimum_load_balancer_capacity.capacity_units",
                            units,
                            "must be positive",
                        ));
                    }
                }
                let after = LoadBalancer { capacity_units: *capacity_units, ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::ModifyIpPools { load_balancer, ipv4_ipam_pool } => {
                let lb = self.load_balancer(*load_balancer)?;
                if lb.load_balancer_type != LoadBalancerType::Application {
                    return Err(misconfigured("ipam_pools", "IPAM pools are for application load balancers"));
                }
                if let Some(pool) = ipv4_ipam_pool {
                    validate::ipam_pool(pool)?;
                }
                let after = LoadBalancer { ipv4_ipam_pool: ipv4_ipam_pool.clone(), ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::UpdateTargetHealth { target_group, target, health } => {
                self.update_target_health(*target_group, target, health)
            }
            Command::SetLoadBalancerState { load_balancer, state } => {
                let lb = self.load_balancer(*load_balancer)?;
                if !state_transition_allowed(lb.state, *state) {
                    return Err(ElbError::InvalidStateTransition { load_balancer: lb.id, from: lb.state, to: *state });
                }
                let after = LoadBalancer { state: *state, ..(*lb).clone() };
                Ok(self.update(Entity::LoadBalancer(lb), Entity::LoadBalancer(Arc::new(after))))
            }
            Command::CompleteDeregistrations { target_group } => {
                let groups: Vec<TargetGroupId> = match target_group {
                    Some(id) => vec![self.target_group(*id)?.id],
                    None => self.state.target_groups().map(|tg| tg.id).collect(),
                };
                let now = self.ctx.time;
                let mut changed = 0;
                for group in groups {
                    let done: Vec<Target> = self
                        .state
                        .targets_of(group)
                        .filter(|t| t.draining_until.is_some_and(|until| until <= now))
                        .cloned()
                        .collect();
                    for target in done {
                        self.emit(ElbEvent::Deleted(Entity::Target(target)));
                        changed += 1;
                    }
                }
                Ok(Outcome::Changed(changed))
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
        validate::tags(&c.tags, quotas)?;
        check_ip_address_type(c.load_balancer_type, c.scheme, c.ip_address_type)?;
        let id = LoadBalancerId::new(self.ctx.seq, self.next_n()?);
        if let Some(existing) = self.state.load_balancer_by_name(&c.account, &c.name) {
            // CreateLoadBalancer: "If you attempt to create multiple load
            // balancers with the same settings, each call succeeds." Tags
            // are not settings: they change by AddTags and RemoveTags.
            let same = existing.load_balancer_type == c.load_balancer_type
                && existing.scheme == c.scheme
                && existing.ip_address_type == c.ip_address_type
                && existing.vpc_id == c.vpc_id
                && existing.subnets == c.subnets
                && existing.security_groups == c.security_groups;
            if same {
                return Ok(Outcome::LoadBalancerCreated(existing.id));
            }
            return Err(ElbError::DuplicateLoadBalancerName { account: c.account.clone(), name: c.name.clone() });
        }
        let (quota, limit) = quotas.load_balancers_of(c.load_balancer_type);
        if self.state.load_balancers_of(&c.account).filter(|lb| lb.load_balancer_type == c.load_balancer_type).count()
            >= limit
        {
            return Err(ElbError::QuotaExceeded { quota, limit });
        }
        let region = self.region()?;
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
            dns_name: arn::dns_name(&region, c.load_balancer_type, c.scheme, &c.name, id),
            created: self.ctx.time,
            attributes: Attributes::new(),
            tags: c.tags.clone(),
            capacity_units: None,
            ipv4_ipam_pool: None,
        };
        self.emit(ElbEvent::Created(Entity::LoadBalancer(Arc::new(lb))));
        Ok(Outcome::LoadBalancerCreated(id))
    }

    fn delete_load_balancer(&mut self, id: LoadBalancerId) -> Result<Outcome> {
        // DeleteLoadBalancer: "If the load balancer does not exist or has
        // already been deleted, the call succeeds."
        let Some(lb) = self.state.load_balancer(id).cloned() else { return Ok(Outcome::Changed(0)) };
        if lb.deletion_protected() {
            return Err(ElbError::DeletionProtected { load_balancer: id, name: lb.name.clone() });
        }
        if let Some(target) = self.state.registrations_of(id).next() {
            return Err(ElbError::LoadBalancerInUse { load_balancer: id, target: target.clone() });
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

    /// Certificates per load balancer, not counting default certificates
    /// (ALB and NLB quotas), with `added` more.
    fn check_certificate_quota(&self, lb: LoadBalancerId, added: usize) -> Result<()> {
        let limit = self.settings.quotas.certificates_per_load_balancer;
        let count: usize = self.state.listeners_of(lb).map(|l| l.certificates.len()).sum();
        if added > 0 && count + added > limit {
            return Err(ElbError::QuotaExceeded { quota: "certificates_per_load_balancer", limit });
        }
        Ok(())
    }

    /// Checks actions and that every target group they name can serve `lb`
    /// from a listener of `protocol`.
    fn check_actions(
        &self,
        field: &'static str,
        actions: &[Action],
        lb: &LoadBalancer,
        protocol: Protocol,
    ) -> Result<()> {
        validate::actions(field, actions, lb.load_balancer_type, protocol, &self.settings.quotas)?;
        for id in actions.iter().flat_map(Action::target_groups) {
            integrity::forward(&self.state, lb, protocol, &*self.target_group(id)?)?;
        }
        Ok(())
    }

    /// The quotas of a load balancer that its forwards change.
    fn check_load_balancer_quotas(&self, lb: &LoadBalancer) -> Result<()> {
        integrity::forward_quotas(&self.state, lb, &self.settings.quotas)
    }

    fn check_port_free(&self, lb: LoadBalancerId, port: u16, except: Option<ListenerId>) -> Result<()> {
        validate::port("port", port)?;
        match self.state.listeners_of(lb).find(|l| l.port == port && Some(l.id) != except) {
            Some(other) => Err(ElbError::PortInUse { load_balancer: lb, port, listener: other.id }),
            None => Ok(()),
        }
    }

    /// Mutual TLS settings: HTTPS listeners of application load balancers;
    /// `verify` names a trust store that exists, the other modes none.
    fn check_mutual_authentication(
        &self,
        mtls: Option<&MutualAuthentication>,
        lb: &LoadBalancer,
        protocol: Protocol,
    ) -> Result<Option<MutualAuthentication>> {
        let Some(mtls) = mtls.filter(|m| m.mode != MutualAuthenticationMode::Off) else { return Ok(None) };
        if lb.load_balancer_type != LoadBalancerType::Application || protocol != Protocol::Https {
            return Err(misconfigured("mutual_authentication", "is for HTTPS listeners of application load balancers"));
        }
        match (mtls.mode, mtls.trust_store) {
            (MutualAuthenticationMode::Verify, Some(ts)) => {
                self.trust_store(ts)?;
            }
            (MutualAuthenticationMode::Verify, None) => {
                return Err(misconfigured("mutual_authentication.trust_store", "verify mode needs a trust store"));
            }
            (_, Some(_)) => {
                return Err(misconfigured("mutual_authentication.trust_store", "is only for verify mode"));
            }
            _ => {}
        }
        Ok(Some(MutualAuthentication { association_removed: false, ..mtls.clone() }))
    }

    fn create_listener(&mut self, c: &CreateListener) -> Result<Outcome> {
        let lb = self.load_balancer(c.load_balancer)?;
        if lb.state == LoadBalancerState::Failed {
            return Err(ElbError::OperationNotPermitted { problem: format!("load balancer {} has failed", lb.id) });
        }
        // CreateListenerInput.Port and .Protocol: "You can't specify a
        // protocol/port for a Gateway Load Balancer."
        let (port, protocol) = match (lb.load_balancer_type, c.port, c.protocol) {
            (LoadBalancerType::Gateway, None, None) => (6081, Protocol::Geneve),
            (LoadBalancerType::Gateway, _, _) => {
                return Err(misconfigured("port", "gateway load balancer listeners take no port or protocol"));
            }
            (_, Some(port), Some(protocol)) => (port, protocol),
            (_, None, _) => return Err(invalid("port", "none", "is required")),
            (_, _, None) => return Err(invalid("protocol", "none", "is required")),
        };
        if !validate::listener_protocol_allowed(lb.load_balancer_type, protocol) {
            return Err(ElbError::ProtocolNotAllowed { load_balancer_type: lb.load_balancer_type, protocol });
        }
        let ssl_policy = self.check_security(protocol, c.default_certificate.as_ref(), c.ssl_policy.as_ref())?;
        self.check_actions("default_actions", &c.default_actions, &lb, protocol)?;
        let mutual_authentication =
            self.check_mutual_authentication(c.mutual_authentication.as_ref(), &lb, protocol)?;
        validate::tags(&c.tags, &self.settings.quotas)?;
        let id = ListenerId::new(self.ctx.seq, self.next_n()?);
        let listener = Listener {
            id,
            load_balancer: lb.id,
            port,
            protocol,
            default_certificate: c.default_certificate.clone(),
            certificates: Vec::new(),
            ssl_policy,
            default_actions: c.default_actions.clone(),
            tags: c.tags.clone(),
            attributes: Attributes::new(),
            mutual_authentication,
        };
        validate::port("port", port)?;
        if let Some(existing) = self.state.listeners_of(lb.id).find(|l| l.port == port) {
            // CreateListener: "If you attempt to create multiple listeners
            // with the same settings, each call succeeds."
            let same = Listener {
                id: existing.id,
                certificates: existing.certificates.clone(),
                attributes: existing.attributes.clone(),
                ..listener.clone()
            };
            if **existing == same {
                return Ok(Outcome::ListenerCreated(existing.id));
            }
            return Err(ElbError::PortInUse { load_balancer: lb.id, port, listener: existing.id });
        }
        let (quota, limit) = self.settings.quotas.listeners_of(lb.load_balancer_type);
        if self.state.listeners_of(lb.id).count() >= limit {
            return Err(ElbError::QuotaExceeded { quota, limit });
        }
        self.emit(ElbEvent::Created(Entity::Listener(Arc::new(listener))));
        self.check_load_balancer_quotas(&lb)?;
        Ok(Outcome::ListenerCreated(id))
    }

    /// The default certificate and TLS policy of a listener of `protocol`:
    /// HTTPS and TLS need a certificate and get a policy (the default one when
    /// none is named); other protocols take neither.
    fn check_security(
        &self,
        protocol: Protocol,
        certificate: Option<&String>,
        policy: Option<&String>,
    ) -> Result<Option<String>> {
        if !secure(protocol) {
            if certificate.is_some() || policy.is_some() {
                return Err(misconfigured(
                    "certificates",
                    format!("{protocol} listeners take no certificate or TLS policy"),
                ));
            }
            return Ok(None);
        }
        let Some(certificate) = certificate else { return Err(ElbError::CertificateRequired { protocol }) };
        validate::certificate(certificate)?;
        let policy = policy.cloned().unwrap_or_else(|| DEFAULT_SSL_POLICY.into());
        validate::ssl_policy(&policy)?;
        Ok(Some(policy))
    }

    fn modify_listener(&mut self, m: &ModifyListener) -> Result<Outcome> {
        let listener = self.listener(m.listener)?;
        let lb = self.load_balancer(listener.load_balancer)?;
        let mut after = (*listener).clone();
        if lb.load_balancer_type == LoadBalancerType::Gateway && (m.port.is_some() || m.protocol.is_some()) {
            return Err(misconfigured("port", "gateway load balancer listeners take no port or protocol"));
        }
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
        if !secure(after.protocol) {
            // ModifyListener: "If you change the protocol from HTTPS to HTTP, or
            // from TLS to TCP, the default certificate and the security policy
            // are removed."
            after.default_certificate = None;
            after.certificates.clear();
            after.ssl_policy = None;
            after.mutual_authentication = None;
        }
        // What the command names, else what the listener keeps (nothing, for
        // a protocol without TLS: then anything named is refused).
        let certificate = m.default_certificate.as_ref().or(after.default_certificate.as_ref()).cloned();
        let policy = m.ssl_policy.as_ref().or(after.ssl_policy.as_ref()).cloned();
        after.ssl_policy = self.check_security(after.protocol, certificate.as_ref(), policy.as_ref())?;
        after.default_certificate = certificate;
        if let Some(actions) = &m.default_actions {
            after.default_actions = actions.clone();
        }
        // The actions are checked against the listener as it will be: a new
        // protocol must suit the groups it forwards to.
        self.check_actions("default_actions", &after.default_actions, &lb, after.protocol)?;
        if m.mutual_authentication.is_some() {
            after.mutual_authentication =
                self.check_mutual_authentication(m.mutual_authentication.as_ref(), &lb, after.protocol)?;
        }
        let outcome = self.update(Entity::Listener(listener), Entity::Listener(Arc::new(after)));
        self.check_load_balancer_quotas(&lb)?;
        Ok(outcome)
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
        self.check_actions("actions", &c.actions, &lb, listener.protocol)?;
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
        self.check_load_balancer_quotas(&lb)?;
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
        validate::target_group_name(&c.name)?;
        validate::target_group_shape(
            c.protocol,
            c.port,
            c.vpc_id.as_deref(),
            c.target_type,
            c.protocol_version,
            c.ip_address_type,
        )?;
        validate::health_check(&c.health_check, c.protocol, c.target_type, c.protocol_version)?;
        validate::target_group_attributes(c.protocol, c.target_type, &Attributes::new(), &c.attributes)?;
        validate::tags(&c.tags, quotas)?;
        let id = TargetGroupId::new(self.ctx.seq, self.next_n()?);
        let protocol_version = match c.protocol {
            Some(Protocol::Http | Protocol::Https) => {
                Some(c.protocol_version.unwrap_or(super::model::ProtocolVersion::Http1))
            }
            _ => None,
        };
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
            protocol_version,
            ip_address_type: c.ip_address_type,
        };
        if let Some(existing) = self.state.target_group_by_name(&c.account, &c.name) {
            // CreateTargetGroup: "If you attempt to create multiple target
            // groups with the same settings, each call succeeds."
            // Attributes are no part of the API's CreateTargetGroup input.
            let same = TargetGroup {
                id: existing.id,
                tags: existing.tags.clone(),
                attributes: existing.attributes.clone(),
                ..tg
            };
            if **existing == same {
                return Ok(Outcome::TargetGroupCreated(existing.id));
            }
            return Err(ElbError::DuplicateTargetGroupName { account: c.account.clone(), name: c.name.clone() });
        }
        if self.state.target_group_count(&c.account) >= quotas.target_groups_per_account {
            return Err(ElbError::QuotaExceeded {
                quota: "target_groups_per_account",
                limit: quotas.target_groups_per_account,
            });
        }
        if c.protocol == Some(Protocol::Geneve) {
            let limit = quotas.geneve_target_groups_per_account;
            let geneve = self
                .state
                .target_groups_of_account(&c.account)
                .filter(|g| g.protocol == Some(Protocol::Geneve))
                .count();
            if geneve >= limit {
                return Err(ElbError::QuotaExceeded { quota: "geneve_target_groups_per_account", limit });
            }
        }
        self.emit(ElbEvent::Created(Entity::TargetGroup(Arc::new(tg))));
        Ok(Outcome::TargetGroupCreated(id))
    }

    fn modify_target_group(&mut self, id: TargetGroupId, change: &ModifyHealthCheck) -> Result<Outcome> {
        let tg = self.target_group(id)?;
        let mut check = tg.health_check.clone();
        change.apply_to(&mut check);
        validate::health_check(&check, tg.protocol, tg.target_type, tg.protocol_version)?;
        let toggled = check.enabled != tg.health_check.enabled;
        let after = Arc::new(TargetGroup { health_check: check, ..(*tg).clone() });
        let outcome = self.update(Entity::TargetGroup(tg), Entity::TargetGroup(after));
        if toggled {
            self.recompute_health(id);
        }
        Ok(outcome)
    }

    fn delete_target_group(&mut self, id: TargetGroupId) -> Result<Outcome> {
        // DeleteTargetGroup lists ResourceInUse as its only error: a group
        // that is already gone is no error.
        let Some(tg) = self.state.target_group(id).cloned() else { return Ok(Outcome::Changed(0)) };
        if let Some(user) = self.state.users_of(id).next() {
            return Err(ElbError::TargetGroupInUse { target_group: id, used_by: user.clone() });
        }
        let targets: Vec<Target> = self.state.targets_of(id).cloned().collect();
        for target in &targets {
            self.emit(ElbEvent::Deleted(Entity::Target(target.clone())));
        }
        self.emit(ElbEvent::Deleted(Entity::TargetGroup(tg)));
        Ok(Outcome::Changed(targets.len() + 1))
    }

    /// The health a target of `tg` has when registered or when its group's
    /// use changes: unavailable when checks are off, unused when no load
    /// balancer uses the group, else initial.
    fn fresh_health(&self, tg: &TargetGroup) -> TargetHealth {
        if !tg.health_check.enabled {
            TargetHealth::new(HealthState::Unavailable, Some(HealthReason::HealthCheckDisabled))
        } else if self.state.users_of(tg.id).next().is_none() {
            TargetHealth::new(HealthState::Unused, Some(HealthReason::NotInUse))
        } else {
            TargetHealth::new(HealthState::Initial, Some(HealthReason::RegistrationInProgress))
        }
    }

    fn register_targets(&mut self, id: TargetGroupId, targets: &[TargetSpec]) -> Result<Outcome> {
        let tg = self.target_group(id)?;
        let quotas = &self.settings.quotas;
        // Lambda groups hold one function, `alb` groups one load balancer.
        let limit = match tg.target_type {
            TargetType::Lambda | TargetType::Alb => 1,
            _ => quotas.targets_per_target_group,
        };
        let mut count = self.state.target_count_of(id);
        let health = self.fresh_health(&tg);
        let mut changed = 0;
        for spec in targets {
            let canonical = validate::target_id(tg.target_type, tg.ip_address_type, &spec.id)?;
            let key = target_key(&tg, &canonical, spec.port)?;
            self.check_zone(&tg, spec)?;
            if tg.target_type == TargetType::Alb {
                self.check_load_balancer_target(&tg, &canonical)?;
            }
            if let Some(current) = self.state.target(&key).cloned() {
                if current.draining_until.is_some() {
                    // Registering a draining target takes it back.
                    let after = Target { health: health.clone(), draining_until: None, ..current.clone() };
                    self.update(Entity::Target(current), Entity::Target(after));
                    changed += 1;
                }
                continue;
            }
            if count >= limit {
                return Err(ElbError::QuotaExceeded { quota: "targets_per_target_group", limit });
            }
            let target = Target {
                key,
                availability_zone: spec.availability_zone.as_deref().map(ZoneName::from),
                health: health.clone(),
                draining_until: None,
            };
            self.emit(ElbEvent::Created(Entity::Target(target)));
            count += 1;
            changed += 1;
        }
        for lb in self.state.load_balancers_using(id) {
            let lb = self.load_balancer(lb)?;
            self.check_load_balancer_quotas(&lb)?;
        }
        Ok(Outcome::Changed(changed))
    }

    /// `TargetDescription.AvailabilityZone`: not supported for instance and
    /// `alb` targets; a zone or `all` for IP targets; only `all` for Lambda.
    fn check_zone(&self, tg: &TargetGroup, spec: &TargetSpec) -> Result<()> {
        let Some(zone) = &spec.availability_zone else { return Ok(()) };
        match tg.target_type {
            TargetType::Instance | TargetType::Alb => Err(misconfigured(
                "targets.availability_zone",
                format!("is not supported for {} targets", tg.target_type),
            )),
            TargetType::Lambda if zone != "all" => {
                Err(misconfigured("targets.availability_zone", "is all or nothing for Lambda targets"))
            }
            _ => validate::identifier("targets.availability_zone", zone),
        }
    }

    /// An `alb` target: an application load balancer of the group's account
    /// and VPC with a listener on the group's port.
    fn check_load_balancer_target(&self, tg: &TargetGroup, arn_text: &str) -> Result<()> {
        let bad = |problem| ElbError::InvalidTarget { target: arn_text.to_owned(), problem };
        let id = arn::load_balancer_id_of(arn_text).ok_or_else(|| bad("is not an application load balancer ARN"))?;
        let lb = self.state.load_balancer(id).ok_or_else(|| bad("names no load balancer of this store"))?;
        let parsed = arn::Arn::parse(arn_text).expect("parsed above");
        if lb.load_balancer_type != LoadBalancerType::Application || parsed.name != lb.name {
            return Err(bad("names no application load balancer of this store"));
        }
        if lb.account != tg.account || tg.vpc_id.as_ref() != Some(&lb.vpc_id) {
            return Err(bad("is in another account or VPC"));
        }
        if !self.state.listeners_of(id).any(|l| Some(l.port) == tg.port) {
            return Err(bad("has no listener on the target group's port"));
        }
        Ok(())
    }

    fn deregister_targets(&mut self, id: TargetGroupId, targets: &[TargetSpec]) -> Result<Outcome> {
        let tg = self.target_group(id)?;
        let delay = tg.deregistration_delay();
        let in_use = self.state.users_of(id).next().is_some();
        let mut changed = 0;
        for spec in targets {
            let key = registered_key(&tg, spec)?;
            // DeregisterTargets: "If the specified target does not exist, the
            // action returns successfully."
            let Some(target) = self.state.target(&key).cloned() else { continue };
            if target.draining_until.is_some() {
                continue;
            }
            if delay.is_zero() || !in_use {
                self.emit(ElbEvent::Deleted(Entity::Target(target)));
            } else {
                let until = self.ctx.time.saturating_add(delay);
                let after = Target {
                    health: TargetHealth::new(HealthState::Draining, Some(HealthReason::DeregistrationInProgress)),
                    draining_until: Some(until),
                    ..target.clone()
                };
                self.update(Entity::Target(target), Entity::Target(after));
            }
            changed += 1;
        }
        Ok(Outcome::Changed(changed))
    }

    /// `UpdateTargetHealth` from the health-check fleet: the states a check
    /// can find (initial, healthy, unhealthy, unhealthy.draining, unavailable)
    /// with a reason the API gives with that state. Unused and draining are
    /// the store's to decide, so targets in them take no check results.
    fn update_target_health(&mut self, id: TargetGroupId, spec: &TargetSpec, health: &TargetHealth) -> Result<Outcome> {
        let tg = self.target_group(id)?;
        let key = registered_key(&tg, spec)?;
        let current = self.state.target(&key).cloned().ok_or(ElbError::TargetNotRegistered { target: key.clone() })?;
        let refuse = |problem| ElbError::InvalidHealthTransition {
            target: key.clone(),
            from: current.health.state,
            to: health.state,
            problem,
        };
        if matches!(health.state, HealthState::Unused | HealthState::Draining) {
            return Err(refuse("unused and draining follow from the configuration, not from health checks"));
        }
        match current.health.state {
            HealthState::Unused => return Err(refuse("no load balancer uses its target group")),
            HealthState::Draining => return Err(refuse("it is being deregistered")),
            _ => {}
        }
        if !tg.health_check.enabled && health.state != HealthState::Unavailable {
            return Err(refuse("health checks are disabled for its target group"));
        }
        let reasons = health.state.reasons();
        let reason_ok = match health.reason {
            None => reasons.is_empty(),
            Some(reason) => reasons.contains(&reason),
        };
        if !reason_ok {
            return Err(refuse("the reason is not one the API gives with that state"));
        }
        let after = Target { health: health.clone(), ..current.clone() };
        Ok(self.update(Entity::Target(current), Entity::Target(after)))
    }

    /// After a command: the target groups whose use by load balancers it
    /// changed have their targets' health recomputed (unused when no load
    /// balancer uses the group, initial again when one does).
    fn follow_usage(&mut self, first_event: usize) {
        let mut groups = BTreeSet::new();
        for event in &self.events[first_event..] {
            for entity in event.before().into_iter().chain(event.after()) {
                let actions = match entity {
                    Entity::Listener(l) => &l.default_actions,
                    Entity::Rule(r) => &r.actions,
                    _ => continue,
                };
                groups.extend(actions.iter().flat_map(Action::target_groups));
            }
        }
        for group in groups {
            self.recompute_health(group);
        }
    }

    /// Sets the health of a group's targets that the group's use or checks decide.
    fn recompute_health(&mut self, id: TargetGroupId) {
        let Some(tg) = self.state.target_group(id).cloned() else { return };
        let fresh = self.fresh_health(&tg);
        let stale: Vec<Target> = self
            .state
            .targets_of(id)
            .filter(|t| t.draining_until.is_none())
            .filter(|t| match fresh.state {
                // Now unused or unchecked: every target follows.
                HealthState::Unused | HealthState::Unavailable => t.health != fresh,
                // Now used and checked: targets that were unused or unchecked start over.
                _ => {
                    matches!(t.health.state, HealthState::Unused | HealthState::Unavailable)
                        && t.health.reason != Some(HealthReason::InternalError)
                }
            })
            .cloned()
            .collect();
        for target in stale {
            let after = Target { health: fresh.clone(), ..target.clone() };
            self.update(Entity::Target(target), Entity::Target(after));
        }
    }

    fn create_trust_store(&mut self, c: &CreateTrustStore) -> Result<Outcome> {
        let quotas = &self.settings.quotas;
        validate::account(&c.account)?;
        validate::trust_store_name(&c.name)?;
        validate::s3_object("ca_certificates_bundle", &c.ca_certificates_bundle)?;
        validate::tags(&c.tags, quotas)?;
        if self.state.trust_store_by_name(&c.account, &c.name).is_some() {
            return Err(ElbError::DuplicateTrustStoreName { account: c.account.clone(), name: c.name.clone() });
        }
        if self.state.trust_store_count(&c.account) >= quotas.trust_stores_per_account {
            let limit = quotas.trust_stores_per_account;
            return Err(ElbError::QuotaExceeded { quota: "trust_stores_per_account", limit });
        }
        let id = TrustStoreId::new(self.ctx.seq, self.next_n()?);
        let ts = TrustStore {
            id,
            account: c.account.clone(),
            name: c.name.clone(),
            ca_certificates_bundle: c.ca_certificates_bundle.clone(),
            revocations: Default::default(),
            tags: c.tags.clone(),
        };
        self.emit(ElbEvent::Created(Entity::TrustStore(Arc::new(ts))));
        Ok(Outcome::TrustStoreCreated(id))
    }

    fn retag(&mut self, resources: &[Taggable], edit: impl Fn(&mut Tags)) -> Result<Outcome> {
        let quotas = &self.settings.quotas;
        if resources.is_empty() || resources.len() > quotas.resources_per_tag_call {
            return Err(invalid("resource_arns", resources.len(), "must name 1 to 20 resources"));
        }
        let mut changed = 0;
        for resource in resources {
            let before = self.taggable(*resource)?;
            let mut tags = before.tags().cloned().unwrap_or_default();
            edit(&mut tags);
            validate::tags(&tags, quotas)?;
            let after = before.with_tags(tags);
            if let Outcome::Changed(n) = self.update(before, after) {
                changed += n;
            }
        }
        Ok(Outcome::Changed(changed))
    }
}

/// Whether a listener protocol terminates TLS.
fn secure(protocol: Protocol) -> bool {
    matches!(protocol, Protocol::Https | Protocol::Tls)
}

/// The life cycle of a load balancer (`LoadBalancerStateEnum`): provisioning
/// ends active, impaired or failed; active and impaired move between each
/// other and back to provisioning when reconfigured; failed is final.
pub fn state_transition_allowed(from: LoadBalancerState, to: LoadBalancerState) -> bool {
    use LoadBalancerState::*;
    from == to
        || matches!(
            (from, to),
            (Provisioning, Active | ActiveImpaired | Failed)
                | (Active, ActiveImpaired | Provisioning)
                | (ActiveImpaired, Active | Provisioning | Failed)
        )
}

fn check_ip_address_type(lb_type: LoadBalancerType, scheme: Scheme, ip: IpAddressType) -> Result<()> {
    if ip == IpAddressType::DualstackWithoutPublicIpv4
        && !(lb_type == LoadBalancerType::Application && scheme == Scheme::InternetFacing)
    {
        return Err(misconfigured(
            "ip_address_type",
            "dualstack-without-public-ipv4 is only for internet-facing application load balancers",
        ));
    }
    Ok(())
}

/// The key of a target a command names that may already be registered: an
/// IP address in its canonical form; any other id as given, since targets
/// registered before the id rules (schema 1) must stay reachable.
fn registered_key(tg: &TargetGroup, spec: &TargetSpec) -> Result<TargetKey> {
    let id = validate::target_id(tg.target_type, tg.ip_address_type, &spec.id).unwrap_or(Cow::Borrowed(&spec.id));
    target_key(tg, &id, spec.port)
}

/// The key of a target named in a command: its port defaults to the group's.
fn target_key(tg: &TargetGroup, id: &str, port: Option<u16>) -> Result<TargetKey> {
    validate::identifier("targets.id", id)?;
    let port = match (tg.target_type, port.or(tg.port)) {
        (TargetType::Lambda, _) => 0,
        (_, Some(port)) => {
            validate::port("targets.port", port)?;
            port
        }
        (_, None) => return Err(invalid("targets.port", "none", "is required")),
    };
    Ok(TargetKey { target_group: tg.id, id: id.into(), port })
}

#[cfg(test)]
mod tests;
