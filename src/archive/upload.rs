//! The archiver: a thread beside the store that ships what the store has
//! made durable.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::manifest::{ArchivedObject, Manifest, ObjectKind};
use super::{sha256_hex, ArchiveError, Target};
use crate::clock::Timestamp;
use crate::store::{Probe, StateMachine, Store, IDENTITY_FILE, RESTORED_FROM_FILE};
use crate::wal::{decode_frame, list_segments, SEGMENT_HEADER_BYTES};

/// How much history the archive keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retention {
    /// Everything, forever (the default).
    #[default]
    KeepAll,
    /// At least this much history back from the newest archived transaction:
    /// the newest snapshot committed at or before the cut-off and everything
    /// after it are kept, so a restore to any point since the cut-off starts
    /// from that snapshot; sealed segments wholly before it, and older
    /// snapshots, are dropped from the manifest and then deleted.
    KeepFor(Duration),
}

/// How an [`Archiver`] works.
#[derive(Clone, Debug)]
pub struct ArchiverOptions {
    /// How often the active segment's new records are shipped (default 1 s):
    /// the recovery point after losing the disk.
    pub interval: Duration,
    /// The longest wait between attempts after failures (default 30 s);
    /// waits double from `interval` up to it.
    pub backoff_max: Duration,
    /// What the archive keeps (default: everything).
    pub retention: Retention,
}

impl Default for ArchiverOptions {
    fn default() -> ArchiverOptions {
        ArchiverOptions {
            interval: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            retention: Retention::KeepAll,
        }
    }
}

impl ArchiverOptions {
    /// With another interval.
    pub fn interval(mut self, interval: Duration) -> ArchiverOptions {
        self.interval = interval;
        self
    }

    /// With a retention.
    pub fn retention(mut self, retention: Retention) -> ArchiverOptions {
        self.retention = retention;
        self
    }
}

/// Where an archiver stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiverStatus {
    /// The last transaction archived with nothing missing before it.
    pub archived_seq: u64,
    /// Its commit time.
    pub archived_time: Timestamp,
    /// The last transaction the store acknowledged, when last looked at.
    pub acked_seq: u64,
    /// Its commit time.
    pub acked_time: Timestamp,
    /// Objects the archive lists.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Passes completed (with or without failures).
    pub passes: u64,
    /// Objects uploaded by this archiver.
    pub uploads: u64,
    /// Passes that failed.
    pub failures: u64,
    /// Failures since the last pass that succeeded.
    pub consecutive_failures: u32,
    /// The last failure, in words.
    pub last_error: Option<String>,
}

impl ArchiverStatus {
    /// Acknowledged transactions not archived yet.
    pub fn lag_transactions(&self) -> u64 {
        self.acked_seq.saturating_sub(self.archived_seq)
    }

    /// How far the archive is behind the store, in commit time: zero when
    /// it holds the last acknowledged transaction.
    pub fn lag(&self) -> Duration {
        if self.lag_transactions() == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.acked_time.as_nanos().saturating_sub(self.archived_time.as_nanos()))
    }
}

struct Shared {
    state: Mutex<Control>,
    wake: Condvar,
}

#[derive(Default)]
struct Control {
    status: ArchiverStatus,
    /// Passes asked for and not yet started.
    requested: u64,
    /// Passes started.
    started: u64,
    /// The worker has returned.
    exited: bool,
    /// The outcome of the last pass.
    last: Option<Result<(), String>>,
    stop: bool,
}

/// Ships a store's log and snapshots to an archive; see the module's docs.
pub struct Archiver {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
    url: String,
}

impl Archiver {
    /// Starts archiving `store` into `target`. Refuses an archive of another
    /// store ([`ArchiveError::Foreign`]) and a store opened read-only
    /// ([`ArchiveError::ReadOnlyStore`]: only its writer knows what is
    /// durable); an archive it cannot reach now is retried in the
    /// background. One archiver per archive: two would overwrite each
    /// other's manifest.
    pub fn start<S: StateMachine>(
        store: &Store<S>,
        target: Target,
        options: ArchiverOptions,
    ) -> Result<Archiver, ArchiveError> {
        let probe = store.probe().ok_or_else(|| ArchiveError::ReadOnlyStore { dir: store.dir().to_path_buf() })?;
        let manifest = match owned_manifest(&target, &probe) {
            Ok(manifest) => Some(manifest),
            Err(err @ (ArchiveError::Foreign { .. } | ArchiveError::Manifest { .. })) => return Err(err),
            // Unreachable now: the worker tries again.
            Err(_) => None,
        };
        let shared = Arc::new(Shared { state: Mutex::new(Control::default()), wake: Condvar::new() });
        let mut worker = Worker {
            probe,
            target,
            options,
            manifest,
            superseded: Vec::new(),
            deleting: Vec::new(),
            uploads: 0,
            dirty: false,
        };
        let (thread_shared, url) = (shared.clone(), worker.target.url().to_owned());
        let handle = std::thread::Builder::new()
            .name("elbstore-archiver".into())
            .spawn(move || {
                // However the worker ends, a waiting `flush` hears of it.
                let _exit = Exit(&thread_shared);
                worker.run(&thread_shared)
            })
            .map_err(|source| ArchiveError::Local {
                op: "start the archiver thread",
                path: Default::default(),
                source,
            })?;
        Ok(Archiver { shared, handle: Some(handle), url })
    }

    /// Where it stands.
    pub fn status(&self) -> ArchiverStatus {
        self.shared.state.lock().status.clone()
    }

    /// Runs a pass now and waits for it: on return, everything the store
    /// had made durable when it was called is archived, or the error says
    /// why not.
    pub fn flush(&self) -> Result<ArchiverStatus, ArchiveError> {
        let mut control = self.shared.state.lock();
        // A pass already under way may have looked before this call.
        let wanted = control.started + 1;
        control.requested += 1;
        self.shared.wake.notify_all();
        while control.status.passes < wanted && !control.exited {
            self.shared.wake.wait(&mut control);
        }
        if control.status.passes < wanted {
            let reason = "the archiver stopped before the pass".to_owned();
            return Err(ArchiveError::PassFailed { url: self.url.clone(), reason });
        }
        match &control.last {
            Some(Err(reason)) => Err(ArchiveError::PassFailed { url: self.url.clone(), reason: reason.clone() }),
            _ => Ok(control.status.clone()),
        }
    }

    /// A last pass, then stops; returns where it stood.
    pub fn stop(mut self) -> ArchiverStatus {
        self.finish()
    }

    fn finish(&mut self) -> ArchiverStatus {
        {
            let mut control = self.shared.state.lock();
            control.stop = true;
            self.shared.wake.notify_all();
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.status()
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.finish();
        }
    }
}

struct Exit<'a>(&'a Shared);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        self.0.state.lock().exited = true;
        self.0.wake.notify_all();
    }
}

/// The archive's manifest, or a new one for the store; an archive of
/// another store is [`ArchiveError::Foreign`].
fn owned_manifest(target: &Target, probe: &Probe) -> Result<Manifest, ArchiveError> {
    let identity = &probe.identity;
    let expected = identity.id.to_string();
    match target.manifest()? {
        Some(manifest) if manifest.store_id != expected => {
            Err(ArchiveError::Foreign { url: target.url().to_owned(), archive: manifest.store_id, expected })
        }
        Some(manifest) => Ok(manifest),
        None => Ok(Manifest::new(expected, identity.name.clone(), identity.environment.clone())),
    }
}

struct Worker {
    probe: Probe,
    target: Target,
    options: ArchiverOptions,
    /// `None` until the archive's manifest has been read.
    manifest: Option<Manifest>,
    /// Objects the manifest no longer lists, to delete after the next pass:
    /// a reader that fetched the manifest before may still want them.
    superseded: Vec<String>,
    /// Objects dropped a pass ago, deleted at the end of this one.
    deleting: Vec<String>,
    uploads: u64,
    /// The manifest changed since it was last written.
    dirty: bool,
}

impl Worker {
    fn run(&mut self, shared: &Shared) {
        let mut wait = self.options.interval;
        loop {
            let stopping = {
                let mut control = shared.state.lock();
                match Instant::now().checked_add(wait) {
                    Some(deadline) => {
                        while control.requested == 0 && !control.stop {
                            if shared.wake.wait_until(&mut control, deadline).timed_out() {
                                break;
                            }
                        }
                    }
                    // An interval too long to count: wait to be asked.
                    None => {
                        while control.requested == 0 && !control.stop {
                            shared.wake.wait(&mut control);
                        }
                    }
                }
                control.requested = 0;
                control.started += 1;
                control.stop
            };
            let outcome = self.pass(stopping);
            let mut control = shared.state.lock();
            control.status.passes += 1;
            control.status.uploads = self.uploads;
            let marks = self.probe.marks();
            control.status.acked_seq = marks.acked;
            control.status.acked_time = marks.acked_time;
            if let Some(manifest) = &self.manifest {
                control.status.archived_seq = manifest.archived_seq;
                control.status.archived_time = Timestamp(manifest.archived_time_ns);
                control.status.objects = manifest.objects.len();
                control.status.bytes = manifest.bytes();
            }
            match &outcome {
                Ok(()) => {
                    control.status.consecutive_failures = 0;
                    wait = self.options.interval;
                }
                Err(err) => {
                    control.status.failures += 1;
                    control.status.consecutive_failures += 1;
                    control.status.last_error = Some(err.to_string());
                    wait = wait.saturating_mul(2).min(self.options.backoff_max.max(self.options.interval));
                }
            }
            control.last = Some(outcome.map_err(|e| e.to_string()));
            shared.wake.notify_all();
            if stopping {
                return;
            }
        }
    }

    /// Ships what is durable and not archived yet, then writes the manifest.
    /// The last pass (`last`) deletes every dropped object at once.
    fn pass(&mut self, last: bool) -> Result<(), ArchiveError> {
        // After a close, the mark the close left.
        let durable = self.probe.marks().durable;
        let mut manifest = match self.manifest.take() {
            Some(manifest) => manifest,
            None => owned_manifest(&self.target, &self.probe)?,
        };
        let shipped = self.ship(&mut manifest, durable);
        if shipped.is_ok() {
            self.retain(&mut manifest);
        }
        // What was uploaded before a failure is listed all the same.
        let written = self.write_manifest(&mut manifest);
        self.manifest = Some(manifest);
        shipped?;
        written?;
        self.delete_dropped()?;
        self.deleting = std::mem::take(&mut self.superseded);
        if last {
            self.delete_dropped()?;
        }
        Ok(())
    }

    /// Deletes the objects dropped a pass ago; one that fails stays listed
    /// for the next pass.
    fn delete_dropped(&mut self) -> Result<(), ArchiveError> {
        while let Some(key) = self.deleting.last() {
            self.target.delete(key)?;
            self.deleting.pop();
        }
        Ok(())
    }

    /// Uploads `bytes` as `key` and lists it.
    fn upload(
        &mut self,
        manifest: &mut Manifest,
        mut object: ArchivedObject,
        bytes: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        object.bytes = bytes.len() as u64;
        object.sha256 = sha256_hex(&bytes);
        self.target.put(&object.key, bytes)?;
        self.uploads += 1;
        self.dirty = true;
        manifest.objects.retain(|o| o.key != object.key);
        manifest.objects.push(object);
        Ok(())
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, ArchiveError> {
        self.probe.fs.read_file(path).map_err(|source| ArchiveError::Local {
            op: "read",
            path: path.to_path_buf(),
            source,
        })
    }

    fn ship(&mut self, manifest: &mut Manifest, durable: u64) -> Result<(), ArchiveError> {
        let dir = self.probe.dir.clone();
        for (name, kind) in [(IDENTITY_FILE, ObjectKind::Identity), (RESTORED_FROM_FILE, ObjectKind::RestoredFrom)] {
            let path = dir.join(name);
            let exists = self.probe.fs.exists(&path).map_err(|source| ArchiveError::Local {
                op: "stat",
                path: path.clone(),
                source,
            })?;
            if manifest.object(name).is_none() && exists {
                let bytes = self.read(&path)?;
                self.upload(manifest, ArchivedObject::new(name.to_owned(), kind), bytes)?;
            }
        }
        let segments = list_segments(self.probe.fs.as_ref(), &dir).map_err(|source| ArchiveError::Local {
            op: "list",
            path: dir.clone(),
            source,
        })?;
        for (i, segment) in segments.iter().enumerate() {
            let next = segments.get(i + 1);
            let sealed = next.is_some();
            let (end, whole) = manifest.segment_end(segment.first_seq);
            // Archived whole, or dropped by the retention.
            let dropped = next.is_some_and(|next| next.first_seq - 1 <= manifest.kept_from_snapshot);
            if whole || dropped {
                continue;
            }
            if sealed {
                // Sealed segments were synced before the next one began.
                let bytes = self.read(&segment.path)?;
                let records = records(&bytes, SEGMENT_HEADER_BYTES, u64::MAX);
                let object = log_object(ObjectKind::Segment, segment.first_seq, 0, &records);
                self.upload(manifest, object, bytes)?;
                let parts: Vec<String> = manifest
                    .objects
                    .iter()
                    .filter(|o| o.kind == ObjectKind::Part && o.segment == segment.first_seq)
                    .map(|o| o.key.clone())
                    .collect();
                manifest.objects.retain(|o| !(o.kind == ObjectKind::Part && o.segment == segment.first_seq));
                self.superseded.extend(parts);
                continue;
            }
            // The active segment: its whole durable records after `end`.
            let length = self.probe.fs.file_len(&segment.path).map_err(|source| ArchiveError::Local {
                op: "stat",
                path: segment.path.clone(),
                source,
            })?;
            // What the archive holds of this segment ends with this seq.
            let archived_last = manifest
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::Part && o.segment == segment.first_seq)
                .map(|o| o.last_seq)
                .max();
            if length < end {
                let expected = archived_last.map_or(segment.first_seq, |l| l + 1);
                return Err(ArchiveError::Diverged { path: segment.path.clone(), offset: end, expected, found: 0 });
            }
            if length == end {
                continue;
            }
            let bytes = self
                .probe
                .fs
                .read_range(&segment.path, end, (length - end) as usize)
                .map_err(|source| ArchiveError::Local { op: "read", path: segment.path.clone(), source })?;
            let start = if end == 0 { SEGMENT_HEADER_BYTES } else { 0 };
            let records = records(&bytes, start, durable);
            if let Some(last) = archived_last {
                if records.first_seq != 0 && records.first_seq != last + 1 {
                    let (path, expected, found) = (segment.path.clone(), last + 1, records.first_seq);
                    return Err(ArchiveError::Diverged { path, offset: end, expected, found });
                }
            }
            if records.first_seq == 0 {
                continue;
            }
            let object = log_object(ObjectKind::Part, segment.first_seq, end, &records);
            self.upload(manifest, object, bytes[..records.end].to_vec())?;
        }
        let snapshots = crate::snapshot::list_snapshots(&self.probe.fs, &dir).map_err(|e| ArchiveError::Local {
            op: "list snapshots in",
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        for (seq, path) in snapshots {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let key = format!("snapshots/{name}");
            if seq > durable || seq < manifest.kept_from_snapshot || manifest.object(&key).is_some() {
                continue;
            }
            let bytes = self.read(&path)?;
            let object =
                ArchivedObject { first_seq: seq, last_seq: seq, ..ArchivedObject::new(key, ObjectKind::Snapshot) };
            self.upload(manifest, object, bytes)?;
        }
        Ok(())
    }

    /// Drops from the manifest what the retention no longer keeps: sealed
    /// segments wholly at or before the newest snapshot committed at or
    /// before the cut-off, and older snapshots. A snapshot's commit time is
    /// that of the log object holding its seq; one whose records are gone
    /// already is older than every kept one.
    fn retain(&mut self, manifest: &mut Manifest) {
        let Retention::KeepFor(keep) = self.options.retention else { return };
        let (_, last_time) = manifest.contiguous_end();
        let cutoff = last_time.saturating_sub(u64::try_from(keep.as_nanos()).unwrap_or(u64::MAX));
        let log: Vec<(u64, u64, u64)> = manifest
            .log_objects()
            .iter()
            .filter(|o| o.first_seq > 0)
            .map(|o| (o.first_seq, o.last_seq, o.time_ns))
            .collect();
        // The snapshot at `seq` was committed at or before the cut-off if the
        // log object holding `seq` ends at or before it (its last record is
        // at least as late as the snapshot's).
        let committed_by_cutoff =
            |seq: u64| log.iter().any(|&(first, last, time)| first <= seq && seq <= last && time <= cutoff);
        let Some(base) = manifest
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Snapshot && committed_by_cutoff(o.last_seq))
            .map(|o| o.last_seq)
            .max()
        else {
            return;
        };
        let removed: Vec<String> = manifest
            .objects
            .iter()
            .filter(|o| {
                // Whole segments only: a segment's parts go together when it is sealed.
                (o.kind == ObjectKind::Segment && o.last_seq != 0 && o.last_seq <= base)
                    || (o.kind == ObjectKind::Snapshot && o.last_seq < base)
            })
            .map(|o| o.key.clone())
            .collect();
        if removed.is_empty() {
            return;
        }
        manifest.objects.retain(|o| !removed.contains(&o.key));
        manifest.kept_from_snapshot = base;
        self.superseded.extend(removed);
        self.dirty = true;
    }

    fn write_manifest(&mut self, manifest: &mut Manifest) -> Result<(), ArchiveError> {
        let (seq, time) = manifest.contiguous_end();
        let seq = seq.max(manifest.archived_seq);
        if !self.dirty && seq == manifest.archived_seq && manifest.generation > 0 {
            return Ok(());
        }
        if seq > manifest.archived_seq {
            manifest.archived_seq = seq;
            manifest.archived_time_ns = time;
        }
        manifest.generation += 1;
        self.target.put_manifest(manifest)?;
        self.dirty = false;
        Ok(())
    }
}

/// The whole records in `bytes[start..]` up to `durable`: where they end in
/// `bytes`, the first and last seq (0 if none) and the last one's time.
struct Records {
    end: usize,
    first_seq: u64,
    last_seq: u64,
    time_ns: u64,
}

fn records(bytes: &[u8], start: usize, durable: u64) -> Records {
    let mut found = Records { end: start.min(bytes.len()), first_seq: 0, last_seq: 0, time_ns: 0 };
    let mut at = found.end;
    while at < bytes.len() {
        // A short or damaged frame ends what is whole (a write in progress).
        let Ok(frame) = decode_frame(&bytes[at..], u32::MAX) else { break };
        if frame.seq > durable {
            break;
        }
        if found.first_seq == 0 {
            found.first_seq = frame.seq;
        }
        found.last_seq = frame.seq;
        found.time_ns = frame.time.as_nanos();
        at += frame.encoded_bytes();
        found.end = at;
    }
    found
}

fn log_object(kind: ObjectKind, segment: u64, offset: u64, records: &Records) -> ArchivedObject {
    let key = match kind {
        ObjectKind::Segment => format!("log/{segment:020}/segment.log"),
        _ => format!("log/{segment:020}/{offset:020}.part"),
    };
    ArchivedObject {
        segment,
        offset,
        first_seq: records.first_seq,
        last_seq: records.last_seq,
        time_ns: records.time_ns,
        ..ArchivedObject::new(key, kind)
    }
}
