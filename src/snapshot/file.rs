//! Writing and loading snapshot files.

use std::cmp::Ordering;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{io_err, SnapshotError};
use super::format::{encode_trailer, parse_snapshot_file_name, snapshot_file_name, SnapshotHeader};
use crate::clock::Timestamp;
use crate::codec::{self, CodecError, OldBytes};
use crate::identity::StoreId;
use crate::io::{FileSystem, WritableFile};

/// A snapshot file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its path.
    pub path: PathBuf,
    /// The sequence number of the last transaction folded into it.
    pub seq: u64,
    /// That transaction's commit timestamp (zero for a snapshot at sequence 0).
    pub time: Timestamp,
    /// Its size in bytes.
    pub bytes: u64,
    /// The schema version its state was written with (0 when its header
    /// could not be read).
    pub schema: u32,
}

/// The snapshots in `dir` by sequence number, oldest first (unchecked).
pub(crate) fn list_snapshots(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let mut found: Vec<(u64, PathBuf)> = fs
        .list_dir(dir)
        .map_err(io_err("list", dir))?
        .iter()
        .filter_map(|name| parse_snapshot_file_name(name).map(|seq| (seq, dir.join(name))))
        .collect();
    found.sort();
    Ok(found)
}

const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Buffers the encoder's output, checksums it and writes it in large chunks.
struct CrcWriter<'a> {
    file: &'a mut dyn WritableFile,
    buffer: Vec<u8>,
    hasher: crc32fast::Hasher,
    bytes: u64,
    failure: Option<io::Error>,
}

impl CrcWriter<'_> {
    fn drain(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.hasher.update(&self.buffer);
        self.bytes += self.buffer.len() as u64;
        let result = self.file.write_all(&self.buffer);
        self.buffer.clear();
        result
    }
}

impl io::Write for CrcWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= WRITE_CHUNK_BYTES {
            if let Err(err) = self.drain() {
                // Keep the real error: the encoder only passes on its kind.
                let kind = err.kind();
                self.failure = Some(err);
                return Err(kind.into());
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `state` as the snapshot at `seq`: to a temporary file, fsync, rename
/// into place, fsync the directory. A crash at any step leaves either no new
/// snapshot or a whole one; a leftover temporary file is removed on open.
pub(crate) fn write_snapshot<T: Serialize>(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    header: SnapshotHeader,
    state: &T,
    payload_bytes_max: u64,
) -> Result<SnapshotInfo, SnapshotError> {
    let path = dir.join(snapshot_file_name(header.seq));
    let tmp = path.with_extension("snap.tmp");
    if fs.exists(&tmp).map_err(io_err("stat", &tmp))? {
        fs.remove_file(&tmp).map_err(io_err("remove", &tmp))?;
    }
    let mut file = fs.create_new(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(&header.encode()).map_err(io_err("write", &tmp))?;
    let mut writer = CrcWriter {
        file: file.as_mut(),
        buffer: Vec::with_capacity(WRITE_CHUNK_BYTES + 4096),
        hasher: crc32fast::Hasher::new(),
        bytes: 0,
        failure: None,
    };
    let encoded = codec::encode_to_writer(state, &mut writer, payload_bytes_max);
    if let Some(source) = writer.failure.take() {
        return Err(SnapshotError::Io { op: "write", path: tmp, source });
    }
    encoded.map_err(|source| SnapshotError::Unencodable { path: tmp.clone(), source })?;
    writer.drain().map_err(io_err("write", &tmp))?;
    let (payload_bytes, payload_crc) = (writer.bytes, writer.hasher.finalize());
    file.write_all(&encode_trailer(payload_bytes, payload_crc)).map_err(io_err("write", &tmp))?;
    file.sync_data().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs.rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    let bytes = payload_bytes + (super::SNAPSHOT_HEADER_BYTES + super::SNAPSHOT_TRAILER_BYTES) as u64;
    Ok(SnapshotInfo { path, seq: header.seq, time: header.time, bytes, schema: header.schema })
}

/// Reads a state of an older schema version, or declines with `Ok(None)`.
pub(crate) type Upcast<T> = fn(u8, &mut OldBytes<'_>) -> Result<Option<T>, CodecError>;

/// Loads and checks the snapshot at `path`: the whole file's checksums are
/// verified before a byte of the state is decoded.
///
/// `schema` is the version of `T` this build writes. A state of an older
/// version goes to `upcast` (the state machine's `upcast_state`); when that
/// declines it is refused as [`SnapshotError::OlderSchema`]. One of a newer
/// version is refused as [`SnapshotError::NewerSchema`].
pub(crate) fn load_snapshot<T: DeserializeOwned>(
    fs: &Arc<dyn FileSystem>,
    path: &Path,
    store_id: StoreId,
    payload_bytes_max: u64,
    versions: (u8, Upcast<T>),
) -> Result<(SnapshotInfo, T), SnapshotError> {
    load_snapshot_with(fs, path, store_id, payload_bytes_max, versions, codec::decode)
}

/// [`load_snapshot`], decoding a state of the current version with
/// `current` (the payload and the limit), which must refuse trailing bytes
/// as [`codec::decode`] does.
pub(crate) fn load_snapshot_with<T>(
    fs: &Arc<dyn FileSystem>,
    path: &Path,
    store_id: StoreId,
    payload_bytes_max: u64,
    (known, upcast): (u8, Upcast<T>),
    current: impl FnOnce(&[u8], u64) -> Result<T, CodecError>,
) -> Result<(SnapshotInfo, T), SnapshotError> {
    // The limit holds on load as on write: a file bigger than a snapshot may
    // be is passed over before it is mapped, checksummed or decoded.
    let file_bytes = fs.file_len(path).map_err(io_err("stat", path))?;
    let framing = (super::SNAPSHOT_HEADER_BYTES + super::SNAPSHOT_TRAILER_BYTES) as u64;
    if file_bytes.saturating_sub(framing) > payload_bytes_max {
        return Err(SnapshotError::TooLarge { path: path.to_path_buf(), file_bytes, limit: payload_bytes_max });
    }
    let bytes = fs.map_file(path).map_err(io_err("map", path))?;
    let (header, payload) = SnapshotHeader::check(&bytes)
        .map_err(|problem| SnapshotError::Damaged { path: path.to_path_buf(), problem })?;
    if header.store_id != store_id {
        return Err(SnapshotError::Foreign { path: path.to_path_buf(), expected: store_id, found: header.store_id });
    }
    let name_seq = path.file_name().and_then(|n| n.to_str()).and_then(parse_snapshot_file_name);
    if name_seq != Some(header.seq) {
        return Err(SnapshotError::NameMismatch {
            path: path.to_path_buf(),
            name_seq: name_seq.unwrap_or(0),
            header_seq: header.seq,
        });
    }
    let undecodable = |source| SnapshotError::Undecodable { path: path.to_path_buf(), source };
    let found = header.schema;
    let newer = || SnapshotError::NewerSchema { path: path.to_path_buf(), found, known };
    let state = match u8::try_from(found) {
        Ok(0) => return Err(undecodable(CodecError::unsupported_version(0))),
        Ok(version) => match version.cmp(&known) {
            Ordering::Equal => current(payload, payload_bytes_max).map_err(undecodable)?,
            Ordering::Less => {
                let mut old = OldBytes::new(payload, payload_bytes_max);
                match upcast(version, &mut old).map_err(undecodable)? {
                    Some(_) if old.remaining() > 0 => {
                        return Err(undecodable(CodecError::trailing_bytes(old.remaining())));
                    }
                    Some(state) => state,
                    None => return Err(SnapshotError::OlderSchema { path: path.to_path_buf(), found, known }),
                }
            }
            Ordering::Greater => return Err(newer()),
        },
        Err(_) => return Err(newer()),
    };
    let info = SnapshotInfo {
        path: path.to_path_buf(),
        seq: header.seq,
        time: header.time,
        bytes: bytes.len() as u64,
        schema: header.schema,
    };
    Ok((info, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::io::SimFs;

    /// The encoder's many small writes reach the file in chunks of about
    /// `WRITE_CHUNK_BYTES`: a 2.5 MiB state is a handful of writes, not one
    /// per value.
    #[test]
    fn a_snapshot_is_streamed_to_the_file_in_large_chunks() {
        let sim = SimFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
        let dir = Path::new("/store");
        fs.create_dir_all(dir).unwrap();
        let state: Vec<u32> = (0..(5 << 20) / 8).collect();
        let header = SnapshotHeader { store_id: StoreId(1), seq: 3, time: Timestamp(4), schema: 1 };
        let before = sim.mutating_calls();
        let info = write_snapshot(&fs, dir, header, &state, 64 << 20).unwrap();
        // create, header, 3 chunks (2.5 MiB in 1 MiB chunks), trailer, fsync, rename, directory fsync
        assert_eq!(sim.mutating_calls() - before, 9, "{} bytes", info.bytes);
        let (_, back) = load_snapshot::<Vec<u32>>(&fs, &info.path, StoreId(1), 64 << 20, (1, |_, _| Ok(None))).unwrap();
        assert_eq!(back, state);
    }

    /// The schema in the header picks the decoder: the current one decodes as
    /// is, an older one goes to the upcaster (which may decline, and must
    /// decode the whole state), a newer one and schema 0 (never written) are
    /// refused, each as its own error.
    #[test]
    fn the_header_s_schema_picks_decode_upcast_or_refusal() {
        fn upcast(version: u8, old: &mut OldBytes<'_>) -> Result<Option<Vec<u32>>, CodecError> {
            match version {
                // Half a decode: the count alone, the values left over.
                1 => Ok(Some(vec![0; old.decode::<u64>()? as usize])),
                2 => Ok(Some(old.decode::<Vec<u16>>()?.into_iter().map(u32::from).collect())),
                _ => Ok(None),
            }
        }
        let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new());
        let dir = Path::new("/store");
        fs.create_dir_all(dir).unwrap();
        let load = |schema: u32, seq: u64| {
            let header = SnapshotHeader { store_id: StoreId(1), seq, time: Timestamp(4), schema };
            let info = if schema == 4 {
                write_snapshot(&fs, dir, header, &vec![7u32, 8], 1 << 20)
            } else {
                write_snapshot(&fs, dir, header, &vec![7u16, 8], 1 << 20)
            };
            load_snapshot::<Vec<u32>>(&fs, &info.unwrap().path, StoreId(1), 1 << 20, (4, upcast))
        };
        assert_eq!(load(4, 1).unwrap().1, vec![7, 8]);
        assert_eq!(load(2, 2).unwrap().1, vec![7, 8], "upcast from schema 2");
        assert!(matches!(load(1, 3), Err(SnapshotError::Undecodable { .. })), "bytes left over");
        assert!(matches!(load(3, 4), Err(SnapshotError::OlderSchema { found: 3, known: 4, .. })));
        assert!(matches!(load(5, 5), Err(SnapshotError::NewerSchema { found: 5, known: 4, .. })));
        assert!(matches!(load(256, 6), Err(SnapshotError::NewerSchema { found: 256, known: 4, .. })));
        assert!(matches!(load(0, 7), Err(SnapshotError::Undecodable { .. })));
    }
}
