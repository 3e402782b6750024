//! Limits, with the published Elastic Load Balancing defaults.

use serde::{Deserialize, Serialize};

use super::guard::{AlarmThresholds, DeletionGuard};

/// Per-account and per-resource limits. Defaults are the published ELB quotas
/// per region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Load balancers per account (default 50).
    pub load_balancers_per_account: usize,
    /// Target groups per account (default 3000).
    pub target_groups_per_account: usize,
    /// Listeners per load balancer (default 50).
    pub listeners_per_load_balancer: usize,
    /// Rules per application load balancer, not counting default rules (default 100).
    pub rules_per_load_balancer: usize,
    /// Targets per target group (default 1000).
    pub targets_per_target_group: usize,
    /// Tags per resource (default 50).
    pub tags_per_resource: usize,
    /// Certificates per listener (default 25).
    pub certificates_per_listener: usize,
    /// Security groups per load balancer (default 5).
    pub security_groups_per_load_balancer: usize,
    /// Conditions per rule (default 5).
    pub conditions_per_rule: usize,
    /// Target groups per forward action (default 5).
    pub target_groups_per_action: usize,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            load_balancers_per_account: 50,
            target_groups_per_account: 3000,
            listeners_per_load_balancer: 50,
            rules_per_load_balancer: 100,
            targets_per_target_group: 1000,
            tags_per_resource: 50,
            certificates_per_listener: 25,
            security_groups_per_load_balancer: 5,
            conditions_per_rule: 5,
            target_groups_per_action: 5,
        }
    }
}

/// What the typed store needs besides the state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The store's region, used in DNS names and ARNs.
    pub region: String,
    /// The limits.
    pub quotas: Quotas,
    /// The bulk-deletion guard (on by default).
    pub guard: DeletionGuard,
    /// When alarms fire.
    pub alarms: AlarmThresholds,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            region: "us-east-1".into(),
            quotas: Quotas::default(),
            guard: DeletionGuard::default(),
            alarms: AlarmThresholds::default(),
        }
    }
}
