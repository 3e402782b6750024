//! One replica of a replicated ELB store (Raft over HTTP), as its own process.
//!
//! ```text
//! cargo run --release --example replica -- --id N --dir DIR --listen ADDR --peers ID=ADDR,... \
//!     [--store NAME/ENV] [--region R] [--snapshot-every N] [--faults] [--json]
//! cargo run --release --example replica -- --help
//! ```
//!
//! It prints one line once it serves, then runs until SIGINT or SIGTERM.
//! `pitr cluster status|add|remove|replace --group ADDR,...` manages the
//! group; the load generator and the API service take `--group ADDR,...`.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = elbstore::tools::replica::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
