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
//!   init), at every snapshot built and when one is installed;
//! - `machine/snapshot.bin`: the newest snapshot, as shipped to replicas
//!   (`bundle`), and `machine/incoming.bin`, one being received;
//! - `machine/INSTALLING`, `store.new/`, `store.replaced/`: an install in
//!   progress (`Shared::install`).

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
use super::{bundle, NodeId, Proposal, Refusal, Reply, Request, TypeConfig};
use crate::clock::{Clock, Timestamp};
use crate::codec;
use crate::elb::{fleet, ElbError, ElbState, ElbStore, Observer, RevertMode, RevertSelection, Settings};
use crate::identity::Identity;
use crate::io::{FileSystem, RealFs};
use crate::store::{Create, Error, Options, Origin, RequestId, SyncPolicy, View};

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
    /// Held while a snapshot is written or installed.
    snapshot_turn: Mutex<()>,
    /// How many snapshots this replica installed since it opened.
    installs: AtomicU64,
    /// The recent writes by id, for deduplication.
    recent: Mutex<Recent>,
}

/// How far back a write's id is looked for: a retry within this much of the
/// first attempt's commit, and within `DEDUP_TRANSACTIONS` transactions of
/// it, is answered from it instead of applied again.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(60);
/// See `DEDUP_WINDOW`.
pub const DEDUP_TRANSACTIONS: u64 = 100_000;

/// The ids of the writes among the store's recent transactions, and the
/// answers they were given. Whether a write is a retry is decided from the
/// store's log alone (`find` reads the table without changing it, and the
/// table forgets only by the head's seq and time, which the log gives), so
/// every replica decides alike, including one that just opened or installed
/// a snapshot (`rebuild`).
#[derive(Default)]
struct Recent {
    by_id: std::collections::HashMap<RequestId, Recorded>,
    /// Ids in the order of their transactions, with the transactions' seq and time.
    order: std::collections::VecDeque<(u64, Timestamp, RequestId)>,
}

/// A write's transaction, and the answer it was given when this replica
/// applied it (none when it learned of it from the log).
struct Recorded {
    seq: u64,
    time: Timestamp,
    reply: Option<Reply>,
}

impl Recorded {
    fn duplicate(&self) -> Reply {
        let first = self.reply.clone().unwrap_or_default();
        Reply { seq: Some(self.seq), time: Some(self.time), duplicate: true, refused: None, ..first }
    }
}

impl Recent {
    /// The transaction carrying `id`, if it is recent for a write applied
    /// after transaction `head` at `time` (not before `head`'s): among the
    /// last `DEDUP_TRANSACTIONS` and committed within `DEDUP_WINDOW` of `time`.
    fn find(&self, id: RequestId, head: u64, time: Timestamp) -> Option<&Recorded> {
        let window = DEDUP_WINDOW.as_nanos() as u64;
        self.by_id.get(&id).filter(|r| {
            r.seq.saturating_add(DEDUP_TRANSACTIONS) > head
                && r.time.as_nanos().saturating_add(window) >= time.as_nanos()
        })
    }

    /// Records the transaction `seq` at `time`, the new head, and forgets
    /// what no later write can find.
    fn record(&mut self, id: RequestId, seq: u64, time: Timestamp, reply: Option<Reply>) {
        self.by_id.insert(id, Recorded { seq, time, reply });
        self.order.push_back((seq, time, id));
        self.forget(seq, time);
    }

    /// Forgets the ids of transactions that are no longer recent for any
    /// write after the head `head` at `time` (see `find`: a later write's
    /// time is never before the head's).
    fn forget(&mut self, head: u64, time: Timestamp) {
        let window = DEDUP_WINDOW.as_nanos() as u64;
        while let Some(&(seq, at, id)) = self.order.front() {
            let recent = at.as_nanos().saturating_add(window) >= time.as_nanos();
            if seq.saturating_add(DEDUP_TRANSACTIONS) > head && recent {
                break;
            }
            self.order.pop_front();
            if self.by_id.get(&id).is_some_and(|r| r.seq == seq) {
                self.by_id.remove(&id);
            }
        }
    }

    /// The recent writes of `store`, from the ids its newest transactions
    /// carry (reading only the window's part of the log).
    fn rebuild(store: &ElbStore) -> Result<Recent, MachineError> {
        let view = store.read();
        let head = view.seq();
        let mut recent = Recent::default();
        let since = Timestamp(view.time().as_nanos().saturating_sub(DEDUP_WINDOW.as_nanos() as u64 + 1));
        for txn in store.store().transactions_after(since) {
            let txn = txn?;
            if txn.seq > head {
                break;
            }
            if let Some(id) = txn.meta.origin.and_then(|origin| origin.request) {
                recent.record(id, txn.seq, txn.time, None);
            }
        }
        recent.forget(head, view.time());
        Ok(recent)
    }
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

impl From<Error> for MachineError {
    fn from(err: Error) -> MachineError {
        MachineError::Store(ElbError::Store(err))
    }
}

pub(super) fn file_error<'p>(op: &'static str, path: &'p Path) -> impl Fn(std::io::Error) -> MachineError + Copy + 'p {
    move |err| MachineError::File { op, path: path.to_path_buf(), problem: err.to_string() }
}

fn fatal(err: MachineError) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&err)).into()
}

const APPLIED_MAGIC: &[u8; 8] = b"ELBRAPL1";
/// The limit on the contents of `machine/APPLIED`.
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
            store.store().sync_now()?;
        }
        write_mark(&self.machine_dir().join("APPLIED"), applied)?;
        *saved = applied.last;
        Ok(())
    }

    fn load_applied(&self) -> Result<Applied, MachineError> {
        Ok(read_mark(&self.machine_dir().join("APPLIED"))?.unwrap_or_default())
    }

    /// The log id and part of the newest transaction in the store, from its origin.
    fn store_applied(store: &ElbStore) -> Result<Option<(LogId<NodeId>, u32)>, MachineError> {
        let seq = store.read().seq();
        if seq == 0 {
            return Ok(None);
        }
        let Some(txn) = store.store().transactions(seq..=seq).next() else { return Ok(None) };
        let txn = txn?;
        Ok(txn.meta.origin.map(|o| (LogId::new(CommittedLeaderId::new(o.term, o.node), o.index), o.part)))
    }
}

/// Writes an applied mark (`machine/APPLIED`, `machine/INSTALLING`) durably.
fn write_mark(path: &Path, applied: &Applied) -> Result<(), MachineError> {
    let payload = codec::encode(applied).map_err(|err| MachineError::File {
        op: "encode",
        path: path.to_path_buf(),
        problem: err.to_string(),
    })?;
    let mut bytes = APPLIED_MAGIC.to_vec();
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    write_durably(path, &bytes)
}

/// Reads an applied mark, `None` when there is none.
fn read_mark(path: &Path) -> Result<Option<Applied>, MachineError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(file_error("read", path)(err)),
    };
    let damaged = |problem: &str| MachineError::File { op: "read", path: path.to_path_buf(), problem: problem.into() };
    if bytes.len() < 12 || &bytes[..8] != APPLIED_MAGIC {
        return Err(damaged("not an applied mark"));
    }
    let payload = &bytes[12..];
    if crc32fast::hash(payload).to_le_bytes() != bytes[8..12] {
        return Err(damaged("checksum mismatch"));
    }
    codec::decode(payload, META_BYTES_MAX).map(Some).map_err(|err| damaged(&err.to_string()))
}

/// Writes `bytes` to `path` by a temporary file, fsync and rename, then
/// fsyncs the directory.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), MachineError> {
    let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
    crate::store::seed::write_durably(&fs, path, bytes)?;
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
            snapshot_turn: Mutex::new(()),
            installs: AtomicU64::new(0),
            recent: Mutex::new(Recent::default()),
        });
        // An install a crash interrupted: finished if its journal was
        // written, else its leftovers removed.
        if shared.machine_dir().join("INSTALLING").exists() {
            shared.finish_install()?;
        }
        for leftover in ["store.new", "store.replaced"] {
            let path = shared.config.dir.join(leftover);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(file_error("remove", &path))?;
            }
        }
        let mut applied = shared.load_applied()?;
        *shared.saved.lock() = applied.last;
        if shared.store().is_none() && shared.store_dir().join(crate::IDENTITY_FILE).exists() {
            shared.adopt(Some(shared.open_store()?))?;
        }
        if let Some(store) = shared.store() {
            if let Some((last, part)) = Shared::store_applied(&store)? {
                // A mark at that entry says it was finished (every mark names
                // an entry applied whole).
                if applied.last.is_none_or(|applied| applied < last) {
                    applied.last = Some(last);
                    *shared.inside.lock() = Some((last, part));
                }
            }
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
                crate::store::seed::seed(&fs, &shared.store_dir(), &identity, None)?;
                shared.adopt(Some(shared.open_store()?))?;
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
                let mut recent = shared.recent.lock();
                for (part, write) in requests.into_iter().enumerate() {
                    let part = part as u32;
                    if part < first {
                        replies.push(Reply::default());
                        continue;
                    }
                    // Decided by the head's seq and the time the write commits
                    // at (never before the head's): the same on every replica.
                    let found = write.id.and_then(|id| {
                        let head = store.read();
                        recent.find(id, head.seq(), time.max(head.time()))
                    });
                    if let Some(found) = found {
                        let mut reply = found.duplicate();
                        if found.reply.is_none() {
                            // Learned from the log: what it created, read back from it.
                            let txn = store.store().transactions(found.seq..=found.seq).next();
                            let events = txn.and_then(Result::ok).map(|txn| txn.events).unwrap_or_default();
                            reply.created = crate::elb::created_in(&events);
                        }
                        replies.push(reply);
                        continue;
                    }
                    let (term, node, index) = (log_id.leader_id.term, log_id.leader_id.node_id, log_id.index);
                    let origin = Origin { term, node, index, part, request: write.id };
                    let reply = apply_request(&store, write.request, origin)?;
                    if let (Some(id), Some(seq), Some(time)) = (write.id, reply.seq, reply.time) {
                        recent.record(id, seq, time, Some(reply.clone()));
                    }
                    replies.push(reply);
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
            duplicate: false,
        }),
        Err(err) => refusal(err),
    }
}

impl Shared {
    pub(crate) fn store(&self) -> Option<Arc<ElbStore>> {
        self.store.read().clone()
    }

    /// Makes `store` the replica's, with the recent write ids its log holds.
    fn adopt(&self, store: Option<ElbStore>) -> Result<(), MachineError> {
        let recent = store.as_ref().map(Recent::rebuild).transpose()?.unwrap_or_default();
        *self.recent.lock() = recent;
        *self.store.write() = store.map(Arc::new);
        Ok(())
    }

    /// The store's identity, once it has one.
    pub(crate) fn identity(&self) -> Option<Identity> {
        self.store.read().as_ref().map(|store| store.store().identity().clone())
    }

    /// Writes the snapshot of `view` of `store` (as captured with `applied`)
    /// into `machine/snapshot.bin` and returns its metadata; when an
    /// installed snapshot replaced `store` meanwhile, that one's instead.
    fn write_snapshot(
        &self,
        store: Option<&Arc<ElbStore>>,
        view: Option<&View<ElbState>>,
        applied: &Applied,
        installs: u64,
    ) -> Result<SnapshotMeta<NodeId, openraft::BasicNode>, MachineError> {
        // Not beside an install, which replaces the store this copies.
        let _turn = self.snapshot_turn.lock();
        let path = self.machine_dir().join("snapshot.bin");
        if self.installs.load(Ordering::Acquire) != installs {
            return Ok(bundle::read_head_of(&path).map_err(file_error("read", &path))?.meta);
        }
        let seq = view.map_or(0, |v| v.seq());
        let snapshot_id = match applied.last {
            Some(id) => format!("{}-{}-{}-{seq}", id.leader_id.term, id.leader_id.node_id, id.index),
            None => format!("none-{seq}"),
        };
        let meta = SnapshotMeta { last_log_id: applied.last, last_membership: applied.membership.clone(), snapshot_id };
        // The store's records through the snapshot are written (the view
        // was published), and durable before the applied mark below names them.
        let source = match (store, view) {
            (Some(store), Some(view)) => {
                Some(bundle::Source { identity: store.store().identity(), store: store.as_ref(), view })
            }
            _ => None,
        };
        // The applied mark too (as it is now, at or past the snapshot's), or a
        // restart could report a point the log has since purged: entries that
        // leave no transaction move only this mark.
        let now = self.applied.lock().clone();
        self.save_applied(&now)?;
        bundle::write(&path, &self.machine_dir().join("build"), &meta, source)?;
        Ok(meta)
    }

    /// Replaces the store with the one in the received snapshot `path`, as
    /// one step a crash cannot leave half done: the new store is built whole
    /// in `store.new/`, then `machine/INSTALLING` (the applied mark it
    /// brings) is written, and from there `finish_install` completes the
    /// swap, now or when the replica opens again.
    fn install(&self, meta: &SnapshotMeta<NodeId, openraft::BasicNode>, path: &Path) -> Result<(), MachineError> {
        let _turn = self.snapshot_turn.lock();
        let staged = self.config.dir.join("store.new");
        if staged.exists() {
            std::fs::remove_dir_all(&staged).map_err(file_error("remove", &staged))?;
        }
        let head = bundle::unpack(path, &staged, |identity| self.check_identity(identity))?;
        if head.meta.last_log_id != meta.last_log_id {
            return Err(MachineError::File {
                op: "install snapshot",
                path: path.to_path_buf(),
                problem: format!("it is of {:?}, and {:?} was sent", head.meta.last_log_id, meta.last_log_id),
            });
        }
        // The new store must open (a newer schema, a record over the limit
        // would not) before the journal commits the replica to it.
        if staged.join(crate::IDENTITY_FILE).exists() {
            let opened = ElbStore::open(&staged, self.store_options(), self.config.settings.clone());
            if let Err(err) = opened.and_then(|store| store.close()) {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(MachineError::Store(err));
            }
        }
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        fs.sync_dir(&self.config.dir).map_err(file_error("fsync directory", &self.config.dir))?;
        let applied = Applied { last: meta.last_log_id, membership: meta.last_membership.clone() };
        write_mark(&self.machine_dir().join("INSTALLING"), &applied)?;
        self.finish_install()
    }

    /// Completes an install `machine/INSTALLING` records: `store.new/`
    /// replaces `store/`, the received bundle becomes `machine/snapshot.bin`,
    /// the applied mark is saved, then the journal and the old store are
    /// removed. Each step can be repeated after a crash.
    fn finish_install(&self) -> Result<(), MachineError> {
        let journal = self.machine_dir().join("INSTALLING");
        let applied = read_mark(&journal)?.unwrap_or_default();
        let (store_dir, staged) = (self.store_dir(), self.config.dir.join("store.new"));
        let replaced = self.config.dir.join("store.replaced");
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        if staged.exists() {
            let old = self.store.write().take();
            if store_dir.exists() {
                if replaced.exists() {
                    std::fs::remove_dir_all(&replaced).map_err(file_error("remove", &replaced))?;
                }
                std::fs::rename(&store_dir, &replaced).map_err(file_error("rename", &store_dir))?;
            }
            // Readers holding the old store keep it until they let go; its
            // files are gone from the directory already.
            drop(old);
            std::fs::rename(&staged, &store_dir).map_err(file_error("rename", &staged))?;
            fs.sync_dir(&self.config.dir).map_err(file_error("fsync directory", &self.config.dir))?;
        }
        let incoming = self.machine_dir().join("incoming.bin");
        if incoming.exists() {
            let current = self.machine_dir().join("snapshot.bin");
            std::fs::rename(&incoming, &current).map_err(file_error("rename", &incoming))?;
            fs.sync_dir(&self.machine_dir()).map_err(file_error("fsync directory", &self.machine_dir()))?;
        }
        let store = match store_dir.join(crate::IDENTITY_FILE).exists() {
            true => Some(self.open_store()?),
            false => None,
        };
        self.adopt(store)?;
        self.installs.fetch_add(1, Ordering::AcqRel);
        {
            let mut last = self.applied.lock();
            *last = applied;
            // The installed mark replaces whatever was saved.
            *self.saved.lock() = None;
            self.save_applied(&last)?;
        }
        std::fs::remove_file(&journal).map_err(file_error("remove", &journal))?;
        fs.sync_dir(&self.machine_dir()).map_err(file_error("fsync directory", &self.machine_dir()))?;
        if replaced.exists() {
            std::fs::remove_dir_all(&replaced).map_err(file_error("remove", &replaced))?;
        }
        Ok(())
    }
}

/// Builds a snapshot of the state captured when it was asked for.
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    store: Option<Arc<ElbStore>>,
    view: Option<View<ElbState>>,
    applied: Applied,
    /// `Shared::installs` when the state was captured.
    installs: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let meta = blocking(|| {
            self.shared.write_snapshot(self.store.as_ref(), self.view.as_ref(), &self.applied, self.installs)
        })
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
            view: store.as_ref().map(|s| s.read()),
            store,
            applied: self.shared.applied.lock().clone(),
            installs: self.shared.installs.load(Ordering::Acquire),
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
        // One handle for the head and the bytes: a build may replace the file.
        let path = self.shared.machine_dir().join("snapshot.bin");
        let opened = blocking(|| {
            use std::io::{Seek, SeekFrom};
            let mut file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(err),
            };
            let head = bundle::read_head(&mut file)
                .map_err(|problem| std::io::Error::new(std::io::ErrorKind::InvalidData, problem))?;
            file.seek(SeekFrom::Start(0))?;
            Ok(Some((head, file)))
        })
        .map_err(|err| StorageIOError::read_snapshot(None, AnyError::new(&err)))?;
        let Some((head, file)) = opened else { return Ok(None) };
        Ok(Some(Snapshot { meta: head.meta, snapshot: Box::new(tokio::fs::File::from_std(file)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::Write;
    use crate::store::TxnMeta;

    fn config(dir: &Path) -> MachineConfig {
        MachineConfig {
            dir: dir.to_path_buf(),
            name: "elb".into(),
            environment: "test".into(),
            settings: Settings::in_region("us-east-1"),
            observer: None,
        }
    }

    fn fleet(i: u64) -> Write {
        Write::once(Request::ReferenceFleet { meta: TxnMeta::new("svc:test", "fleet"), first: i, end: i + 1 })
    }

    /// A retried write (the same id) is answered from its transaction and
    /// not applied again: the retry of a deletion is answered with the
    /// deletion, not "nothing changed". The replica knows it after it reopens (from its log), and
    /// forgets it past the window.
    #[test]
    fn a_retried_write_is_applied_once() {
        use crate::elb::{Command, EntityKey};
        let dir = std::env::temp_dir().join(format!("elbstore-machine-dedup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
        let time = crate::clock::Clock::now(&crate::clock::SystemClock);
        let later = |secs: u64| Timestamp(time.as_nanos() + secs * 1_000_000_000);
        let machine = Machine::open(config(&dir)).unwrap();
        machine.apply_one(id(1), Proposal::init("elb", "test")).unwrap();
        let built = machine.apply_one(id(2), Proposal::Requests { time, requests: vec![fleet(0)] }).unwrap();
        let lb = built[0].created.iter().find_map(|(_, _, key)| match key {
            EntityKey::LoadBalancer(lb) => Some(*lb),
            _ => None,
        });
        let request = Request::Execute {
            meta: TxnMeta::new("ops:test", "retire it"),
            commands: vec![Command::DeleteLoadBalancer { load_balancer: lb.unwrap() }],
        };
        let delete = Write { id: Some(RequestId { client: 7, serial: 1 }), request: request.clone() };
        let apply = |machine: &Machine, index, time, write: &Write| {
            let proposal = Proposal::Requests { time, requests: vec![write.clone()] };
            machine.apply_one(id(index), proposal).unwrap().remove(0)
        };
        // A create's retry after the replica reopened names what it created.
        let create = Write { id: Some(RequestId { client: 7, serial: 0 }), request: fleet(1).request };
        let created = apply(&machine, 3, later(1), &create);
        assert_eq!(created.created.len(), 6, "a load balancer, its target group, 2 listeners, 2 rules: {created:?}");
        let first = apply(&machine, 4, later(1), &delete);
        assert_eq!((first.seq, first.refused.is_none(), first.duplicate), (Some(3), true, false));
        let retry = apply(&machine, 5, later(2), &delete);
        assert_eq!(retry, Reply { duplicate: true, ..first.clone() });
        // Without an id the retry applies again: it changes nothing, and
        // its answer says so, not which transaction did the deletion.
        let again = apply(&machine, 6, later(3), &Write::once(request));
        assert_eq!((again.seq, again.outcomes), (None, vec![crate::elb::Outcome::Changed(0)]));
        assert_eq!(machine.store().unwrap().read().seq(), 3);
        drop(machine);
        // Reopened, the replica finds the id in its log.
        let machine = Machine::open(config(&dir)).unwrap();
        let retry = apply(&machine, 7, later(4), &delete);
        assert_eq!((retry.seq, retry.time, retry.duplicate), (first.seq, first.time, true));
        let again = apply(&machine, 8, later(4), &create);
        assert_eq!((again.seq, again.duplicate, &again.created), (created.seq, true, &created.created));
        // Past the window it is a new write.
        let late = apply(&machine, 9, later(1 + DEDUP_WINDOW.as_secs() + 1), &delete);
        assert!(!late.duplicate && late.seq.is_none(), "{late:?}");
        drop(machine);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Whether a write is a retry depends on the log only: looking an id up
    /// for a later write (one refused, say) forgets nothing an earlier-stamped
    /// write after it could still find, and the table forgets only by the
    /// head's seq and time.
    #[test]
    fn looking_up_an_id_changes_nothing() {
        let (id, other) = (RequestId { client: 1, serial: 1 }, RequestId { client: 1, serial: 2 });
        let secs = |s: u64| Timestamp(s * 1_000_000_000);
        let mut recent = Recent::default();
        recent.record(id, 10, secs(100), None);
        let window = DEDUP_WINDOW.as_secs();
        assert!(recent.find(id, 10, secs(100 + window + 5)).is_none(), "past the window for a late write");
        assert_eq!(recent.find(id, 10, secs(100 + window)).map(|r| r.seq), Some(10), "still there for an earlier one");
        assert!(recent.find(id, 10 + DEDUP_TRANSACTIONS, secs(101)).is_none(), "too many transactions ago");
        // A new head past the window forgets it.
        recent.record(other, 11, secs(100 + window + 1), None);
        assert!(recent.find(id, 11, secs(100 + window + 1)).is_none());
        assert!(!recent.by_id.contains_key(&id) && recent.order.len() == 1);
    }

    /// An install a crash interrupted is finished when its journal was
    /// written and undone when it was not, and either way the replica opens
    /// on one whole store with the matching applied mark.
    #[test]
    fn an_interrupted_install_is_finished_or_undone_on_open() {
        let root = std::env::temp_dir().join(format!("elbstore-machine-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
        let time = crate::clock::Clock::now(&crate::clock::SystemClock);
        // A leader's replica with 5 transactions and a snapshot of them.
        let leader = Machine::open(config(&root.join("a"))).unwrap();
        leader.apply_one(id(1), Proposal::init("elb", "test")).unwrap();
        for i in 0..5 {
            leader.apply_one(id(2 + i), Proposal::Requests { time, requests: vec![fleet(i)] }).unwrap();
        }
        let store = leader.store().unwrap();
        // (What openraft's apply records after each entry.)
        leader.shared.applied.lock().last = Some(id(6));
        let applied = leader.shared.applied.lock().clone();
        let meta = leader.shared.write_snapshot(Some(&store), Some(&store.read()), &applied, 0).unwrap();
        let digest = store.read().state().digest();
        let bundle = root.join("a/machine/snapshot.bin");
        for journal_written in [true, false] {
            // A follower with 1 transaction, stopped in the middle of installing it.
            let dir = root.join(format!("b-{journal_written}"));
            let follower = Machine::open(config(&dir)).unwrap();
            follower.apply_one(id(1), Proposal::init("elb", "test")).unwrap();
            follower.apply_one(id(2), Proposal::Requests { time, requests: vec![fleet(0)] }).unwrap();
            std::fs::copy(&bundle, dir.join("machine/incoming.bin")).unwrap();
            bundle::unpack(&dir.join("machine/incoming.bin"), &dir.join("store.new"), |_| Ok(())).unwrap();
            if journal_written {
                let mark = Applied { last: meta.last_log_id, membership: meta.last_membership.clone() };
                write_mark(&dir.join("machine/INSTALLING"), &mark).unwrap();
            }
            drop(follower);
            let reopened = Machine::open(config(&dir)).unwrap();
            let store = reopened.store().unwrap();
            let want = if journal_written { (id(6), 5) } else { (id(2), 1) };
            assert_eq!((reopened.applied().unwrap(), store.read().seq()), want, "journal written: {journal_written}");
            if journal_written {
                // It serves without the entries the snapshot holds (it never had them).
                let log = crate::replication::log::LogStore::open(Arc::new(RealFs), &dir.join("raft")).unwrap();
                reopened.resume(&log).unwrap();
                assert_eq!(store.read().state().digest(), digest);
                assert!(store.store().transactions(1..=5).all(|t| t.is_ok()), "the whole history came with it");
                assert!(dir.join("machine/snapshot.bin").exists());
            }
            for leftover in ["store.new", "store.replaced", "machine/INSTALLING"] {
                assert!(!dir.join(leftover).exists(), "{leftover} is gone (journal written: {journal_written})");
            }
        }
        drop((store, leader));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A replica stopped inside an entry of several requests applies the
    /// rest of it when it opens again, each once, with its part.
    #[test]
    fn a_replica_stopped_inside_an_entry_finishes_it_on_resume() {
        use crate::replication::log::{LogStore, Record};

        let dir = std::env::temp_dir().join(format!("elbstore-machine-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = config(&dir);
        let id = |index| LogId::new(CommittedLeaderId::new(1, 1), index);
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
