//! Reading an archive back: its status, a check of every object, and a
//! restore into a new store.

use std::path::{Path, PathBuf};

use super::manifest::{Manifest, ObjectKind};
use super::{sha256_hex, ArchiveError, Target};
use crate::clock::Timestamp;
use crate::identity::Identity;
use crate::store::{OpenMode, Options, Point, RestoreReport, StateMachine, Store, TxnMeta, IDENTITY_FILE};
use crate::wal::segment_file_name;

/// What an archive holds, from its manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveStatus {
    /// The archive's URL.
    pub url: String,
    /// The store it belongs to (id, name, environment).
    pub store_id: String,
    /// The store's name.
    pub name: String,
    /// Its environment.
    pub environment: String,
    /// The first transaction held (`None`: no records yet).
    pub first_seq: Option<u64>,
    /// The last transaction held with no gap before it.
    pub archived_seq: u64,
    /// Its commit time.
    pub archived_time: Timestamp,
    /// Objects, and their bytes.
    pub objects: usize,
    /// See `objects`.
    pub bytes: u64,
    /// Snapshots held, by seq.
    pub snapshots: Vec<u64>,
    /// Missing ranges of transactions (first, last).
    pub gaps: Vec<(u64, u64)>,
    /// How many times the manifest was written.
    pub generation: u64,
}

/// What [`verify`] found: every object read and checked, and a sample restore.
#[derive(Debug)]
#[non_exhaustive]
pub struct ArchiveVerifyReport {
    /// The archive's status.
    pub status: ArchiveStatus,
    /// Objects whose size and SHA-256 match the manifest (all of them, or
    /// `verify` returns the first that does not).
    pub objects_checked: usize,
    /// Bytes read.
    pub bytes_checked: u64,
    /// The sample restore: the archive's last transaction restored into a
    /// scratch directory and verified there.
    pub sample: RestoreReport,
}

/// What [`restore`] wrote.
#[derive(Debug)]
#[non_exhaustive]
pub struct ArchiveRestoreReport {
    /// The archive it came from.
    pub url: String,
    /// The new store's directory.
    pub dir: PathBuf,
    /// The last transaction restored.
    pub seq: u64,
    /// Its commit time.
    pub time: Timestamp,
    /// The restore (its verification among it).
    pub restore: RestoreReport,
}

/// The archive's manifest, refusing an empty archive.
fn manifest_of(target: &Target) -> Result<Manifest, ArchiveError> {
    target.manifest()?.ok_or_else(|| ArchiveError::Empty { url: target.url().to_owned() })
}

/// What the archive at `target` holds, from its manifest alone.
pub fn status(target: &Target) -> Result<ArchiveStatus, ArchiveError> {
    let manifest = manifest_of(target)?;
    Ok(status_of(target, &manifest))
}

fn status_of(target: &Target, manifest: &Manifest) -> ArchiveStatus {
    let mut snapshots: Vec<u64> =
        manifest.objects.iter().filter(|o| o.kind == ObjectKind::Snapshot).map(|o| o.last_seq).collect();
    snapshots.sort_unstable();
    ArchiveStatus {
        url: target.url().to_owned(),
        store_id: manifest.store_id.clone(),
        name: manifest.name.clone(),
        environment: manifest.environment.clone(),
        first_seq: manifest.first_seq(),
        archived_seq: manifest.archived_seq,
        archived_time: Timestamp(manifest.archived_time_ns),
        objects: manifest.objects.len(),
        bytes: manifest.bytes(),
        snapshots,
        gaps: manifest.gaps(),
        generation: manifest.generation,
    }
}

/// Downloads the archive into `dir` (created if missing) as a store
/// directory: the identity (checked against the manifest), every segment
/// (whole, or its parts joined end to end), every snapshot; every object's
/// size and SHA-256 checked, a gap refused. Open the copy read-only and
/// restore from it ([`Store::restore_to`]): it has the archived store's id,
/// and writing to it would fork that store's history. Returns the manifest
/// and the bytes read.
pub fn download(target: &Target, dir: &Path) -> Result<(Manifest, u64), ArchiveError> {
    stage(target, dir)
}

/// How many times a download starts over when an archiver beside it moved
/// the manifest on (and deleted what the older one listed).
const STAGE_ATTEMPTS: u32 = 4;

fn stage(target: &Target, dir: &Path) -> Result<(Manifest, u64), ArchiveError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let manifest = manifest_of(target)?;
        match stage_manifest(target, dir, manifest) {
            Err(Missing { key, manifest }) => {
                let moved_on = target.manifest()?.is_some_and(|now| now.generation != manifest.generation);
                if moved_on && attempt < STAGE_ATTEMPTS {
                    let _ = std::fs::remove_dir_all(dir);
                    continue;
                }
                let object = manifest.object(&key).map_or(0, |o| o.bytes);
                return Err(ArchiveError::Tampered {
                    key,
                    expected: format!("{object} bytes"),
                    found: "no such object".into(),
                });
            }
            Ok(outcome) => return outcome,
        }
    }
}

/// An object the manifest lists and the store does not have.
struct Missing {
    key: String,
    manifest: Box<Manifest>,
}

fn stage_manifest(
    target: &Target,
    dir: &Path,
    manifest: Manifest,
) -> Result<Result<(Manifest, u64), ArchiveError>, Missing> {
    let mut missing = None;
    let outcome = stage_objects(target, dir, &manifest, &mut missing);
    match missing {
        Some(key) => Err(Missing { key, manifest: Box::new(manifest) }),
        None => Ok(outcome.map(|read| (manifest, read))),
    }
}

fn stage_objects(
    target: &Target,
    dir: &Path,
    manifest: &Manifest,
    missing: &mut Option<String>,
) -> Result<u64, ArchiveError> {
    let local = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ArchiveError::Local { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(local("create", dir))?;
    let mut read = 0u64;
    let mut fetch = |key: &str| -> Result<Vec<u8>, ArchiveError> {
        let object = manifest.object(key).expect("listed");
        let Some(bytes) = target.get(key)? else {
            *missing = Some(key.to_owned());
            return Err(ArchiveError::Tampered { key: key.to_owned(), expected: String::new(), found: String::new() });
        };
        let sha256 = sha256_hex(&bytes);
        if bytes.len() as u64 != object.bytes || sha256 != object.sha256 {
            return Err(ArchiveError::Tampered {
                key: key.to_owned(),
                expected: format!("{} bytes, sha256 {}", object.bytes, object.sha256),
                found: format!("{} bytes, sha256 {sha256}", bytes.len()),
            });
        }
        read += bytes.len() as u64;
        Ok(bytes)
    };
    // The identity first: it must be the manifest's store.
    let Some(identity) = manifest.objects.iter().find(|o| o.kind == ObjectKind::Identity) else {
        return Err(ArchiveError::Manifest { url: target.url().to_owned(), reason: "it lists no IDENTITY".into() });
    };
    let identity_bytes = fetch(&identity.key)?;
    let decoded = Identity::decode(&identity_bytes).map_err(|problem| ArchiveError::Tampered {
        key: identity.key.clone(),
        expected: "a store identity".into(),
        found: problem.to_string(),
    })?;
    if decoded.id.to_string() != manifest.store_id {
        return Err(ArchiveError::Tampered {
            key: identity.key.clone(),
            expected: format!("store {}", manifest.store_id),
            found: format!("store {}", decoded.id),
        });
    }
    let path = dir.join(IDENTITY_FILE);
    std::fs::write(&path, &identity_bytes).map_err(local("write", &path))?;
    if let Some(gap) = manifest.gaps().first() {
        return Err(ArchiveError::Gap { from: gap.0, to: gap.1 });
    }
    // Segments: whole, or parts joined; each part must start where the
    // previous one ended, the first at the segment's start.
    let mut current: Option<(u64, Vec<u8>)> = None;
    // Each segment is written as soon as it is whole, so memory holds one.
    let write_segment = |(first_seq, bytes): (u64, Vec<u8>)| -> Result<(), ArchiveError> {
        let path = dir.join(segment_file_name(first_seq));
        std::fs::write(&path, &bytes).map_err(local("write", &path))
    };
    for object in manifest.log_objects() {
        let bytes = fetch(&object.key)?;
        match object.kind {
            ObjectKind::Segment => {
                if let Some(done) = current.take() {
                    write_segment(done)?;
                }
                write_segment((object.segment, bytes))?;
            }
            _ => match &mut current {
                Some((segment, joined)) if *segment == object.segment => {
                    if joined.len() as u64 != object.offset {
                        return Err(ArchiveError::Tampered {
                            key: object.key.clone(),
                            expected: format!("a part at offset {}", joined.len()),
                            found: format!("offset {}", object.offset),
                        });
                    }
                    joined.extend_from_slice(&bytes);
                }
                _ => {
                    if object.offset != 0 {
                        return Err(ArchiveError::Tampered {
                            key: object.key.clone(),
                            expected: "the segment's first part at offset 0".into(),
                            found: format!("offset {}", object.offset),
                        });
                    }
                    if let Some(done) = current.take() {
                        write_segment(done)?;
                    }
                    current = Some((object.segment, bytes));
                }
            },
        }
    }
    if let Some(done) = current.take() {
        write_segment(done)?;
    }
    for object in manifest.objects.iter().filter(|o| o.kind == ObjectKind::Snapshot) {
        let bytes = fetch(&object.key)?;
        let name = object.key.rsplit('/').next().unwrap_or(&object.key);
        let path = dir.join(name);
        std::fs::write(&path, &bytes).map_err(local("write", &path))?;
    }
    Ok(read)
}

/// A scratch directory beside another path, for a staged copy of an
/// archive; removed when dropped.
pub(crate) struct Staged(PathBuf);

impl Staged {
    /// `.NAME.WHAT-PID` beside `near` (its parent, or the current
    /// directory), emptied of anything an earlier run left there.
    pub(crate) fn beside(near: &Path, what: &str) -> Staged {
        let parent = near.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = near.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "store".into());
        let dir = parent.join(format!(".{name}.{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Staged(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Restores the archived store at `point` (any point the archive holds,
/// by seq or time) into the new directory `out`, like
/// [`Store::restore_to`]: the same transactions, a snapshot at the point,
/// the store's name and environment with a new id, a `RESTORED_FROM` file
/// (its source is the staged copy of the archive; `meta` says who restored
/// and why), verified. Every object is checked against the manifest first:
/// a tampered object, a gap or an identity that is not the manifest's is
/// refused.
pub fn restore<S: StateMachine + PartialEq>(
    target: &Target,
    point: Point,
    out: &Path,
    meta: &TxnMeta,
) -> Result<ArchiveRestoreReport, ArchiveError> {
    meta.check()?;
    let staged = Staged::beside(out, "from-archive");
    let (manifest, _) = stage(target, staged.path())?;
    let store: Store<S> = Store::open(staged.path(), Options::default().mode(OpenMode::ReadOnly))?;
    let options = Options::default().identity(manifest.name.clone(), manifest.environment.clone());
    let report = store.restore_to_from(point, out, options, meta, target.url())?;
    Ok(ArchiveRestoreReport {
        url: target.url().to_owned(),
        dir: out.to_path_buf(),
        seq: report.seq,
        time: report.time,
        restore: report,
    })
}

/// Reads every object of the archive and checks it against the manifest
/// (size, SHA-256, the identity, parts end to end, no gap), then restores
/// its last transaction into a scratch directory beside `scratch_near` and
/// verifies that.
pub fn verify<S: StateMachine + PartialEq>(
    target: &Target,
    scratch_near: &Path,
) -> Result<ArchiveVerifyReport, ArchiveError> {
    let staged = Staged::beside(scratch_near, "archive-verify");
    let (manifest, bytes_checked) = stage(target, staged.path())?;
    let store: Store<S> = Store::open(staged.path(), Options::default().mode(OpenMode::ReadOnly))?;
    let sample_dir = Staged::beside(scratch_near, "archive-sample");
    let meta = TxnMeta::new("elbstore:archive-verify", "sample restore of the archive");
    let options = Options::default().identity(manifest.name.clone(), manifest.environment.clone());
    let sample = store.restore_to(Point::Seq(store.read().seq()), sample_dir.path(), options, &meta)?;
    Ok(ArchiveVerifyReport {
        status: status_of(target, &manifest),
        objects_checked: manifest.objects.len(),
        bytes_checked,
        sample,
    })
}
