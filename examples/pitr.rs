//! Point-in-time restore and forensics for an ELB store.
//!
//! ```text
//! cargo run --release --example pitr -- <verb> <store-dir> [options] [--json]
//! ```
//!
//! Verbs: info, log, show, diff, restore, revert, verify. Run without
//! arguments for the full usage. Every verb but `revert` opens the store
//! read-only; `restore` writes only into a new directory.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help") {
        println!("{}", elbstore::tools::pitr::USAGE);
        return;
    }
    let code = elbstore::tools::pitr::run(args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
