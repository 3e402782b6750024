//! Identifiers of ELB resources.
//!
//! An id is derived from the transaction that created the resource:
//! `seq << 16 | n`, where `n` counts creations within that transaction. Ids
//! are therefore deterministic (replay gives the same ids), never reused, and
//! need no counter in the state, so undoing a creation restores the state
//! exactly.
//!
//! An id's `Debug` is its `Display` text (`tg-0000000000010000`), so ids read
//! the same in logs, assertion messages and field changes as in the API.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Most resources one transaction may create.
pub const CREATIONS_PER_TRANSACTION_MAX: u64 = 1 << 16;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

        /// The `Display` text.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
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
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TargetKey {
    /// The target group it is registered in.
    pub target_group: TargetGroupId,
    /// The instance id, IP address, Lambda function ARN or ALB ARN. Shared,
    /// not copied, when the maps that hold targets copy a node: a key clone is
    /// a reference count, not an allocation. Encoded as a string.
    #[serde(deserialize_with = "crate::codec::arc_str")]
    pub id: Arc<str>,
    /// The port it receives traffic on (0 for Lambda targets).
    pub port: u16,
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "target {}:{} in {}", self.id, self.port, self.target_group)
    }
}

/// The `Display` text.
impl fmt::Debug for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_s_debug_is_its_display_text() {
        let cases: [(&dyn fmt::Debug, &dyn fmt::Display, &str); 5] = [
            (&LoadBalancerId::new(1, 0), &LoadBalancerId::new(1, 0), "lb-0000000000010000"),
            (&ListenerId::new(2, 1), &ListenerId::new(2, 1), "listener-0000000000020001"),
            (&RuleId::new(3, 2), &RuleId::new(3, 2), "rule-0000000000030002"),
            (&TargetGroupId::new(0x2a, 0xff), &TargetGroupId::new(0x2a, 0xff), "tg-00000000002a00ff"),
            (&TrustStoreId(7), &TrustStoreId(7), "ts-0000000000000007"),
        ];
        for (debug, display, text) in cases {
            assert_eq!(format!("{debug:?}"), text);
            assert_eq!(display.to_string(), text);
        }
        let key = TargetKey { target_group: TargetGroupId::new(1, 0), id: Arc::from("i-0abc"), port: 80 };
        assert_eq!(key.to_string(), "target i-0abc:80 in tg-0000000000010000");
        assert_eq!(format!("{key:?}"), key.to_string());
        // Inside a derived Debug, as in a field change or an assertion message.
        assert_eq!(
            format!("{:?}", (Some(TargetGroupId::new(1, 0)), vec![RuleId(1)])),
            "(Some(tg-0000000000010000), [rule-0000000000000001])"
        );
    }
}
