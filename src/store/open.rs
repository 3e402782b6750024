//! Opening a store: lock, identity, newest good snapshot, replay of the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io_err, Error, Result};
use super::machine::{Run, StateMachine};
use super::options::{Create, OpenMode, Options};
use super::payload;
use crate::clock::Timestamp;
use crate::identity::{Identity, StoreId, IDENTITY_FIELD_BYTES_MAX};
use crate::io::{FileSystem, LockGuard};
use crate::snapshot::{self, SnapshotError, SnapshotInfo};
use crate::wal::{self, SegmentInfo, TailRepair, TornTail, WalError};

/// The name of the file holding a store's identity.
pub const IDENTITY_FILE: &str = "IDENTITY";
/// The name of the file a writer locks.
pub const LOCK_FILE: &str = "LOCK";

/// What opening a store found and did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct OpenReport {
    /// Whether this open created the store.
    pub created: bool,
    /// The snapshot the state was loaded from, if any.
    pub snapshot: Option<SnapshotInfo>,
    /// Newer snapshots that were damaged or unusable and were passed over.
    pub rejected_snapshots: Vec<SnapshotError>,
    /// Newer snapshots of an older schema version that the state machine does
    /// not upcast, passed over (the state was rebuilt from the log instead),
    /// with their schema versions. Not damage: the next snapshot is written in
    /// the current version.
    pub older_schema_snapshots: Vec<(PathBuf, u32)>,
    /// Transactions replayed from the log after the snapshot.
    pub replayed_transactions: u64,
    /// A torn tail cut from (or, read-only, ignored at) the end of the log.
    pub torn_tail: Option<TornTail>,
    /// Temporary files left by an interrupted write and removed.
    pub removed_temporary_files: Vec<PathBuf>,
    /// Every snapshot the open found, by sequence number: listed once, before
    /// the log, so none of them is ahead of the log the open read (a snapshot
    /// is written only after the log is durable through its seq).
    pub(crate) listed_snapshots: Vec<(u64, PathBuf)>,
}

/// Everything `open` recovers, handed to the store.
pub(crate) struct Opened<S> {
    pub identity: Identity,
    pub lock: Option<LockGuard>,
    pub state: S,
    pub last_seq: u64,
    pub last_time: Timestamp,
    pub segments: Vec<SegmentInfo>,
    pub last_segment_bytes: Option<u64>,
    pub snapshots: Vec<SnapshotInfo>,
    pub report: OpenReport,
}

pub(crate) fn check_options(options: &Options) -> Result<()> {
    let invalid = |name, problem| Err(Error::InvalidOption { name, problem });
    if options.segment_bytes < 4096 || options.segment_bytes > super::options::SEGMENT_BYTES_MAX {
        return invalid("segment_bytes", "must be at least 4096 and at most 1 GiB");
    }
    if options.record_bytes_max < 64 {
        return invalid("record_bytes_max", "must be at least 64");
    }
    if options.checkpoint_every == 0 {
        return invalid("history_checkpoints", "every must be at least 1");
    }
    if options.mode == OpenMode::ReadOnly && options.create == Create::New {
        return invalid("create", "cannot be New for a read-only open");
    }
    if options.snapshot_every_events == Some(0) {
        return invalid("snapshot_every_events", "must be at least 1 (or None)");
    }
    if let super::options::SyncPolicy::Interval(d) = options.sync {
        if d.is_zero() {
            return invalid("sync", "interval must be longer than zero");
        }
    }
    for (name, value) in [("name", &options.name), ("environment", &options.environment)] {
        if value.is_empty() || value.len() > IDENTITY_FIELD_BYTES_MAX {
            return invalid(name, "must be 1 to 255 bytes long");
        }
    }
    Ok(())
}

pub(crate) fn open<S: StateMachine>(dir: &Path, options: &Options) -> Result<Opened<S>> {
    check_options(options)?;
    let fs = &options.fs;
    let writable = options.mode == OpenMode::ReadWrite;
    let mut report = OpenReport::default();
    let lock = if writable {
        prepare_dir(fs, dir, options.create)?;
        let lock_path = dir.join(LOCK_FILE);
        match fs.try_lock_exclusive(&lock_path).map_err(io_err("lock", &lock_path))? {
            Some(guard) => Some(guard),
            None => return Err(Error::Locked { path: lock_path }),
        }
    } else {
        if !fs.exists(dir).map_err(io_err("stat", dir))? {
            return Err(Error::NotAStore { path: dir.to_path_buf(), reason: "the directory does not exist" });
        }
        refuse_file(fs, dir)?;
        None
    };
    let (identity, created) = load_or_create_identity(fs, dir, options)?;
    report.created = created;
    check_identity(dir, &identity, options)?;
    if writable {
        remove_temporary_files(fs, dir, &mut report)?;
    }

    report.listed_snapshots = snapshot::list_snapshots(fs, dir)?;
    let (mut state, snapshot) = load_newest_snapshot::<S>(fs, identity.id, options, &mut report)?;
    let snapshot_seq = snapshot.as_ref().map_or(0, |s| s.seq);
    let repair = if writable { TailRepair::Cut } else { TailRepair::Ignore };
    let mut replayed = 0u64;
    let mut run = Run::<S>::new();
    let recovered =
        wal::recover(fs, dir, identity.id, snapshot_seq, repair, options.record_bytes_max, |path, offset, frame| {
            let (_meta, events) = payload::decode::<S>(frame.payload, options.record_bytes_max)
                .map_err(|source| WalError::undecodable(path, offset as u64, frame.seq, source))?;
            run.push(&mut state, events);
            replayed += 1;
            Ok(())
        })?;
    run.apply(&mut state);
    if writable {
        wal::make_durable(fs, dir, &recovered)?;
    }
    report.replayed_transactions = replayed;
    report.torn_tail = recovered.torn;
    let log_last_seq = recovered.last_seq;
    if let Some(snapshot) = &snapshot {
        if log_last_seq < snapshot.seq {
            return Err(Error::LogBehindSnapshot {
                snapshot: snapshot.path.clone(),
                snapshot_seq: snapshot.seq,
                log_last_seq,
            });
        }
    }
    // An empty last segment is where the next record goes: recovery checks
    // its first seq against the segment before it, or, when it is the only
    // one read, takes the log's end from it.
    let last_seq = log_last_seq.max(snapshot_seq);
    let last_time =
        recovered.last.map_or(Timestamp(0), |l| l.time).max(snapshot.as_ref().map_or(Timestamp(0), |s| s.time));
    let mut snapshots = Vec::new();
    for (seq, path) in report.listed_snapshots.clone() {
        if snapshot.as_ref().is_some_and(|s| s.seq == seq) {
            snapshots.push(snapshot.clone().expect("checked"));
        } else if !report.rejected_snapshots.iter().any(|e| rejected_path(e) == Some(&path)) {
            // Older snapshots are not read whole until used; their header says
            // when they are from. One that is gone since it was listed was
            // removed by retention in a writer beside this (read-only) open.
            let gone = |err: &std::io::Error| err.kind() == std::io::ErrorKind::NotFound;
            let head = match fs.read_range(&path, 0, snapshot::SNAPSHOT_HEADER_BYTES) {
                Err(err) if gone(&err) => continue,
                head => head.map_err(io_err("read", &path))?,
            };
            let header = snapshot::SnapshotHeader::decode(&head);
            let (time, schema) = header.map_or((Timestamp(0), 0), |h| (h.time, h.schema));
            let bytes = match fs.file_len(&path) {
                Err(err) if gone(&err) => continue,
                bytes => bytes.map_err(io_err("stat", &path))?,
            };
            snapshots.push(SnapshotInfo { path, seq, time, bytes, schema });
        }
    }
    report.snapshot = snapshot;
    Ok(Opened {
        identity,
        lock,
        state,
        last_seq,
        last_time,
        segments: recovered.segments,
        last_segment_bytes: recovered.last_segment_bytes,
        snapshots,
        report,
    })
}

/// Before a read-write open takes the lock (whose file it creates): refuses
/// what `create` does not allow, without writing anything, and creates the
/// directory when it may.
fn prepare_dir(fs: &Arc<dyn FileSystem>, dir: &Path, create: Create) -> Result<()> {
    let exists = fs.exists(dir).map_err(io_err("stat", dir))?;
    if exists {
        refuse_file(fs, dir)?;
    }
    let has_identity = exists && fs.exists(&dir.join(IDENTITY_FILE)).map_err(io_err("stat", dir))?;
    match create {
        Create::Never if !exists => {
            Err(Error::NotAStore { path: dir.to_path_buf(), reason: "the directory does not exist" })
        }
        Create::Never if !has_identity => {
            Err(Error::NotAStore { path: dir.to_path_buf(), reason: "it has no IDENTITY file" })
        }
        Create::Never => Ok(()),
        Create::New if exists && !fs.list_dir(dir).map_err(io_err("list", dir))?.is_empty() => {
            Err(Error::DirectoryNotEmpty { path: dir.to_path_buf() })
        }
        Create::IfMissing | Create::New => fs.create_dir_all(dir).map_err(io_err("create directory", dir)),
    }
}

/// A file where the store's directory should be (a mistyped path, the
/// `IDENTITY` file itself) is not a store.
pub(crate) fn refuse_file(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<()> {
    match fs.list_dir(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
            Err(Error::NotAStore { path: dir.to_path_buf(), reason: "it is a file, not a directory" })
        }
        // Anything else is reported by the step that meets it.
        _ => Ok(()),
    }
}

/// Makes the store directory's entry durable in its parent, and each
/// ancestor's in its own parent, before the store is created in it. A store
/// whose files were all fsynced is still lost in a power loss if the entry of
/// its directory (or of a directory above it that an earlier, crashed attempt
/// created) never reached the disk. Only creation pays for this.
fn sync_ancestors(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let ancestor = if ancestor.as_os_str().is_empty() { Path::new(".") } else { ancestor };
        fs.sync_dir(ancestor).map_err(io_err("fsync directory", ancestor))?;
    }
    Ok(())
}

fn rejected_path(err: &SnapshotError) -> Option<&PathBuf> {
    match err {
        SnapshotError::Io { path, .. }
        | SnapshotError::Damaged { path, .. }
        | SnapshotError::Foreign { path, .. }
        | SnapshotError::NameMismatch { path, .. }
        | SnapshotError::Undecodable { path, .. }
        | SnapshotError::Panicked { path, .. }
        | SnapshotError::TooLarge { path, .. }
        | SnapshotError::NewerSchema { path, .. }
        | SnapshotError::OlderSchema { path, .. }
        | SnapshotError::Unencodable { path, .. } => Some(path),
    }
}

/// Refuses a store other than the one the caller means: always for writers,
/// and for readers that named one.
fn check_identity(dir: &Path, identity: &Identity, options: &Options) -> Result<()> {
    if options.mode == OpenMode::ReadOnly && !options.named && options.expected_id.is_none() {
        return Ok(());
    }
    let name_matches = identity.name == options.name && identity.environment == options.environment;
    let name_checked = options.mode == OpenMode::ReadWrite || options.named;
    let id_matches = options.expected_id.is_none_or(|id| id == identity.id);
    if (name_checked && !name_matches) || !id_matches {
        return Err(Error::WrongStore {
            path: dir.to_path_buf(),
            expected_name: options.name.clone(),
            expected_environment: options.environment.clone(),
            found: Box::new(identity.clone()),
        });
    }
    Ok(())
}

fn load_or_create_identity(fs: &Arc<dyn FileSystem>, dir: &Path, options: &Options) -> Result<(Identity, bool)> {
    let path = dir.join(IDENTITY_FILE);
    if fs.exists(&path).map_err(io_err("stat", &path))? {
        let bytes = fs.read_file(&path).map_err(io_err("read", &path))?;
        let identity = Identity::decode(&bytes).map_err(|problem| Error::BadIdentity { path, problem })?;
        return Ok((identity, false));
    }
    if options.mode == OpenMode::ReadOnly || options.create == Create::Never {
        return Err(Error::NotAStore { path: dir.to_path_buf(), reason: "it has no IDENTITY file" });
    }
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let names = fs.list_dir(dir).map_err(io_err("list", dir))?;
    let tmp_name = format!("{IDENTITY_FILE}.tmp");
    if names.iter().any(|n| n != LOCK_FILE && *n != tmp_name) {
        return Err(Error::NotAStore {
            path: dir.to_path_buf(),
            reason: "it holds files but no IDENTITY file; refusing to create a store over them",
        });
    }
    if names.contains(&tmp_name) {
        fs.remove_file(&tmp).map_err(io_err("remove", &tmp))?;
    }
    sync_ancestors(fs, dir)?;
    let identity = Identity {
        id: StoreId::random(),
        name: options.name.clone(),
        environment: options.environment.clone(),
        created: options.clock.now(),
    };
    let mut file = fs.create_new(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all(&identity.encode()).map_err(io_err("write", &tmp))?;
    file.sync_data().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs.rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    Ok((identity, true))
}

/// Removes what an interrupted segment creation or snapshot write left behind:
/// such files never hold acknowledged data. The removals become durable with
/// the directory fsync at the end of a read-write open (and until then a
/// power loss only brings back a file the next open removes again).
fn remove_temporary_files(fs: &Arc<dyn FileSystem>, dir: &Path, report: &mut OpenReport) -> Result<()> {
    for name in fs.list_dir(dir).map_err(io_err("list", dir))? {
        if name.ends_with(".log.tmp") || name.ends_with(".snap.tmp") {
            let path = dir.join(&name);
            fs.remove_file(&path).map_err(io_err("remove", &path))?;
            report.removed_temporary_files.push(path);
        }
    }
    Ok(())
}

/// The newest snapshot that loads and checks out, falling back to older ones
/// (and finally to the empty state) and recording each one passed over.
fn load_newest_snapshot<S: StateMachine>(
    fs: &Arc<dyn FileSystem>,
    store_id: StoreId,
    options: &Options,
    report: &mut OpenReport,
) -> Result<(S, Option<SnapshotInfo>)> {
    for (_seq, path) in report.listed_snapshots.iter().rev() {
        match load_snapshot::<S>(fs, path, store_id, options.snapshot_bytes_max) {
            Ok((info, state)) => return Ok((state, Some(info))),
            // Written by a newer version: refuse, never fall back past it.
            Err(err @ SnapshotError::NewerSchema { .. }) => return Err(Error::Snapshot(err)),
            Err(SnapshotError::OlderSchema { path, found, .. }) => report.older_schema_snapshots.push((path, found)),
            Err(err) => report.rejected_snapshots.push(err),
        }
    }
    Ok((S::default(), None))
}

/// Loads the snapshot at `path` as a state of `S`, upcasting an older schema
/// version's state with `S::upcast_state`.
pub(crate) fn load_snapshot<S: StateMachine>(
    fs: &Arc<dyn FileSystem>,
    path: &Path,
    store_id: StoreId,
    snapshot_bytes_max: u64,
) -> std::result::Result<(SnapshotInfo, S), SnapshotError> {
    snapshot::load_snapshot::<S>(fs, path, store_id, snapshot_bytes_max, (S::SCHEMA_VERSION, S::upcast_state))
}

/// [`load_snapshot`], sharing with `like` what is equal in both
/// ([`StateMachine::decode_like`]; an older version's state is upcast as on
/// open, sharing nothing).
pub(crate) fn load_snapshot_like<S: StateMachine>(
    fs: &Arc<dyn FileSystem>,
    path: &Path,
    store_id: StoreId,
    snapshot_bytes_max: u64,
    like: &S,
) -> std::result::Result<(SnapshotInfo, S), SnapshotError> {
    let versions = (S::SCHEMA_VERSION, S::upcast_state as crate::snapshot::Upcast<S>);
    snapshot::load_snapshot_with(fs, path, store_id, snapshot_bytes_max, versions, |payload, limit| {
        crate::codec::decode_whole(payload, limit, |bytes| S::decode_like(like, bytes))
    })
}
