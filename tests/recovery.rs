//! Recovery from damage: torn tails at every offset, zero-filled tails, bit
//! flips in sealed segments and snapshots, damage in the middle of the log,
//! and salvaging a log that no longer opens.

mod common;

use std::path::{Path, PathBuf};

use common::{dir_contents, files_with_prefix, fold, meta, Kv, KvEvent, TempDir};
use elbstore::{
    decode_frame, salvage, Create, Error, FrameProblem, OpenMode, Options, Point, Store, TxnMeta, WalError,
    RESTORED_FROM_FILE, SEGMENT_HEADER_BYTES,
};

/// A small single-segment log and the transactions in it.
struct Fixture {
    identity: Vec<u8>,
    segment_name: String,
    segment: Vec<u8>,
    txns: Vec<Vec<KvEvent>>,
    /// Byte offsets where each record ends.
    boundaries: Vec<usize>,
}

fn small_log(tag: &str, count: u32) -> Fixture {
    let dir = TempDir::new(tag);
    let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    // Varying sizes, so record boundaries fall at irregular offsets.
    let txns: Vec<Vec<KvEvent>> = (0..count)
        .map(|i| (0..=i % 3).map(|j| KvEvent::Mix(j, u64::from(i) * 1000 + u64::from(j))).collect())
        .collect();
    for (i, events) in txns.iter().enumerate() {
        store.commit(meta(i as u64), events.clone()).unwrap();
    }
    drop(store);
    let segment_path = files_with_prefix(dir.path(), "wal-").remove(0);
    let segment = std::fs::read(&segment_path).unwrap();
    let mut boundaries = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < segment.len() {
        offset += decode_frame(&segment[offset..], u32::MAX).unwrap().encoded_bytes();
        boundaries.push(offset);
    }
    assert_eq!(boundaries.len(), txns.len());
    Fixture {
        identity: std::fs::read(dir.join("IDENTITY")).unwrap(),
        segment_name: segment_path.file_name().unwrap().to_string_lossy().into_owned(),
        segment,
        txns,
        boundaries,
    }
}

fn lay_out(dir: &Path, fixture: &Fixture, segment: &[u8]) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("IDENTITY"), &fixture.identity).unwrap();
    let path = dir.join(&fixture.segment_name);
    std::fs::write(&path, segment).unwrap();
    path
}

#[test]
fn torn_tail_at_every_offset_recovers_the_longest_complete_prefix() {
    let fixture = small_log("torn-source", 12);
    let dir = TempDir::new("torn");
    for len in SEGMENT_HEADER_BYTES..=fixture.segment.len() {
        let segment_path = lay_out(dir.path(), &fixture, &fixture.segment[..len]);
        let whole = fixture.boundaries.iter().filter(|&&b| b <= len).count();
        let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing))
            .unwrap_or_else(|err| panic!("open after cutting at {len}: {err}"));
        assert_eq!(store.read().seq(), whole as u64, "cut at {len}");
        assert_eq!(*store.read(), fold(&fixture.txns[..whole]), "cut at {len}");
        let last_end = if whole == 0 { SEGMENT_HEADER_BYTES } else { fixture.boundaries[whole - 1] };
        match &store.open_report().torn_tail {
            None => assert_eq!(len, last_end, "an untorn log reports no tail"),
            Some(torn) => {
                assert_eq!((torn.offset as usize, torn.bytes as usize), (last_end, len - last_end));
                let kept = std::fs::read(torn.kept_at.as_ref().unwrap()).unwrap();
                assert_eq!(kept, &fixture.segment[last_end..len], "the cut bytes are kept aside");
            }
        }
        // The store accepts new commits right after the cut.
        let next = store.commit(meta(99), vec![KvEvent::Set(7, 7)]).unwrap();
        assert_eq!(next.seq, whole as u64 + 1);
        drop(store);
        let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
        let mut expected = fold(&fixture.txns[..whole]);
        elbstore::StateMachine::apply(&mut expected, &KvEvent::Set(7, 7));
        assert_eq!(*store.read(), expected, "cut at {len}, then one commit");
        assert!(store.open_report().torn_tail.is_none());
        // The new record starts exactly where the cut was made and ends the file.
        let segment = std::fs::read(&segment_path).unwrap();
        let frame = decode_frame(&segment[last_end..], u32::MAX).unwrap();
        assert_eq!((frame.seq, last_end + frame.encoded_bytes()), (whole as u64 + 1, segment.len()));
    }
}

#[test]
fn zero_filled_tail_is_cut_like_a_torn_one() {
    let fixture = small_log("zero-source", 6);
    let dir = TempDir::new("zero");
    for len in SEGMENT_HEADER_BYTES..fixture.segment.len() {
        let mut segment = fixture.segment[..len].to_vec();
        segment.resize(fixture.segment.len() + 4096, 0);
        lay_out(dir.path(), &fixture, &segment);
        // A record whose own last bytes are zeros survives zero-filling intact,
        // so count the records whose bytes really are unchanged.
        let whole = fixture.boundaries.iter().take_while(|&&b| segment[..b] == fixture.segment[..b]).count();
        let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
        assert_eq!(*store.read(), fold(&fixture.txns[..whole]), "zeros from {len}");
        let torn = store.open_report().torn_tail.clone().expect("the zeros are cut");
        assert_eq!(torn.offset as usize, if whole == 0 { SEGMENT_HEADER_BYTES } else { fixture.boundaries[whole - 1] });
    }
}

#[test]
fn a_bad_record_followed_by_valid_ones_is_an_error_naming_file_and_offset() {
    let fixture = small_log("middle-source", 8);
    let dir = TempDir::new("middle");
    for victim in 0..fixture.txns.len() - 1 {
        let start = if victim == 0 { SEGMENT_HEADER_BYTES } else { fixture.boundaries[victim - 1] };
        for byte in [start, start + 5, start + 12, start + 20, fixture.boundaries[victim] - 1] {
            let mut segment = fixture.segment.clone();
            segment[byte] ^= 0x40;
            let path = lay_out(dir.path(), &fixture, &segment);
            match Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing)) {
                Err(Error::Wal(WalError::Corrupted { path: p, offset, problem })) => {
                    assert_eq!(p, path);
                    assert_eq!(offset as usize, start, "record {victim}, byte {byte}");
                    assert!(!matches!(problem, FrameProblem::Truncated { .. }) || byte < start + 8);
                }
                other => panic!("record {victim}, byte {byte}: expected corruption error, got {other:?}"),
            }
            // Nothing was cut or moved aside.
            assert_eq!(std::fs::read(&path).unwrap(), segment);
        }
    }
}

#[test]
fn a_duplicated_frame_is_a_sequence_error() {
    let fixture = small_log("dup-source", 5);
    let dir = TempDir::new("dup");
    let mut segment = fixture.segment.clone();
    let second = fixture.boundaries[0]..fixture.boundaries[1];
    segment.extend_from_slice(&fixture.segment[second]);
    lay_out(dir.path(), &fixture, &segment);
    match Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing)) {
        Err(Error::Wal(WalError::SequenceGap { expected: 6, found: 2, offset, .. })) => {
            assert_eq!(offset as usize, fixture.segment.len());
        }
        other => panic!("expected a sequence error, got {other:?}"),
    }
}

/// Regression: a record longer than a lowered `record_bytes_max` was read as
/// damage, so as the last record it was cut off as a torn tail (and the next
/// commit reused its sequence number). A whole frame that passes its CRC is
/// never a torn tail: over the limit it is a typed error naming the file,
/// offset, length and limit, and nothing is cut.
#[test]
fn lowering_record_bytes_max_refuses_to_open_instead_of_cutting_an_acknowledged_record() {
    // Records of one, two and three events: the last is the longest.
    let fixture = small_log("limit-source", 3);
    let dir = TempDir::new("limit");
    let path = lay_out(dir.path(), &fixture, &fixture.segment);
    let last_start = fixture.boundaries[fixture.boundaries.len() - 2];
    let last = decode_frame(&fixture.segment[last_start..], u32::MAX).unwrap();
    let payload_bytes = last.payload.len() as u32;
    let limit = payload_bytes - 1;
    for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
        match Store::<Kv>::open(
            dir.path(),
            Options::default().create(Create::IfMissing).mode(mode).record_bytes_max(limit),
        ) {
            Err(Error::Wal(WalError::RecordOverLimit { path: p, offset, seq, payload_bytes: found, limit: l })) => {
                assert_eq!((p, offset as usize, seq, found, l), (path.clone(), last_start, 3, payload_bytes, limit));
            }
            other => panic!("{mode:?}: expected RecordOverLimit, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), fixture.segment, "{mode:?}: nothing was cut");
        assert_eq!(files_with_prefix(dir.path(), "wal-").len(), 1, "{mode:?}: no side file");
    }
    // An earlier record over the limit: the same error, at its own offset.
    let second_start = fixture.boundaries[0];
    let second_bytes = decode_frame(&fixture.segment[second_start..], u32::MAX).unwrap().payload.len() as u32;
    let err =
        Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing).record_bytes_max(second_bytes - 1))
            .unwrap_err();
    assert!(
        matches!(&err, Error::Wal(WalError::RecordOverLimit { offset, seq: 2, .. }) if *offset as usize == second_start),
        "{err}"
    );
    // At the limit, everything opens.
    let store =
        Store::<Kv>::open(dir.path(), Options::default().create(Create::IfMissing).record_bytes_max(payload_bytes))
            .unwrap();
    assert_eq!(store.read().seq(), 3);
}

/// Regression: a second tear at the same offset (the first commit after a
/// cut torn again by the next crash) replaced the side file holding the
/// first tear's bytes. Every cut is kept, under its own name; a side file
/// that already holds exactly the bytes being cut (a crash between keeping
/// them and truncating) is reused, not duplicated.
#[test]
fn a_second_tear_at_the_same_offset_keeps_both_cuts() {
    let fixture = small_log("two-tears-source", 4);
    let dir = TempDir::new("two-tears");
    let at = fixture.boundaries[2];
    // The first tear: half of record 4.
    let first_tear = fixture.segment[at..at + 10].to_vec();
    let segment_path = lay_out(dir.path(), &fixture, &fixture.segment[..at + 10]);
    let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    assert_eq!(store.open_report().torn_tail.as_ref().map(|t| t.offset as usize), Some(at));
    // The next record starts at the same offset, and is torn in turn.
    store.commit(meta(50), vec![KvEvent::Set(50, 50), KvEvent::Set(51, 51)]).unwrap();
    drop(store);
    let whole = std::fs::read(&segment_path).unwrap();
    let second_tear = whole[at..whole.len() - 3].to_vec();
    assert_ne!(first_tear, second_tear);
    std::fs::write(&segment_path, &whole[..whole.len() - 3]).unwrap();
    let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    assert_eq!(store.read().seq(), 3);
    drop(store);
    let mut kept: Vec<Vec<u8>> = files_with_prefix(dir.path(), &format!("{}.cut-", fixture.segment_name))
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    kept.sort();
    let mut expected = vec![first_tear.clone(), second_tear];
    expected.sort();
    assert_eq!(kept, expected, "both tears are kept");
    let base = format!("{}.cut-{at:020}", fixture.segment_name);
    assert_eq!(
        files_with_prefix(dir.path(), &format!("{}.cut-", fixture.segment_name)),
        [dir.join(&base), dir.join(&format!("{base}.1"))],
        "the first cut keeps the plain name, the next one the first free suffix"
    );
    // An interrupted cut left its side file: the same bytes are not kept twice.
    let names = files_with_prefix(dir.path(), &format!("{}.cut-", fixture.segment_name));
    let mut segment = std::fs::read(&segment_path).unwrap();
    segment.extend_from_slice(&first_tear);
    std::fs::write(&segment_path, &segment).unwrap();
    let store: Store<Kv> = Store::open(dir.path(), Options::default().create(Create::IfMissing)).unwrap();
    let torn = store.open_report().torn_tail.clone().unwrap();
    assert!(names.contains(torn.kept_at.as_ref().unwrap()), "the existing side file with those bytes is reused");
    assert_eq!(files_with_prefix(dir.path(), &format!("{}.cut-", fixture.segment_name)), names);
}

/// A store over several small segments: its transactions and segments.
fn multi_segment_store(dir: &Path, count: u32) -> (Vec<Vec<KvEvent>>, Vec<PathBuf>) {
    let options = Options::default().create(Create::New).identity("use1", "production").segment_bytes(4096);
    let store: Store<Kv> = Store::open(dir, options).unwrap();
    let txns: Vec<Vec<KvEvent>> =
        (0..count).map(|i| (0..=i % 4).map(|j| KvEvent::Mix(j, u64::from(i) * 7 + u64::from(j))).collect()).collect();
    for (i, events) in txns.iter().enumerate() {
        store.commit(meta(i as u64), events.clone()).unwrap();
    }
    store.close().unwrap();
    let segments = files_with_prefix(dir, "wal-");
    assert!(segments.len() >= 4, "{} segments", segments.len());
    (txns, segments)
}

/// (offset, seq) of every record of a segment file.
fn records_of(segment: &Path) -> Vec<(usize, u64)> {
    let bytes = std::fs::read(segment).unwrap();
    let mut out = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        let frame = decode_frame(&bytes[offset..], u32::MAX).unwrap();
        out.push((offset, frame.seq));
        offset += frame.encoded_bytes();
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (name, bytes) in dir_contents(from) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
}

fn salvage_meta() -> TxnMeta {
    TxnMeta::new("ops:alice", "salvage after damage in a sealed segment").with_ticket("INC-42")
}

/// A byte flipped in the middle of a multi-segment log: the store no longer
/// opens, so neither restore nor time travel can reach it. Salvage copies
/// transactions 1..=k (k the last before the damage) into a new store whose
/// state is the source's state at k, says where the damage is and which
/// records were left behind, and changes no byte of the source.
#[test]
fn salvage_copies_up_to_damage_in_the_middle_of_the_log_and_names_what_was_left_behind() {
    let root = TempDir::new("salvage-middle");
    let (source, clean, out) = (root.join("source"), root.join("clean"), root.join("salvaged"));
    let (txns, segments) = multi_segment_store(&source, 400);
    copy_dir(&source, &clean);
    let victim = &segments[segments.len() / 2];
    let in_victim = records_of(victim);
    let (offset, seq) = in_victim[in_victim.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[offset + 45] ^= 0x08;
    std::fs::write(victim, &bytes).unwrap();
    match Store::<Kv>::open(&source, Options::default().mode(OpenMode::ReadOnly)) {
        Err(Error::Wal(WalError::Corrupted { path, offset: at, .. })) => {
            assert_eq!((&path, at as usize), (victim, offset));
        }
        other => panic!("expected the damaged source to be refused, got {other:?}"),
    }
    let before = dir_contents(&source);

    let report = salvage::<Kv>(&source, &out, Options::default(), &salvage_meta()).unwrap();
    let k = seq - 1;
    assert_eq!((report.seq, report.transactions), (k, k));
    assert!(report.verified.ok());
    let damage = report.damage.as_ref().expect("the damage is reported");
    assert_eq!((&damage.segment, damage.offset as usize), (victim, offset));
    assert!(matches!(damage.cause, WalError::Corrupted { problem: FrameProblem::ChecksumMismatch { .. }, .. }));
    assert!(!damage.torn_tail);
    let total = txns.len() as u64;
    assert_eq!(damage.frames_left, total - seq, "every record after the damaged one is counted");
    assert_eq!(damage.seqs_left, vec![seq + 1..=total]);
    let first_victim = segments.iter().position(|s| s == victim).unwrap();
    assert_eq!(damage.segments_left, segments.len() - first_victim);
    let later: u64 = segments[first_victim..].iter().map(|s| std::fs::metadata(s).unwrap().len()).sum();
    assert_eq!(damage.bytes_left, later - offset as u64);
    assert_eq!(dir_contents(&source), before, "salvage changes no byte of the source");

    // The new store: exactly 1..=k, the state the clean copy had at k.
    let salvaged: Store<Kv> = Store::open(&out, Options::default().identity("use1", "production")).unwrap();
    assert_eq!(salvaged.read().seq(), k);
    let copied: Vec<u64> = salvaged.transactions(..).map(|t| t.unwrap().seq).collect();
    assert_eq!(copied, (1..=k).collect::<Vec<_>>());
    let clean: Store<Kv> = Store::open(&clean, Options::default().mode(OpenMode::ReadOnly)).unwrap();
    assert_eq!(*salvaged.read(), *clean.state_at(Point::Seq(k)).unwrap());
    assert_eq!(*salvaged.read(), fold(&txns[..k as usize]));
    for (a, b) in salvaged.transactions(..).zip(clean.transactions(..=k)) {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!((a.seq, a.time, &a.meta, &a.events), (b.seq, b.time, &b.meta, &b.events));
    }
    assert_ne!(salvaged.identity().id, clean.identity().id);
    // It takes new commits after k.
    assert_eq!(salvaged.commit(meta(999), vec![KvEvent::Set(1, 1)]).unwrap().seq, k + 1);
    drop(salvaged);
    let provenance = std::fs::read_to_string(out.join(RESTORED_FROM_FILE)).unwrap();
    for line in [
        "kind: salvage\n".to_owned(),
        format!("seq: {k}\n"),
        format!("damage_segment: {}\n", victim.display()),
        format!("damage_offset: {offset}\n"),
        format!("left_behind_seqs: {}-{total}\n", seq + 1),
        "actor: ops:alice\n".to_owned(),
    ] {
        assert!(provenance.contains(&line), "{line:?} in {provenance}");
    }
}

#[test]
fn salvage_of_an_undamaged_store_copies_everything_and_leaves_nothing_behind() {
    let root = TempDir::new("salvage-whole");
    let (source, out) = (root.join("source"), root.join("salvaged"));
    let (txns, _) = multi_segment_store(&source, 200);
    let before = dir_contents(&source);
    let report = salvage::<Kv>(&source, &out, Options::default(), &salvage_meta()).unwrap();
    assert!(report.complete() && report.damage.is_none());
    assert_eq!(report.seq, txns.len() as u64);
    let salvaged: Store<Kv> = Store::open(&out, Options::default().mode(OpenMode::ReadOnly)).unwrap();
    assert_eq!(*salvaged.read(), fold(&txns));
    let provenance = std::fs::read_to_string(out.join(RESTORED_FROM_FILE)).unwrap();
    assert!(provenance.contains("damage: none\n") && provenance.contains("left_behind_records: 0\n"), "{provenance}");
    assert_eq!(dir_contents(&source), before);
}

#[test]
fn salvage_refuses_an_out_directory_that_holds_anything() {
    let root = TempDir::new("salvage-busy");
    let (source, out) = (root.join("source"), root.join("busy"));
    multi_segment_store(&source, 200);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"mine").unwrap();
    match salvage::<Kv>(&source, &out, Options::default(), &salvage_meta()) {
        Err(err @ Error::DirectoryNotEmpty { .. }) => assert!(err.to_string().contains("not empty"), "{err}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(dir_contents(&out).into_keys().collect::<Vec<_>>(), ["keep.txt"]);
}
