//! Why a command was refused.

use std::fmt;

use super::event::EntityKey;
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetKey};
use super::model::{LoadBalancerType, Protocol};
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
    /// The store refused or failed (poisoned, read-only, I/O).
    Store(store::Error),
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
                    None => write!(f, "refused: the transaction would delete {count} load balancers, over the limit of {limit}")?,
                    Some((actor, window)) => write!(
                        f,
                        "refused: {actor} would have deleted {count} load balancers within {} s (earlier transactions {transactions:?}), \
                         over the limit of {limit}",
                        window.as_secs()
                    )?,
                }
                write!(
                    f,
                    "; to proceed, check the targets, then retry with a change ticket and an approver other than the actor"
                )
            }
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
