//! Commands: the mutating ELBv2 operations, plus the health-check fleet's and
//! the provisioning workflow's.

use serde::{Deserialize, Serialize};

use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TrustStoreId};
use super::model::{
    Action, Attributes, Condition, HealthCheck, IpAddressType, LoadBalancerState, LoadBalancerType,
    MutualAuthentication, Protocol, ProtocolVersion, S3Object, Scheme, SubnetMapping, Tags, TargetGroupIpAddressType,
    TargetHealth, TargetType,
};

/// `CreateLoadBalancer`. An identical retry returns the existing load
/// balancer; a different one with the same name is refused.
/// [`CreateLoadBalancer::new`] takes what every load balancer needs and
/// gives an internet-facing IPv4 application load balancer; the other
/// fields are set with struct update syntax:
///
/// ```
/// use elbstore::elb::{CreateLoadBalancer, LoadBalancerType, Scheme, SubnetMapping};
///
/// let subnets = vec![SubnetMapping::new("subnet-a", "us-east-1a"), SubnetMapping::new("subnet-b", "us-east-1b")];
/// let create = CreateLoadBalancer {
///     scheme: Scheme::Internal,
///     security_groups: vec!["sg-1".into()],
///     ..CreateLoadBalancer::new("123456789012", "web", "vpc-1", subnets)
/// };
/// assert_eq!(create.load_balancer_type, LoadBalancerType::Application);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Initial tags.
    pub tags: Tags,
}

impl CreateLoadBalancer {
    /// An internet-facing IPv4 application load balancer named `name` in
    /// `account`, in `subnets` (one per availability zone; an application
    /// load balancer needs two zones or more) of the VPC `vpc_id`, with no
    /// security groups and no tags.
    pub fn new(
        account: impl Into<String>,
        name: impl Into<String>,
        vpc_id: impl Into<String>,
        subnets: Vec<SubnetMapping>,
    ) -> CreateLoadBalancer {
        CreateLoadBalancer {
            account: account.into(),
            name: name.into(),
            vpc_id: vpc_id.into(),
            subnets,
            ..CreateLoadBalancer::default()
        }
    }
}

/// `CreateListener`. An identical retry returns the existing listener; a
/// different one on the same port is refused (`DuplicateListener`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateListener {
    /// The load balancer.
    pub load_balancer: LoadBalancerId,
    /// The port (`None` for gateway load balancers, which take none).
    pub port: Option<u16>,
    /// The protocol (`None` for gateway load balancers, which take none).
    pub protocol: Option<Protocol>,
    /// The default certificate's ARN (HTTPS and TLS need one; the API takes exactly one).
    pub default_certificate: Option<String>,
    /// The TLS policy; HTTPS and TLS listeners get a default.
    pub ssl_policy: Option<String>,
    /// The default actions.
    pub default_actions: Vec<Action>,
    /// Mutual TLS (HTTPS listeners).
    pub mutual_authentication: Option<MutualAuthentication>,
    /// Tags.
    pub tags: Tags,
}

impl CreateListener {
    /// A listener on `port` with `protocol` that forwards everything to
    /// `target_group`. An HTTPS or TLS listener also needs
    /// `default_certificate`; a gateway load balancer's listener takes no
    /// port or protocol (use `Default` and set the fields).
    pub fn forward(
        load_balancer: LoadBalancerId,
        protocol: Protocol,
        port: u16,
        target_group: TargetGroupId,
    ) -> CreateListener {
        CreateListener {
            load_balancer,
            port: Some(port),
            protocol: Some(protocol),
            default_actions: vec![Action::forward(target_group)],
            ..CreateListener::default()
        }
    }
}

/// `ModifyListener`: each `Some` field replaces the listener's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifyListener {
    /// The listener.
    pub listener: ListenerId,
    /// A new port.
    pub port: Option<u16>,
    /// A new protocol. From HTTPS to HTTP, or TLS to TCP, the default
    /// certificate, the other certificates and the TLS policy go.
    pub protocol: Option<Protocol>,
    /// A new default certificate.
    pub default_certificate: Option<String>,
    /// A new TLS policy.
    pub ssl_policy: Option<String>,
    /// New default actions.
    pub default_actions: Option<Vec<Action>>,
    /// New mutual TLS settings.
    pub mutual_authentication: Option<MutualAuthentication>,
}

impl ModifyListener {
    /// A modification that changes nothing yet.
    pub fn new(listener: ListenerId) -> ModifyListener {
        ModifyListener {
            listener,
            port: None,
            protocol: None,
            default_certificate: None,
            ssl_policy: None,
            default_actions: None,
            mutual_authentication: None,
        }
    }
}

/// `CreateRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRule {
    /// The listener.
    pub listener: ListenerId,
    /// The priority, 1 to 50000, unique per listener.
    pub priority: u32,
    /// Conditions: at most one of each kind but `http-header` and
    /// `query-string`, with at most 5 values in all.
    pub conditions: Vec<Condition>,
    /// Actions.
    pub actions: Vec<Action>,
    /// Tags.
    pub tags: Tags,
}

/// `CreateTargetGroup`. An identical retry returns the existing group; a
/// different one with the same name is refused. `Default` gives an HTTP
/// group of instances on port 80, to fill in.
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
    /// HTTP1 (the default for HTTP and HTTPS), HTTP2 or GRPC.
    pub protocol_version: Option<ProtocolVersion>,
    /// IPv4 (the default) or IPv6 targets.
    pub ip_address_type: TargetGroupIpAddressType,
}

impl Default for CreateTargetGroup {
    fn default() -> CreateTargetGroup {
        CreateTargetGroup {
            account: String::new(),
            name: String::new(),
            protocol: Some(Protocol::Http),
            port: Some(80),
            vpc_id: None,
            target_type: TargetType::Instance,
            health_check: HealthCheck::default(),
            attributes: Attributes::new(),
            tags: Tags::new(),
            protocol_version: None,
            ip_address_type: TargetGroupIpAddressType::Ipv4,
        }
    }
}

impl CreateTargetGroup {
    /// An HTTP group of instances on port 80 named `name` in `account`, in
    /// the VPC `vpc_id`, with the default health check. Other protocols,
    /// ports and target types are set with struct update syntax; a Lambda
    /// group has no protocol, port or VPC (use `Default` and set the fields).
    pub fn new(account: impl Into<String>, name: impl Into<String>, vpc_id: impl Into<String>) -> CreateTargetGroup {
        CreateTargetGroup {
            account: account.into(),
            name: name.into(),
            vpc_id: Some(vpc_id.into()),
            ..CreateTargetGroup::default()
        }
    }
}

/// `ModifyTargetGroup`: each `Some` field replaces the health check's
/// value; the others are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifyHealthCheck {
    /// Whether checks run (only Lambda groups may turn them off).
    pub enabled: Option<bool>,
    /// HTTP, HTTPS or TCP.
    pub protocol: Option<Protocol>,
    /// The port; `Some(None)` is the traffic port.
    pub port: Option<Option<u16>>,
    /// The path (HTTP and HTTPS checks).
    pub path: Option<String>,
    /// Seconds between checks.
    pub interval_seconds: Option<u32>,
    /// Seconds before a check fails.
    pub timeout_seconds: Option<u32>,
    /// Passes in a row before healthy.
    pub healthy_threshold: Option<u32>,
    /// Failures in a row before unhealthy.
    pub unhealthy_threshold: Option<u32>,
    /// Accepted codes.
    pub matcher: Option<String>,
}

impl ModifyHealthCheck {
    /// Sets each given value on `check`, as `ModifyTargetGroup` does (a
    /// change to TCP without a path drops the path).
    pub fn apply_to(&self, check: &mut HealthCheck) {
        if let Some(enabled) = self.enabled {
            check.enabled = enabled;
        }
        if let Some(protocol) = self.protocol {
            check.protocol = protocol;
            if protocol == Protocol::Tcp && self.path.is_none() {
                check.path = None;
            }
        }
        if let Some(port) = self.port {
            check.port = port;
        }
        if let Some(path) = &self.path {
            check.path = Some(path.clone());
        }
        if let Some(interval) = self.interval_seconds {
            check.interval_seconds = interval;
        }
        if let Some(timeout) = self.timeout_seconds {
            check.timeout_seconds = timeout;
        }
        if let Some(threshold) = self.healthy_threshold {
            check.healthy_threshold = threshold;
        }
        if let Some(threshold) = self.unhealthy_threshold {
            check.unhealthy_threshold = threshold;
        }
        if let Some(matcher) = &self.matcher {
            check.matcher = Some(matcher.clone());
        }
    }
}

/// `CreateTrustStore`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTrustStore {
    /// The owning account.
    pub account: String,
    /// The name, unique per account.
    pub name: String,
    /// Where the CA certificates bundle is.
    pub ca_certificates_bundle: S3Object,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Taggable {
    /// A load balancer.
    LoadBalancer(LoadBalancerId),
    /// A listener.
    Listener(ListenerId),
    /// A rule.
    Rule(RuleId),
    /// A target group.
    TargetGroup(TargetGroupId),
    /// A trust store.
    TrustStore(TrustStoreId),
}

/// One mutating operation: every mutating operation of the ELBv2 API, plus
/// the internal commands of the health-check fleet (`UpdateTargetHealth`),
/// the provisioning workflow (`SetLoadBalancerState`) and the deregistration
/// workflow (`CompleteDeregistrations`). A transaction is a list of commands
/// applied in order, all or nothing.
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
    /// Change parts of a target group's health check.
    ModifyTargetGroup {
        /// The target group.
        target_group: TargetGroupId,
        /// The fields to change.
        health_check: ModifyHealthCheck,
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
    /// Register targets; registering a registered target changes nothing, and
    /// registering a draining one takes it back.
    RegisterTargets {
        /// The target group.
        target_group: TargetGroupId,
        /// The targets.
        targets: Vec<TargetSpec>,
    },
    /// Deregister targets: they drain for the group's deregistration delay
    /// (removed at once when the delay is 0 or no load balancer uses the
    /// group). A target that is not registered is no error.
    DeregisterTargets {
        /// The target group.
        target_group: TargetGroupId,
        /// The targets.
        targets: Vec<TargetSpec>,
    },
    /// Add or replace tags on resources.
    AddTags {
        /// The resources (1 to 20).
        resources: Vec<Taggable>,
        /// The tags.
        tags: Tags,
    },
    /// Remove tags by key from resources.
    RemoveTags {
        /// The resources (1 to 20).
        resources: Vec<Taggable>,
        /// The keys.
        keys: Vec<String>,
    },
    /// Set attributes of a listener (others are kept).
    ModifyListenerAttributes {
        /// The listener.
        listener: ListenerId,
        /// The attributes to set.
        attributes: Attributes,
    },
    /// Create a trust store.
    CreateTrustStore(CreateTrustStore),
    /// Point a trust store at a new CA certificates bundle.
    ModifyTrustStore {
        /// The trust store.
        trust_store: TrustStoreId,
        /// The new bundle.
        ca_certificates_bundle: S3Object,
    },
    /// Delete a trust store; refused while a listener uses it.
    DeleteTrustStore {
        /// The trust store.
        trust_store: TrustStoreId,
    },
    /// Add revocation lists to a trust store; their ids are the created ids.
    AddTrustStoreRevocations {
        /// The trust store.
        trust_store: TrustStoreId,
        /// The lists.
        revocations: Vec<S3Object>,
    },
    /// Remove revocation lists from a trust store.
    RemoveTrustStoreRevocations {
        /// The trust store.
        trust_store: TrustStoreId,
        /// Their ids.
        revocation_ids: Vec<u64>,
    },
    /// The trust store's owner removes its use by a listener of another account.
    DeleteSharedTrustStoreAssociation {
        /// The trust store.
        trust_store: TrustStoreId,
        /// The listener that uses it.
        listener: ListenerId,
    },
    /// Reserve (or, with `None`, reset) a minimum capacity.
    ModifyCapacityReservation {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// Capacity units to reserve, or `None` to reset.
        capacity_units: Option<u32>,
    },
    /// Set (or, with `None`, remove) the IPAM pool of a load balancer's IPv4 addresses.
    ModifyIpPools {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The IPv4 IPAM pool id, `ipam-pool-...`.
        ipv4_ipam_pool: Option<String>,
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
    /// Remove the draining targets whose deregistration delay has ended by
    /// the transaction's time, in one group or all (the deregistration workflow).
    CompleteDeregistrations {
        /// The group, or `None` for every group.
        target_group: Option<TargetGroupId>,
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
    /// A trust store was created with this id.
    TrustStoreCreated(TrustStoreId),
    /// Revocation lists were added with these ids.
    RevocationsAdded(Vec<u64>),
    /// The command changed (or deleted) this many resources; 0 means it was a no-op.
    Changed(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::elb::{plan, ElbState, Settings};
    use crate::store::TxnContext;

    /// The constructors give commands the planner accepts as they are: a
    /// load balancer with a listener forwarding to a target group, in one
    /// transaction.
    #[test]
    fn constructors_give_commands_that_are_accepted_as_they_are() {
        let seq = 1;
        let lb = LoadBalancerId::new(seq, 0);
        let tg = TargetGroupId::new(seq, 1);
        let subnets = vec![SubnetMapping::new("subnet-a", "us-east-1a"), SubnetMapping::new("subnet-b", "us-east-1b")];
        let commands = vec![
            Command::CreateLoadBalancer(CreateLoadBalancer::new("123456789012", "web", "vpc-1", subnets)),
            Command::CreateTargetGroup(CreateTargetGroup {
                port: Some(8080),
                ..CreateTargetGroup::new("123456789012", "web", "vpc-1")
            }),
            Command::CreateListener(CreateListener::forward(lb, Protocol::Http, 80, tg)),
        ];
        let ctx = TxnContext { seq, time: Timestamp::from_secs(1_356_380_640) };
        let (_, outcomes) = plan(&ElbState::default(), &commands, &ctx, &Settings::in_region("us-east-1")).unwrap();
        assert_eq!(
            outcomes,
            [
                Outcome::LoadBalancerCreated(lb),
                Outcome::TargetGroupCreated(tg),
                Outcome::ListenerCreated(ListenerId::new(seq, 2)),
            ]
        );
    }

    #[test]
    fn constructors_set_the_fields_they_name_and_the_documented_defaults() {
        let lb = CreateLoadBalancer::new("1", "web", "vpc-1", Vec::new());
        assert_eq!((lb.account.as_str(), lb.name.as_str(), lb.vpc_id.as_str()), ("1", "web", "vpc-1"));
        assert_eq!(
            (lb.load_balancer_type, lb.scheme, lb.ip_address_type),
            (LoadBalancerType::Application, Scheme::InternetFacing, IpAddressType::Ipv4)
        );
        let tg = CreateTargetGroup::new("1", "web", "vpc-1");
        assert_eq!((tg.account.as_str(), tg.name.as_str(), tg.vpc_id.as_deref()), ("1", "web", Some("vpc-1")));
        assert_eq!((tg.protocol, tg.port, tg.target_type), (Some(Protocol::Http), Some(80), TargetType::Instance));
        let listener = CreateListener::forward(LoadBalancerId(1), Protocol::Https, 443, TargetGroupId(2));
        assert_eq!((listener.port, listener.protocol), (Some(443), Some(Protocol::Https)));
        assert_eq!(listener.default_actions, [Action::forward(TargetGroupId(2))]);
        assert_eq!(listener.default_certificate, None);
    }
}
