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
    ];
    println!("replayed corpora: {counts:?}");
}
