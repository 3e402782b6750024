//! Writes a store from several threads, snapshots it, reopens it and checks
//! that nothing was lost.
//!
//! ```text
//! cargo run --release --example quickstart -- [--dir DIR] [--transactions N]
//! ```

/// The global allocator when feature `mimalloc` is on (BENCHMARKS.md, "The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use elbstore::{Create, Options, StateMachine, Store, TxnMeta};
use serde::{Deserialize, Serialize};

/// Registered targets per target group: a small stand-in for the ELB state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Registry {
    targets: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Change {
    Register(String),
    Deregister(String),
}

impl StateMachine for Registry {
    type Event = Change;

    fn apply(&mut self, change: &Change) {
        match change {
            Change::Register(group) => *self.targets.entry(group.clone()).or_default() += 1,
            Change::Deregister(group) => {
                if let Some(count) = self.targets.get_mut(group) {
                    *count = count.saturating_sub(1);
                }
            }
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut transactions: u64 = 20_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = Some(args.next().ok_or("--dir needs a value")?.into()),
            "--transactions" => {
                transactions = args.next().and_then(|v| v.parse().ok()).ok_or("--transactions needs a number")?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join(format!("elbstore-quickstart-{}", std::process::id())));
    let options = || {
        Options::default().create(Create::IfMissing).identity("quickstart", "development").snapshot_every_events(None)
    };

    let store: Store<Registry> = Store::open(&dir, options()).map_err(|e| e.to_string())?;
    println!("store {} ({}), created: {}", dir.display(), store.identity().id, store.open_report().created);
    let writers = 8u64;
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<(), String> {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let store = &store;
                scope.spawn(move || -> Result<(), String> {
                    for i in 0..transactions / writers {
                        let group = format!("tg-{}", (w * 7 + i) % 50);
                        let change = if i % 5 == 4 { Change::Deregister(group) } else { Change::Register(group) };
                        let meta = TxnMeta::new(format!("svc:writer-{w}"), "register targets");
                        store.commit(meta, vec![change]).map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| "writer thread panicked".to_string())?)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let view = store.read();
    println!(
        "committed {} durable transactions from {writers} threads in {seconds:.2} s ({:.0}/s)",
        view.seq(),
        view.seq() as f64 / seconds
    );
    let snapshot = store.snapshot().map_err(|e| e.to_string())?;
    println!("snapshot at seq {} ({} bytes)", snapshot.seq, snapshot.bytes);
    store
        .commit(TxnMeta::new("ops:alice", "one more after the snapshot"), vec![Change::Register("tg-0".into())])
        .map_err(|e| e.to_string())?;
    let expected = store.read().state().clone();
    store.close().map_err(|e| e.to_string())?;

    let started = Instant::now();
    let store: Store<Registry> = Store::open(&dir, options()).map_err(|e| e.to_string())?;
    let report = store.open_report();
    println!(
        "reopened in {:.1} ms: snapshot at seq {:?}, {} transactions replayed",
        started.elapsed().as_secs_f64() * 1e3,
        report.snapshot.as_ref().map(|s| s.seq),
        report.replayed_transactions
    );
    if *store.read() != expected {
        return Err("the reopened state differs from the state before closing".into());
    }
    println!("state after reopen matches: {} target groups, seq {}", store.read().targets.len(), store.read().seq());
    let last = store.read().seq();
    for txn in store.transactions(last.saturating_sub(1)..) {
        let txn = txn.map_err(|e| e.to_string())?;
        println!("  seq {} at {} by {}: {} {:?}", txn.seq, txn.time, txn.meta.actor, txn.meta.reason, txn.events);
    }
    drop(store);
    if temporary {
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
    }
    Ok(())
}
