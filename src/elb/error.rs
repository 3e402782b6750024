//! Why a command was refused.

use std::fmt;

use super::event::EntityKey;
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey, TrustStoreId};
use super::model::{HealthState, LoadBalancerState, LoadBalancerType, Protocol};
use crate::store;

/// Why a name is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty.
    Empty,
    /// Longer than 32 characters.
    TooLong,
    /// Holds something other than letters, digits and hyphens.
    BadCharacter,
    /// Starts or ends with a hyphen.
    EdgeHyphen,
    /// Starts with `internal-`.
    InternalPrefix,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::Empty => "is empty",
            NameProblem::TooLong => "is longer than 32 characters",
            NameProblem::BadCharacter => "may hold only letters, digits and hyphens",
            NameProblem::EdgeHyphen => "may not start or end with a hyphen",
            NameProblem::InternalPrefix => "may not start with \"internal-\"",
        })
    }
}

/// A command refused by validation, or a failure of the store underneath.
/// A refused command changes nothing and writes nothing.
///
/// [`code`](ElbError::code) gives the error code the ELBv2 API answers with
/// (`DuplicateLoadBalancerName`, `TooManyLoadBalancers`, `ResourceInUse`,
/// `ValidationError`, ...) and [`http_status`](ElbError::http_status) its
/// HTTP status, so a service maps every refusal to the API's response 1:1.
#[derive(Debug)]
#[non_exhaustive]
pub enum ElbError {
    /// No load balancer with this id.
    LoadBalancerNotFound {
        /// The id asked for.
        id: LoadBalancerId,
    },
    /// No listener with this id.
    ListenerNotFound {
        /// The id asked for.
        id: ListenerId,
    },
    /// No rule with this id.
    RuleNotFound {
        /// The id asked for.
        id: RuleId,
    },
    /// No target group with this id.
    TargetGroupNotFound {
        /// The id asked for.
        id: TargetGroupId,
    },
    /// The target is not registered.
    TargetNotRegistered {
        /// The target.
        target: TargetKey,
    },
    /// The account already has a load balancer with this name.
    DuplicateLoadBalancerName {
        /// The account.
        account: String,
        /// The name.
        name: String,
    },
    /// The account already has a target group with this name.
    DuplicateTargetGroupName {
        /// The account.
        account: String,
        /// The name.
        name: String,
    },
    /// A load balancer or target group name breaks the naming rules.
    InvalidName {
        /// The field, e.g. `name`.
        field: &'static str,
        /// The name given.
        name: String,
        /// The rule broken.
        problem: NameProblem,
    },
    /// A field's value is out of range or malformed.
    InvalidValue {
        /// The field, e.g. `health_check.interval_seconds`.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The load balancer already has a listener on this port.
    PortInUse {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// The port.
        port: u16,
        /// The listener on it.
        listener: ListenerId,
    },
    /// The listener already has a rule with this priority.
    PriorityInUse {
        /// The listener.
        listener: ListenerId,
        /// The priority.
        priority: u32,
        /// The rule with it.
        rule: RuleId,
    },
    /// The protocol does not fit the load balancer's type.
    ProtocolNotAllowed {
        /// The load balancer's type.
        load_balancer_type: LoadBalancerType,
        /// The protocol asked for.
        protocol: Protocol,
    },
    /// HTTPS and TLS listeners need a certificate.
    CertificateRequired {
        /// The protocol.
        protocol: Protocol,
    },
    /// An application load balancer needs subnets in two zones or more.
    TooFewAvailabilityZones {
        /// Zones needed.
        required: usize,
        /// Zones given.
        given: usize,
    },
    /// Listener rules exist only on application load balancers.
    RulesNotSupported {
        /// The listener.
        listener: ListenerId,
    },
    /// The target group cannot serve this load balancer (type, protocol or VPC).
    IncompatibleTargetGroup {
        /// The target group.
        target_group: TargetGroupId,
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// Why.
        problem: &'static str,
    },
    /// The target group is still used by a listener or rule.
    TargetGroupInUse {
        /// The target group.
        target_group: TargetGroupId,
        /// A listener or rule that forwards to it.
        used_by: EntityKey,
    },
    /// The load balancer's deletion protection is on.
    DeletionProtected {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// Its name.
        name: String,
    },
    /// A quota would be exceeded.
    QuotaExceeded {
        /// The quota, e.g. `listeners_per_load_balancer`.
        quota: &'static str,
        /// Its limit.
        limit: usize,
    },
    /// The transaction, or its actor's transactions within the guard's window,
    /// would delete more load balancers than the guard allows without an approval.
    BulkDeletionRefused {
        /// Load balancers it (with the window's earlier ones) would delete.
        count: usize,
        /// The limit.
        limit: usize,
        /// The actor and window, when the window's total is over the limit.
        window: Option<(String, std::time::Duration)>,
        /// The actor's earlier deleting transactions in the window.
        transactions: Vec<u64>,
    },
    /// No trust store with this id.
    TrustStoreNotFound {
        /// The id asked for.
        id: TrustStoreId,
    },
    /// The account already has a trust store with this name.
    DuplicateTrustStoreName {
        /// The account.
        account: String,
        /// The name.
        name: String,
    },
    /// A listener still verifies client certificates with the trust store.
    TrustStoreInUse {
        /// The trust store.
        trust_store: TrustStoreId,
        /// A listener that uses it.
        listener: ListenerId,
    },
    /// The trust store has no revocation list with this id.
    RevocationNotFound {
        /// The trust store.
        trust_store: TrustStoreId,
        /// The id asked for.
        revocation_id: u64,
    },
    /// The listener does not use the trust store.
    TrustStoreAssociationNotFound {
        /// The trust store.
        trust_store: TrustStoreId,
        /// The listener.
        listener: ListenerId,
    },
    /// A trust store's association with a listener of its own account is
    /// removed by changing the listener, not by `DeleteSharedTrustStoreAssociation`.
    DeleteAssociationSameAccount {
        /// The trust store.
        trust_store: TrustStoreId,
        /// The listener.
        listener: ListenerId,
    },
    /// The request is valid in form but not for this configuration.
    InvalidConfiguration {
        /// What is being configured, e.g. `health_check.protocol`.
        field: &'static str,
        /// Why it cannot be.
        problem: String,
    },
    /// A listener cannot forward to a target group with this protocol.
    IncompatibleProtocols {
        /// The listener's protocol.
        listener_protocol: Protocol,
        /// The target group.
        target_group: TargetGroupId,
        /// Its protocol (`None` for Lambda groups).
        target_group_protocol: Option<Protocol>,
    },
    /// The target group already serves another load balancer (one load
    /// balancer per target group).
    TargetGroupAssociationLimit {
        /// The target group.
        target_group: TargetGroupId,
        /// The load balancer it serves.
        load_balancer: LoadBalancerId,
    },
    /// A target id is not valid for the group's target type.
    InvalidTarget {
        /// The target id given.
        target: String,
        /// Why.
        problem: &'static str,
    },
    /// The operation is not allowed on this resource as it is.
    OperationNotPermitted {
        /// Why.
        problem: String,
    },
    /// No TLS security policy by this name.
    SslPolicyNotFound {
        /// The name given.
        policy: String,
    },
    /// A certificate is not an ACM or IAM certificate ARN.
    CertificateNotFound {
        /// The ARN given.
        certificate: String,
    },
    /// The load balancer is registered as a target of a target group.
    LoadBalancerInUse {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// Where it is registered.
        target: TargetKey,
    },
    /// A target's health cannot go from one state to another this way.
    InvalidHealthTransition {
        /// The target.
        target: TargetKey,
        /// Its state.
        from: HealthState,
        /// The state asked for.
        to: HealthState,
        /// Why.
        problem: &'static str,
    },
    /// A load balancer cannot go from one life-cycle state to another.
    InvalidStateTransition {
        /// The load balancer.
        load_balancer: LoadBalancerId,
        /// Its state.
        from: LoadBalancerState,
        /// The state asked for.
        to: LoadBalancerState,
    },
    /// The store's region is not known: set `Settings::region`.
    RegionUnknown,
    /// `Settings::region` disagrees with the region the store's resources were made in.
    RegionMismatch {
        /// The region the settings name.
        settings: String,
        /// The region of the store's resources.
        store: String,
    },
    /// The store refused or failed (poisoned, read-only, I/O, not the store named).
    Store(store::Error),
}

impl ElbError {
    /// The ELBv2 API's error code for this refusal, e.g. `ResourceInUse`.
    /// Input that breaks a field's documented form is `ValidationError`;
    /// failures of the store underneath are `InternalFailure`, or
    /// `ServiceUnavailable` when a retry may succeed.
    pub fn code(&self) -> &'static str {
        match self {
            ElbError::LoadBalancerNotFound { .. } => "LoadBalancerNotFound",
            ElbError::ListenerNotFound { .. } => "ListenerNotFound",
            ElbError::RuleNotFound { .. } => "RuleNotFound",
            ElbError::TargetGroupNotFound { .. } => "TargetGroupNotFound",
            ElbError::TargetNotRegistered { .. } | ElbError::InvalidTarget { .. } => "InvalidTarget",
            ElbError::InvalidHealthTransition { .. } => "InvalidTarget",
            ElbError::DuplicateLoadBalancerName { .. } => "DuplicateLoadBalancerName",
            ElbError::DuplicateTargetGroupName { .. } => "DuplicateTargetGroupName",
            ElbError::DuplicateTrustStoreName { .. } => "DuplicateTrustStoreName",
            ElbError::InvalidName { .. } | ElbError::InvalidValue { .. } => "ValidationError",
            ElbError::PortInUse { .. } => "DuplicateListener",
            ElbError::PriorityInUse { .. } => "PriorityInUse",
            ElbError::ProtocolNotAllowed { .. } => "UnsupportedProtocol",
            ElbError::CertificateRequired { .. }
            | ElbError::TooFewAvailabilityZones { .. }
            | ElbError::RulesNotSupported { .. }
            | ElbError::IncompatibleTargetGroup { .. }
            | ElbError::InvalidConfiguration { .. }
            | ElbError::RegionMismatch { .. }
            | ElbError::RegionUnknown => "InvalidConfigurationRequest",
            ElbError::IncompatibleProtocols { .. } => "IncompatibleProtocols",
            ElbError::TargetGroupAssociationLimit { .. } => "TargetGroupAssociationLimit",
            ElbError::TargetGroupInUse { .. } | ElbError::LoadBalancerInUse { .. } => "ResourceInUse",
            ElbError::TrustStoreInUse { .. } => "TrustStoreInUse",
            ElbError::DeletionProtected { .. }
            | ElbError::OperationNotPermitted { .. }
            | ElbError::InvalidStateTransition { .. }
            | ElbError::BulkDeletionRefused { .. } => "OperationNotPermitted",
            ElbError::SslPolicyNotFound { .. } => "SSLPolicyNotFound",
            ElbError::CertificateNotFound { .. } => "CertificateNotFound",
            ElbError::TrustStoreNotFound { .. } => "TrustStoreNotFound",
            ElbError::RevocationNotFound { .. } => "RevocationIdNotFound",
            ElbError::TrustStoreAssociationNotFound { .. } => "AssociationNotFound",
            ElbError::DeleteAssociationSameAccount { .. } => "DeleteAssociationSameAccount",
            ElbError::QuotaExceeded { quota, .. } => quota_code(quota),
            ElbError::Store(err) => match err {
                store::Error::Poisoned { .. } | store::Error::Io { .. } | store::Error::Locked { .. } => {
                    "ServiceUnavailable"
                }
                // What the caller asked for: a point of history the store
                // does not have, a transaction too large for one record.
                store::Error::MissingAttribution { .. }
                | store::Error::FieldTooLong { .. }
                | store::Error::RevertsNotEarlier { .. }
                | store::Error::PointOutOfRange { .. }
                | store::Error::RecordTooLarge { .. } => "ValidationError",
                store::Error::ReadOnly { .. } => "OperationNotPermitted",
                _ => "InternalFailure",
            },
        }
    }

    /// The HTTP status the API answers this error with.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            "InternalFailure" => 500,
            "ServiceUnavailable" => 503,
            _ => 400,
        }
    }
}

/// The error code of each quota.
fn quota_code(quota: &str) -> &'static str {
    match quota {
        "application_load_balancers_per_account"
        | "network_load_balancers_per_account"
        | "gateway_load_balancers_per_account" => "TooManyLoadBalancers",
        "target_groups_per_account" | "geneve_target_groups_per_account" => "TooManyTargetGroups",
        "listeners_per_load_balancer" | "listeners_per_gateway_load_balancer" => "TooManyListeners",
        "rules_per_load_balancer" => "TooManyRules",
        "targets_per_target_group"
        | "targets_per_application_load_balancer"
        | "targets_per_network_load_balancer"
        | "targets_per_gateway_load_balancer" => "TooManyTargets",
        "target_groups_per_application_load_balancer" => "TooManyUniqueTargetGroupsPerLoadBalancer",
        "tags_per_resource" => "TooManyTags",
        "certificates_per_load_balancer" => "TooManyCertificates",
        "actions_per_rule" => "TooManyActions",
        "trust_stores_per_account" => "TooManyTrustStores",
        "revocation_lists_per_trust_store" => "TooManyTrustStoreRevocationEntries",
        _ => "ValidationError",
    }
}

impl fmt::Display for ElbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElbError::LoadBalancerNotFound { id } => write!(f, "load balancer {id} not found"),
            ElbError::ListenerNotFound { id } => write!(f, "listener {id} not found"),
            ElbError::RuleNotFound { id } => write!(f, "rule {id} not found"),
            ElbError::TargetGroupNotFound { id } => write!(f, "target group {id} not found"),
            ElbError::TargetNotRegistered { target } => write!(f, "{target} is not registered"),
            ElbError::DuplicateLoadBalancerName { account, name } => {
                write!(f, "account {account} already has a load balancer named {name:?}")
            }
            ElbError::DuplicateTargetGroupName { account, name } => {
                write!(f, "account {account} already has a target group named {name:?}")
            }
            ElbError::InvalidName { field, name, problem } => write!(f, "{field} {name:?} {problem}"),
            ElbError::InvalidValue { field, value, problem } => write!(f, "{field} {value:?} {problem}"),
            ElbError::PortInUse { load_balancer, port, listener } => {
                write!(f, "port {port} of load balancer {load_balancer} is in use by listener {listener}")
            }
            ElbError::PriorityInUse { listener, priority, rule } => {
                write!(f, "priority {priority} of listener {listener} is in use by rule {rule}")
            }
            ElbError::ProtocolNotAllowed { load_balancer_type, protocol } => {
                write!(f, "protocol {protocol} is not allowed on a {load_balancer_type} load balancer")
            }
            ElbError::CertificateRequired { protocol } => write!(f, "a {protocol} listener needs a certificate"),
            ElbError::TooFewAvailabilityZones { required, given } => write!(
                f,
                "an application load balancer needs subnets in at least {required} availability zones, {given} given"
            ),
            ElbError::RulesNotSupported { listener } => {
                write!(f, "listener {listener} is not on an application load balancer and cannot have rules")
            }
            ElbError::IncompatibleTargetGroup { target_group, load_balancer, problem } => {
                write!(f, "target group {target_group} cannot serve load balancer {load_balancer}: {problem}")
            }
            ElbError::TargetGroupInUse { target_group, used_by } => {
                write!(f, "target group {target_group} is in use by {used_by}")
            }
            ElbError::DeletionProtected { load_balancer, name } => write!(
                f,
                "load balancer {name:?} ({load_balancer}) has deletion protection enabled; \
                 set deletion_protection.enabled to false first"
            ),
            ElbError::QuotaExceeded { quota, limit } => write!(f, "quota {quota} of {limit} would be exceeded"),
            ElbError::BulkDeletionRefused { count, limit, window, transactions } => {
                match window {
                    None => write!(
                        f,
                        "the deletion guard refuses a transaction deleting {count} load balancers, over its limit of {limit}"
                    )?,
                    Some((actor, window)) => {
                        let earlier: Vec<String> = transactions.iter().map(u64::to_string).collect();
                        write!(
                            f,
                            "the deletion guard refuses: {actor} would have deleted {count} load balancers within {} s \
                             (earlier transactions {}), over its limit of {limit}",
                            window.as_secs(),
                            earlier.join(", ")
                        )?
                    }
                }
                write!(
                    f,
                    "; to proceed, check the targets, then retry with a change ticket and an approver other than the \
                     actor (TxnMeta::with_approval; pitr revert --ticket T --approver WHO)"
                )
            }
            ElbError::TrustStoreNotFound { id } => write!(f, "trust store {id} not found"),
            ElbError::DuplicateTrustStoreName { account, name } => {
                write!(f, "account {account} already has a trust store named {name:?}")
            }
            ElbError::TrustStoreInUse { trust_store, listener } => {
                write!(f, "trust store {trust_store} is in use by listener {listener}")
            }
            ElbError::RevocationNotFound { trust_store, revocation_id } => {
                write!(f, "trust store {trust_store} has no revocation list {revocation_id}")
            }
            ElbError::TrustStoreAssociationNotFound { trust_store, listener } => {
                write!(f, "listener {listener} does not use trust store {trust_store}")
            }
            ElbError::DeleteAssociationSameAccount { trust_store, listener } => write!(
                f,
                "listener {listener} is in the account of trust store {trust_store}: change the listener's mutual \
                 authentication instead"
            ),
            ElbError::InvalidConfiguration { field, problem } => write!(f, "{field}: {problem}"),
            ElbError::IncompatibleProtocols { listener_protocol, target_group, target_group_protocol } => {
                let tg = target_group_protocol.map_or_else(|| "Lambda".to_owned(), |p| p.to_string());
                write!(f, "a {listener_protocol} listener cannot forward to target group {target_group} ({tg})")
            }
            ElbError::TargetGroupAssociationLimit { target_group, load_balancer } => write!(
                f,
                "target group {target_group} already serves load balancer {load_balancer}; \
                 a target group serves one load balancer"
            ),
            ElbError::InvalidTarget { target, problem } => write!(f, "target {target:?} {problem}"),
            ElbError::OperationNotPermitted { problem } => write!(f, "operation not permitted: {problem}"),
            ElbError::SslPolicyNotFound { policy } => write!(f, "TLS security policy {policy:?} not found"),
            ElbError::CertificateNotFound { certificate } => {
                write!(f, "certificate {certificate:?} is not an ACM or IAM certificate ARN")
            }
            ElbError::LoadBalancerInUse { load_balancer, target } => {
                write!(f, "load balancer {load_balancer} is registered as {target}; deregister it first")
            }
            ElbError::InvalidHealthTransition { target, from, to, problem } => {
                write!(f, "{target} cannot go from {from} to {to}: {problem}")
            }
            ElbError::InvalidStateTransition { load_balancer, from, to } => {
                write!(f, "load balancer {load_balancer} cannot go from {from} to {to}")
            }
            ElbError::RegionUnknown => write!(
                f,
                "the store's region is not known: set Settings::region (the store has no load balancer that names it)"
            ),
            ElbError::RegionMismatch { settings, store } => write!(
                f,
                "Settings::region is {settings} but the store's load balancers are in {store}: \
                 is this the store you meant to open?"
            ),
            ElbError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ElbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ElbError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl From<store::Error> for ElbError {
    fn from(err: store::Error) -> ElbError {
        ElbError::Store(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Point;

    #[test]
    fn a_request_for_what_the_store_does_not_have_is_the_caller_s_error() {
        let out_of_range = store::Error::PointOutOfRange { point: Point::Seq(9), first: None, last: None };
        let too_large = store::Error::RecordTooLarge { seq: 3, bytes: 10, limit: 5 };
        for err in [out_of_range, too_large] {
            let err = ElbError::Store(err);
            assert_eq!((err.code(), err.http_status()), ("ValidationError", 400), "{err}");
        }
    }
}
