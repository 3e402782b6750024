//! The 2012 incident, replayed end to end: a fleet, a maintenance process that
//! deletes a tenth of it (refused by the guard, then run with a mistaken
//! approval), alarms, customers carrying on, and an operator who finds the
//! deletion in the log and reverts it, keeping every later change.
//!
//! ```text
//! cargo run --release --example incident -- [--dir DIR] [--load-balancers N] [--stop-before-repair] [--json]
//! cargo run --release --example incident -- --help
//! ```

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = elbstore::tools::incident::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
