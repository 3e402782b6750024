//! Appending to the log: the active segment, rolling to a new one, fsync.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io_err, WalError};
use super::record::seal_frames;
use super::segment::{SegmentHeader, SegmentInfo};
use crate::clock::Timestamp;
use crate::identity::StoreId;
use crate::io::{FileSystem, WritableFile};

/// Owns the active segment. Only one thread (the commit-group leader) uses it
/// at a time.
#[derive(Debug)]
pub(crate) struct LogWriter {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    store_id: StoreId,
    active: Option<Active>,
    /// The last record written to the operating system.
    written_seq: u64,
    /// The last record known durable: every frame written carries it.
    durable_seq: u64,
}

#[derive(Debug)]
struct Active {
    path: PathBuf,
    file: Box<dyn WritableFile>,
    unsynced_bytes: u64,
}

impl LogWriter {
    /// A writer that appends to `last_segment`, if there is one; otherwise the
    /// first append must be preceded by [`LogWriter::start_segment`].
    /// `durable_seq` is the last record in the log, which the caller has made
    /// durable.
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        store_id: StoreId,
        last_segment: Option<&SegmentInfo>,
        durable_seq: u64,
    ) -> Result<LogWriter, WalError> {
        let active = match last_segment {
            Some(segment) => Some(Active {
                file: fs.open_append(&segment.path).map_err(io_err("open", &segment.path))?,
                path: segment.path.clone(),
                unsynced_bytes: 0,
            }),
            None => None,
        };
        Ok(LogWriter { fs, dir: dir.to_path_buf(), store_id, active, written_seq: durable_seq, durable_seq })
    }

    /// Seals the active segment (fsync) and starts a new one whose first record
    /// will be `first_seq`. The new segment is written under a temporary name,
    /// fsynced, renamed into place and the directory fsynced, so a segment
    /// file under its real name always has a whole header.
    pub(crate) fn start_segment(&mut self, first_seq: u64, time: Timestamp) -> Result<SegmentInfo, WalError> {
        self.sync()?;
        let info = SegmentInfo::new(&self.dir, first_seq);
        let tmp = info.path.with_extension("log.tmp");
        let header = SegmentHeader { store_id: self.store_id, first_seq, created: time };
        let mut file = self.fs.create_new(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(&header.encode()).map_err(io_err("write", &tmp))?;
        file.sync_data().map_err(io_err("fsync", &tmp))?;
        self.fs.rename(&tmp, &info.path).map_err(io_err("rename", &tmp))?;
        self.fs.sync_dir(&self.dir).map_err(io_err("fsync directory", &self.dir))?;
        self.active = Some(Active { path: info.path.clone(), file, unsynced_bytes: 0 });
        Ok(info)
    }

    /// Seals whole frames (see [`seal_frames`]) whose last record is
    /// `last_seq` and appends them to the active segment.
    pub(crate) fn append(&mut self, frames: &mut [u8], last_seq: u64) -> Result<(), WalError> {
        let active = self.active.as_mut().expect("a segment is started before the first append");
        seal_frames(frames, self.durable_seq);
        active.file.write_all(frames).map_err(io_err("write", &active.path))?;
        active.unsynced_bytes += frames.len() as u64;
        self.written_seq = last_seq;
        Ok(())
    }

    /// The last record known durable.
    pub(crate) fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> Result<(), WalError> {
        if let Some(active) = self.active.as_mut() {
            if active.unsynced_bytes > 0 {
                active.file.sync_data().map_err(io_err("fsync", &active.path))?;
                active.unsynced_bytes = 0;
            }
        }
        self.durable_seq = self.written_seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SimFs;

    /// An fsync only when something was written since the last one: an idle
    /// interval tick, a snapshot or a close cost no call.
    #[test]
    fn a_sync_with_nothing_written_since_the_last_makes_no_call() {
        let sim = SimFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
        let dir = Path::new("/store");
        fs.create_dir_all(dir).unwrap();
        let mut writer = LogWriter::open(fs.clone(), dir, StoreId(1), None, 0).unwrap();
        writer.start_segment(1, Timestamp(1)).unwrap();
        let calls = sim.mutating_calls();
        writer.sync().unwrap();
        assert_eq!(sim.mutating_calls(), calls, "a new segment is already durable");
        let mut frame = Vec::new();
        crate::wal::append_frame(
            &mut frame,
            1,
            Timestamp(2),
            1024,
            |o| {
                o.push(7);
                Ok::<_, ()>(())
            },
            |_| (),
        )
        .unwrap();
        writer.append(&mut frame, 1).unwrap();
        writer.sync().unwrap();
        assert_eq!(sim.mutating_calls(), calls + 2, "one write, one fsync");
        writer.sync().unwrap();
        assert_eq!(sim.mutating_calls(), calls + 2, "nothing new: no fsync");
    }
}
