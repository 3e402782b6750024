//! elbstore: an event-sourced state store for load-balancer control-plane metadata.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod codec;
pub mod io;
mod store;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use codec::CodecError;
pub use store::{Committed, StateMachine, Transaction, TxnContext, TxnMeta};
