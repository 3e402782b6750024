//! The off-machine archive (feature `archive`): the log and snapshots shipped
//! continuously to object storage, and restores from there.
//!
//! An [`Archiver`] runs beside a store, in a thread of its own: it uploads
//! each sealed segment once, the active segment's new durable records at an
//! interval as incremental parts, every snapshot, and the `IDENTITY` and
//! `RESTORED_FROM` files, then rewrites the archive's [`Manifest`] (each
//! object's records, size and SHA-256). It never blocks a commit: it reads
//! the files the store has already written and made durable. A failed upload
//! is retried with backoff and reported in [`ArchiverStatus`]; the lag
//! (acknowledged minus archived, in transactions and in time) is there too.
//!
//! [`restore`] rebuilds a store from an archive at any point it covers,
//! [`status`] and [`verify`] inspect one. Targets are URLs ([`Target::open`]):
//! `file:///path` (a directory, e.g. a mounted share), `s3://bucket/prefix`
//! (S3, or an S3-compatible server with `?endpoint=http://host:port`),
//! `memory://` (for tests). The layout is in docs/FORMAT.md, "Archive".
//!
//! ```
//! use elbstore::archive::{self, Archiver, ArchiverOptions, Target};
//! use elbstore::elb::{ElbState, ElbStore, Settings};
//! use elbstore::{Create, Options, Point, TxnMeta};
//!
//! # let base = std::env::temp_dir().join(format!("elbstore-archive-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&base);
//! let (dir, out) = (base.join("store"), base.join("restored"));
//! let store = ElbStore::open(&dir, Options::default().create(Create::IfMissing), Settings::in_region("us-east-1"))?;
//! let target = Target::memory();
//! let archiver = Archiver::start(store.store(), target.clone(), ArchiverOptions::default())?;
//! // ... commits ...
//! let archived = archiver.flush()?;
//! assert_eq!(archived.lag_transactions(), 0);
//! archiver.stop();
//! store.close()?;
//! // The disk is lost; the archive is not.
//! std::fs::remove_dir_all(&dir)?;
//! let restored = archive::restore::<ElbState>(&target, Point::Seq(archived.archived_seq), &out, &TxnMeta::new("ops:oncall", "disk lost"))?;
//! assert_eq!(restored.seq, archived.archived_seq);
//! # std::fs::remove_dir_all(&base)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod manifest;
mod restore;
mod upload;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

pub use manifest::{ArchivedObject, Manifest, ObjectKind, MANIFEST_FORMAT, MANIFEST_KEY};
#[cfg(feature = "tools")]
pub(crate) use restore::Staged;
pub use restore::{download, restore, status, verify, ArchiveRestoreReport, ArchiveStatus, ArchiveVerifyReport};
pub use upload::{Archiver, ArchiverOptions, ArchiverStatus, Retention};

/// Where an archive lives: an object store and a prefix in it.
#[derive(Clone)]
pub struct Target {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({})", self.url)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Query parameters of an `s3://` URL and the object_store option each sets.
const S3_PARAMETERS: [(&str, &str); 4] = [
    ("endpoint", "aws_endpoint"),
    ("allow_http", "aws_allow_http"),
    ("region", "aws_region"),
    ("virtual_hosted_style", "aws_virtual_hosted_style_request"),
];

impl Target {
    /// The archive at `url`: `file:///absolute/dir`, `memory://`, or
    /// `s3://bucket/prefix` with optional `endpoint=URL`, `allow_http=true`,
    /// `region=R` parameters (credentials and other settings from the
    /// usual `AWS_*` environment variables).
    pub fn open(url: &str) -> Result<Target, ArchiveError> {
        let bad = |reason: String| ArchiveError::Url { url: url.to_owned(), reason };
        if url == "memory://" || url == "memory:///" {
            return Target::with_store(Arc::new(object_store::memory::InMemory::new()), "", url);
        }
        let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let mut options: Vec<(String, String)> = Vec::new();
        match parsed.scheme() {
            "file" | "memory" => {
                if parsed.query().is_some() {
                    return Err(bad("a file or memory archive takes no parameters".into()));
                }
            }
            "s3" | "s3a" => {
                for (key, value) in std::env::vars() {
                    let key = key.to_ascii_lowercase();
                    if key.starts_with("aws_") && key.parse::<object_store::aws::AmazonS3ConfigKey>().is_ok() {
                        options.push((key, value));
                    }
                }
                for (key, value) in parsed.query_pairs() {
                    let Some((_, option)) = S3_PARAMETERS.iter().find(|(name, _)| *name == key) else {
                        let known: Vec<&str> = S3_PARAMETERS.iter().map(|(name, _)| *name).collect();
                        return Err(bad(format!("unknown parameter {key:?} (known: {})", known.join(", "))));
                    };
                    options.retain(|(k, _)| k != option);
                    options.push(((*option).to_owned(), value.into_owned()));
                }
                parsed.set_query(None);
            }
            other => return Err(bad(format!("unsupported scheme {other:?}: use file://, s3:// or memory://"))),
        }
        if parsed.scheme() == "file" {
            let dir = parsed.to_file_path().map_err(|()| bad("not an absolute path".into()))?;
            std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
        }
        let (store, prefix) = object_store::parse_url_opts(&parsed, options).map_err(|e| bad(e.to_string()))?;
        Target::with_store(Arc::from(store), prefix.as_ref(), url)
    }

    /// A fresh archive in memory (clones share it).
    pub fn memory() -> Target {
        Target::with_store(Arc::new(object_store::memory::InMemory::new()), "", "memory://")
            .expect("a runtime for an in-memory archive")
    }

    /// An archive in any object store, under `prefix` (for tests that
    /// wrap a store, e.g. to inject faults); `url` is how it is named.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Result<Target, ArchiveError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|source| {
            ArchiveError::Local { op: "start the archive's runtime", path: PathBuf::new(), source }
        })?;
        Ok(Target { store, prefix: ObjectPath::from(prefix), url: url.to_owned(), runtime: Arc::new(runtime) })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> ObjectPath {
        key.split('/').fold(self.prefix.clone(), |path, part| path.join(part))
    }

    /// Uploads `bytes` as `key` (replacing any object there).
    pub(crate) fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        let path = self.path(key);
        self.runtime
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|source| ArchiveError::Object { op: "put", key: key.to_owned(), source: Box::new(source) })
    }

    /// Downloads `key`; `None` if there is no such object.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        let path = self.path(key);
        let fetched = self.runtime.block_on(async {
            let result = self.store.get(&path).await?;
            result.bytes().await
        });
        match fetched {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(ArchiveError::Object { op: "get", key: key.to_owned(), source: Box::new(source) }),
        }
    }

    /// Deletes `key`; an object already gone is not an error.
    pub(crate) fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        let path = self.path(key);
        match self.runtime.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(ArchiveError::Object { op: "delete", key: key.to_owned(), source: Box::new(source) }),
        }
    }

    /// The manifest, if the archive has one.
    pub fn manifest(&self) -> Result<Option<Manifest>, ArchiveError> {
        let Some(bytes) = self.get(MANIFEST_KEY)? else { return Ok(None) };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ArchiveError::Manifest { url: self.url.clone(), reason: e.to_string() })?;
        if manifest.format != MANIFEST_FORMAT {
            let reason = format!("manifest format {} (this build reads {MANIFEST_FORMAT})", manifest.format);
            return Err(ArchiveError::Manifest { url: self.url.clone(), reason });
        }
        if let Some(reason) = manifest.problem() {
            return Err(ArchiveError::Manifest { url: self.url.clone(), reason });
        }
        Ok(Some(manifest))
    }

    pub(crate) fn put_manifest(&self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let bytes = serde_json::to_vec_pretty(manifest).expect("a manifest encodes");
        self.put(MANIFEST_KEY, bytes)
    }
}

/// SHA-256 in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// What went wrong with an archive.
#[derive(Debug)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The URL names no archive this build can use.
    Url {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The object store refused or failed an operation.
    Object {
        /// `put`, `get` or `delete`.
        op: &'static str,
        /// The object's key under the archive's prefix.
        key: String,
        /// The object store's error.
        source: Box<object_store::Error>,
    },
    /// A local file could not be read or written.
    Local {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The archive has no manifest: nothing was ever archived there.
    Empty {
        /// The archive.
        url: String,
    },
    /// The manifest cannot be read.
    Manifest {
        /// The archive.
        url: String,
        /// Why.
        reason: String,
    },
    /// The archive belongs to another store.
    Foreign {
        /// The archive.
        url: String,
        /// The store id the archive holds.
        archive: String,
        /// The store id expected.
        expected: String,
    },
    /// An object's bytes are not those the manifest lists (size or SHA-256),
    /// or the archive's identity disagrees with its manifest.
    Tampered {
        /// The object's key.
        key: String,
        /// What the manifest says.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The archived log has a hole: records a restore would need are missing.
    Gap {
        /// The first transaction missing.
        from: u64,
        /// The last one missing.
        to: u64,
    },
    /// The store failed (opening the staged copy, restoring).
    Store(crate::Error),
    /// An archiver needs a store opened for writing.
    ReadOnlyStore {
        /// The store.
        dir: PathBuf,
    },
    /// The store's files no longer continue what the archive holds (the
    /// active segment was replaced or cut after it was archived).
    Diverged {
        /// The segment file.
        path: PathBuf,
        /// Where the archive's copy of it ends.
        offset: u64,
        /// The transaction the archive expects there.
        expected: u64,
        /// What the file holds there (0: no whole record).
        found: u64,
    },
    /// An archiver's pass failed (it goes on trying); the failure in words.
    PassFailed {
        /// The archive.
        url: String,
        /// The failure.
        reason: String,
    },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Url { url, reason } => write!(f, "archive {url}: {reason}"),
            ArchiveError::Object { op, key, source } => write!(f, "archive object {key}: {op} failed: {source}"),
            ArchiveError::Local { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            ArchiveError::Empty { url } => write!(f, "archive {url} has no manifest: nothing was archived there"),
            ArchiveError::Manifest { url, reason } => write!(f, "archive {url}: the manifest cannot be read: {reason}"),
            ArchiveError::Foreign { url, archive, expected } => {
                write!(f, "archive {url} belongs to store {archive}, not {expected}")
            }
            ArchiveError::Tampered { key, expected, found } => {
                write!(f, "archive object {key} is not what the manifest lists: expected {expected}, found {found}")
            }
            ArchiveError::Gap { from, to } => write!(f, "the archived log lacks transactions {from} to {to}"),
            ArchiveError::Store(err) => write!(f, "{err}"),
            ArchiveError::PassFailed { url, reason } => write!(f, "archiving to {url} failed: {reason}"),
            ArchiveError::ReadOnlyStore { dir } => {
                write!(f, "the store in {} is open read-only: archive it from its writer", dir.display())
            }
            ArchiveError::Diverged { path, offset, expected, found } => write!(
                f,
                "{} no longer continues its archived copy: at offset {offset} the archive expects transaction \
                 {expected}, the file holds {found}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ArchiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ArchiveError::Object { source, .. } => Some(source.as_ref()),
            ArchiveError::Local { source, .. } => Some(source),
            ArchiveError::Store(err) => Some(err),
            _ => None,
        }
    }
}

impl From<crate::Error> for ArchiveError {
    fn from(err: crate::Error) -> ArchiveError {
        ArchiveError::Store(err)
    }
}
