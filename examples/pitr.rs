//! Point-in-time restore and forensics for an ELB store.
//!
//! ```text
//! cargo run --release --example pitr -- help
//! cargo run --release --example pitr -- <verb> <store-dir> [options] [--json]
//! ```
//!
//! Verbs: info, log, show, diff, restore, revert, verify, salvage, timeline,
//! completions; `pitr help <verb>` for each. Every verb but `revert` opens
//! the store read-only; `restore` and `salvage` write only into a new
//! directory. docs/CLI.md documents every verb, flag, exit code and JSON key.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = elbstore::tools::pitr::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
