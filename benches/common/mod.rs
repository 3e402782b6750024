//! What the feed and archive benches share: a state that costs nothing to
//! clone, so their figures are the store's own, scratch directories, and
//! the median of paired rounds.

use std::path::PathBuf;

use elbstore::StateMachine;
use serde::{Deserialize, Serialize};

/// One health change per event; cloning it costs nothing.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Health {
    changes: u64,
}

impl StateMachine for Health {
    type Event = u32;
    fn apply(&mut self, _: &u32) {
        self.changes += 1;
    }
}

/// A fresh directory for `bench` and `tag` under the system's temp dir.
pub fn bench_dir(bench: &str, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elbstore-bench-{bench}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The value a quarter `q` of the way through `values` once sorted (0: the
/// least, 2: the median, 4: the greatest).
pub fn quartile(mut values: Vec<f64>, q: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) * q / 4]
}
