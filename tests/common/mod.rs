//! Shared test fixtures: a small key-value state machine and temporary directories.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use elbstore::{StateMachine, TxnMeta};
use serde::{Deserialize, Serialize};

/// A key-value map: small enough to compare, rich enough to order-check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kv {
    pub entries: BTreeMap<u32, u64>,
    pub applied: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvEvent {
    Set(u32, u64),
    Remove(u32),
    /// Adds to a key, so applying events out of order gives a different state.
    Mix(u32, u64),
}

impl StateMachine for Kv {
    type Event = KvEvent;

    fn apply(&mut self, event: &KvEvent) {
        match event {
            KvEvent::Set(k, v) => {
                self.entries.insert(*k, *v);
            }
            KvEvent::Remove(k) => {
                self.entries.remove(k);
            }
            KvEvent::Mix(k, v) => {
                let entry = self.entries.entry(*k).or_insert(0);
                *entry = entry.wrapping_mul(31).wrapping_add(*v);
            }
        }
        self.applied += 1;
    }
}

/// Folds transactions into an empty state: the reference every recovery is checked against.
pub fn fold<'a>(txns: impl IntoIterator<Item = &'a Vec<KvEvent>>) -> Kv {
    let mut state = Kv::default();
    for events in txns {
        for event in events {
            state.apply(event);
        }
    }
    state
}

pub fn meta(n: u64) -> TxnMeta {
    TxnMeta::new("test:writer", format!("change {n}"))
}

/// A directory under the system temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("elbstore-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file in `dir` with its bytes, for "nothing changed" checks.
pub fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        out.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read(entry.path()).unwrap());
    }
    out
}

/// The sorted names of files in `dir` that start with `prefix`.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    out.sort();
    out
}
