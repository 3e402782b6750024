//! The typed ELB state: load balancers, listeners, rules, target groups,
//! targets and their health, attributes and tags, modelled on the Elastic Load
//! Balancing v2 API.
//!
//! Commands are validated against the state by a pure planner and become
//! events; every event carries whole values (before and after), so any
//! transaction can be undone from the log alone. This module knows nothing of
//! files: it only implements [`crate::StateMachine`].

pub mod arn;
mod command;
#[cfg(feature = "digest")]
mod digest;
mod error;
mod event;
#[cfg(any(test, feature = "testing", feature = "replication"))]
pub mod fleet;
mod guard;
mod history;
mod ids;
mod integrity;
mod model;
mod plan;
mod quotas;
mod repair;
pub mod schema;
mod state;
mod store;
mod validate;
mod watch;

pub use command::{
    Command, CreateListener, CreateLoadBalancer, CreateRule, CreateTargetGroup, CreateTrustStore, ModifyHealthCheck,
    ModifyListener, Outcome, Taggable, TargetSpec,
};
#[cfg(feature = "digest")]
pub use digest::StateDigest;
pub use error::{ElbError, NameProblem};
pub use event::{ElbEvent, Entity, EntityKey, EntityKind};
pub use guard::{approved, Alarm, AlarmKind, AlarmThresholds, DeletionGuard, GuardMode, GuardStatus, Observer};
#[cfg(feature = "tools")]
pub(crate) use guard::{load_balancer_changes, Ledger};
pub use history::{field_changes, Diff, DiffCounts, FieldChange, HistoryFilter, Lookup, Modified, Summary, Version};
pub use ids::{
    ListenerId, LoadBalancerId, RuleId, TargetGroupId, TargetId, TargetKey, TrustStoreId, ZoneName,
    CREATIONS_PER_TRANSACTION_MAX,
};
pub use model::{
    Action, Attributes, AuthenticateCognito, AuthenticateOidc, Condition, HealthCheck, HealthReason, HealthState,
    IpAddressType, Listener, LoadBalancer, LoadBalancerState, LoadBalancerType, MutualAuthentication,
    MutualAuthenticationMode, Protocol, ProtocolVersion, Revocation, Rule, S3Object, Scheme, SubnetMapping, Tags,
    Target, TargetGroup, TargetGroupIpAddressType, TargetHealth, TargetType, TrustStore, WeightedTargetGroup,
    DELETION_PROTECTION, DEREGISTRATION_DELAY,
};
pub use plan::{plan, plan_folded, state_transition_allowed, DEFAULT_SSL_POLICY, RULE_PRIORITY_MAX};
pub use quotas::{Quotas, Settings};
pub use repair::{Conflict, ConflictReason, OnConflict, RevertMode, RevertPlan, RevertSelection};
pub use state::{Counts, ElbState};
#[cfg(feature = "replication")]
pub(crate) use store::created_in;
pub use store::{Applied, ElbStore};
pub use validate::{FIXED_RESPONSE_CONTENT_TYPES, SSL_POLICIES};
pub use watch::{Change, Watch, WatchFilter};
