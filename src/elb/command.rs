//! Commands: the mutating ELBv2 operations, plus the health-check fleet's and
//! the provisioning workflow's.

use serde::{Deserialize, Serialize};

use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId};
use super::model::{
    Action, Attributes, Condition, HealthCheck, IpAddressType, LoadBalancerState, LoadBalancerType, Protocol, Scheme,
    SubnetMapping, Tags, TargetHealth, TargetType,
};

/// `CreateLoadBalancer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateLoadBalancer {
    /// The owning account.
    pub account: String,
    /// The name, unique per account.
    pub name: String,
    /// Application, network or gateway.
    pub load_balancer_type: LoadBalancerType,
    /// Internet-facing or internal.
    pub scheme: Scheme,
    /// IPv4 or dual-stack.
    pub ip_address_type: IpAddressType,
    /// The VPC.
    pub vpc_id: String,
    /// Subnets, one per availability zone.
    pub subnets: Vec<SubnetMapping>,
    /// Security groups.
    pub security_groups: Vec<String>,
    /// Initial attributes.
    pub attributes: Attributes,
    /// Initial tags.
    pub tags: Tags,
}

/// `CreateListener`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateListener {
    /// The load balancer.
    pub load_balancer: LoadBalancerId,
    /// The port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
    /// Certificate ARNs.
    pub certificates: Vec<String>,
    /// The TLS policy; HTTPS and TLS listeners get a default.
    pub ssl_policy: Option<String>,
    /// The default actions.
    pub default_actions: Vec<Action>,
    /// Tags.
    pub tags: Tags,
}

/// `ModifyListener`: each `Some` field replaces the listener's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifyListener {
    /// The listener.
    pub listener: ListenerId,
    /// A new port.
    pub port: Option<u16>,
    /// A new protocol.
    pub protocol: Option<Protocol>,
    /// New certificates.
    pub certificates: Option<Vec<String>>,
    /// A new TLS policy.
    pub ssl_policy: Option<String>,
    /// New default actions.
    pub default_actions: Option<Vec<Action>>,
}

impl ModifyListener {
    /// A modification that changes nothing yet.
    pub fn new(listener: ListenerId) -> ModifyListener {
        ModifyListener {
            listener,
            port: None,
            protocol: None,
            certificates: None,
            ssl_policy: None,
            default_actions: None,
        }
    }
}

/// `CreateRule`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRule {
    /// The listener.
    pub listener: ListenerId,
    /// The priority, 1 to 50000, unique per listener.
    pub priority: u32,
    /// Conditions, 1 to 5.
    pub conditions: Vec<Condition>,
    /// Actions.
    pub actions: Vec<Action>,
    /// Tags.
    pub tags: Tags,
}

/// `CreateTargetGroup`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTargetGroup {
    /// The owning account.
    pub account: String,
    /// The name, unique per account.
    pub name: String,
    /// The protocol (`None` for Lambda).
    pub protocol: Option<Protocol>,
    /// The port (`None` for Lambda).
    pub port: Option<u16>,
    /// The VPC (`None` for Lambda).
    pub vpc_id: Option<String>,
    /// What the targets are.
    pub target_type: TargetType,
    /// The health check.
    pub health_check: HealthCheck,
    /// Attributes.
    pub attributes: Attributes,
    /// Tags.
    pub tags: Tags,
}

/// A target named in `RegisterTargets`, `DeregisterTargets` or `UpdateTargetHealth`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// The instance id, IP address or ARN.
    pub id: String,
    /// The port; `None` uses the target group's.
    pub port: Option<u16>,
    /// The availability zone.
    pub availability_zone: Option<String>,
}

impl TargetSpec {
    /// A target on the group's port.
    pub fn new(id: impl Into<String>) -> TargetSpec {
        TargetSpec { id: id.into(), port: None, availability_zone: None }
    }
}

/// A resource that can carry tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Taggable {
    /// A load balancer.
    LoadBalancer(LoadBalancerId),
    /// A listener.
    Listener(ListenerId),
    /// A rule.
    Rule(RuleId),
    /// A target group.
    TargetGroup(TargetGroupId),
}

/// One mutating operation. A transaction is a list of commands applied in
/// order, all or nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a load balancer.
    CreateLoadBalancer(CreateLoadBalancer),
    /// Delete a load balancer with its listeners and rules.
    DeleteLoadBalancer {
        /// The load balancer.
        load_balancer: LoadBalancerId,
    },
    /// Set attributes of a load balancer (others are kept).
    ModifyLoadBalancerAttributes {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The attributes to set.
        attributes: Attributes,
    },
    /// Replace a load balancer's subnets.
    SetSubnets {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The subnets.
        subnets: Vec<SubnetMapping>,
    },
    /// Replace a load balancer's security groups.
    SetSecurityGroups {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The security groups.
        security_groups: Vec<String>,
    },
    /// Change a load balancer's IP address type.
    SetIpAddressType {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The type.
        ip_address_type: IpAddressType,
    },
    /// Create a listener.
    CreateListener(CreateListener),
    /// Change a listener.
    ModifyListener(ModifyListener),
    /// Delete a listener with its rules.
    DeleteListener {
        /// The listener.
        listener: ListenerId,
    },
    /// Add certificates to a listener.
    AddListenerCertificates {
        /// The listener.
        listener: ListenerId,
        /// Certificate ARNs.
        certificates: Vec<String>,
    },
    /// Remove certificates from a listener.
    RemoveListenerCertificates {
        /// The listener.
        listener: ListenerId,
        /// Certificate ARNs.
        certificates: Vec<String>,
    },
    /// Create a rule.
    CreateRule(CreateRule),
    /// Replace a rule's conditions and/or actions.
    ModifyRule {
        /// The rule.
        rule: RuleId,
        /// New conditions.
        conditions: Option<Vec<Condition>>,
        /// New actions.
        actions: Option<Vec<Action>>,
    },
    /// Delete a rule.
    DeleteRule {
        /// The rule.
        rule: RuleId,
    },
    /// Set the priorities of rules at once (swaps allowed).
    SetRulePriorities {
        /// Rule and new priority pairs.
        priorities: Vec<(RuleId, u32)>,
    },
    /// Create a target group.
    CreateTargetGroup(CreateTargetGroup),
    /// Replace a target group's health check.
    ModifyTargetGroup {
        /// The target group.
        target_group: TargetGroupId,
        /// The new health check.
        health_check: HealthCheck,
    },
    /// Set attributes of a target group (others are kept).
    ModifyTargetGroupAttributes {
        /// The target group.
        target_group: TargetGroupId,
        /// The attributes to set.
        attributes: Attributes,
    },
    /// Delete a target group (and deregister its targets); refused while in use.
    DeleteTargetGroup {
        /// The target group.
        target_group: TargetGroupId,
    },
    /// Register targets; registering a registered target changes nothing.
    RegisterTargets {
        /// The target group.
        target_group: TargetGroupId,
        /// The targets.
        targets: Vec<TargetSpec>,
    },
    /// Deregister targets.
    DeregisterTargets {
        /// The target group.
        target_group: TargetGroupId,
        /// The targets.
        targets: Vec<TargetSpec>,
    },
    /// Add or replace tags.
    AddTags {
        /// The resource.
        resource: Taggable,
        /// The tags.
        tags: Tags,
    },
    /// Remove tags by key.
    RemoveTags {
        /// The resource.
        resource: Taggable,
        /// The keys.
        keys: Vec<String>,
    },
    /// Record a target's health (the health-check fleet).
    UpdateTargetHealth {
        /// The target group.
        target_group: TargetGroupId,
        /// The target.
        target: TargetSpec,
        /// Its health.
        health: TargetHealth,
    },
    /// Move a load balancer through its life cycle (the provisioning workflow).
    SetLoadBalancerState {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The new state.
        state: LoadBalancerState,
    },
}

/// What one command produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A load balancer was created with this id.
    LoadBalancerCreated(LoadBalancerId),
    /// A listener was created with this id.
    ListenerCreated(ListenerId),
    /// A rule was created with this id.
    RuleCreated(RuleId),
    /// A target group was created with this id.
    TargetGroupCreated(TargetGroupId),
    /// The command changed (or deleted) this many resources; 0 means it was a no-op.
    Changed(usize),
}
