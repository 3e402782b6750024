//! Seeding a store: a new directory holding another store's identity and,
//! optionally, one of its snapshots, so that it opens as a copy of that store
//! whose log starts after the snapshot (docs/FORMAT.md, "A log that starts
//! late"). A replica of a replicated store is made this way.

use std::path::Path;
use std::sync::Arc;

use super::error::{io_err, Error, Result};
use super::open::IDENTITY_FILE;
use super::{StateMachine, Store};
use crate::identity::Identity;
use crate::io::FileSystem;
use crate::snapshot::{snapshot_file_name, SnapshotError, SnapshotHeader};
use crate::wal::{decode_frame, SegmentHeader, SEGMENT_HEADER_BYTES};

/// Writes a store into `dir`, which must be missing or empty: `identity`'s
/// `IDENTITY` file and, when `snapshot` (the bytes of a snapshot file of that
/// store) is given, that snapshot under its own name and an empty first log
/// segment after it. Every file is fsynced before the directory is. The
/// snapshot's framing and checksums are checked first, and its store id must
/// be `identity`'s.
pub(crate) fn seed(fs: &Arc<dyn FileSystem>, dir: &Path, identity: &Identity, snapshot: Option<&[u8]>) -> Result<()> {
    Seeding::start(fs, dir, identity, snapshot)?.finish()
}

/// A store being seeded: its identity and snapshot are written, and the
/// segments of the log it copies follow one by one (`segment`). With no
/// segment its log starts after the snapshot (`seed`); with them it is a
/// copy of the source store through the snapshot, history and all.
pub(crate) struct Seeding {
    fs: Arc<dyn FileSystem>,
    dir: std::path::PathBuf,
    identity: Identity,
    header: Option<SnapshotHeader>,
    /// The last record of the segments written so far, once one is.
    last_seq: Option<u64>,
    /// The last segment written and its length.
    last_segment: Option<(std::path::PathBuf, u64)>,
}

impl Seeding {
    /// Checks `snapshot` (see `seed`) and writes the identity and it.
    pub(crate) fn start(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        identity: &Identity,
        snapshot: Option<&[u8]>,
    ) -> Result<Seeding> {
        if fs.exists(dir).map_err(io_err("stat", dir))? && !fs.list_dir(dir).map_err(io_err("list", dir))?.is_empty() {
            return Err(Error::DirectoryNotEmpty { path: dir.to_path_buf() });
        }
        fs.create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let header = match snapshot {
            Some(bytes) => {
                let path = dir.join("incoming snapshot");
                let (header, _) = SnapshotHeader::check(bytes)
                    .map_err(|problem| Error::Snapshot(SnapshotError::Damaged { path: path.clone(), problem }))?;
                if header.store_id != identity.id {
                    let (expected, found) = (identity.id, header.store_id);
                    return Err(Error::Snapshot(SnapshotError::Foreign { path, expected, found }));
                }
                Some(header)
            }
            None => None,
        };
        write_durably(fs, &dir.join(IDENTITY_FILE), &identity.encode())?;
        if let (Some(header), Some(bytes)) = (header, snapshot) {
            write_durably(fs, &dir.join(snapshot_file_name(header.seq)), bytes)?;
        }
        let seeding = Seeding {
            fs: fs.clone(),
            dir: dir.to_path_buf(),
            identity: identity.clone(),
            header,
            last_seq: None,
            last_segment: None,
        };
        Ok(seeding)
    }

    /// Writes the next segment of the copied log, `bytes` being the whole
    /// segment file from its header to its last record: the header must be
    /// this store's and begin at `first_seq`, the log's first record (1) or
    /// right after the segment before; every record is decoded and its
    /// checksum checked, and none may be past the snapshot (`start`'s, which
    /// a copied log needs).
    pub(crate) fn segment(&mut self, first_seq: u64, bytes: &[u8]) -> Result<()> {
        use crate::wal::WalError;
        let path = self.dir.join(crate::wal::segment_file_name(first_seq));
        let header =
            SegmentHeader::decode(bytes).map_err(|problem| WalError::BadHeader { path: path.clone(), problem })?;
        if header.store_id != self.identity.id {
            let (expected, found) = (self.identity.id, header.store_id);
            return Err(Error::Wal(WalError::ForeignSegment { path, expected, found }));
        }
        if header.first_seq != first_seq {
            return Err(Error::Wal(WalError::NameMismatch { path, name_seq: first_seq, header_seq: header.first_seq }));
        }
        let Some(snapshot) = self.header else {
            let problem = "a log without the snapshot it goes with".to_owned();
            return Err(Error::CopyMismatch { path, problem });
        };
        let expected = self.last_seq.map_or(1, |last| last.saturating_add(1));
        if first_seq != expected {
            let offset = SEGMENT_HEADER_BYTES as u64;
            return Err(Error::Wal(WalError::SequenceGap { path, offset, expected, found: first_seq }));
        }
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut expected = first_seq;
        while offset < bytes.len() {
            let frame = decode_frame(&bytes[offset..], u32::MAX)
                .map_err(|problem| WalError::bad_frame(&path, offset, problem))?;
            if frame.seq != expected {
                let (offset, found) = (offset as u64, frame.seq);
                return Err(Error::Wal(WalError::SequenceGap { path, offset, expected, found }));
            }
            if frame.seq > snapshot.seq {
                let problem =
                    format!("record {} at byte offset {offset} is past the snapshot's {}", frame.seq, snapshot.seq);
                return Err(Error::CopyMismatch { path, problem });
            }
            offset += frame.encoded_bytes();
            expected = expected.saturating_add(1);
        }
        write_durably(&self.fs, &path, bytes)?;
        self.last_seq = Some(expected - 1);
        self.last_segment = Some((path, bytes.len() as u64));
        Ok(())
    }

    /// Finishes the store: with no segment copied, an empty first segment
    /// after the snapshot; with them, the copied log must reach the
    /// snapshot. Then the directory is fsynced.
    pub(crate) fn finish(self) -> Result<()> {
        let Seeding { fs, dir, identity, header, last_seq, last_segment } = self;
        match header {
            Some(header) if last_seq.is_none() => {
                // An empty first segment says the log continues after the snapshot.
                let mut log =
                    crate::wal::LogWriter::open(fs.clone(), &dir, identity.id, None, header.seq).map_err(Error::Wal)?;
                log.start_segment(header.seq + 1, header.time).map_err(Error::Wal)?;
            }
            Some(header) if last_seq != Some(header.seq) => {
                // The log must hold what the snapshot does.
                let (path, offset) = last_segment.unwrap_or_default();
                let problem = format!(
                    "the log ends at byte offset {offset} after record {}, before the snapshot's {}",
                    last_seq.unwrap_or(0),
                    header.seq
                );
                return Err(Error::CopyMismatch { path, problem });
            }
            _ => {}
        }
        fs.sync_dir(&dir).map_err(io_err("fsync directory", &dir))
    }
}

/// Hands `each` the segments of `store`'s log through record `seq`, in
/// order: each one's first sequence number and its bytes from the header
/// through its last record at or before `seq` (one segment in memory at a
/// time). What `Seeding::segment` takes to copy the store with its history.
pub(crate) fn copy_log<S: StateMachine, E: From<Error>>(
    store: &Store<S>,
    seq: u64,
    mut each: impl FnMut(u64, &[u8]) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let fs = &store.inner.fs;
    let segments: Vec<_> = store.segments().into_iter().filter(|s| s.first_seq <= seq).collect();
    let count = segments.len();
    for (i, segment) in segments.into_iter().enumerate() {
        let bytes = fs.read_file(&segment.path).map_err(io_err("read", &segment.path))?;
        if i + 1 < count {
            each(segment.first_seq, &bytes)?;
            continue;
        }
        // The segment holding `seq`: cut after it.
        let mut offset = SEGMENT_HEADER_BYTES;
        loop {
            let frame = decode_frame(&bytes[offset.min(bytes.len())..], u32::MAX).map_err(|_| {
                let (path, offset) = (segment.path.clone(), offset as u64);
                Error::Wal(crate::wal::WalError::LogEndsEarly { path, offset, expected: seq })
            })?;
            offset += frame.encoded_bytes();
            if frame.seq >= seq {
                break;
            }
        }
        each(segment.first_seq, &bytes[..offset])?;
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` (replacing one a crash
/// left), fsyncs it and renames it to `path`; the caller fsyncs the
/// directory.
pub(crate) fn write_durably(fs: &Arc<dyn FileSystem>, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("seed.tmp");
    if fs.exists(&tmp).map_err(io_err("stat", &tmp))? {
        fs.remove_file(&tmp).map_err(io_err("remove", &tmp))?;
    }
    let mut file = fs.create_new(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(bytes).map_err(io_err("write", &tmp))?;
    file.sync_data().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs.rename(&tmp, path).map_err(io_err("rename", &tmp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SimFs;
    use crate::wal::WalError;
    use crate::{Create, Options, Store, TxnMeta};

    #[derive(Clone, Default, PartialEq, Debug, serde::Serialize, serde::Deserialize)]
    struct Sum(u64);

    impl crate::StateMachine for Sum {
        type Event = u64;
        fn apply(&mut self, n: &u64) {
            self.0 += n;
        }
    }

    #[test]
    fn a_seeded_store_opens_as_a_copy_from_its_snapshot_and_takes_commits_after_it() {
        let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new());
        let options = Options::default().file_system(fs.clone());
        let source: Store<Sum> = Store::open("/a", options.clone().create(Create::IfMissing)).unwrap();
        for n in 1..=5 {
            source.commit(TxnMeta::new("svc:test", "add"), vec![n]).unwrap();
        }
        let snapshot = source.snapshot().unwrap();
        let bytes = fs.read_file(&snapshot.path).unwrap();
        let identity = source.identity().clone();
        seed(&fs, Path::new("/b"), &identity, Some(&bytes)).unwrap();
        let copy: Store<Sum> = Store::open("/b", options.clone()).unwrap();
        assert_eq!((copy.read().seq(), copy.read().0), (5, 15));
        assert_eq!(copy.identity(), &identity);
        assert_eq!(copy.commit(TxnMeta::new("svc:test", "add"), vec![6]).unwrap().seq, 6);
        // No snapshot: an empty store with the identity.
        seed(&fs, Path::new("/c"), &identity, None).unwrap();
        let empty: Store<Sum> = Store::open("/c", options.clone()).unwrap();
        assert_eq!((empty.read().seq(), empty.identity().id), (0, identity.id));
        // A directory in use, a damaged snapshot and another store's are refused.
        assert!(matches!(seed(&fs, Path::new("/c"), &identity, None), Err(Error::DirectoryNotEmpty { .. })));
        let mut damaged = bytes.clone();
        let last = damaged.len() - 30;
        damaged[last] ^= 1;
        assert!(matches!(
            seed(&fs, Path::new("/d"), &identity, Some(&damaged)),
            Err(Error::Snapshot(SnapshotError::Damaged { .. }))
        ));
        // A copy with the log: the segments through the snapshot, from the first.
        let small = options.clone().segment_bytes(4 << 10).create(Create::IfMissing);
        let source: Store<Sum> = Store::open("/f", small).unwrap();
        for n in 1..=300 {
            source.commit(TxnMeta::new("svc:test", "add"), vec![n]).unwrap();
        }
        let at = source.snapshot().unwrap();
        source.commit(TxnMeta::new("svc:test", "add"), vec![301]).unwrap();
        let snapshot_bytes = fs.read_file(&at.path).unwrap();
        let mut segments = Vec::new();
        copy_log(&source, at.seq, |first, bytes| -> Result<()> {
            segments.push((first, bytes.to_vec()));
            Ok(())
        })
        .unwrap();
        assert!(segments.len() > 2, "{} segments", segments.len());
        let copy_with = |dir: &str, snapshot: Option<&[u8]>, segments: &[(u64, Vec<u8>)]| -> Result<()> {
            let mut seeding = Seeding::start(&fs, Path::new(dir), source.identity(), snapshot)?;
            for (first, bytes) in segments {
                seeding.segment(*first, bytes)?;
            }
            seeding.finish()
        };
        copy_with("/g", Some(&snapshot_bytes), &segments).unwrap();
        let copy: Store<Sum> = Store::open("/g", options.clone()).unwrap();
        assert_eq!((copy.read().seq(), copy.read().0), (300, 300 * 301 / 2));
        assert_eq!(copy.transactions(1..=300).count(), 300, "the whole history");
        // Without the first segment, past the snapshot, short of it, or without a snapshot: refused.
        assert!(matches!(
            copy_with("/h", Some(&snapshot_bytes), &segments[1..]),
            Err(Error::Wal(WalError::SequenceGap { .. }))
        ));
        let mut past = Vec::new();
        copy_log(&source, 301, |first, bytes| -> Result<()> {
            past.push((first, bytes.to_vec()));
            Ok(())
        })
        .unwrap();
        assert!(matches!(copy_with("/i", Some(&snapshot_bytes), &past), Err(Error::CopyMismatch { .. })));
        let short = &segments[..segments.len() - 1];
        assert!(matches!(copy_with("/j", Some(&snapshot_bytes), short), Err(Error::CopyMismatch { .. })));
        assert!(matches!(copy_with("/k", None, &segments), Err(Error::CopyMismatch { .. })));
        let other = Identity { id: crate::StoreId(7), ..identity };
        assert!(matches!(
            seed(&fs, Path::new("/e"), &other, Some(&bytes)),
            Err(Error::Snapshot(SnapshotError::Foreign { .. }))
        ));
    }
}
