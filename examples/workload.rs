//! A load generator on the reference control-plane mix.
//!
//! ```text
//! cargo run --release --example workload -- --dir DIR --writers K --transactions N \
//!     [--sync always|interval|never] [--load-balancers M] [--ack-log FILE] [--json]
//! cargo run --release --example workload -- --help
//! ```
//!
//! With `--ack-log FILE` every acknowledged transaction's sequence number is
//! appended to FILE as it is acknowledged, so an outside checker can kill the
//! process at any moment and check that every acknowledged transaction survived.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = elbstore::tools::workload::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
