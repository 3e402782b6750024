//! The state machine (openraft's `RaftStateMachine`): each replica's own
//! [`ElbStore`], to which committed entries are applied in log order.
//!
//! Determinism is what makes the replicas equal: an entry's request is
//! validated and planned against the replica's state when it is applied (the
//! same state on every replica at the same entry), at the commit time the
//! leader stamped (the store's clock reads that time while the entry is
//! applied), so every replica writes the same transaction with the same
//! sequence number and ids. A refusal (validation, the deletion guard) is
//! deterministic too and is every replica's answer; a failure that is not
//! (a disk error) stops the replica instead of letting it diverge.
//!
//! Files under the replica's directory:
//! - `store/`: the ELB store, an ordinary one (its transactions' origins name
//!   the entries they apply);
//! - `machine/APPLIED`: the last applied entry and membership, written when
//!   an entry that leaves no transaction must be remembered (membership,
//!   init, an installed snapshot);
//! - `machine/snapshot.bin`: the newest snapshot, as shipped to replicas.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, CommittedLeaderId, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::log::blocking;
use super::{NodeId, Proposal, Refusal, Reply, Request, TypeConfig};
use crate::clock::{Clock, Timestamp};
use crate::codec;
use crate::elb::{fleet, ElbError, ElbState, ElbStore, Observer, RevertMode, RevertSelection, Settings};
use crate::identity::Identity;
use crate::io::{FileSystem, RealFs};
use crate::store::{Create, Error, Options, Origin, SyncPolicy, View};

type Membership = StoredMembership<NodeId, openraft::BasicNode>;

/// A replica's state machine.
#[derive(Clone)]
pub struct Machine {
    shared: Arc<Shared>,
}

/// What the state machine needs to know to make or open its store.
#[derive(Clone)]
pub struct MachineConfig {
    /// The replica's directory.
    pub dir: PathBuf,
    /// The store name and environment this replica serves: a group whose
    /// store is another is refused.
    pub name: String,
    /// See `name`.
    pub environment: String,
    /// The ELB settings (region, quotas, guard, alarms): the same on every
    /// replica, or their refusals could differ.
    pub settings: Settings,
    /// Told of every alarm a transaction this replica applies raises.
    pub observer: Option<Observer>,
}

pub(crate) struct Shared {
    config: MachineConfig,
    clock: Arc<EntryClock>,
    store: RwLock<Option<Arc<ElbStore>>>,
    applied: Mutex<Applied>,
    /// The file a snapshot being received is written to.
    incoming: Mutex<Option<PathBuf>>,
    /// The entry and part of the newest transaction, when the replica may
    /// have stopped inside that entry (see `Machine::resume`).
    inside: Mutex<Option<(LogId<NodeId>, u32)>>,
    /// The mark in `machine/APPLIED`; held while it is written.
    saved: Mutex<Option<LogId<NodeId>>>,
}

/// The last applied entry and membership.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Applied {
    last: Option<LogId<NodeId>>,
    membership: Membership,
}

/// A clock that reads what the entry being applied asks for.
#[derive(Debug, Default)]
struct EntryClock(AtomicU64);

impl Clock for EntryClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::Acquire))
    }
}

/// A failure of the state machine's files or store.
#[derive(Debug)]
pub enum MachineError {
    /// The store failed.
    Store(ElbError),
    /// A file of the state machine failed or is damaged.
    File {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The group serves another store than this replica's.
    WrongStore {
        /// The store this replica serves (name/environment, and id once known).
        ours: String,
        /// The group's.
        theirs: String,
    },
}

impl std::fmt::Display for MachineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MachineError::Store(err) => write!(f, "replica's store: {err}"),
            MachineError::File { op, path, problem } => write!(f, "{op} {}: {problem}", path.display()),
            MachineError::WrongStore { ours, theirs } => {
                write!(f, "this replica serves {ours}, and the group's store is {theirs}: refusing to mix them")
            }
        }
    }
}

impl std::error::Error for MachineError {}

fn file_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> MachineError + 'p {
    move |err| MachineError::File { op, path: path.to_path_buf(), problem: err.to_string() }
}

fn fatal(err: MachineError) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&err)).into()
}

const APPLIED_MAGIC: &[u8; 8] = b"ELBRAPL1";
const SNAPSHOT_MAGIC: &[u8; 8] = b"ELBRSNP1";
/// Format of `machine/snapshot.bin`.
const SNAPSHOT_FORMAT: u32 = 1;
/// The limit on the metadata of `machine/APPLIED` and a snapshot bundle.
const META_BYTES_MAX: u64 = 64 << 20;

impl Shared {
    fn store_dir(&self) -> PathBuf {
        self.config.dir.join("store")
    }

    fn machine_dir(&self) -> PathBuf {
        self.config.dir.join("machine")
    }

    fn store_options(&self) -> Options {
        Options::default()
            .create(Create::Never)
            .identity(self.config.name.clone(), self.config.environment.clone())
            // The replicated log is the durable record; the store's own log
            // is fsynced in the background and replayed from the replicated
            // log after a power loss.
            .sync(SyncPolicy::Interval(Duration::from_millis(50)))
            .clock(self.clock.clone())
    }

    fn open_store(&self) -> Result<ElbStore, MachineError> {
        ElbStore::open_observed(
            self.store_dir(),
            self.store_options(),
            self.config.settings.clone(),
            self.config.observer.clone(),
        )
        .map_err(MachineError::Store)
    }

    fn ours(&self) -> String {
        let (name, environment) = (&self.config.name, &self.config.environment);
        match self.store.read().as_ref() {
            Some(store) => format!("{name}/{environment} ({})", store.store().identity().id),
            None => format!("{name}/{environment}"),
        }
    }

    /// Whether a group whose store is `identity` is this replica's.
    pub(crate) fn check_identity(&self, identity: &Identity) -> Result<(), MachineError> {
        let same_name = identity.name == self.config.name && identity.environment == self.config.environment;
        let same_id = self.store.read().as_ref().is_none_or(|store| store.store().identity().id == identity.id);
        if same_name && same_id {
            return Ok(());
        }
        Err(MachineError::WrongStore {
            ours: self.ours(),
            theirs: format!("{}/{} ({})", identity.name, identity.environment, identity.id),
        })
    }

    /// Writes `machine/APPLIED`. The store is made durable first: the mark
    /// must never name an entry whose transactions a power loss could take
    /// from the store.
    /// Marks older than the one already saved are not written (a snapshot
    /// built beside applies may hold an older one).
    fn save_applied(&self, applied: &Applied) -> Result<(), MachineError> {
        let mut saved = self.saved.lock();
        if applied.last.is_some() && applied.last <= *saved {
            return Ok(());
        }
        if let Some(store) = self.store() {
            store.store().sync_now().map_err(|err| MachineError::Store(ElbError::Store(err)))?;
        }
        let path = self.machine_dir().join("APPLIED");
        let payload = codec::encode(applied).map_err(|err| MachineError::File {
            op: "encode",
            path: path.clone(),
            problem: err.to_string(),
        })?;
        let mut bytes = APPLIED_MAGIC.to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        write_durably(&path, &bytes)?;
        *saved = applied.last;
        Ok(())
    }

    fn load_applied(&self) -> Result<Applied, MachineError> {
        let path = self.machine_dir().join("APPLIED");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Applied::default()),
            Err(err) => return Err(file_error("read", &path)(err)),
        };
        let damaged = |problem: &str| MachineError::File { op: "read", path: path.clone(), problem: problem.into() };
        if bytes.len() < 12 || &bytes[..8] != APPLIED_MAGIC {
            return Err(damaged("not an APPLIED file"));
        }
        let payload = &bytes[12..];
        if crc32fast::hash(payload).to_le_bytes() != bytes[8..12] {
            return Err(damaged("checksum mismatch"));
        }
        codec::decode(payload, META_BYTES_MAX).map_err(|err| damaged(&err.to_string()))
    }

    /// The log id and part of the newest transaction in the store, from its origin.
    fn store_applied(store: &ElbStore) -> Result<Option<(LogId<NodeId>, u32)>, MachineError> {
        let seq = store.read().seq();
        if seq == 0 {
            return Ok(None);
        }
        let Some(txn) = store.store().transactions(seq..=seq).next() else { return Ok(None) };
        let txn = txn.map_err(|err| MachineError::Store(ElbError::Store(err)))?;
        Ok(txn.meta.origin.map(|o| (LogId::new(CommittedLeaderId::new(o.term, o.node), o.index), o.part)))
    }
}

/// Writes `bytes` to `path` by a temporary file, fsync and rename, then
/// fsyncs the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), MachineError> {
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    crate::store::seed::write_durably(&fs, path, bytes).map_err(|err| MachineError::Store(ElbError::Store(err)))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(file_error("fsync directory", dir))
}

/// Whether a store error would be the same on every replica (a refusal of
/// the request) rather than this replica's own failure.
fn deterministic(err: &ElbError) -> bool {
    match err {
        ElbError::Store(err) => matches!(
            err,
            Error::EmptyTransaction
                | Error::MissingAttribution { .. }
                | Error::FieldTooLong { .. }
                | Error::RevertsNotEarlier { .. }
                | Error::RecordTooLarge { .. }
                | Error::Unencodable { .. }
                | Error::PointOutOfRange { .. }
                | Error::TimeExhausted { .. }
                | Error::SequenceExhausted { .. }
        ),
        _ => true,
    }
}

fn refusal(err: ElbError) -> Result<Reply, MachineError> {
    if !deterministic(&err) {
        return Err(MachineError::Store(err));
    }
    let guarded = matches!(err, ElbError::BulkDeletionRefused { .. });
    let refused = Refusal { code: err.code().to_owned(), message: err.to_string(), status: err.http_status(), guarded };
    Ok(Reply { refused: Some(refused), ..Reply::default() })
}

impl Machine {
    /// Opens the state machine of the replica in `config.dir`: its store, if
    /// the group's first entry made one, and what it had applied.
    pub fn open(config: MachineConfig) -> Result<Machine, MachineError> {
        let machine_dir = config.dir.join("machine");
        std::fs::create_dir_all(&machine_dir).map_err(file_error("create directory", &machine_dir))?;
        let shared = Arc::new(Shared {
            config,
            clock: Arc::new(EntryClock::default()),
            store: RwLock::new(None),
            applied: Mutex::new(Applied::default()),
            incoming: Mutex::new(None),
            inside: Mutex::new(None),
            saved: Mutex::new(None),
        });
        let mut applied = shared.load_applied()?;
        *shared.saved.lock() = applied.last;
        if shared.store_dir().join(crate::IDENTITY_FILE).exists() {
            let store = shared.open_store()?;
            if let Some((last, part)) = Shared::store_applied(&store)? {
                if applied.last.is_none_or(|applied| applied <= last) {
                    applied.last = Some(last);
                    *shared.inside.lock() = Some((last, part));
                }
            }
            *shared.store.write() = Some(Arc::new(store));
        }
        *shared.applied.lock() = applied;
        Ok(Machine { shared })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The replica's store, once the group's first entry made it.
    pub fn store(&self) -> Option<Arc<ElbStore>> {
        self.shared.store()
    }

    /// The last entry applied.
    pub fn applied(&self) -> Option<LogId<NodeId>> {
        self.shared.applied.lock().last
    }

    fn apply_one(&self, log_id: LogId<NodeId>, proposal: Proposal) -> Result<Vec<Reply>, MachineError> {
        self.apply_from(log_id, proposal, 0)
    }

    /// Applies an entry's requests from part `first` on (the earlier ones
    /// were applied before a restart).
    fn apply_from(&self, log_id: LogId<NodeId>, proposal: Proposal, first: u32) -> Result<Vec<Reply>, MachineError> {
        let shared = &self.shared;
        match proposal {
            Proposal::Init { identity } => {
                let Ok(identity) = Identity::decode(&identity) else {
                    return Ok(vec![Reply {
                        refused: Some(Refusal::invalid("a damaged identity")),
                        ..Reply::default()
                    }]);
                };
                if let Some(store) = shared.store() {
                    if store.store().identity().id == identity.id {
                        return Ok(vec![Reply::default()]);
                    }
                    let message = format!("the group's store is already {}", store.store().identity().id);
                    return Ok(vec![Reply { refused: Some(Refusal::invalid(message)), ..Reply::default() }]);
                }
                shared.check_identity(&identity)?;
                let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
                crate::store::seed::seed(&fs, &shared.store_dir(), &identity, None)
                    .map_err(|err| MachineError::Store(ElbError::Store(err)))?;
                let store = shared.open_store()?;
                *shared.store.write() = Some(Arc::new(store));
                let mut applied = shared.applied.lock();
                applied.last = Some(log_id);
                shared.save_applied(&applied)?;
                Ok(vec![Reply::default()])
            }
            Proposal::Requests { time, requests } => {
                let Some(store) = shared.store() else {
                    let refused = Refusal::unavailable("the group has no store yet (its first entry is not applied)");
                    return Ok(requests
                        .iter()
                        .map(|_| Reply { refused: Some(refused.clone()), ..Reply::default() })
                        .collect());
                };
                shared.clock.0.store(time.as_nanos(), Ordering::Release);
                let mut replies = Vec::with_capacity(requests.len());
                for (part, request) in requests.into_iter().enumerate() {
                    let part = part as u32;
                    if part < first {
                        replies.push(Reply::default());
                        continue;
                    }
                    let (term, node, index) = (log_id.leader_id.term, log_id.leader_id.node_id, log_id.index);
                    replies.push(apply_request(&store, request, Origin { term, node, index, part })?);
                }
                Ok(replies)
            }
        }
    }

    /// Finishes the entry this replica stopped inside, if it did: when its
    /// newest transaction is part p of an entry (and nothing applied after
    /// that entry says it was finished), the requests after p are applied
    /// from the entry in `log`. Call it after opening, before serving.
    pub fn resume(&self, log: &super::log::LogStore) -> Result<(), MachineError> {
        let Some((log_id, part)) = self.shared.inside.lock().take() else { return Ok(()) };
        let missing = |problem: String| MachineError::File {
            op: "resume the entry of the newest transaction from",
            path: self.shared.config.dir.join("raft"),
            problem,
        };
        let Some(entry) = log.entry(log_id.index) else {
            // Purged: a snapshot holds the entry whole, so it was finished.
            if log.summary().purged.is_some_and(|purged| purged >= log_id) {
                return Ok(());
            }
            return Err(missing(format!("entry {} is not in the replicated log", log_id.index)));
        };
        if entry.log_id != log_id {
            return Err(missing(format!("entry {} is {}, not {log_id}", log_id.index, entry.log_id)));
        }
        if let EntryPayload::Normal(proposal) = entry.payload {
            self.apply_from(log_id, proposal, part + 1)?;
        }
        Ok(())
    }
}

/// Applies one request to the store.
fn apply_request(store: &ElbStore, request: Request, origin: Origin) -> Result<Reply, MachineError> {
    let outcome = match request {
        Request::Execute { meta, commands } => store.execute(meta.with_origin(origin), commands),
        Request::ReferenceFleet { meta, first, end } => {
            store.execute_with(meta.with_origin(origin), |_, ctx| fleet::batch_commands(first..end, ctx.seq))
        }
        Request::Revert { meta, transactions, on_conflict } => {
            let selection = RevertSelection::Transactions(transactions);
            match store.revert(selection, meta.with_origin(origin), RevertMode::Apply, on_conflict) {
                Ok(plan) => {
                    let Some(committed) = plan.committed else {
                        let message = format!("nothing written: {} conflicts", plan.conflicts.len());
                        return Ok(Reply { refused: Some(Refusal::invalid(message)), ..Reply::default() });
                    };
                    return Ok(Reply { seq: Some(committed.seq), time: Some(committed.time), ..Reply::default() });
                }
                Err(err) => return refusal(err),
            }
        }
    };
    match outcome {
        Ok(applied) => Ok(Reply {
            seq: applied.committed.map(|c| c.seq),
            time: applied.committed.map(|c| c.time),
            created: applied.created,
            outcomes: applied.outcomes,
            alarms: applied.alarms.iter().map(|alarm| format!("{:?}", alarm.kind)).collect(),
            refused: None,
        }),
        Err(err) => refusal(err),
    }
}

impl Shared {
    pub(crate) fn store(&self) -> Option<Arc<ElbStore>> {
        self.store.read().clone()
    }

    /// The store's identity, once it has one.
    pub(crate) fn identity(&self) -> Option<Identity> {
        self.store.read().as_ref().map(|store| store.store().identity().clone())
    }

    /// Writes the snapshot of `view` with the applied marks into
    /// `machine/snapshot.bin` and returns its metadata.
    fn write_snapshot(
        &self,
        identity: Option<&Identity>,
        view: Option<&View<ElbState>>,
        applied: &Applied,
    ) -> Result<SnapshotMeta<NodeId, openraft::BasicNode>, MachineError> {
        let seq = view.map_or(0, |v| v.seq());
        let snapshot_id = match applied.last {
            Some(id) => format!("{}-{}-{}-{seq}", id.leader_id.term, id.leader_id.node_id, id.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id: applied.last, last_membership: applied.membership.clone(), snapshot_id };
        let state_bytes = match (identity, view) {
            (Some(identity), Some(view)) if view.seq() > 0 => {
                let build = self.machine_dir().join("build");
                let _ = std::fs::remove_dir_all(&build);
                std::fs::create_dir_all(&build).map_err(file_error("create directory", &build))?;
                let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
                let header = crate::snapshot::SnapshotHeader {
                    store_id: identity.id,
                    seq: view.seq(),
                    time: view.time(),
                    schema: <ElbState as crate::StateMachine>::SCHEMA_VERSION.into(),
                };
                crate::snapshot::write_snapshot(&fs, &build, header, view.state(), u64::MAX)
                    .map_err(|err| MachineError::Store(ElbError::Store(Error::Snapshot(err))))?;
                let path = build.join(crate::snapshot::snapshot_file_name(view.seq()));
                let bytes = std::fs::read(&path).map_err(file_error("read", &path))?;
                let _ = std::fs::remove_dir_all(&build);
                bytes
            }
            _ => Vec::new(),
        };
        // The applied mark too (as it is now, at or past the snapshot's), or a
        // restart could report a point the log has since purged: entries that
        // leave no transaction move only this mark.
        let now = self.applied.lock().clone();
        self.save_applied(&now)?;
        let bundle = encode_bundle(&meta, identity, &state_bytes).map_err(|err| MachineError::File {
            op: "encode",
            path: self.machine_dir().join("snapshot.bin"),
            problem: err.to_string(),
        })?;
        write_durably(&self.machine_dir().join("snapshot.bin"), &bundle)?;
        Ok(meta)
    }

    /// Replaces the store with the one in the received snapshot `path`.
    fn install(&self, meta: &SnapshotMeta<NodeId, openraft::BasicNode>, path: &Path) -> Result<(), MachineError> {
        let bytes = std::fs::read(path).map_err(file_error("read", path))?;
        let bundle = decode_bundle(&bytes).map_err(|problem| MachineError::File {
            op: "install snapshot",
            path: path.to_path_buf(),
            problem,
        })?;
        let identity = match &bundle.identity {
            Some(identity) => {
                self.check_identity(identity)?;
                Some(identity.clone())
            }
            None => None,
        };
        let current = self.machine_dir().join("snapshot.bin");
        std::fs::rename(path, &current).map_err(file_error("rename", path))?;
        let store_dir = self.store_dir();
        let replaced = self.config.dir.join("store.replaced");
        let old = self.store.write().take();
        if store_dir.exists() {
            let _ = std::fs::remove_dir_all(&replaced);
            std::fs::rename(&store_dir, &replaced).map_err(file_error("rename", &store_dir))?;
        }
        // Readers holding the old store keep it until they let go; its files
        // are gone from the directory already.
        drop(old);
        if let Some(identity) = identity {
            let state = (!bundle.state.is_empty()).then_some(bundle.state);
            let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
            crate::store::seed::seed(&fs, &store_dir, &identity, state)
                .map_err(|err| MachineError::Store(ElbError::Store(err)))?;
            *self.store.write() = Some(Arc::new(self.open_store()?));
        }
        // The mark first, then the old store's removal (which takes time).
        {
            let mut applied = self.applied.lock();
            *applied = Applied { last: meta.last_log_id, membership: meta.last_membership.clone() };
            self.save_applied(&applied)?;
        }
        let _ = std::fs::remove_dir_all(&replaced);
        Ok(())
    }
}

/// `machine/snapshot.bin`, decoded.
struct Bundle<'a> {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    identity: Option<Identity>,
    /// The store's snapshot file (empty for the empty state).
    state: &'a [u8],
}

// { magic "ELBRSNP1" | format: u32 = 1 | meta_bytes: u32 | identity_bytes: u32
// | crc32(meta ++ identity): u32 | meta: bincode(SnapshotMeta) | identity: IDENTITY file (or none)
// | the store's snapshot file, to the end (or none) }
fn encode_bundle(
    meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
    identity: Option<&Identity>,
    state: &[u8],
) -> Result<Vec<u8>, codec::CodecError> {
    let meta = codec::encode(meta)?;
    let identity = identity.map(Identity::encode).unwrap_or_default();
    let mut out = Vec::with_capacity(28 + meta.len() + identity.len() + state.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta);
    crc.update(&identity);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&identity);
    out.extend_from_slice(state);
    Ok(out)
}

fn decode_bundle(bytes: &[u8]) -> Result<Bundle<'_>, String> {
    if bytes.len() < 24 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err("not a replica snapshot".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if u32_at(8) != SNAPSHOT_FORMAT {
        return Err(format!("snapshot format {} is not one this build reads ({SNAPSHOT_FORMAT})", u32_at(8)));
    }
    let (meta_bytes, identity_bytes) = (u32_at(12) as usize, u32_at(16) as usize);
    let body = &bytes[24..];
    if body.len() < meta_bytes + identity_bytes {
        return Err("cut short".into());
    }
    let (meta, rest) = body.split_at(meta_bytes);
    let (identity, state) = rest.split_at(identity_bytes);
    let mut crc = crc32fast::Hasher::new();
    crc.update(meta);
    crc.update(identity);
    if crc.finalize() != u32_at(20) {
        return Err("checksum mismatch".into());
    }
    let meta = codec::decode(meta, META_BYTES_MAX).map_err(|err| err.to_string())?;
    let identity = match identity {
        [] => None,
        bytes => Some(Identity::decode(bytes).map_err(|problem| format!("identity: {problem:?}"))?),
    };
    Ok(Bundle { meta, identity, state })
}

/// Builds a snapshot of the state captured when it was asked for.
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    identity: Option<Identity>,
    view: Option<View<ElbState>>,
    applied: Applied,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let meta = blocking(|| self.shared.write_snapshot(self.identity.as_ref(), self.view.as_ref(), &self.applied))
            .map_err(fatal)?;
        let path = self.shared.machine_dir().join("snapshot.bin");
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|err| StorageIOError::read_snapshot(None, AnyError::new(&err)))?;
        Ok(Snapshot { meta, snapshot: Box::new(file) })
    }
}

impl RaftStateMachine<TypeConfig> for Machine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        let applied = self.shared.applied.lock();
        Ok((applied.last, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<Reply>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        blocking(|| {
            let mut replies = Vec::with_capacity(entries.len());
            for entry in entries {
                let log_id = entry.log_id;
                let reply = match entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(proposal) => self.apply_one(log_id, proposal)?,
                    EntryPayload::Membership(membership) => {
                        let mut applied = self.shared.applied.lock();
                        applied.membership = StoredMembership::new(Some(log_id), membership);
                        applied.last = Some(log_id);
                        self.shared.save_applied(&applied)?;
                        Vec::new()
                    }
                };
                self.shared.applied.lock().last = Some(log_id);
                replies.push(reply);
            }
            Ok(replies)
        })
        .map_err(fatal)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let store = self.shared.store();
        SnapshotBuilder {
            shared: self.shared.clone(),
            identity: store.as_ref().map(|s| s.store().identity().clone()),
            view: store.as_ref().map(|s| s.read()),
            applied: self.shared.applied.lock().clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let path = self.shared.machine_dir().join("incoming.bin");
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|err| StorageIOError::write_snapshot(None, AnyError::new(&err)))?;
        *self.shared.incoming.lock() = Some(path);
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        mut snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        use tokio::io::AsyncWriteExt;
        snapshot.flush().await.map_err(|err| StorageIOError::write_snapshot(None, AnyError::new(&err)))?;
        snapshot.sync_all().await.map_err(|err| StorageIOError::write_snapshot(None, AnyError::new(&err)))?;
        drop(snapshot);
        let path = self.shared.incoming.lock().take().unwrap_or_else(|| self.shared.machine_dir().join("incoming.bin"));
        blocking(|| self.shared.install(meta, &path)).map_err(fatal)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let path = self.shared.machine_dir().join("snapshot.bin");
        let read = blocking(|| -> std::io::Result<Option<Vec<u8>>> {
            match std::fs::File::open(&path) {
                Ok(mut file) => {
                    // The header and metadata are at the front; read enough for them.
                    let mut head = vec![0u8; 24];
                    file.read_exact(&mut head)?;
                    let meta_bytes = u32::from_le_bytes(head[12..16].try_into().expect("4 bytes")) as usize;
                    let identity_bytes = u32::from_le_bytes(head[16..20].try_into().expect("4 bytes")) as usize;
                    let mut rest = vec![0u8; meta_bytes + identity_bytes];
                    file.read_exact(&mut rest)?;
                    head.extend_from_slice(&rest);
                    Ok(Some(head))
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err),
            }
        })
        .map_err(|err| StorageIOError::read_snapshot(None, AnyError::new(&err)))?;
        let Some(head) = read else { return Ok(None) };
        let bundle =
            decode_bundle(&head).map_err(|problem| StorageIOError::read_snapshot(None, AnyError::error(problem)))?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|err| StorageIOError::read_snapshot(None, AnyError::new(&err)))?;
        Ok(Some(Snapshot { meta: bundle.meta, snapshot: Box::new(file) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_round_trips_and_damage_is_refused() {
        let meta = SnapshotMeta { last_log_id: None, last_membership: Membership::default(), snapshot_id: "x".into() };
        let identity =
            Identity { id: crate::StoreId(9), name: "elb".into(), environment: "test".into(), created: Timestamp(5) };
        let bytes = encode_bundle(&meta, Some(&identity), b"state").unwrap();
        let bundle = decode_bundle(&bytes).unwrap();
        assert_eq!((bundle.meta, bundle.identity, bundle.state), (meta.clone(), Some(identity), &b"state"[..]));
        for at in [0, 9, 25, 30] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1;
            assert!(decode_bundle(&damaged).is_err(), "a flip at {at} is caught");
        }
        assert!(decode_bundle(&bytes[..20]).is_err());
        let empty = encode_bundle(&meta, None, &[]).unwrap();
        assert!(decode_bundle(&empty).unwrap().identity.is_none());
    }

    /// A replica stopped inside an entry of several requests applies the
    /// rest of it when it opens again, each once, with its part.
    #[test]
    fn a_replica_stopped_inside_an_entry_finishes_it_on_resume() {
        use openraft::CommittedLeaderId;

        use crate::replication::log::{LogStore, Record};
        use crate::replication::Request;
        use crate::store::TxnMeta;

        let dir = std::env::temp_dir().join(format!("elbstore-machine-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = MachineConfig {
            dir: dir.clone(),
            name: "elb".into(),
            environment: "test".into(),
            settings: Settings::in_region("us-east-1"),
            observer: None,
        };
        let id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
        let fleet = |i: u64| Request::ReferenceFleet { meta: TxnMeta::new("svc:test", "fleet"), first: i, end: i + 1 };
        let time = crate::clock::Clock::now(&crate::clock::SystemClock);
        let entry = Proposal::Requests { time, requests: vec![fleet(0), fleet(1), fleet(2)] };
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let log = LogStore::open(fs.clone(), &dir.join("raft")).unwrap();
        log.write_for_test(Record::Entry(openraft::Entry {
            log_id: id(2),
            payload: EntryPayload::Normal(entry.clone()),
        }));
        {
            let machine = Machine::open(config.clone()).unwrap();
            machine.apply_one(id(1), Proposal::init("elb", "test")).unwrap();
            // It stops after the entry's first request.
            let first = Proposal::Requests { time, requests: vec![fleet(0)] };
            let replies = machine.apply_one(id(2), first).unwrap();
            assert_eq!(replies[0].seq, Some(1));
        }
        let machine = Machine::open(config).unwrap();
        assert_eq!(machine.applied(), Some(id(2)));
        machine.resume(&log).unwrap();
        let store = machine.store().unwrap();
        assert_eq!(store.read().seq(), 3, "the entry's other two requests, once each");
        assert_eq!(store.read().counts().load_balancers, 3);
        let parts: Vec<u32> = store.store().transactions(1..=3).map(|t| t.unwrap().meta.origin.unwrap().part).collect();
        assert_eq!(parts, vec![0, 1, 2]);
        // Resuming again does nothing.
        machine.resume(&log).unwrap();
        assert_eq!(store.read().seq(), 3);
        drop((store, machine, log));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
