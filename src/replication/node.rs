//! A replica: the Raft engine over the replica's log and store, its HTTP
//! server (the peers' RPCs and the group's client and admin endpoints), and
//! the group's bootstrap.
//!
//! Endpoints (JSON unless said):
//! - `POST /raft/append`, `/raft/vote`, `/raft/snapshot`: the peers' RPCs
//!   (bincode, see [`network`]);
//! - `POST /group/write`: a [`Write`] (a request and the client's id for
//!   it, which its retries share); the leader answers once it is
//!   applied ([`WriteAnswer::Done`]), a follower with the leader's address
//!   ([`WriteAnswer::Redirect`]), a leader that cannot reach a majority
//!   in time with [`WriteAnswer::Unavailable`];
//! - `GET /group/status[?linearizable=true][&digest=true]`: [`Status`]; a
//!   linearizable status is answered by the leader after a read index round
//!   (it reflects every write acknowledged before it was asked);
//! - `GET /group/identity`: the store this replica serves;
//! - `POST /group/lookup`: a [`Lookup`] of load balancers and target groups
//!   by account and name, from this replica's applied state (linearizable
//!   when asked, answered by the leader after a read index round);
//! - `POST /group/members`: a [`MemberChange`] (leader only);
//! - `POST /group/faults`: the peers to cut off (only when started with
//!   faults enabled, for tests).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use super::log::LogStore;
use super::machine::{Machine, MachineConfig, MachineError};
use super::network::{self, Faults, GroupTag, NetworkFactory, RpcState, Transport};
use super::{NodeId, Proposal, Reply, TypeConfig, Write};
use crate::clock::{Clock, SystemClock};
use crate::elb::{ElbStore, LoadBalancerId, Observer, Settings, TargetGroupId};
use crate::io::{FileSystem, RealFs};

/// How a replica is started.
#[derive(Clone)]
pub struct ReplicaConfig {
    /// Its id in the group (1 or more).
    pub id: NodeId,
    /// Its directory: `raft/` (the replicated log), `store/` (its store),
    /// `machine/` (applied marks, the newest snapshot).
    pub dir: PathBuf,
    /// The address it listens on (and the one peers reach it at).
    pub listen: SocketAddr,
    /// The group's first members, this replica included, by id and
    /// address. The replica with the lowest id of a group whose logs are
    /// all empty starts it. Empty for a replica that is to be added later.
    pub peers: BTreeMap<NodeId, String>,
    /// The store's name: every replica of a group serves the same one.
    pub name: String,
    /// The store's environment.
    pub environment: String,
    /// The ELB settings, the same on every replica.
    pub settings: Settings,
    /// Told of every alarm the transactions this replica applies raise.
    pub observer: Option<Observer>,
    /// Timing of heartbeats and elections.
    pub timing: Timing,
    /// A snapshot every this many entries; the log before it is then
    /// purged but for the last `logs_kept` entries, which a follower that is
    /// just behind can still be sent (one further behind gets the snapshot).
    pub snapshot_every: u64,
    /// See `snapshot_every`.
    pub logs_kept: u64,
    /// How long the leader waits for a write to commit before it answers
    /// that the group is unavailable.
    pub write_timeout: Duration,
    /// Whether `POST /group/faults` is served (tests only).
    pub faults: bool,
}

/// Heartbeat and election timing.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The leader's heartbeat interval.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range
    /// stands for election.
    pub election_min: Duration,
    /// See `election_min`.
    pub election_max: Duration,
}

impl Default for Timing {
    /// 100 ms heartbeats, elections after 400 to 800 ms of silence: a new
    /// leader within about a second of losing one.
    fn default() -> Timing {
        Timing {
            heartbeat: Duration::from_millis(100),
            election_min: Duration::from_millis(400),
            election_max: Duration::from_millis(800),
        }
    }
}

impl ReplicaConfig {
    /// A replica with the default timing, snapshot spacing (10,000 entries,
    /// keeping 1,000) and write timeout (5 s), faults off.
    pub fn new(
        id: NodeId,
        dir: impl Into<PathBuf>,
        listen: SocketAddr,
        name: &str,
        environment: &str,
    ) -> ReplicaConfig {
        ReplicaConfig {
            id,
            dir: dir.into(),
            listen,
            peers: BTreeMap::new(),
            name: name.into(),
            environment: environment.into(),
            settings: Settings::default(),
            observer: None,
            timing: Timing::default(),
            snapshot_every: 10_000,
            logs_kept: 1_000,
            write_timeout: Duration::from_secs(5),
            faults: false,
        }
    }
}

/// Why a replica could not start or a group command failed.
#[derive(Debug)]
pub enum ReplicaError {
    /// The replicated log could not be opened.
    Log(super::log::LogError),
    /// The state machine (the store) could not be opened.
    Machine(MachineError),
    /// The address could not be listened on.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The Raft engine refused the configuration or failed.
    Raft(String),
}

impl std::fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaError::Log(err) => write!(f, "{err}"),
            ReplicaError::Machine(err) => write!(f, "{err}"),
            ReplicaError::Listen { addr, source } => write!(f, "listening on {addr}: {source}"),
            ReplicaError::Raft(message) => write!(f, "raft: {message}"),
        }
    }
}

impl std::error::Error for ReplicaError {}

/// A running replica.
pub struct Replica {
    raft: Raft<TypeConfig>,
    machine: Machine,
    transport: Arc<Transport>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    steward: tokio::task::JoinHandle<()>,
    batching: tokio::task::JoinHandle<()>,
}

/// A replica's answer to a write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WriteAnswer {
    /// Applied; what it gave.
    Done(Reply),
    /// This replica is not the leader: ask this one (when known).
    Redirect {
        /// The leader's id.
        leader: Option<NodeId>,
        /// Its address.
        addr: Option<String>,
    },
    /// The write could not be committed (no majority reachable in time, or
    /// the replica is stopping). It may still commit later.
    Unavailable {
        /// Why.
        message: String,
    },
}

/// A change of the group's members.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MemberChange {
    /// Add a replica: it catches up as a learner, then becomes a voter.
    Add {
        /// Its id.
        id: NodeId,
        /// Its address.
        addr: String,
    },
    /// Remove a replica from the voters.
    Remove {
        /// Its id.
        id: NodeId,
    },
    /// Add `id` at `addr` and remove `old` (a dead replica) in one change.
    Replace {
        /// The replica to remove.
        old: NodeId,
        /// The new replica's id.
        id: NodeId,
        /// Its address.
        addr: String,
    },
}

/// A replica's view of itself and its group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    /// Its id.
    pub id: NodeId,
    /// Leader, Follower, Candidate or Learner.
    pub state: String,
    /// The leader it knows, with its address.
    pub leader: Option<(NodeId, String)>,
    /// The current term.
    pub term: u64,
    /// The last entry in its log.
    pub last_log_index: Option<u64>,
    /// The last entry applied to its store.
    pub applied_index: Option<u64>,
    /// The last transaction in its store (0 before any).
    pub seq: u64,
    /// The state digest at `seq`, when asked for.
    pub digest: Option<String>,
    /// The store's name/environment and id, once the group's first entry is applied.
    pub store: Option<String>,
    /// The voters.
    pub voters: Vec<NodeId>,
    /// The learners.
    pub learners: Vec<NodeId>,
    /// The peers cut off by a fault.
    pub blocked: Vec<NodeId>,
}

#[derive(Deserialize)]
struct StatusQuery {
    #[serde(default)]
    linearizable: bool,
    #[serde(default)]
    digest: bool,
}

#[derive(Clone)]
struct GroupState {
    rpc: RpcState,
    batches: tokio::sync::mpsc::UnboundedSender<Queued>,
}

impl Replica {
    /// Starts a replica: opens its log and store, starts the Raft engine
    /// and the server, and, if this is the lowest id of a brand-new group,
    /// starts the group.
    pub async fn start(config: ReplicaConfig) -> Result<Replica, ReplicaError> {
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let dir = config.dir.clone();
        let (log, machine) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || -> Result<_, ReplicaError> {
                let log = LogStore::open(fs, &dir.join("raft")).map_err(ReplicaError::Log)?;
                let machine = Machine::open(MachineConfig {
                    dir: dir.clone(),
                    name: config.name.clone(),
                    environment: config.environment.clone(),
                    settings: config.settings.clone(),
                    observer: config.observer.clone(),
                })
                .map_err(ReplicaError::Machine)?;
                // A replica stopped inside an entry finishes it first.
                machine.resume(&log).map_err(ReplicaError::Machine)?;
                Ok((log, machine))
            }
        })
        .await
        .map_err(|err| ReplicaError::Raft(err.to_string()))??;
        let fresh = {
            let summary = log.summary();
            summary.vote.is_none() && summary.last.is_none()
        };
        let raft_config = Config {
            cluster_name: format!("{}/{}", config.name, config.environment),
            heartbeat_interval: config.timing.heartbeat.as_millis() as u64,
            election_timeout_min: config.timing.election_min.as_millis() as u64,
            election_timeout_max: config.timing.election_max.as_millis() as u64,
            install_snapshot_timeout: 5_000,
            snapshot_max_chunk_size: 1 << 20,
            max_payload_entries: 1_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.logs_kept,
            purge_batch_size: 1,
            ..Config::default()
        }
        .validate()
        .map_err(|err| ReplicaError::Raft(err.to_string()))?;
        let faults = Arc::new(Faults::default());
        let transport = Arc::new(Transport::new(
            config.id,
            config.name.clone(),
            config.environment.clone(),
            machine.clone(),
            faults,
        ));
        let network = NetworkFactory { transport: transport.clone() };
        let raft = Raft::new(config.id, Arc::new(raft_config), network, log, machine.clone())
            .await
            .map_err(|err| ReplicaError::Raft(err.to_string()))?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ReplicaError::Listen { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| ReplicaError::Listen { addr: config.listen, source })?;
        let config = Arc::new(config);
        let (batches, queue) = tokio::sync::mpsc::unbounded_channel();
        let batching = tokio::spawn(batcher(raft.clone(), queue, config.write_timeout));
        let rpc = RpcState { raft: raft.clone(), transport: transport.clone() };
        let state = GroupState { rpc, batches };
        let rpc_routes = Router::new()
            .route("/raft/append", post(network::append))
            .route("/raft/vote", post(network::vote))
            .route("/raft/snapshot", post(network::snapshot))
            // axum refuses bodies over 2 MB by default: a batch of entries or
            // a snapshot chunk is larger.
            .layer(axum::extract::DefaultBodyLimit::max(network::RPC_BYTES_MAX as usize))
            .with_state(state.rpc.clone());
        let mut group_routes = Router::new()
            .route("/group/write", post(write))
            .route("/group/status", get(status))
            .route("/group/identity", get(identity))
            .route("/group/lookup", post(lookup))
            .route("/group/members", post(members));
        if config.faults {
            group_routes = group_routes.route("/group/faults", post(set_faults));
        }
        let group_routes = group_routes.layer(axum::extract::DefaultBodyLimit::max(GROUP_BYTES_MAX));
        let app = rpc_routes.merge(group_routes.with_state(state));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        let lowest = config.peers.keys().next().copied();
        if fresh && lowest == Some(config.id) && !group_exists(&transport, &config).await {
            let members: BTreeMap<NodeId, BasicNode> =
                config.peers.iter().map(|(id, addr)| (*id, BasicNode::new(addr))).collect();
            raft.initialize(members).await.map_err(|err| ReplicaError::Raft(err.to_string()))?;
        }
        let steward = tokio::spawn(steward(raft.clone(), machine.clone(), config.clone()));
        Ok(Replica { raft, machine, transport, addr, stop: Some(stop), server: Some(server), steward, batching })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Raft engine.
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// The replica's store, once the group's first entry is applied here
    /// (a snapshot install replaces it: ask again rather than keep it).
    pub fn store(&self) -> Option<Arc<ElbStore>> {
        self.machine.store()
    }

    /// The state machine (its store, what it has applied).
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// Cuts off (or, with an empty set, reconnects) peers.
    pub fn block(&self, peers: impl IntoIterator<Item = NodeId>) {
        self.transport.faults.block(peers);
    }

    /// Proposes `request` as this replica (the leader answers it; a follower
    /// redirects).
    pub async fn write(&self, write: Write, timeout: Duration) -> WriteAnswer {
        propose(&self.raft, write, timeout).await
    }

    /// This replica's status.
    pub async fn status(&self, digest: bool) -> Status {
        status_of(&self.raft, &self.machine, &self.transport, digest).await
    }

    /// Stops the replica: the server, then the Raft engine.
    pub async fn shutdown(mut self) {
        self.steward.abort();
        self.batching.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        let _ = self.raft.shutdown().await;
    }
}

/// Whether a peer already holds a log: then this replica, though its own log
/// is empty (a new directory, or one wiped), joins that group rather than
/// starting one.
async fn group_exists(transport: &Transport, config: &ReplicaConfig) -> bool {
    for (id, addr) in &config.peers {
        if *id == config.id {
            continue;
        }
        let path = "/group/status";
        if let Ok(body) = transport.get(addr, path, Duration::from_millis(500)).await {
            if serde_json::from_slice::<Status>(&body).is_ok_and(|s| s.last_log_index.is_some() || s.term > 0) {
                return true;
            }
        }
    }
    false
}

/// Starts the group's store: a leader whose store does not exist yet
/// proposes the group's first entry (concurrent proposals are harmless: the
/// first applied wins, the others are refused on every replica alike).
async fn steward(raft: Raft<TypeConfig>, machine: Machine, config: Arc<ReplicaConfig>) {
    let mut metrics = raft.metrics();
    loop {
        let leading = {
            let m = metrics.borrow();
            m.state == ServerState::Leader && m.current_leader == Some(config.id)
        };
        if leading && machine.store().is_none() {
            let proposal = Proposal::init(&config.name, &config.environment);
            let _ = tokio::time::timeout(config.write_timeout, raft.client_write(proposal)).await;
        }
        if machine.store().is_some() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), metrics.changed()).await;
    }
}

/// Proposes a request on `raft` and waits for its reply.
async fn propose(raft: &Raft<TypeConfig>, write: Write, timeout: Duration) -> WriteAnswer {
    let answer = propose_all(raft, vec![write], timeout).await.pop();
    answer.unwrap_or_else(|| WriteAnswer::Unavailable { message: "no reply".into() })
}

/// Proposes `requests` as one entry on `raft` and waits for their replies,
/// one answer per request.
async fn propose_all(raft: &Raft<TypeConfig>, requests: Vec<Write>, timeout: Duration) -> Vec<WriteAnswer> {
    let count = requests.len();
    let proposal = Proposal::Requests { time: SystemClock.now(), requests };
    let answer = match tokio::time::timeout(timeout, raft.client_write(proposal)).await {
        Ok(Ok(response)) if response.data.len() == count => {
            return response.data.into_iter().map(WriteAnswer::Done).collect();
        }
        Ok(Ok(response)) => {
            WriteAnswer::Unavailable { message: format!("{} replies to {count} requests", response.data.len()) }
        }
        Ok(Err(err)) => answer_error(err),
        Err(_) => WriteAnswer::Unavailable {
            message: format!(
                "not committed within {timeout:?}: the leader cannot reach a majority of the group ({})",
                unreachable_summary(raft)
            ),
        },
    };
    vec![answer; count]
}

/// A write waiting for its batch, and where its answer goes.
type Queued = (Write, tokio::sync::oneshot::Sender<WriteAnswer>);

/// The largest client request body (a write's commands) accepted: a full
/// batch of them stays under the replicated log's record limit.
const GROUP_BYTES_MAX: usize = (super::log::RECORD_BYTES_MAX as usize / BATCH_MAX) * 3 / 4;

/// The most requests one entry carries.
const BATCH_MAX: usize = 256;
/// The most entries of batched writes in flight at once.
const BATCHES_IN_FLIGHT: usize = 4;

/// Gathers the writes that reach this replica together into one entry each
/// time: while `BATCHES_IN_FLIGHT` entries are being committed, new writes
/// wait, and the next entry takes all of them (up to `BATCH_MAX`). The Raft
/// engine then does its per-entry work (append, replication, commit) once
/// for many writes; each is still its own transaction.
async fn batcher(raft: Raft<TypeConfig>, mut queue: tokio::sync::mpsc::UnboundedReceiver<Queued>, timeout: Duration) {
    let permits = Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match queue.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let (requests, senders): (Vec<Write>, Vec<_>) = batch.into_iter().unzip();
            let answers = propose_all(&raft, requests, timeout).await;
            for (sender, answer) in senders.into_iter().zip(answers) {
                let _ = sender.send(answer);
            }
            drop(permit);
        });
    }
}

fn unreachable_summary(raft: &Raft<TypeConfig>) -> String {
    let metrics = raft.metrics().borrow().clone();
    match metrics.millis_since_quorum_ack {
        Some(ms) => format!("last heard from a majority {ms} ms ago"),
        None => "no majority heard from".into(),
    }
}

fn answer_error(err: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> WriteAnswer {
    if let Some(forward) = err.forward_to_leader::<BasicNode>() {
        let leader = forward.leader_id;
        let addr = forward.leader_node.as_ref().map(|node| node.addr.clone());
        return WriteAnswer::Redirect { leader, addr };
    }
    WriteAnswer::Unavailable { message: err.to_string() }
}

async fn write(State(state): State<GroupState>, Json(write): Json<Write>) -> Json<WriteAnswer> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    if state.batches.send((write, answer)).is_err() {
        return Json(WriteAnswer::Unavailable { message: "the replica is stopping".into() });
    }
    Json(answered.await.unwrap_or(WriteAnswer::Unavailable { message: "the replica is stopping".into() }))
}

async fn status_of(raft: &Raft<TypeConfig>, machine: &Machine, transport: &Transport, digest: bool) -> Status {
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let learners: Vec<NodeId> = membership.learner_ids().collect();
    let leader = metrics.current_leader.map(|id| {
        let addr = membership.get_node(&id).map(|node| node.addr.clone()).unwrap_or_default();
        (id, addr)
    });
    let store = machine.store();
    let (seq, digest, identity) = match &store {
        Some(store) => {
            let view = store.read();
            let digest = digest.then(|| view.state().digest().to_hex());
            (view.seq(), digest, Some(network::describe_identity(store.store().identity())))
        }
        None => (0, None, None),
    };
    Status {
        id: metrics.id,
        state: format!("{:?}", metrics.state),
        leader,
        term: metrics.current_term,
        last_log_index: metrics.last_log_index,
        applied_index: metrics.last_applied.map(|id| id.index),
        seq,
        digest,
        store: identity,
        voters: voters.into_iter().collect(),
        learners,
        blocked: transport.faults.blocked().into_iter().collect(),
    }
}

/// When `linearizable`, a read-index round: this replica must be the leader a
/// majority confirms, and have applied every entry committed before now.
async fn read_index(raft: &Raft<TypeConfig>, linearizable: bool) -> Result<(), (axum::http::StatusCode, String)> {
    if linearizable {
        raft.ensure_linearizable().await.map_err(|err| {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("not a leader that a majority confirms: {err}"))
        })?;
    }
    Ok(())
}

async fn status(
    State(state): State<GroupState>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Status>, (axum::http::StatusCode, String)> {
    let raft = &state.rpc.raft;
    read_index(raft, query.linearizable).await?;
    let transport = &state.rpc.transport;
    Ok(Json(status_of(raft, &transport.machine, transport, query.digest).await))
}

async fn identity(State(state): State<GroupState>) -> Json<GroupTag> {
    Json(state.rpc.transport.tag())
}

/// Resources to find by account and name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Lookup {
    /// Answer only as the leader, after confirming with a majority that it
    /// still leads and applying every entry committed before the lookup.
    pub linearizable: bool,
    /// Load balancers: (account, name).
    pub load_balancers: Vec<(String, String)>,
    /// Target groups: (account, name).
    pub target_groups: Vec<(String, String)>,
}

/// What a [`Lookup`] found, in the order asked.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Found {
    /// The seq of the state read.
    pub seq: u64,
    /// The load balancers' ids.
    pub load_balancers: Vec<Option<LoadBalancerId>>,
    /// The target groups' ids.
    pub target_groups: Vec<Option<TargetGroupId>>,
}

async fn lookup(
    State(state): State<GroupState>,
    Json(lookup): Json<Lookup>,
) -> Result<Json<Found>, (axum::http::StatusCode, String)> {
    read_index(&state.rpc.raft, lookup.linearizable).await?;
    let Some(store) = state.rpc.transport.machine.store() else {
        return Err((axum::http::StatusCode::SERVICE_UNAVAILABLE, "no store yet".into()));
    };
    let view = store.read();
    Ok(Json(Found {
        seq: view.seq(),
        load_balancers: lookup
            .load_balancers
            .iter()
            .map(|(account, name)| view.load_balancer_by_name(account, name).map(|lb| lb.id))
            .collect(),
        target_groups: lookup
            .target_groups
            .iter()
            .map(|(account, name)| view.target_group_by_name(account, name).map(|tg| tg.id))
            .collect(),
    }))
}

#[derive(Deserialize)]
struct FaultsBody {
    blocked: Vec<NodeId>,
}

async fn set_faults(State(state): State<GroupState>, Json(body): Json<FaultsBody>) -> Json<Vec<NodeId>> {
    state.rpc.transport.faults.block(body.blocked);
    Json(state.rpc.transport.faults.blocked().into_iter().collect())
}

/// The answer to a membership change.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MembersAnswer {
    /// Done: the voters now.
    Done {
        /// The voters.
        voters: Vec<NodeId>,
    },
    /// Ask the leader.
    Redirect {
        /// The leader's id.
        leader: Option<NodeId>,
        /// Its address.
        addr: Option<String>,
    },
    /// Refused or failed.
    Refused {
        /// Why.
        message: String,
    },
}

async fn members(State(state): State<GroupState>, Json(change): Json<MemberChange>) -> Json<MembersAnswer> {
    Json(change_members(&state, change).await)
}

async fn change_members(state: &GroupState, change: MemberChange) -> MembersAnswer {
    let raft = &state.rpc.raft;
    let transport = &state.rpc.transport;
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        let membership = metrics.membership_config.membership();
        let leader = metrics.current_leader;
        let addr = leader.and_then(|id| membership.get_node(&id).map(|node| node.addr.clone()));
        return MembersAnswer::Redirect { leader, addr };
    }
    let mut voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    let (add, remove) = match change {
        MemberChange::Add { id, addr } => (Some((id, addr)), None),
        MemberChange::Remove { id } => (None, Some(id)),
        MemberChange::Replace { old, id, addr } => (Some((id, addr)), Some(old)),
    };
    if let Some((id, addr)) = &add {
        if voters.contains(id) {
            return MembersAnswer::Refused { message: format!("replica {id} is already a voter") };
        }
        // The identity check: the new replica must serve this store.
        if let Err(message) = check_candidate(transport, addr).await {
            return MembersAnswer::Refused { message };
        }
        if let Err(err) = raft.add_learner(*id, BasicNode::new(addr), true).await {
            return MembersAnswer::Refused { message: format!("adding replica {id} as a learner: {err}") };
        }
        voters.insert(*id);
    }
    if let Some(old) = remove {
        if !voters.remove(&old) {
            return MembersAnswer::Refused { message: format!("replica {old} is not a voter") };
        }
        if voters.is_empty() {
            return MembersAnswer::Refused { message: "a group cannot remove its last voter".into() };
        }
    }
    match raft.change_membership(voters.clone(), false).await {
        Ok(_) => MembersAnswer::Done { voters: voters.into_iter().collect() },
        Err(err) => MembersAnswer::Refused { message: format!("changing the voters to {voters:?}: {err}") },
    }
}

/// Asks the replica at `addr` which store it serves; refuses another store
/// or environment, or one with another id.
async fn check_candidate(transport: &Transport, addr: &str) -> Result<(), String> {
    let url = format!("http://{addr}/group/identity");
    let body = transport
        .get(addr, "/group/identity", Duration::from_secs(2))
        .await
        .map_err(|err| format!("asking {url} for its identity: {err}"))?;
    let theirs: GroupTag = serde_json::from_slice(&body).map_err(|err| format!("{url}: {err}"))?;
    let ours = transport.tag();
    if !ours.same_store(&theirs) {
        return Err(format!("the replica at {addr} serves {theirs}, and this group serves {ours}: refusing to add it"));
    }
    Ok(())
}
