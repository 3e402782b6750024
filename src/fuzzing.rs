//! Entry points for the fuzz targets in `fuzz/`, kept in the library so that
//! `tests/fuzz_corpus.rs` replays every committed corpus file through exactly
//! the same checks. Each function takes arbitrary bytes and panics only when
//! an invariant is broken; a refusal of bad input is a typed error, never a
//! panic.

use std::path::Path;
use std::sync::Arc;

use crate::clock::{ManualClock, Timestamp};
use crate::elb::{fleet, Command, ElbState, ElbStore, Settings, Taggable, TargetHealth, TargetSpec};
use crate::identity::{Identity, StoreId};
use crate::io::{CrashMode, SimFs};
use crate::snapshot::SnapshotHeader;
use crate::store::{Create, Options, StateMachine, Store, SyncPolicy, TxnMeta};
use crate::wal::{decode_frame, SegmentHeader, FRAME_HEADER_BYTES};

const DIR: &str = "/fuzz";
const ID: StoreId = StoreId(0x5eed);
const RECORD_LIMIT: u32 = 1 << 16;

fn options(fs: &SimFs) -> Options {
    Options::default()
        .create(Create::IfMissing)
        .file_system(Arc::new(fs.clone()))
        .sync(SyncPolicy::Never)
        .snapshot_every_events(None)
        .record_bytes_max(RECORD_LIMIT)
        .clock(Arc::new(ManualClock::new(Timestamp::from_secs(1))))
}

/// A file system holding an empty store's identity.
fn store_dir() -> SimFs {
    let fs = SimFs::new();
    let identity =
        Identity { id: ID, name: "unnamed".into(), environment: "unspecified".into(), created: Timestamp(1) };
    fs.write_raw(&Path::new(DIR).join("IDENTITY"), identity.encode());
    fs
}

/// The record frame decoder: never panics; an accepted frame is well formed.
pub fn frame_decoder(data: &[u8]) {
    if let Ok(frame) = decode_frame(data, RECORD_LIMIT) {
        assert!(frame.seq > 0);
        assert!(!frame.payload.is_empty() && frame.payload.len() <= RECORD_LIMIT as usize);
        assert_eq!(frame.encoded_bytes(), FRAME_HEADER_BYTES + frame.payload.len());
        assert!(frame.encoded_bytes() <= data.len());
    }
}

/// Snapshot framing and loading: arbitrary bytes as a store's only snapshot.
/// Opening never panics; a snapshot that is accepted must decode to a state
/// that survives a reopen.
pub fn snapshot_loader(data: &[u8]) {
    if let Ok((header, payload)) = SnapshotHeader::check(data) {
        assert_eq!(
            payload.len() + crate::snapshot::SNAPSHOT_HEADER_BYTES + crate::snapshot::SNAPSHOT_TRAILER_BYTES,
            data.len()
        );
        let fs = store_dir();
        let header = SnapshotHeader { store_id: ID, ..header };
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(&data[crate::snapshot::SNAPSHOT_HEADER_BYTES..]);
        fs.write_raw(&Path::new(DIR).join(format!("snapshot-{:020}.snap", header.seq)), bytes);
        let _ = Store::<ElbState>::open(DIR, options(&fs));
    }
}

/// The segment scanner and recovery: arbitrary bytes after a valid header as
/// the only segment. Open returns a state or a typed error; when it opens,
/// the state is the fold of the transactions it reports, and it accepts a
/// commit and reopens to the same state.
pub fn segment_scanner(data: &[u8]) {
    let fs = store_dir();
    let header = SegmentHeader { store_id: ID, first_seq: 1, created: Timestamp(1) };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(data);
    fs.write_raw(&Path::new(DIR).join(format!("wal-{:020}.log", 1)), bytes);
    check_open(&fs);
}

/// Opening over arbitrary directory contents: `data` is a list of files, each
/// `name_len: u8 | name | len: u16 LE | bytes`. Names are kept short and
/// mostly valid store file names, so the fuzzer reaches the parsers.
pub fn open_directory(data: &[u8]) {
    let fs = SimFs::new();
    let names = [
        "IDENTITY",
        "wal-00000000000000000001.log",
        "wal-00000000000000000002.log",
        "snapshot-00000000000000000001.snap",
        "LOCK",
    ];
    let mut rest = data;
    while let [choice, rest_after @ ..] = rest {
        let name = names[*choice as usize % names.len()];
        let Some((len, body)) = rest_after.split_first_chunk::<2>() else { break };
        let len = (u16::from_le_bytes(*len) as usize).min(body.len());
        fs.write_raw(&Path::new(DIR).join(name), body[..len].to_vec());
        rest = &body[len..];
    }
    check_open(&fs);
}

fn check_open(fs: &SimFs) {
    let Ok(store) = Store::<ElbState>::open(DIR, options(fs)) else { return };
    let mut folded = ElbState::default();
    let mut count = 0;
    for txn in store.transactions(..) {
        let Ok(txn) = txn else { return };
        for event in &txn.events {
            folded.apply(event);
        }
        count += 1;
    }
    if store.open_report().snapshot.is_none() {
        assert_eq!(&folded, store.read().state(), "the state is the fold of the log");
    }
    assert_eq!(count, store.read().seq());
    let state = store.read().state().clone();
    drop(store);
    let image = fs.crash_image(CrashMode::KeepUnsynced);
    let again = Store::<ElbState>::open(DIR, options(&image)).expect("a store that opened once reopens");
    assert_eq!(again.read().state(), &state);
}

/// The typed API under arbitrary command sequences: each byte pair picks a
/// command and its target among the resources that exist (or do not). After
/// every step the state is the fold of the log, a refusal writes nothing, the
/// inverse of each transaction restores the state before it, and a reopen
/// gives the same state.
pub fn elb_commands(data: &[u8]) {
    let fs = SimFs::new();
    let store = ElbStore::open(DIR, options(&fs), Settings::in_region("us-east-1")).expect("a new store opens");
    for pair in data.chunks(2).take(64) {
        let (op, arg) = (pair[0], pair.get(1).copied().unwrap_or(0));
        let before = store.read();
        let lbs: Vec<_> = before.load_balancers().map(|lb| lb.id).collect();
        let tgs: Vec<_> = before.target_groups().map(|tg| tg.id).collect();
        let lb = lbs.get(arg as usize % lbs.len().max(1)).copied().unwrap_or(crate::elb::LoadBalancerId(arg.into()));
        let tg = tgs.get(arg as usize % tgs.len().max(1)).copied().unwrap_or(crate::elb::TargetGroupId(arg.into()));
        let meta = TxnMeta::new("fuzz", "op");
        let result = match op % 6 {
            0 => store.execute_with(meta, |_, ctx| fleet::reference_commands(u64::from(arg % 8), ctx.seq)),
            1 => store.execute(meta, vec![Command::DeleteLoadBalancer { load_balancer: lb }]),
            2 => store.execute(meta, vec![Command::DeleteTargetGroup { target_group: tg }]),
            3 => store.execute(
                meta,
                vec![Command::AddTags {
                    resources: vec![Taggable::LoadBalancer(lb)],
                    tags: [(format!("k{}", arg % 3), format!("{op}"))].into(),
                }],
            ),
            4 => store.execute(
                meta,
                vec![Command::RegisterTargets { target_group: tg, targets: vec![TargetSpec::new(format!("i-{arg}"))] }],
            ),
            _ => store.execute(
                meta,
                vec![Command::UpdateTargetHealth {
                    target_group: tg,
                    target: TargetSpec::new(format!("i-{:012x}{:02}", arg % 8, arg % 10)),
                    health: TargetHealth { state: crate::elb::HealthState::Healthy, reason: None },
                }],
            ),
        };
        match result.map(|applied| applied.committed) {
            Ok(Some(committed)) => {
                let txn = store.store().transaction(committed.seq).expect("a committed transaction reads back");
                let mut undone = store.read().state().clone();
                for event in txn.events.iter().rev() {
                    undone.apply(&event.inverse());
                }
                assert_eq!(&undone, before.state(), "the inverse restores the state before");
            }
            Ok(None) | Err(_) => assert_eq!(store.read().seq(), before.seq(), "a refusal writes nothing"),
        }
    }
    // The reference model: the fold of every logged event from the empty state.
    let mut model = ElbState::default();
    for txn in store.store().transactions(..) {
        for event in &txn.expect("the log reads back").events {
            model.apply(event);
        }
    }
    let state = store.read().state().clone();
    assert_eq!(model, state, "the state is the fold of the log");
    drop(store);
    let again = ElbStore::open(DIR, options(&fs), Settings::in_region("us-east-1")).expect("reopens");
    assert_eq!(again.read().state(), &state);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::SEGMENT_HEADER_BYTES;

    #[test]
    fn entry_points_accept_empty_and_small_inputs() {
        for data in [&[][..], &[0][..], &[1, 2, 3, 4, 5, 6, 7, 8, 9][..], &[0xff; 80][..]] {
            frame_decoder(data);
            snapshot_loader(data);
            segment_scanner(data);
            open_directory(data);
            elb_commands(data);
        }
    }

    #[test]
    fn a_real_segment_body_replays() {
        // The body of a real segment must open to its own state through the scanner entry point.
        let fs = SimFs::new();
        let store = ElbStore::open(DIR, options(&fs), Settings::in_region("us-east-1")).unwrap();
        store.execute_with(TxnMeta::new("t", "t"), |_, ctx| fleet::reference_commands(1, ctx.seq)).unwrap();
        let segment = store.store().segments()[0].path.clone();
        drop(store);
        let bytes = fs.read_raw(&segment).unwrap();
        segment_scanner(&bytes[SEGMENT_HEADER_BYTES..]);
    }
}
