//! How a store is opened and how it behaves.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use super::progress::ProgressFn;
use crate::clock::{Clock, SystemClock};
use crate::identity::StoreId;
use crate::io::{FileSystem, RealFs};

/// When a commit group is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// fsync every commit group before any writer in it gets `Ok`. Nothing
    /// acknowledged is ever lost.
    #[default]
    Always,
    /// Acknowledge after the write to the operating system, fsync at most this
    /// long after. A power loss can lose up to this much acknowledged work.
    Interval(Duration),
    /// Never fsync commits (segments are still fsynced when sealed). For tests
    /// and bulk loads that can be repeated.
    Never,
}

/// Whether a handle may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OpenMode {
    /// Commit transactions and write snapshots; takes the store's exclusive lock.
    #[default]
    ReadWrite,
    /// Read only: takes no lock, changes no file, and works beside a writer.
    /// The handle sees the store as it was when opened.
    ReadOnly,
}

/// Whether opening may create a store.
///
/// The default is [`Create::Never`]: a process pointed at a mistyped path, or
/// at a directory whose store was lost, must fail to open rather than start on
/// an empty store with the expected identity (as RocksDB's
/// `create_if_missing` defaults to false). Ask for creation where a store is
/// meant to be new: first deployment, tests, `restore --out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Create {
    /// Open an existing store only: a directory without one is
    /// [`Error::NotAStore`](crate::Error::NotAStore), and nothing is created.
    #[default]
    Never,
    /// Open the store, or create it when the directory is missing or empty.
    IfMissing,
    /// Create a new store: the directory must be missing or empty
    /// ([`Error::DirectoryNotEmpty`](crate::Error::DirectoryNotEmpty) otherwise).
    New,
}

/// Which snapshots to keep after writing a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnapshotRetention {
    /// Keep every snapshot: old points of history load fast.
    #[default]
    KeepAll,
    /// Keep only the newest this many.
    KeepLast(NonZeroUsize),
}

/// Options for [`crate::Store::open`]. Build with `Options::default()` and the
/// setters below.
///
/// ```
/// use elbstore::{Create, Options, SyncPolicy};
/// let options = Options::default()
///     .create(Create::IfMissing)
///     .sync(SyncPolicy::Always)
///     .segment_bytes(64 << 20)
///     .snapshot_every_events(Some(1_000_000))
///     .identity("us-east-1", "production");
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) mode: OpenMode,
    pub(crate) create: Create,
    pub(crate) sync: SyncPolicy,
    pub(crate) segment_bytes: u64,
    pub(crate) record_bytes_max: u32,
    pub(crate) snapshot_bytes_max: u64,
    pub(crate) snapshot_every_events: Option<u64>,
    pub(crate) snapshot_retention: SnapshotRetention,
    pub(crate) checkpoint_every: u64,
    pub(crate) checkpoints_max: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) name: String,
    pub(crate) environment: String,
    /// Whether the caller named the store (rather than relying on the defaults).
    pub(crate) named: bool,
    pub(crate) expected_id: Option<StoreId>,
    pub(crate) progress: Option<ProgressFn>,
}

/// The name a store gets when its creator does not name it.
pub const DEFAULT_NAME: &str = "unnamed";
/// The environment a store gets when its creator does not name one.
pub const DEFAULT_ENVIRONMENT: &str = "unspecified";

/// The default segment size: 64 MiB.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// The largest segment size allowed: 1 GiB. A reader holds one segment in
/// memory at a time, so this bounds what a read of the log allocates.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 30;
/// The default limit on one encoded transaction: 16 MiB.
pub const RECORD_BYTES_MAX_DEFAULT: u32 = 16 << 20;
/// The default limit on one encoded snapshot: 64 GiB.
pub const SNAPSHOT_BYTES_MAX_DEFAULT: u64 = 64 << 30;
/// The default number of events between automatic snapshots.
pub const SNAPSHOT_EVERY_EVENTS_DEFAULT: u64 = 1_000_000;

/// The default spacing of in-memory history checkpoints, in transactions.
pub const CHECKPOINT_EVERY_DEFAULT: u64 = 4096;
/// The default number of in-memory history checkpoints kept.
pub const CHECKPOINTS_MAX_DEFAULT: usize = 64;

impl Default for Options {
    fn default() -> Options {
        Options {
            mode: OpenMode::ReadWrite,
            create: Create::Never,
            sync: SyncPolicy::Always,
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            snapshot_bytes_max: SNAPSHOT_BYTES_MAX_DEFAULT,
            snapshot_every_events: Some(SNAPSHOT_EVERY_EVENTS_DEFAULT),
            snapshot_retention: SnapshotRetention::KeepAll,
            checkpoint_every: CHECKPOINT_EVERY_DEFAULT,
            checkpoints_max: CHECKPOINTS_MAX_DEFAULT,
            clock: Arc::new(SystemClock),
            fs: Arc::new(RealFs),
            name: DEFAULT_NAME.to_owned(),
            environment: DEFAULT_ENVIRONMENT.to_owned(),
            named: false,
            expected_id: None,
            progress: None,
        }
    }
}

impl Options {
    /// Read-write (default) or read-only.
    pub fn mode(mut self, mode: OpenMode) -> Options {
        self.mode = mode;
        self
    }

    /// Whether this open may create the store (default [`Create::Never`]).
    /// Read-only opens never create; [`Create::New`] with
    /// [`OpenMode::ReadOnly`] is an invalid option.
    pub fn create(mut self, create: Create) -> Options {
        self.create = create;
        self
    }

    /// When commits are made durable (default [`SyncPolicy::Always`]).
    pub fn sync(mut self, sync: SyncPolicy) -> Options {
        self.sync = sync;
        self
    }

    /// The size at which a segment is sealed and a new one started (default
    /// 64 MiB, at least 4 KiB, at most [`SEGMENT_BYTES_MAX`]). A transaction
    /// larger than this gets a segment of its own.
    pub fn segment_bytes(mut self, bytes: u64) -> Options {
        self.segment_bytes = bytes;
        self
    }

    /// The largest encoded transaction accepted when writing or reading
    /// (default 16 MiB). Decoders never allocate more than this from a length field.
    pub fn record_bytes_max(mut self, bytes: u32) -> Options {
        self.record_bytes_max = bytes;
        self
    }

    /// The largest encoded snapshot accepted when writing or reading (default 64 GiB).
    pub fn snapshot_bytes_max(mut self, bytes: u64) -> Options {
        self.snapshot_bytes_max = bytes;
        self
    }

    /// Take a snapshot in the background every this many committed events
    /// (default one million); `None` takes them only on request.
    pub fn snapshot_every_events(mut self, events: Option<u64>) -> Options {
        self.snapshot_every_events = events;
        self
    }

    /// Which snapshots to keep (default all).
    pub fn snapshot_retention(mut self, retention: SnapshotRetention) -> Options {
        self.snapshot_retention = retention;
        self
    }

    /// In-memory checkpoints for [`Store::state_at`](crate::Store::state_at):
    /// the state after every `every`-th transaction (default 4,096) is kept,
    /// as it is published and as history reads replay past it, up to `max`
    /// of them (default 64; the least recently used goes first; 0 keeps
    /// none). A point is then at most `every` transactions of replay away
    /// from a state in memory. States share structure, so a checkpoint costs
    /// the memory of what changed after it, not a copy.
    pub fn history_checkpoints(mut self, every: u64, max: usize) -> Options {
        self.checkpoint_every = every;
        self.checkpoints_max = max;
        self
    }

    /// The clock commit timestamps come from (default the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Options {
        self.clock = clock;
        self
    }

    /// The file system under the store (default the real one).
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Options {
        self.fs = fs;
        self
    }

    /// The store this process means: the name and environment written into a
    /// store when this open creates it, and checked on every other open. A
    /// read-write open of a store with another name or environment is refused
    /// (`Error::WrongStore`), so a process pointed at the wrong store stops
    /// before it writes. Without this call the process means the store named
    /// `unnamed` in environment `unspecified`, and read-only opens check nothing.
    pub fn identity(mut self, name: impl Into<String>, environment: impl Into<String>) -> Options {
        self.name = name.into();
        self.environment = environment.into();
        self.named = true;
        self
    }

    /// Also requires the store's random id to be `id` (for tools that were
    /// handed one exact store).
    pub fn expect_id(mut self, id: StoreId) -> Options {
        self.expected_id = Some(id);
        self
    }

    /// Reports the progress of long work (replay on open and for past
    /// points, the history index as it is built, a segment at a time,
    /// verify, restore) to `callback`.
    ///
    /// ```
    /// use elbstore::{Options, ProgressFn};
    /// let options = Options::default().progress(ProgressFn::new(|p| {
    ///     eprintln!("{} {}/{}", p.work.as_str(), p.done, p.total);
    /// }));
    /// # let _ = options;
    /// ```
    pub fn progress(mut self, callback: ProgressFn) -> Options {
        self.progress = Some(callback);
        self
    }
}
