//! Limits, with the published Elastic Load Balancing defaults.

use serde::{Deserialize, Serialize};

use super::guard::{AlarmThresholds, DeletionGuard};
use super::model::LoadBalancerType;

/// Per-account and per-resource limits. Defaults are the published quotas
/// per region of the Application, Network and Gateway Load Balancer guides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Application load balancers per account (default 50).
    pub application_load_balancers_per_account: usize,
    /// Network load balancers per account (default 50).
    pub network_load_balancers_per_account: usize,
    /// Gateway load balancers per account (default 100).
    pub gateway_load_balancers_per_account: usize,
    /// Target groups per account (default 3000).
    pub target_groups_per_account: usize,
    /// GENEVE target groups per account (default 100).
    pub geneve_target_groups_per_account: usize,
    /// Listeners per application or network load balancer (default 50).
    pub listeners_per_load_balancer: usize,
    /// Listeners per gateway load balancer (default 1).
    pub listeners_per_gateway_load_balancer: usize,
    /// Rules per application load balancer, not counting default rules (default 100).
    pub rules_per_load_balancer: usize,
    /// Targets per target group (default 1000; Lambda and `alb` groups hold one).
    pub targets_per_target_group: usize,
    /// Targets per application load balancer (default 1000).
    pub targets_per_application_load_balancer: usize,
    /// Targets per network load balancer (default 3000).
    pub targets_per_network_load_balancer: usize,
    /// Targets per gateway load balancer (default 300).
    pub targets_per_gateway_load_balancer: usize,
    /// Target groups one application load balancer forwards to (default 100).
    pub target_groups_per_application_load_balancer: usize,
    /// Tags per resource (default 50).
    pub tags_per_resource: usize,
    /// Certificates per load balancer, not counting default certificates (default 25).
    pub certificates_per_load_balancer: usize,
    /// Security groups per load balancer (default 5).
    pub security_groups_per_load_balancer: usize,
    /// Condition values per rule, over all its conditions (default 5).
    pub condition_values_per_rule: usize,
    /// Actions per rule (default 5).
    pub actions_per_rule: usize,
    /// Target groups per forward action (default 5).
    pub target_groups_per_action: usize,
    /// Trust stores per account (default 100).
    pub trust_stores_per_account: usize,
    /// Revocation lists per trust store (default 50).
    pub revocation_lists_per_trust_store: usize,
    /// Resources named by one `AddTags` or `RemoveTags` (default 20).
    pub resources_per_tag_call: usize,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            application_load_balancers_per_account: 50,
            network_load_balancers_per_account: 50,
            gateway_load_balancers_per_account: 100,
            target_groups_per_account: 3000,
            geneve_target_groups_per_account: 100,
            listeners_per_load_balancer: 50,
            listeners_per_gateway_load_balancer: 1,
            rules_per_load_balancer: 100,
            targets_per_target_group: 1000,
            targets_per_application_load_balancer: 1000,
            targets_per_network_load_balancer: 3000,
            targets_per_gateway_load_balancer: 300,
            target_groups_per_application_load_balancer: 100,
            tags_per_resource: 50,
            certificates_per_load_balancer: 25,
            security_groups_per_load_balancer: 5,
            condition_values_per_rule: 5,
            actions_per_rule: 5,
            target_groups_per_action: 5,
            trust_stores_per_account: 100,
            revocation_lists_per_trust_store: 50,
            resources_per_tag_call: 20,
        }
    }
}

impl Quotas {
    /// Load balancers of a type per account, with the quota's name.
    pub fn load_balancers_of(&self, kind: LoadBalancerType) -> (&'static str, usize) {
        match kind {
            LoadBalancerType::Application => {
                ("application_load_balancers_per_account", self.application_load_balancers_per_account)
            }
            LoadBalancerType::Network => {
                ("network_load_balancers_per_account", self.network_load_balancers_per_account)
            }
            LoadBalancerType::Gateway => {
                ("gateway_load_balancers_per_account", self.gateway_load_balancers_per_account)
            }
        }
    }

    /// Listeners per load balancer of a type, with the quota's name.
    pub fn listeners_of(&self, kind: LoadBalancerType) -> (&'static str, usize) {
        match kind {
            LoadBalancerType::Gateway => {
                ("listeners_per_gateway_load_balancer", self.listeners_per_gateway_load_balancer)
            }
            _ => ("listeners_per_load_balancer", self.listeners_per_load_balancer),
        }
    }

    /// Targets per load balancer of a type, with the quota's name.
    pub fn targets_of(&self, kind: LoadBalancerType) -> (&'static str, usize) {
        match kind {
            LoadBalancerType::Application => {
                ("targets_per_application_load_balancer", self.targets_per_application_load_balancer)
            }
            LoadBalancerType::Network => ("targets_per_network_load_balancer", self.targets_per_network_load_balancer),
            LoadBalancerType::Gateway => ("targets_per_gateway_load_balancer", self.targets_per_gateway_load_balancer),
        }
    }
}

/// What the typed store needs besides the state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The store's region, used in DNS names and ARNs. `None` takes it from
    /// the store's load balancers (their DNS names name it); a region that
    /// disagrees with them is refused when the store opens.
    pub region: Option<String>,
    /// The limits.
    pub quotas: Quotas,
    /// The bulk-deletion guard (on by default).
    pub guard: DeletionGuard,
    /// When alarms fire.
    pub alarms: AlarmThresholds,
}

impl Settings {
    /// Default settings for a store in `region`.
    pub fn in_region(region: impl Into<String>) -> Settings {
        Settings { region: Some(region.into()), ..Settings::default() }
    }
}
