//! Identifiers of ELB resources.
//!
//! An id is derived from the transaction that created the resource:
//! `seq << 16 | n`, where `n` counts creations within that transaction. Ids
//! are therefore deterministic (replay gives the same ids), never reused, and
//! need no counter in the state, so undoing a creation restores the state
//! exactly.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Most resources one transaction may create.
pub const CREATIONS_PER_TRANSACTION_MAX: u64 = 1 << 16;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u64);

        impl $name {
            /// The id of the `n`-th resource created by transaction `seq`.
            pub fn new(seq: u64, n: u64) -> $name {
                debug_assert!(n < CREATIONS_PER_TRANSACTION_MAX);
                $name((seq << 16) | n)
            }

            /// The sequence number of the transaction that created it.
            pub fn created_seq(self) -> u64 {
                self.0 >> 16
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "-{:016x}"), self.0)
            }
        }
    };
}

id_type!(
    /// A load balancer's id.
    LoadBalancerId,
    "lb"
);
id_type!(
    /// A listener's id.
    ListenerId,
    "listener"
);
id_type!(
    /// A listener rule's id.
    RuleId,
    "rule"
);
id_type!(
    /// A target group's id.
    TargetGroupId,
    "tg"
);
id_type!(
    /// A trust store's id.
    TrustStoreId,
    "ts"
);

/// A registered target: which group, which target, which port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TargetKey {
    /// The target group it is registered in.
    pub target_group: TargetGroupId,
    /// The instance id, IP address, Lambda function ARN or ALB ARN. Shared,
    /// not copied, when the maps that hold targets copy a node: a key clone is
    /// a reference count, not an allocation. Encoded as a string.
    pub id: Arc<str>,
    /// The port it receives traffic on (0 for Lambda targets).
    pub port: u16,
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target {}:{} in {}", self.id, self.port, self.target_group)
    }
}
