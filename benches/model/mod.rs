//! A model of the open's replay, for sizing a change to the state's data
//! structure before making it (BENCHMARKS.md, "Misses in flight").
//!
//! 1,000,000 health changes, each to a random one of 100,000 groups of 10
//! targets, applied to three shapes of the targets alone (no decoding, no
//! log, no other resources):
//! - `today`: the state's shape, an ordered map from group to an ordered
//!   map from slot to a shared target holding a shared id; each change puts
//!   a freshly allocated target, as a decoded event brings one;
//! - `lean`: a persistent radix array (three levels of nodes of 64
//!   pointers, groups numbered densely), each group one sorted allocation of its
//!   targets stored inline (id bytes, port, health, no pointers), updated
//!   in place when unshared;
//! - `lean_interleaved`: the same, with each run of 16 changes first
//!   reading every change's leaf node and group pointer, then every
//!   group's header and middle target (where its search starts), then
//!   applying them in order, so the misses of 16 changes are in
//!   flight together instead of one at a time.
//!
//! And single-change commits on `today` and `lean`: each change copies what
//! the last published version shares (the path copy every commit pays),
//! then the version is published and the one before dropped.
//!
//! Nothing here is the store's code: it is the yardstick for it.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imbl::OrdMap;

pub const GROUPS: usize = 100_000;
const TARGETS_PER_GROUP: usize = 10;
pub const CHANGES: usize = 1_000_000;
/// Changes the commit models apply, one a commit.
pub const COMMITS: usize = 100_000;
/// Changes whose lookups are in flight together.
const WINDOW: usize = 16;

/// A target's id: `i-` and 17 hex digits, as the reference fleet's.
fn id(group: usize, target: usize) -> String {
    format!("i-{:017x}", ((group * TARGETS_PER_GROUP + target) as u64).wrapping_mul(0x9E37_79B9) % (1 << 60))
}

/// The id bytes inline, and the port: how both shapes order a group's targets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    id: [u8; 22],
    len: u8,
    port: u16,
}

impl Slot {
    fn of(id: &str, port: u16) -> Slot {
        let mut bytes = [0; 22];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Slot { id: bytes, len: id.len() as u8, port }
    }
}

/// Today's target: shared, its id shared too.
#[allow(dead_code)]
struct Target {
    group: u64,
    id: Arc<str>,
    port: u16,
    zone: Option<String>,
    health: u8,
    reason: Option<u8>,
    draining_until: Option<u64>,
}

/// A lean target: no pointers.
#[derive(Clone, Copy)]
#[allow(dead_code)]
struct Inline {
    slot: Slot,
    health: u8,
    reason: u8,
    draining_until: u64,
}

/// The changes: (group, target, new health), the same in every shape.
pub struct Changes(Vec<(usize, usize, u8)>);

impl Changes {
    pub fn new() -> Changes {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        Changes(
            (0..CHANGES)
                .map(|k| {
                    let group = (next() % GROUPS as u64) as usize;
                    (group, (next() % TARGETS_PER_GROUP as u64) as usize, (k % 4) as u8)
                })
                .collect(),
        )
    }
}

/// The time to apply all the changes to today's shape.
pub fn today(changes: &Changes) -> Duration {
    today_shape(changes, CHANGES, false)
}

/// Single-change commits: each change applied to the head, which is then
/// published (cloned) while the version published before it is dropped, as
/// the store does per commit. The time for the first `COMMITS` changes.
pub fn commits_today(changes: &Changes) -> Duration {
    today_shape(changes, COMMITS, true)
}

/// The time to apply the first `count` changes to today's shape, each
/// published when `publish`.
fn today_shape(changes: &Changes, count: usize, publish: bool) -> Duration {
    // Sparse group ids, as sequence-derived ones are.
    let group_id = |g: usize| (g as u64) * 16 + 1_000_003;
    let mut head: OrdMap<u64, OrdMap<Slot, Arc<Target>>> = OrdMap::new();
    for g in 0..GROUPS {
        let mut targets = OrdMap::new();
        for t in 0..TARGETS_PER_GROUP {
            let id: Arc<str> = id(g, t).into();
            let target =
                Target { group: group_id(g), id, port: 80, zone: None, health: 0, reason: None, draining_until: None };
            targets.insert(Slot::of(&target.id, 80), Arc::new(target));
        }
        head.insert(group_id(g), targets);
    }
    let changes = &changes.0[..count];
    let ids: Vec<String> = changes.iter().map(|&(g, t, _)| id(g, t)).collect();
    // Nothing shares the state in a replay.
    let mut published = publish.then(|| head.clone());
    let started = Instant::now();
    for (&(g, _, health), id) in changes.iter().zip(&ids) {
        // As decoded: a new allocation for the target and one for its id.
        let id: Arc<str> = id.as_str().into();
        let target =
            Target { group: group_id(g), id, port: 80, zone: None, health, reason: Some(1), draining_until: None };
        let slot = Slot::of(&target.id, 80);
        head.get_mut(&target.group).expect("every group exists").insert(slot, Arc::new(target));
        if publish {
            published = Some(head.clone());
        }
    }
    let elapsed = started.elapsed();
    drop(black_box((head, published)));
    elapsed
}

/// One group's targets, sorted by slot.
type Group = Arc<[Inline]>;
/// A node of the radix array: up to `FANOUT` children.
type Node<T> = Arc<[T]>;

/// Groups by dense number, three levels of up to `FANOUT` pointers above
/// them: a change copies at most three nodes of 64 pointers and its group.
#[derive(Clone)]
struct Radix(Node<Node<Node<Group>>>);

/// Children of a radix node: 64^3 places for the 100,000 groups.
const FANOUT: usize = 64;

/// Where group `g` is: its index at each level.
fn path(g: usize) -> (usize, usize, usize) {
    (g / (FANOUT * FANOUT), g / FANOUT % FANOUT, g % FANOUT)
}

impl Radix {
    fn new() -> Radix {
        let group = |g: usize| -> Group {
            let mut targets: Vec<Inline> = (0..TARGETS_PER_GROUP)
                .map(|t| Inline { slot: Slot::of(&id(g, t), 80), health: 0, reason: 0, draining_until: 0 })
                .collect();
            targets.sort_by_key(|t| t.slot);
            Arc::from(targets)
        };
        // The groups in runs of FANOUT, then those runs in runs of FANOUT.
        let leaves: Vec<Node<Group>> = (0..GROUPS)
            .step_by(FANOUT)
            .map(|start| (start..(start + FANOUT).min(GROUPS)).map(group).collect())
            .collect();
        let mids: Vec<Node<Node<Group>>> = leaves.chunks(FANOUT).map(Arc::from).collect();
        Radix(Arc::from(mids))
    }

    fn group(&self, g: usize) -> &Group {
        let (a, b, c) = path(g);
        &self.0[a][b][c]
    }

    /// Puts `target` in group `g`, copying only what is shared.
    fn put(&mut self, g: usize, target: Inline) {
        let (a, b, c) = path(g);
        let mid = &mut Arc::make_mut(&mut self.0)[a];
        let leaf = &mut Arc::make_mut(mid)[b];
        let group = &mut Arc::make_mut(leaf)[c];
        match group.binary_search_by_key(&target.slot, |t| t.slot) {
            Ok(i) => Arc::make_mut(group)[i] = target,
            Err(i) => {
                let mut targets = group.to_vec();
                targets.insert(i, target);
                *group = Arc::from(targets);
            }
        }
    }
}

/// The time to apply all the changes to the lean shape, `WINDOW` at a time
/// with their reads made first when `interleaved`.
pub fn lean(changes: &Changes, interleaved: bool) -> Duration {
    lean_shape(changes, CHANGES, if interleaved { Lean::Interleaved } else { Lean::InOrder })
}

/// The same commits as `commits_today` on the lean shape.
pub fn commits_lean(changes: &Changes) -> Duration {
    lean_shape(changes, COMMITS, Lean::Published)
}

/// How the lean shape takes its changes.
#[derive(Clone, Copy, PartialEq)]
enum Lean {
    InOrder,
    Interleaved,
    /// In order, each published.
    Published,
}

fn lean_shape(changes: &Changes, count: usize, how: Lean) -> Duration {
    let mut radix = Radix::new();
    let changes = &changes.0[..count];
    let decoded: Vec<Inline> = changes
        .iter()
        .map(|&(g, t, health)| Inline { slot: Slot::of(&id(g, t), 80), health, reason: 1, draining_until: 0 })
        .collect();
    // Nothing shares the state in a replay.
    let mut published = (how == Lean::Published).then(|| radix.clone());
    let started = Instant::now();
    if how == Lean::Interleaved {
        for (run, targets) in changes.chunks(WINDOW).zip(decoded.chunks(WINDOW)) {
            // Every change's leaf node and group pointer: loads that wait
            // for nothing but the upper levels, in flight together.
            let mut seen = 0usize;
            for &(g, _, _) in run {
                let (a, b, c) = path(g);
                let leaf = &radix.0[a][b];
                seen ^= Arc::strong_count(leaf) ^ leaf[c].len();
            }
            // Every group's header and its middle target, where the search
            // starts (its later probes may still miss).
            for &(g, _, _) in run {
                let group = radix.group(g);
                seen ^= Arc::strong_count(group) ^ usize::from(group[group.len() / 2].health);
            }
            black_box(seen);
            for (&(g, _, _), target) in run.iter().zip(targets) {
                radix.put(g, *target);
            }
        }
    } else {
        for (&(g, _, _), target) in changes.iter().zip(&decoded) {
            radix.put(g, *target);
            if how == Lean::Published {
                published = Some(radix.clone());
            }
        }
    }
    let elapsed = started.elapsed();
    drop(black_box((radix, published)));
    elapsed
}
