//! Restoring a point in history into a new store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::commit::check_meta;
use super::error::{io_err, Error, Result};
use super::history::Point;
use super::machine::StateMachine;
use super::options::{Create, OpenMode, Options};
use super::verify::{verify, VerifyReport};
use super::{Reporter, Store, TxnMeta, Work};
use crate::clock::Timestamp;
use crate::io::FileSystem;
use crate::snapshot::{SnapshotHeader, SnapshotInfo};

/// What [`Store::restore_to`] wrote.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestoreReport {
    /// The new store's directory.
    pub dir: PathBuf,
    /// The point restored: the last transaction included.
    pub seq: u64,
    /// Its commit time.
    pub time: Timestamp,
    /// The snapshot written at that point (none for the empty state).
    pub snapshot: Option<SnapshotInfo>,
    /// The verification of the new store.
    pub verified: VerifyReport,
    /// The provenance file written into the new store.
    pub provenance: PathBuf,
}

/// The file in a restored store that says where it came from, who made it and why.
pub const RESTORED_FROM_FILE: &str = "RESTORED_FROM";

/// Transactions copied between waits for durability.
pub(super) const IMPORT_BATCH: u64 = 4096;

impl<S: StateMachine + PartialEq> Store<S> {
    /// Writes a new store in `new_dir` holding the history up to `point` (the
    /// same transactions, sequence numbers and times) and a snapshot there,
    /// then verifies it and checks that its state equals `state_at(point)`.
    /// Refuses a directory that holds anything. `options` give the new store's
    /// identity (it gets a new id) and file system; `meta` says who restores and
    /// why, like any change, and is written with the source and point into the
    /// new store's `RESTORED_FROM` file. Reads this store only.
    pub fn restore_to(
        &self,
        point: Point,
        new_dir: impl AsRef<Path>,
        options: Options,
        meta: &TxnMeta,
    ) -> Result<RestoreReport> {
        let source = self.dir().display().to_string();
        self.restore_to_from(point, new_dir, options, meta, &source)
    }

    /// [`Store::restore_to`], with `source_dir` named in the new store's
    /// `RESTORED_FROM` file as where the history came from (`source_dir`)
    /// instead of this store's directory: a restore from an archive reads a
    /// staged copy and names the archive.
    pub fn restore_to_from(
        &self,
        point: Point,
        new_dir: impl AsRef<Path>,
        options: Options,
        meta: &TxnMeta,
        source_dir: &str,
    ) -> Result<RestoreReport> {
        check_meta(meta)?;
        let new_dir = new_dir.as_ref();
        let (seq, time) = self.resolve(point)?;
        let fs = options.fs.clone();
        if fs.exists(new_dir).map_err(io_err("stat", new_dir))?
            && !fs.list_dir(new_dir).map_err(io_err("list", new_dir))?.is_empty()
        {
            return Err(Error::DirectoryNotEmpty { path: new_dir.to_path_buf() });
        }
        let base = self.restore_base(point, seq)?;
        let expected = self.state_at(Point::Seq(seq))?;
        let target_options = options.clone().mode(OpenMode::ReadWrite).create(Create::New).snapshot_every_events(None);
        let mut target = Store::<S>::open(new_dir, target_options.clone())?;
        if !target.open_report().created {
            return Err(Error::DirectoryNotEmpty { path: new_dir.to_path_buf() });
        }
        if let Some(base) = base {
            // The new store starts from the state at `base`, as a snapshot of
            // its own, and its log from the transaction after it.
            let id = target.identity().id;
            target.close()?;
            let at = self.state_at(Point::Seq(base))?;
            let header = SnapshotHeader { store_id: id, seq: base, time: at.time(), schema: S::SCHEMA_VERSION.into() };
            crate::snapshot::write_snapshot(&fs, new_dir, header, at.state(), self.inner.options.snapshot_bytes_max)?;
            // An empty first segment says the log continues after `base`: a
            // snapshot with no log to reach it would be a log lost.
            let mut log = crate::wal::LogWriter::open(fs.clone(), new_dir, id, None, base).map_err(Error::Wal)?;
            log.start_segment(base + 1, at.time()).map_err(Error::Wal)?;
            drop(log);
            fs.sync_dir(new_dir).map_err(io_err("fsync directory", new_dir))?;
            target = Store::<S>::open(new_dir, target_options.create(Create::Never))?;
        }
        let mut cursor = self.log_cursor(base.map_or(1, |b| b + 1)..=seq);
        let limit = self.inner.record_bytes_max;
        let mut progress = Reporter::new(self.inner.options.progress.as_ref(), Work::Restore, seq);
        while let Some(item) = cursor.next_with(|path, offset, frame| {
            Ok((super::decode_transaction::<S>(path, offset, frame, limit)?, path.to_path_buf(), offset as u64))
        }) {
            let (txn, path, offset) = item?;
            target.inner.import(&txn, (&path, offset))?;
            progress.at(txn.seq);
            if txn.seq % IMPORT_BATCH == 0 || txn.seq == seq {
                target.inner.wait_acked(txn.seq)?;
            }
        }
        progress.finish();
        let snapshot = if seq > 0 { Some(target.snapshot()?) } else { None };
        if *target.read() != *expected {
            return Err(Error::SnapshotMismatch { path: new_dir.to_path_buf(), seq });
        }
        let provenance = new_dir.join(RESTORED_FROM_FILE);
        let source = self.identity();
        let text = format!(
            "source_store_id: {}\nsource_name: {}\nsource_environment: {}\nsource_dir: {}\npoint: {point}\nseq: {seq}\n\
             time: {time}\nrestored_at: {}\nactor: {}\nreason: {}\nticket: {}\napproved_by: {}\n",
            source.id,
            source.name,
            source.environment,
            source_dir,
            self.inner.clock.now(),
            meta.actor,
            meta.reason.replace('\n', " "),
            meta.ticket.as_deref().unwrap_or(""),
            meta.approved_by.as_deref().unwrap_or(""),
        );
        write_provenance(&fs, &provenance, &text)?;
        target.close()?;
        let verified = verify::<S>(new_dir, options.mode(OpenMode::ReadOnly))?;
        if let Some(problem) = verified.problems.into_iter().next() {
            return Err(problem);
        }
        let verified = VerifyReport { problems: Vec::new(), ..verified };
        Ok(RestoreReport { dir: new_dir.to_path_buf(), seq, time, snapshot, verified, provenance })
    }
}

impl<S: StateMachine> Store<S> {
    /// Where a restore to `seq` starts: `None` from the first transaction;
    /// when the log starts late (its history before trimmed, as an archive
    /// with a retention keeps it), the newest snapshot at or before `seq`
    /// that the log continues from.
    fn restore_base(&self, point: Point, seq: u64) -> Result<Option<u64>> {
        let first_logged = self.segments().first().map_or(1, |s| s.first_seq);
        if first_logged <= 1 {
            return Ok(None);
        }
        let usable: Vec<(u64, Timestamp)> =
            self.snapshots().iter().filter(|s| s.seq + 1 >= first_logged).map(|s| (s.seq, s.time)).collect();
        match usable.iter().filter(|(s, _)| *s <= seq).map(|(s, _)| *s).max() {
            Some(base) => Ok(Some(base)),
            None => {
                let view = self.read();
                let (first, last) = (usable.first().copied(), Some((view.seq(), view.time())));
                Err(Error::PointOutOfRange { point, first, last })
            }
        }
    }
}

/// Writes the provenance file at `path` in a new store's directory and makes
/// it durable (the file, then the directory entry).
pub(super) fn write_provenance(fs: &Arc<dyn FileSystem>, path: &Path, text: &str) -> Result<()> {
    let mut file = fs.create_new(path).map_err(io_err("create", path))?;
    file.write_all(text.as_bytes()).map_err(io_err("write", path))?;
    file.sync_data().map_err(io_err("fsync", path))?;
    drop(file);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::super::{Store, Transaction, TxnMeta};
    use super::Create;
    use crate::clock::Timestamp;
    use crate::io::SimFs;
    use crate::store::testing::Sum;
    use crate::store::{Error, Options};
    use crate::wal::WalError;

    /// A restore copies records one by one; a record that does not follow the
    /// last one copied is refused naming where it was read in the source.
    #[test]
    fn an_import_out_of_order_names_the_source_segment_and_offset() {
        let fs = SimFs::new();
        let options = Options::default().file_system(Arc::new(fs)).create(Create::IfMissing);
        let store = Store::<Sum>::open("/restored", options).unwrap();
        let source = Path::new("/source/wal-00000000000000000001.log");
        let txn = |seq, time| Transaction { seq, time: Timestamp(time), meta: TxnMeta::new("a", "b"), events: vec![1] };
        match store.inner.import(&txn(2, 10), (source, 4096)) {
            Err(Error::Wal(WalError::SequenceGap { path, offset, expected: 1, found: 2 })) => {
                assert_eq!((path.as_path(), offset), (source, 4096));
            }
            other => panic!("expected a sequence gap, got {other:?}"),
        }
        store.inner.import(&txn(1, 10), (source, 64)).unwrap();
        match store.inner.import(&txn(2, 10), (source, 200)) {
            Err(Error::Wal(WalError::TimeWentBackwards { path, offset, seq: 2, .. })) => {
                assert_eq!((path.as_path(), offset), (source, 200));
            }
            other => panic!("expected time going backwards, got {other:?}"),
        }
    }
}
