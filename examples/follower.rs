//! A data-plane configurator on the change feed: follows a store from the
//! last transaction it applied and keeps its own copy of the state in a file.
//!
//! ```text
//! cargo run --release --example follower -- --dir STORE --state FILE [--until-seq N] [--json]
//! cargo run --release --example follower -- --help
//! ```
//!
//! With `--json` it ends with one line,
//! `{"seq":N,"state_digest":"...","load_balancers":N,...,"applied":N}`; the
//! digest equals `pitr show STORE --at seq:N --json`'s `state_digest`.

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = elbstore::tools::follower::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
