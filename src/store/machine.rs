//! The contract between the generic store and the state it keeps.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{CodecError, OldBytes};

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
///
/// # Schema versions
///
/// Every record names the [`SCHEMA_VERSION`](StateMachine::SCHEMA_VERSION)
/// its events were written with, and every snapshot the version of its state.
/// When the encoding of `Event` or of the state changes (a field added,
/// removed or reordered, a variant added, a type split), raise the version,
/// keep the previous types frozen in a module of their own, and teach
/// [`upcast_event`](StateMachine::upcast_event) to turn an old event into
/// current ones. Old records are never rewritten: they are upcast each time
/// they are read, so replay, history and every index see current events only.
/// A record or snapshot newer than this build knows is refused with
/// [`WalError::NewerSchema`](crate::WalError::NewerSchema) or
/// [`SnapshotError::NewerSchema`](crate::SnapshotError::NewerSchema).
///
/// ```
/// use elbstore::{CodecError, OldBytes, StateMachine};
/// use serde::{Deserialize, Serialize};
///
/// /// Schema 1 of the counter's event, frozen when schema 2 was released.
/// mod v1 {
///     #[derive(serde::Deserialize)]
///     pub enum Event { Add(u64) }
/// }
///
/// /// Schema 2: each addition says who made it.
/// #[derive(Clone, Debug, Serialize, Deserialize)]
/// enum Event { Add { n: u64, by: String } }
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Counter { total: u64 }
///
/// impl StateMachine for Counter {
///     type Event = Event;
///     const SCHEMA_VERSION: u8 = 2;
///
///     fn apply(&mut self, event: &Event) {
///         let Event::Add { n, .. } = event;
///         self.total += n;
///     }
///
///     fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<Event>, CodecError> {
///         match version {
///             // The documented default for the new field.
///             1 => match old.decode::<v1::Event>()? {
///                 v1::Event::Add(n) => Ok(vec![Event::Add { n, by: "unknown".into() }]),
///             },
///             _ => Err(CodecError::no_upcaster(version.into(), Self::SCHEMA_VERSION)),
///         }
///     }
///
///     // The state's encoding did not change: a schema 1 snapshot is read as is.
///     fn upcast_state(version: u8, old: &mut OldBytes<'_>) -> Result<Option<Counter>, CodecError> {
///         match version {
///             1 => old.decode().map(Some),
///             _ => Ok(None),
///         }
///     }
/// }
/// ```
pub trait StateMachine: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// One change to the state.
    type Event: Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The schema version of `Event` and of the state this build writes, 1
    /// to 255. Raise it whenever either's encoding changes. 0 is refused when
    /// the store is built:
    ///
    /// ```compile_fail
    /// # use elbstore::{Options, StateMachine, Store};
    /// #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    /// struct Zero;
    /// impl StateMachine for Zero {
    ///     type Event = u8;
    ///     const SCHEMA_VERSION: u8 = 0;
    ///     fn apply(&mut self, _: &u8) {}
    /// }
    /// let _ = Store::<Zero>::open("/nowhere", Options::default());
    /// ```
    const SCHEMA_VERSION: u8 = 1;

    /// Folds one event into the state.
    fn apply(&mut self, event: &Self::Event);

    /// How many events replay gathers before it hands them to
    /// [`apply_run`](StateMachine::apply_run): a run ends with the
    /// transaction that reaches this many, or where the replay ends. The
    /// default, 1, hands each transaction over as it is read, holding
    /// nothing back. A machine that orders a run its own way sets it large
    /// enough that a run of random changes touches most of a large state,
    /// so that the entities it touches, in order, are neighbours
    /// (`ElbState`'s is 262,144: BENCHMARKS.md, "Replay in target group
    /// order").
    const REPLAY_RUN_EVENTS: usize = 1;

    /// Folds a run of events into the state, leaving it exactly as applying
    /// each in turn would. Replay (recovery on open, and time travel's
    /// replay forward) hands the log's events over in runs of about
    /// [`REPLAY_RUN_EVENTS`](StateMachine::REPLAY_RUN_EVENTS) (whole
    /// transactions), never across a point whose state it keeps: a machine
    /// whose events on different entities commute can apply a run in the
    /// order of its own memory rather than the log's, so that its lookups
    /// walk that memory front to back instead of jumping (`ElbState` does,
    /// by target group). Commits and verification apply one event at a
    /// time. The default applies each in turn.
    fn apply_run(&mut self, events: &[Self::Event]) {
        for event in events {
            self.apply(event);
        }
    }

    /// Undoes `event`, the last event applied to this state: afterwards the
    /// state equals what it was before `event` was applied, or `false` if this
    /// machine cannot tell (the default). Time travel uses it to reach a
    /// point a little before a state already in memory (the head, or a
    /// checkpoint) by undoing the events after the point, newest first,
    /// instead of loading an older snapshot and replaying forward. A `false`
    /// from any call makes the store drop the partly undone state and replay
    /// forward instead, and not try again. Like `apply`, it must be pure.
    ///
    /// Events that keep the whole value before a change can always be
    /// undone; an event that only says "add 3" can be too, one that says
    /// "set to 3" cannot.
    fn undo(&mut self, event: &Self::Event) -> bool {
        let _ = event;
        false
    }

    /// Undoes a run of events, the last ones applied, given in the order they
    /// were applied: afterwards the state equals what it was before the
    /// first of them, or `false` if this machine cannot tell (then the store
    /// drops the partly undone state, as for [`undo`](StateMachine::undo)).
    /// Time travel's undo from a later state hands the log's events over in
    /// runs of about [`REPLAY_RUN_EVENTS`](StateMachine::REPLAY_RUN_EVENTS)
    /// (whole transactions), never across a point whose state it keeps, so
    /// a machine whose events on different entities commute can undo a run
    /// in the order of its own memory, as [`apply_run`](StateMachine::apply_run)
    /// applies one. The default undoes each in turn, the last first.
    fn undo_run(&mut self, events: &[Self::Event]) -> bool {
        events.iter().rev().all(|event| self.undo(event))
    }

    /// Called on the store's head state after each transaction a commit or
    /// an import adds to it (not after replay, for recovery or time travel).
    /// A state that derives data from itself only when asked builds it here,
    /// so the states the store publishes after a write carry it and the
    /// readers of each new view do not each build it again. The default does
    /// nothing.
    fn committed(&mut self) {}

    /// Decodes a snapshot's state of this build's schema version from
    /// `bytes` (the whole encoding, as `Deserialize` reads it), keeping from
    /// `like`, a state already in memory, each part equal to what the bytes
    /// hold, so that the two share that memory instead of the decode taking
    /// its own. Time travel decodes the snapshots it loads this way, like the
    /// head's state: a past state's resources are mostly the head's, and
    /// memory the process takes for the first time costs more to touch than
    /// the decode costs (BENCHMARKS.md, "Past states share the head's
    /// values"). The result must equal what `Deserialize` gives, whatever
    /// `like` is; the default ignores `like` and decodes.
    fn decode_like(like: &Self, bytes: &mut OldBytes<'_>) -> Result<Self, CodecError> {
        let _ = like;
        bytes.decode()
    }

    /// Decodes one event written with the older schema `version` (from 1 to
    /// `SCHEMA_VERSION - 1`) from the front of `old`, and returns the current
    /// events it stands for: one, several (an event split in two) or none (an
    /// event that no longer exists). It must decode exactly one old event, and
    /// be pure like [`apply`](StateMachine::apply): the same bytes always give
    /// the same events. The default knows no older version.
    fn upcast_event(version: u8, old: &mut OldBytes<'_>) -> Result<Vec<Self::Event>, CodecError> {
        let _ = old;
        Err(CodecError::no_upcaster(version.into(), Self::SCHEMA_VERSION))
    }

    /// Decodes a whole state written with the older schema `version`, when
    /// that is cheap; `Ok(None)` (the default) passes the snapshot over, and
    /// the state is rebuilt from the log (the open report says so). The next
    /// snapshot is written in the current version either way.
    fn upcast_state(version: u8, old: &mut OldBytes<'_>) -> Result<Option<Self>, CodecError> {
        let _ = (version, old);
        Ok(None)
    }
}

/// The log's events gathered for [`StateMachine::apply_run`], a transaction
/// at a time, up to [`StateMachine::REPLAY_RUN_EVENTS`].
pub(crate) struct Run<S: StateMachine> {
    events: Vec<S::Event>,
}

impl<S: StateMachine> Run<S> {
    pub(crate) fn new() -> Run<S> {
        Run { events: Vec::new() }
    }

    /// Adds a transaction's events, applying the run to `state` once it is
    /// full.
    pub(crate) fn push(&mut self, state: &mut S, events: Vec<S::Event>) {
        if self.events.is_empty() && events.len() >= S::REPLAY_RUN_EVENTS {
            // A run of its own: applied as it is, not copied.
            state.apply_run(&events);
            return;
        }
        self.events.extend(events);
        if self.events.len() >= S::REPLAY_RUN_EVENTS {
            self.apply(state);
        }
    }

    /// Applies what is gathered to `state`.
    pub(crate) fn apply(&mut self, state: &mut S) {
        if !self.events.is_empty() {
            state.apply_run(&self.events);
            self.events.clear();
        }
    }
}
