//! Seeding a store: a new directory holding another store's identity and,
//! optionally, one of its snapshots, so that it opens as a copy of that store
//! whose log starts after the snapshot (docs/FORMAT.md, "A log that starts
//! late"). A replica of a replicated store is made this way.

use std::path::Path;
use std::sync::Arc;

use super::error::{io_err, Error, Result};
use super::open::IDENTITY_FILE;
use crate::identity::Identity;
use crate::io::FileSystem;
use crate::snapshot::{snapshot_file_name, SnapshotError, SnapshotHeader};

/// Writes a store into `dir`, which must be missing or empty: `identity`'s
/// `IDENTITY` file and, when `snapshot` (the bytes of a snapshot file of that
/// store) is given, that snapshot under its own name and an empty first log
/// segment after it. Every file is fsynced before the directory is. The
/// snapshot's framing and checksums are checked first, and its store id must
/// be `identity`'s.
pub(crate) fn seed(fs: &Arc<dyn FileSystem>, dir: &Path, identity: &Identity, snapshot: Option<&[u8]>) -> Result<()> {
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
        // An empty first segment says the log continues after the snapshot.
        let mut log =
            crate::wal::LogWriter::open(fs.clone(), dir, identity.id, None, header.seq).map_err(Error::Wal)?;
        log.start_segment(header.seq + 1, header.time).map_err(Error::Wal)?;
    }
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
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
        let other = Identity { id: crate::StoreId(7), ..identity };
        assert!(matches!(
            seed(&fs, Path::new("/e"), &other, Some(&bytes)),
            Err(Error::Snapshot(SnapshotError::Foreign { .. }))
        ));
    }
}
