//! The generic event-sourced store.

mod machine;
mod txn;

pub use machine::StateMachine;
pub use txn::{Committed, Transaction, TxnContext, TxnMeta};
