//! Cross-resource rules, checked on a state: the planner checks them on the
//! state a command leaves, and a revert on the state its compensation would
//! leave, so a revert can never write what a command could not.

use super::error::ElbError;
use super::model::{Action, LoadBalancer, LoadBalancerType, Protocol, TargetGroup, TargetType};
use super::quotas::Quotas;
use super::state::ElbState;
use super::validate;

type Result<T = ()> = std::result::Result<T, ElbError>;

/// A listener of `protocol` on `lb` forwarding to `tg`: same account and VPC,
/// protocols that fit (`IncompatibleProtocols`), and no other load balancer
/// using the group (`TargetGroup.LoadBalancerArns`: "only one load balancer";
/// `TargetGroupAssociationLimit`).
pub(crate) fn forward(state: &ElbState, lb: &LoadBalancer, protocol: Protocol, tg: &TargetGroup) -> Result {
    let incompatible =
        |problem| ElbError::IncompatibleTargetGroup { target_group: tg.id, load_balancer: lb.id, problem };
    if tg.account != lb.account {
        return Err(incompatible("it belongs to another account"));
    }
    if tg.vpc_id.as_ref().is_some_and(|vpc| *vpc != lb.vpc_id) {
        return Err(incompatible("it is in another VPC"));
    }
    if validate::group_family(tg.protocol, tg.target_type) != lb.load_balancer_type
        || !validate::protocols_compatible(protocol, tg.protocol)
    {
        return Err(ElbError::IncompatibleProtocols {
            listener_protocol: protocol,
            target_group: tg.id,
            target_group_protocol: tg.protocol,
        });
    }
    if let Some(other) = state.load_balancers_using(tg.id).into_iter().find(|other| *other != lb.id) {
        return Err(ElbError::TargetGroupAssociationLimit { target_group: tg.id, load_balancer: other });
    }
    Ok(())
}

/// The quotas a load balancer's forwards count against: target groups per
/// application load balancer, targets per load balancer by type.
pub(crate) fn forward_quotas(state: &ElbState, lb: &LoadBalancer, quotas: &Quotas) -> Result {
    let groups = state.target_groups_of(lb.id);
    if lb.load_balancer_type == LoadBalancerType::Application
        && groups.len() > quotas.target_groups_per_application_load_balancer
    {
        let limit = quotas.target_groups_per_application_load_balancer;
        return Err(ElbError::QuotaExceeded { quota: "target_groups_per_application_load_balancer", limit });
    }
    let (quota, limit) = quotas.targets_of(lb.load_balancer_type);
    if groups.iter().map(|tg| state.target_count_of(*tg)).sum::<usize>() > limit {
        return Err(ElbError::QuotaExceeded { quota, limit });
    }
    Ok(())
}

/// Every rule of one load balancer as a whole: its listeners, rules and
/// certificates within their quotas, every forward of every listener and
/// rule allowed, and the forward quotas.
pub(crate) fn load_balancer(state: &ElbState, lb: &LoadBalancer, quotas: &Quotas) -> Result {
    let (quota, limit) = quotas.listeners_of(lb.load_balancer_type);
    if state.listeners_of(lb.id).count() > limit {
        return Err(ElbError::QuotaExceeded { quota, limit });
    }
    let mut rules = 0;
    let mut certificates = 0;
    for listener in state.listeners_of(lb.id) {
        certificates += listener.certificates.len();
        let mut forwards: Vec<&Action> = listener.default_actions.iter().collect();
        for rule in state.rules_of(listener.id) {
            rules += 1;
            forwards.extend(&rule.actions);
        }
        for id in forwards.into_iter().flat_map(Action::target_groups) {
            if let Some(tg) = state.target_group(id) {
                forward(state, lb, listener.protocol, tg)?;
            }
        }
    }
    if rules > quotas.rules_per_load_balancer {
        return Err(ElbError::QuotaExceeded {
            quota: "rules_per_load_balancer",
            limit: quotas.rules_per_load_balancer,
        });
    }
    if certificates > quotas.certificates_per_load_balancer {
        let limit = quotas.certificates_per_load_balancer;
        return Err(ElbError::QuotaExceeded { quota: "certificates_per_load_balancer", limit });
    }
    forward_quotas(state, lb, quotas)
}

/// A target group's own quota: its targets (Lambda and `alb` groups hold one).
pub(crate) fn target_group(state: &ElbState, tg: &TargetGroup, quotas: &Quotas) -> Result {
    let limit = match tg.target_type {
        TargetType::Lambda | TargetType::Alb => 1,
        _ => quotas.targets_per_target_group,
    };
    if state.target_count_of(tg.id) > limit {
        return Err(ElbError::QuotaExceeded { quota: "targets_per_target_group", limit });
    }
    Ok(())
}

/// An account's quotas: load balancers per type, target groups (GENEVE ones
/// apart), trust stores.
pub(crate) fn account(state: &ElbState, account: &str, quotas: &Quotas) -> Result {
    for kind in LoadBalancerType::ALL {
        let (quota, limit) = quotas.load_balancers_of(*kind);
        if state.load_balancers_of(account).filter(|lb| lb.load_balancer_type == *kind).count() > limit {
            return Err(ElbError::QuotaExceeded { quota, limit });
        }
    }
    if state.target_group_count(account) > quotas.target_groups_per_account {
        let limit = quotas.target_groups_per_account;
        return Err(ElbError::QuotaExceeded { quota: "target_groups_per_account", limit });
    }
    let geneve = state.target_groups_of_account(account).filter(|g| g.protocol == Some(Protocol::Geneve)).count();
    if geneve > quotas.geneve_target_groups_per_account {
        let limit = quotas.geneve_target_groups_per_account;
        return Err(ElbError::QuotaExceeded { quota: "geneve_target_groups_per_account", limit });
    }
    if state.trust_store_count(account) > quotas.trust_stores_per_account {
        let limit = quotas.trust_stores_per_account;
        return Err(ElbError::QuotaExceeded { quota: "trust_stores_per_account", limit });
    }
    Ok(())
}

impl ElbState {
    /// Every rule of today's API this whole state breaks, with the resource
    /// it is about: each account's quotas, each load balancer's (its
    /// listeners, rules, certificates, forwards), each target group's. A
    /// state the planner built has none under the quotas it was built with;
    /// a restore reports what a state of an older schema, or older quotas,
    /// breaks now.
    pub fn violations(&self, quotas: &Quotas) -> Vec<(super::event::EntityKey, ElbError)> {
        use super::event::EntityKey;
        let mut out = Vec::new();
        let mut accounts: Vec<&str> = self.load_balancers().map(|lb| lb.account.as_str()).collect();
        accounts.extend(self.target_groups().map(|tg| tg.account.as_str()));
        accounts.extend(self.trust_stores().map(|ts| ts.account.as_str()));
        accounts.sort_unstable();
        accounts.dedup();
        for name in accounts {
            if let Err(err) = account(self, name, quotas) {
                let first = self.load_balancers_of(name).next().map(|lb| EntityKey::LoadBalancer(lb.id));
                let first = first
                    .or_else(|| self.target_groups_of_account(name).next().map(|tg| EntityKey::TargetGroup(tg.id)))
                    .or_else(|| {
                        self.trust_stores().find(|ts| ts.account == name).map(|ts| EntityKey::TrustStore(ts.id))
                    });
                out.extend(first.map(|key| (key, err)));
            }
        }
        for lb in self.load_balancers() {
            if let Err(err) = load_balancer(self, lb, quotas) {
                out.push((EntityKey::LoadBalancer(lb.id), err));
            }
        }
        for tg in self.target_groups() {
            if let Err(err) = target_group(self, tg, quotas) {
                out.push((EntityKey::TargetGroup(tg.id), err));
            }
        }
        out
    }
}
