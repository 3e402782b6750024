//! Replays every committed fuzz corpus file through the same checks the fuzz
//! targets run (`elbstore::fuzzing`), so CI holds every input the fuzzer ever
//! kept, without needing a nightly toolchain.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} broke an invariant", file.display());
    }
    assert!(!files.is_empty(), "{target} has a corpus");
    files.len()
}

#[test]
fn fuzz_corpora_replay_cleanly() {
    use elbstore::fuzzing::*;
    let counts = [
        ("frame_decoder", replay("frame_decoder", frame_decoder)),
        ("snapshot_loader", replay("snapshot_loader", snapshot_loader)),
        ("segment_scanner", replay("segment_scanner", segment_scanner)),
        ("open_directory", replay("open_directory", open_directory)),
        ("elb_commands", replay("elb_commands", elb_commands)),
        #[cfg(feature = "api")]
        (
            "api_requests",
            replay("api_requests", |data| {
                api_requests(data);
            }),
        ),
    ];
    println!("replayed corpora: {counts:?}");
}

/// Writes seed inputs in today's formats into the corpora: frames, a segment
/// body, a snapshot and a whole store directory from a small ELB store. Run
/// by hand after a format change, then fuzz from them and minimise
/// (`cargo +nightly fuzz cmin TARGET`):
/// `ELBSTORE_WRITE_SEEDS=1 cargo test --test fuzz_corpus -- --ignored write_seed_inputs`.
#[test]
#[ignore = "writes into the source tree; run by hand after a format change"]
fn write_seed_inputs() {
    use std::sync::Arc;

    use elbstore::elb::{Command, CreateTargetGroup, ElbStore, HealthCheck, Protocol, Settings, TargetType};
    use elbstore::io::SimFs;
    use elbstore::{Create, ManualClock, Options, Timestamp, TxnMeta, SEGMENT_HEADER_BYTES};

    assert_eq!(std::env::var("ELBSTORE_WRITE_SEEDS").as_deref(), Ok("1"), "set ELBSTORE_WRITE_SEEDS=1");
    let fs = SimFs::new();
    let options = Options::default()
        .create(Create::IfMissing)
        .file_system(Arc::new(fs.clone()))
        .snapshot_every_events(None)
        .clock(Arc::new(ManualClock::new(Timestamp::from_secs(1))));
    let store = ElbStore::open("/seed", options, Settings::in_region("us-east-1")).unwrap();
    for i in 0..4 {
        let command = Command::CreateTargetGroup(CreateTargetGroup {
            account: "123456789012".into(),
            name: format!("tg-{i}"),
            protocol: Some(Protocol::Http),
            port: Some(80),
            vpc_id: Some("vpc-1".into()),
            target_type: TargetType::Ip,
            health_check: HealthCheck::default(),
            ..CreateTargetGroup::default()
        });
        store.execute(TxnMeta::new("seed", "seed"), vec![command]).unwrap();
    }
    let snapshot = store.store().snapshot().unwrap();
    drop(store);
    let read = |name: &str| fs.read_raw(&Path::new("/seed").join(name)).unwrap();
    let segment = read("wal-00000000000000000001.log");
    let body = &segment[SEGMENT_HEADER_BYTES..];
    let first = elbstore::decode_frame(body, u32::MAX).unwrap().encoded_bytes();
    let snapshot = fs.read_raw(&snapshot.path).unwrap();
    let mut directory = Vec::new();
    for (choice, bytes) in [(0u8, read("IDENTITY")), (1, segment.clone()), (3, snapshot.clone())] {
        directory.push(choice);
        directory.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        directory.extend_from_slice(&bytes);
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let seeds: [(&str, &[u8]); 4] = [
        ("frame_decoder", &body[..first]),
        ("segment_scanner", body),
        ("snapshot_loader", &snapshot),
        ("open_directory", &directory),
    ];
    for (target, bytes) in seeds {
        std::fs::write(corpus.join(target).join("seed-current-format"), bytes).unwrap();
    }
}

/// The API's seed inputs reach the handlers: every request of the fleet seed
/// (create, route, register, tag, describe, delete) is answered 200. The
/// seeds are named `seed-*` so a corpus minimisation that drops them is seen
/// here.
#[cfg(feature = "api")]
#[test]
fn the_api_seed_inputs_reach_the_handlers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/api_requests");
    let fleet = std::fs::read(dir.join("seed-fleet")).unwrap();
    let requests = fleet.split(|b| *b == b'\n').filter(|line| !line.is_empty()).count();
    assert_eq!(elbstore::fuzzing::api_requests(&fleet), requests);
    let refusals = std::fs::read(dir.join("seed-refusals")).unwrap();
    assert_eq!(elbstore::fuzzing::api_requests(&refusals), 0);
}
