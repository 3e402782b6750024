//! `machine/snapshot.bin`: a replica's snapshot as it is kept and shipped to
//! another replica (docs/FORMAT.md, "Replication"). It carries the Raft
//! snapshot's metadata, the store's identity, the store's snapshot file and
//! the store's log through the snapshot, so that a replica made from it holds
//! the store's whole history: its deletion guard, history, revert and time
//! travel read the same log as every other replica's.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use openraft::{BasicNode, SnapshotMeta};

use super::machine::{file_error, MachineError};
use super::NodeId;
use crate::codec;
use crate::elb::{ElbState, ElbStore};
use crate::identity::Identity;
use crate::io::{FileSystem, RealFs};
use crate::store::seed::{copy_log, Seeding};
use crate::store::{Error, View};

/// A Raft snapshot's metadata.
pub(super) type Meta = SnapshotMeta<NodeId, BasicNode>;

const MAGIC: &[u8; 8] = b"ELBRSNP1";
/// Format 1 held the store's snapshot file only, which made a replica
/// without the history before it; format 2 adds the log. Format 1 is refused.
const FORMAT: u32 = 2;
/// The limit on the metadata and identity of a bundle.
const META_BYTES_MAX: u64 = 64 << 20;
/// The limit on one section (a snapshot file or a segment) of a bundle.
const SECTION_BYTES_MAX: u64 = 8 << 30;

// { magic "ELBRSNP1" | format: u32 = 2 | meta_bytes: u32 | identity_bytes: u32
// | crc32(meta ++ identity): u32 | meta: bincode(SnapshotMeta) | identity: IDENTITY file (or none)
// | state_bytes: u64 | the store's snapshot file (state_bytes of them, 0 for the empty state)
// | { first_seq: u64 | bytes: u64 | a log segment through the snapshot's seq } * n | 0u64 }

/// What a bundle holds of a store: its identity, the view the snapshot is
/// of, and the store whose log is copied through the view's sequence number.
pub(super) struct Source<'a> {
    pub identity: &'a Identity,
    pub store: &'a ElbStore,
    pub view: &'a View<ElbState>,
}

/// Writes the bundle of `source` (none for a group without a store) with
/// `meta` to `path`, by a temporary file, fsync and rename; `scratch` is a
/// directory it may use and removes.
pub(super) fn write(path: &Path, scratch: &Path, meta: &Meta, source: Option<Source<'_>>) -> Result<(), MachineError> {
    let tmp = path.with_extension("bin.tmp");
    let file = File::create(&tmp).map_err(file_error("create", &tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let write_err = file_error("write", &tmp);
    let head = encode_head(meta, source.as_ref().map(|s| s.identity)).map_err(|err| MachineError::File {
        op: "encode",
        path: tmp.clone(),
        problem: err.to_string(),
    })?;
    out.write_all(&head).map_err(write_err)?;
    match source.filter(|source| source.view.seq() > 0) {
        Some(Source { identity, store, view }) => {
            let state = write_state(scratch, identity, view)?;
            let state_bytes = std::fs::metadata(&state).map_err(file_error("stat", &state))?.len();
            out.write_all(&state_bytes.to_le_bytes()).map_err(write_err)?;
            let mut file = File::open(&state).map_err(file_error("open", &state))?;
            std::io::copy(&mut file, &mut out).map_err(file_error("copy into", &tmp))?;
            let _ = std::fs::remove_dir_all(scratch);
            copy_log(store.store(), view.seq(), |first_seq, bytes| {
                out.write_all(&first_seq.to_le_bytes())
                    .and_then(|()| out.write_all(&(bytes.len() as u64).to_le_bytes()))
                    .and_then(|()| out.write_all(bytes))
                    .map_err(write_err)
            })?;
        }
        None => out.write_all(&0u64.to_le_bytes()).map_err(write_err)?,
    }
    out.write_all(&0u64.to_le_bytes()).map_err(write_err)?;
    let file = out.into_inner().map_err(|err| write_err(err.into_error()))?;
    file.sync_data().map_err(file_error("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(file_error("rename", &tmp))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    fs.sync_dir(dir).map_err(file_error("fsync directory", dir))
}

/// Writes the store's snapshot file of `view` into `scratch` and returns its path.
fn write_state(scratch: &Path, identity: &Identity, view: &View<ElbState>) -> Result<std::path::PathBuf, MachineError> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).map_err(file_error("create directory", scratch))?;
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    let header = crate::snapshot::SnapshotHeader {
        store_id: identity.id,
        seq: view.seq(),
        time: view.time(),
        schema: <ElbState as crate::StateMachine>::SCHEMA_VERSION.into(),
    };
    crate::snapshot::write_snapshot(&fs, scratch, header, view.state(), u64::MAX).map_err(Error::Snapshot)?;
    Ok(scratch.join(crate::snapshot::snapshot_file_name(view.seq())))
}

fn encode_head(meta: &Meta, identity: Option<&Identity>) -> Result<Vec<u8>, codec::CodecError> {
    let meta = codec::encode(meta)?;
    let identity = identity.map(Identity::encode).unwrap_or_default();
    let mut out = Vec::with_capacity(24 + meta.len() + identity.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    crc.update(&identity);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&identity);
    Ok(out)
}

/// The front of a bundle: its metadata and identity.
pub(super) struct Head {
    pub meta: Meta,
    pub identity: Option<Identity>,
}

/// Reads the front of a bundle from `reader`, leaving it at the state.
pub(super) fn read_head(reader: &mut impl Read) -> Result<Head, String> {
    let mut fixed = [0u8; 24];
    reader.read_exact(&mut fixed).map_err(|_| "not a replica snapshot (too short)".to_owned())?;
    if &fixed[..8] != MAGIC {
        return Err("not a replica snapshot".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(fixed[at..at + 4].try_into().expect("4 bytes"));
    let format = u32_at(8);
    if format != FORMAT {
        return Err(format!("snapshot format {format} is not the one this build reads ({FORMAT})"));
    }
    let (meta_bytes, identity_bytes) = (u64::from(u32_at(12)), u64::from(u32_at(16)));
    if meta_bytes + identity_bytes > META_BYTES_MAX {
        return Err(format!("{} bytes of metadata, over the limit of {META_BYTES_MAX}", meta_bytes + identity_bytes));
    }
    let mut meta = vec![0u8; meta_bytes as usize];
    let mut identity = vec![0u8; identity_bytes as usize];
    reader.read_exact(&mut meta).and_then(|()| reader.read_exact(&mut identity)).map_err(|_| "cut short")?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    crc.update(&identity);
    if crc.finalize() != u32_at(20) {
        return Err("checksum mismatch".into());
    }
    let meta = codec::decode(&meta, META_BYTES_MAX).map_err(|err| err.to_string())?;
    let identity = match identity.as_slice() {
        [] => None,
        bytes => Some(Identity::decode(bytes).map_err(|problem| format!("identity: {problem:?}"))?),
    };
    Ok(Head { meta, identity })
}

/// Reads the head of the bundle at `path`.
pub(super) fn read_head_of(path: &Path) -> std::io::Result<Head> {
    let mut file = BufReader::new(File::open(path)?);
    read_head(&mut file).map_err(|problem| std::io::Error::new(std::io::ErrorKind::InvalidData, problem))
}

/// Makes the store the bundle at `path` carries in the directory `into`
/// (which must be missing or empty), after `check` accepts its identity;
/// returns the bundle's head. A bundle without a store leaves `into` empty.
/// Every part is checked: the head's checksum, the snapshot file's framing,
/// each log record's checksum and sequence, and that the log runs from the
/// first record to the snapshot's, no further.
pub(super) fn unpack(
    path: &Path,
    into: &Path,
    check: impl FnOnce(&Identity) -> Result<(), MachineError>,
) -> Result<Head, MachineError> {
    let damaged = |problem: String| MachineError::File { op: "install snapshot", path: path.to_path_buf(), problem };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(file_error("open", path))?);
    let head = read_head(&mut reader).map_err(damaged)?;
    std::fs::create_dir_all(into).map_err(file_error("create directory", into))?;
    let Some(identity) = &head.identity else { return Ok(head) };
    check(identity)?;
    let state = read_section(&mut reader).map_err(damaged)?;
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    let snapshot = (!state.is_empty()).then_some(state.as_slice());
    let mut seeding = Seeding::start(&fs, into, identity, snapshot)?;
    drop(state);
    loop {
        let first_seq = read_u64(&mut reader).map_err(damaged)?;
        if first_seq == 0 {
            break;
        }
        let bytes = read_section(&mut reader).map_err(damaged)?;
        seeding.segment(first_seq, &bytes)?;
    }
    let mut rest = [0u8; 1];
    if reader.read(&mut rest).map_err(file_error("read", path))? != 0 {
        return Err(damaged("bytes after the last section".into()));
    }
    seeding.finish()?;
    Ok(head)
}

fn read_u64(reader: &mut impl Read) -> Result<u64, String> {
    let mut bytes = [0u8; 8];
    reader.read_exact(&mut bytes).map_err(|_| "cut short".to_owned())?;
    Ok(u64::from_le_bytes(bytes))
}

/// A length (u64) and that many bytes.
fn read_section(reader: &mut impl Read) -> Result<Vec<u8>, String> {
    let len = read_u64(reader)?;
    if len > SECTION_BYTES_MAX {
        return Err(format!("a section of {len} bytes, over the limit of {SECTION_BYTES_MAX}"));
    }
    let mut bytes = Vec::new();
    reader.take(len).read_to_end(&mut bytes).map_err(|err| err.to_string())?;
    if bytes.len() as u64 != len {
        return Err("cut short".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elb::{fleet, Settings};
    use crate::store::{Create, Options, SyncPolicy, TxnMeta};

    /// A bundle carries the store's log through the snapshot, across
    /// segments, and a store made from it has the same state and history;
    /// damage anywhere in it is refused.
    #[test]
    fn a_bundle_makes_a_store_with_the_whole_history_and_damage_is_refused() {
        let root = std::env::temp_dir().join(format!("elbstore-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let options = Options::default().create(Create::IfMissing).sync(SyncPolicy::Always).segment_bytes(8 << 10);
        let store = ElbStore::open(root.join("a"), options, Settings::in_region("us-east-1")).unwrap();
        for i in 0..40 {
            store
                .execute_with(TxnMeta::new("svc:test", "fleet"), |_, ctx| fleet::batch_commands(i..i + 1, ctx.seq))
                .unwrap();
        }
        let view = store.read();
        // Records after the snapshot's are not carried.
        store.execute_with(TxnMeta::new("svc:test", "more"), |_, ctx| fleet::batch_commands(40..41, ctx.seq)).unwrap();
        assert!(store.store().segments().len() > 2, "several segments: {:?}", store.store().segments());
        let meta = Meta { last_log_id: None, last_membership: Default::default(), snapshot_id: "s".into() };
        let path = root.join("snapshot.bin");
        let identity = store.store().identity().clone();
        write(&path, &root.join("scratch"), &meta, Some(Source { identity: &identity, store: &store, view: &view }))
            .unwrap();
        let head = unpack(&path, &root.join("b"), |_| Ok(())).unwrap();
        assert_eq!((head.meta, head.identity.as_ref()), (meta.clone(), Some(&identity)));
        let copy = ElbStore::open(root.join("b"), Options::default(), Settings::in_region("us-east-1")).unwrap();
        assert_eq!((copy.read().seq(), copy.read().state().digest()), (40, view.state().digest()));
        let theirs: Vec<_> = copy.store().transactions(1..=40).map(|t| t.unwrap()).collect();
        let ours: Vec<_> = store.store().transactions(1..=40).map(|t| t.unwrap()).collect();
        assert_eq!(theirs, ours);
        assert_eq!(copy.store().segments().first().unwrap().first_seq, 1, "not a log that starts late");
        drop(copy);
        // Another store's identity is refused by the check it is given.
        let refused =
            unpack(&path, &root.join("c"), |_| Err(MachineError::WrongStore { ours: "x".into(), theirs: "y".into() }));
        assert!(matches!(refused, Err(MachineError::WrongStore { .. })));
        // A flipped byte anywhere, or a cut, is refused.
        let bytes = std::fs::read(&path).unwrap();
        let mut cases: Vec<Vec<u8>> = (0..24)
            .step_by(5)
            .chain((30..bytes.len()).step_by(bytes.len() / 23))
            .map(|at| {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x10;
                damaged
            })
            .collect();
        cases.push(bytes[..bytes.len() - 9].to_vec());
        cases.push(bytes[..bytes.len() / 2].to_vec());
        for (i, case) in cases.iter().enumerate() {
            let damaged = root.join("damaged.bin");
            std::fs::write(&damaged, case).unwrap();
            let into = root.join(format!("d{i}"));
            assert!(unpack(&damaged, &into, |_| Ok(())).is_err(), "case {i} is refused");
        }
        // A group without a store: a bundle of nothing.
        write(&path, &root.join("scratch"), &meta, None).unwrap();
        let empty = unpack(&path, &root.join("e"), |_| Ok(())).unwrap();
        assert!(empty.identity.is_none() && std::fs::read_dir(root.join("e")).unwrap().next().is_none());
        drop((store, view));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
