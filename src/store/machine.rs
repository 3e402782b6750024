//! The contract between the generic store and the state it keeps.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A deterministic state machine: a state and the events that change it.
///
/// The store never looks inside either. It logs events, folds them into the
/// state with [`StateMachine::apply`], and writes the whole state to snapshots.
///
/// `apply` must be pure: no I/O, no clock, no randomness, no dependence on
/// anything but `self` and `event`, so that replaying the log always rebuilds
/// the same state. It is infallible: events are validated before they are
/// logged, and an event that reached the log is a fact.
///
/// `clone` is called once per commit group to publish a read-only version of
/// the state to readers and snapshots. Large states should use structurally
/// shared collections so that it costs little.
pub trait StateMachine: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// One change to the state.
    type Event: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Folds one event into the state.
    fn apply(&mut self, event: &Self::Event);
}
