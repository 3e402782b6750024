//! State digests (feature `digest`): SHA-256 over a canonical encoding of
//! the ELB state, for the whole store and for one load balancer, so that a
//! consumer of the change feed, a replica or a restored copy can show that
//! it holds exactly the store's state at a sequence number.
//!
//! The canonical encoding is the one snapshots use (the bincode 1 wire
//! format of every resource, each section in key order), preceded by a
//! domain tag and the model's schema version: two states digest alike
//! exactly when they hold the same resources with the same values, whatever
//! order the events that built them came in. A digest is of one schema
//! version's encoding; a state read by a build with another schema version
//! may digest differently although nothing in it changed.

use std::fmt;

use sha2::{Digest, Sha256};

use super::{ElbState, LoadBalancerId};
use crate::store::StateMachine;

/// The domain tags, so no digest of one kind equals one of another.
const STATE_TAG: &[u8] = b"elbstore state digest 1\n";
const LOAD_BALANCER_TAG: &[u8] = b"elbstore load balancer digest 1\n";

/// A SHA-256 digest of a state (or of one load balancer's part of it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateDigest(pub [u8; 32]);

impl StateDigest {
    /// The digest as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateDigest({self})")
    }
}

/// Feeds the canonical encoding of `value` to the hasher.
fn absorb<T: serde::Serialize + ?Sized>(hasher: &mut Sha256, value: &T) {
    // A state in memory always encodes: no limit applies to a digest.
    crate::codec::encode_to_writer(value, &mut *hasher, u64::MAX).expect("a state in memory encodes");
}

impl ElbState {
    /// The state as bytes, for a consumer of the change feed to keep its own
    /// copy in a file: the schema version, then the canonical encoding the
    /// digest covers. [`ElbState::from_bytes`] reads it back.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![<ElbState as StateMachine>::SCHEMA_VERSION];
        crate::codec::encode_into(self, &mut out, u64::MAX).expect("a state in memory encodes");
        out
    }

    /// A state from [`ElbState::to_bytes`] of a build with the same schema
    /// version; another version, or damaged bytes, is an error (a consumer
    /// then rebuilds its copy from the store).
    pub fn from_bytes(bytes: &[u8]) -> Result<ElbState, crate::codec::CodecError> {
        match bytes.split_first() {
            Some((&version, body)) if version == <ElbState as StateMachine>::SCHEMA_VERSION => {
                crate::codec::decode(body, u64::MAX)
            }
            Some((&version, _)) if version > <ElbState as StateMachine>::SCHEMA_VERSION => {
                Err(crate::codec::CodecError::newer_schema(version.into(), <ElbState as StateMachine>::SCHEMA_VERSION))
            }
            Some((&version, _)) => Err(crate::codec::CodecError::unsupported_version(version)),
            None => Err(crate::codec::CodecError::unsupported_version(0)),
        }
    }

    /// The digest of the whole state: every resource of every account.
    ///
    /// ```
    /// use elbstore::elb::ElbState;
    /// let empty = ElbState::default();
    /// assert_eq!(empty.digest(), ElbState::default().digest());
    /// assert_eq!(empty.digest().to_hex().len(), 64);
    /// ```
    pub fn digest(&self) -> StateDigest {
        let mut hasher = Sha256::new();
        hasher.update(STATE_TAG);
        hasher.update([<ElbState as StateMachine>::SCHEMA_VERSION]);
        absorb(&mut hasher, self);
        StateDigest(hasher.finalize().into())
    }

    /// The digest of one load balancer as a data plane configures it: the
    /// load balancer, its listeners and their rules, and the target groups
    /// it routes to with their targets (each in id order). `None` if it
    /// does not exist.
    pub fn load_balancer_digest(&self, id: LoadBalancerId) -> Option<StateDigest> {
        let lb = self.load_balancer(id)?;
        let mut hasher = Sha256::new();
        hasher.update(LOAD_BALANCER_TAG);
        hasher.update([<ElbState as StateMachine>::SCHEMA_VERSION]);
        absorb(&mut hasher, lb.as_ref());
        let listeners: Vec<_> = self.listeners_of(id).collect();
        absorb(&mut hasher, &(listeners.len() as u64));
        for listener in listeners {
            absorb(&mut hasher, listener.as_ref());
            let rules: Vec<_> = self.rules_of(listener.id).collect();
            absorb(&mut hasher, &(rules.len() as u64));
            for rule in rules {
                absorb(&mut hasher, rule.as_ref());
            }
        }
        let groups = self.target_groups_of(id);
        absorb(&mut hasher, &(groups.len() as u64));
        for tg in groups {
            if let Some(group) = self.target_group(tg) {
                absorb(&mut hasher, group.as_ref());
            }
            let targets: Vec<_> = self.targets_of(tg).collect();
            absorb(&mut hasher, &(targets.len() as u64));
            for target in targets {
                absorb(&mut hasher, target);
            }
        }
        Some(StateDigest(hasher.finalize().into()))
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::elb::{fleet, ElbEvent, Settings};
    use crate::store::TxnContext;

    /// Events of a small fleet, as the reference generator makes them.
    fn fleet_events(n: u64) -> Vec<ElbEvent> {
        let mut state = ElbState::default();
        let mut events = Vec::new();
        for i in 0..n {
            let commands = fleet::reference_commands(i, i + 1);
            let ctx = TxnContext { seq: i + 1, time: Timestamp::from_secs(1_000 + i) };
            let (planned, _) = crate::elb::plan(&state, &commands, &ctx, &Settings::in_region("us-east-1")).unwrap();
            for event in &planned {
                state.apply(event);
            }
            events.extend(planned);
        }
        events
    }

    #[test]
    fn equal_states_digest_alike_and_any_change_shows() {
        let events = fleet_events(3);
        let mut a = ElbState::default();
        events.iter().for_each(|e| a.apply(e));
        let mut b = ElbState::default();
        events.iter().for_each(|e| b.apply(e));
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), ElbState::default().digest());
        // Undo the last event: another state, another digest.
        b.apply(&events.last().unwrap().inverse());
        assert_ne!(a.digest(), b.digest());
        assert_eq!(a.digest().to_hex().len(), 64);
    }

    #[test]
    fn a_state_read_back_from_its_bytes_digests_alike() {
        let mut state = ElbState::default();
        fleet_events(2).iter().for_each(|e| state.apply(e));
        let bytes = state.to_bytes();
        let back = ElbState::from_bytes(&bytes).unwrap();
        assert_eq!(back, state);
        assert_eq!(back.digest(), state.digest());
        let mut newer = bytes.clone();
        newer[0] += 1;
        assert!(ElbState::from_bytes(&newer).unwrap_err().newer_schema_version().is_some());
        assert!(ElbState::from_bytes(&bytes[..bytes.len() - 1]).is_err(), "cut short");
        assert!(ElbState::from_bytes(&[]).is_err());
    }

    #[test]
    fn a_load_balancer_digest_covers_its_part_and_nothing_else() {
        let events = fleet_events(2);
        let mut state = ElbState::default();
        events.iter().for_each(|e| state.apply(e));
        let ids: Vec<LoadBalancerId> = state.load_balancers().map(|lb| lb.id).collect();
        assert_eq!(ids.len(), 2);
        let before: Vec<_> = ids.iter().map(|id| state.load_balancer_digest(*id).unwrap()).collect();
        assert_ne!(before[0], before[1]);
        // A change to a target behind the second changes its digest only.
        let target_event = events.iter().rev().find(|e| matches!(e.key(), crate::elb::EntityKey::Target(_))).unwrap();
        state.apply(&target_event.inverse());
        assert_eq!(state.load_balancer_digest(ids[0]), Some(before[0]));
        assert_ne!(state.load_balancer_digest(ids[1]), Some(before[1]));
        assert_eq!(state.load_balancer_digest(LoadBalancerId(u64::MAX)), None);
    }
}
