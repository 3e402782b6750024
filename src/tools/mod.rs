//! For the crate's operator binaries and their tests, not for services
//! (feature `tools`).
//!
//! Operator tools behind the example binaries (`examples/pitr.rs`,
//! `examples/incident.rs`, `examples/workload.rs`), kept in the library so
//! tests drive them in-process. Arguments are parsed with clap, `--json`
//! documents are written with serde_json from the typed structs of
//! [`report`], long work shows an indicatif progress bar on a terminal.
//! Every verb, flag, exit code and JSON key is documented in `docs/CLI.md`.

mod cli;
pub mod follower;
pub mod incident;
pub mod pitr;
mod progress;
#[cfg(feature = "replication")]
pub mod replica;
pub mod report;
pub mod timeline;
pub mod workload;

pub use cli::{run_tool, Status, ToolError, Verdict};
pub use progress::Bar;
