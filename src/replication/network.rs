//! The transport between replicas (openraft's `RaftNetwork`): each Raft RPC
//! is an HTTP/1 POST of its bincode encoding, over hyper's pooled client to
//! the peer's axum server.
//!
//! Every RPC travels in an [`Envelope`] naming the sender and the store its
//! group serves; a replica refuses RPCs from a group of another store, so a
//! replica started with the wrong address list or directory can neither join
//! nor be joined. A fault switch ([`Faults`]) drops the RPCs to and from
//! chosen peers, for partition tests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, Raft, RaftNetwork, RaftNetworkFactory};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::machine::Machine;
use super::{NodeId, TypeConfig};
use crate::codec;
use crate::identity::Identity;

/// The largest RPC body accepted (a batch of entries or a snapshot chunk).
pub const RPC_BYTES_MAX: u64 = 256 << 20;

/// The store a group serves, as every RPC names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupTag {
    /// The store's name.
    pub name: String,
    /// Its environment.
    pub environment: String,
    /// Its id, once the group's first entry is applied on the sender.
    pub id: Option<u128>,
}

impl GroupTag {
    /// Whether `other` names the same store: the same name and environment,
    /// and the same id when both know it.
    pub fn same_store(&self, other: &GroupTag) -> bool {
        let id_differs = matches!((self.id, other.id), (Some(a), Some(b)) if a != b);
        self.name == other.name && self.environment == other.environment && !id_differs
    }
}

impl std::fmt::Display for GroupTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            Some(id) => write!(f, "{}/{} ({:032x})", self.name, self.environment, id),
            None => write!(f, "{}/{}", self.name, self.environment),
        }
    }
}

/// An RPC with who sent it and for which store.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The sender.
    pub from: NodeId,
    /// The sender's store.
    pub group: GroupTag,
    /// The RPC.
    pub rpc: T,
}

/// Peers whose RPCs are dropped, both ways.
#[derive(Debug, Default)]
pub struct Faults {
    blocked: RwLock<BTreeSet<NodeId>>,
}

impl Faults {
    /// Drops every RPC to and from `peers` (replacing the earlier set).
    pub fn block(&self, peers: impl IntoIterator<Item = NodeId>) {
        *self.blocked.write() = peers.into_iter().collect();
    }

    /// The peers blocked now.
    pub fn blocked(&self) -> BTreeSet<NodeId> {
        self.blocked.read().clone()
    }

    fn is_blocked(&self, peer: NodeId) -> bool {
        self.blocked.read().contains(&peer)
    }
}

/// What the transport shares between connections.
pub(crate) struct Transport {
    pub id: NodeId,
    pub name: String,
    pub environment: String,
    pub machine: Machine,
    pub faults: Arc<Faults>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Transport {
    pub(crate) fn new(
        id: NodeId,
        name: String,
        environment: String,
        machine: Machine,
        faults: Arc<Faults>,
    ) -> Transport {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(500)));
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Transport { id, name, environment, machine, faults, client }
    }

    pub(crate) fn tag(&self) -> GroupTag {
        GroupTag {
            name: self.name.clone(),
            environment: self.environment.clone(),
            id: self.machine.shared().identity().map(|identity| identity.id.0),
        }
    }

    /// Whether an RPC from `from` for `group` is to be served: not blocked,
    /// and for this replica's store.
    fn admit(&self, from: NodeId, group: &GroupTag) -> Result<(), (StatusCode, String)> {
        if self.faults.is_blocked(from) {
            return Err((StatusCode::SERVICE_UNAVAILABLE, format!("replica {from} is cut off by a fault")));
        }
        let ours = self.tag();
        if !ours.same_store(group) {
            let message = format!("replica {from} serves {group}, this replica {ours}: refused");
            return Err((StatusCode::FORBIDDEN, message));
        }
        Ok(())
    }

    /// POSTs `body` to `http://{addr}{path}` and returns the response body.
    pub(crate) async fn post(&self, addr: &str, path: &str, body: Vec<u8>, ttl: Duration) -> Result<Bytes, String> {
        self.send(hyper::Method::POST, addr, path, body, ttl).await
    }

    /// GETs `http://{addr}{path}` and returns the response body.
    pub(crate) async fn get(&self, addr: &str, path: &str, ttl: Duration) -> Result<Bytes, String> {
        self.send(hyper::Method::GET, addr, path, Vec::new(), ttl).await
    }

    async fn send(
        &self,
        method: hyper::Method,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        ttl: Duration,
    ) -> Result<Bytes, String> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"))
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| err.to_string())?;
        let call = async {
            let response = self.client.request(request).await.map_err(|err| format!("{err:?}"))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|err| err.to_string())?.to_bytes();
            if status != StatusCode::OK {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Ok(body)
        };
        tokio::time::timeout(ttl, call).await.map_err(|_| format!("no answer from {addr} within {ttl:?}"))?
    }
}

/// A connection to one peer.
pub struct Connection {
    target: NodeId,
    addr: String,
    transport: Arc<Transport>,
}

/// Makes connections to peers.
#[derive(Clone)]
pub struct NetworkFactory {
    pub(crate) transport: Arc<Transport>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection { target, addr: node.addr.clone(), transport: self.transport.clone() }
    }
}

/// A transport failure, as openraft's errors carry it.
#[derive(Debug)]
struct TransportError(String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportError {}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        rpc: Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let transport = &self.transport;
        if transport.faults.is_blocked(self.target) {
            let err = TransportError(format!("replica {} is cut off by a fault", self.target));
            return Err(RPCError::Unreachable(Unreachable::new(&err)));
        }
        let envelope = Envelope { from: transport.id, group: transport.tag(), rpc };
        let mut body = Vec::new();
        codec::encode_into(&envelope, &mut body, RPC_BYTES_MAX)
            .map_err(|err| RPCError::Network(NetworkError::new(&err)))?;
        let bytes = transport
            .post(&self.addr, path, body, option.hard_ttl())
            .await
            .map_err(|err| RPCError::Unreachable(Unreachable::new(&TransportError(err))))?;
        let answer: Result<Resp, RaftError<NodeId, E>> =
            codec::decode(&bytes, RPC_BYTES_MAX).map_err(|err| RPCError::Network(NetworkError::new(&err)))?;
        answer.map_err(|err| RPCError::RemoteError(RemoteError::new(self.target, err)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("/raft/append", rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call("/raft/snapshot", rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("/raft/vote", rpc, &option).await
    }
}

/// What the RPC handlers share.
#[derive(Clone)]
pub(crate) struct RpcState {
    pub raft: Raft<TypeConfig>,
    pub transport: Arc<Transport>,
}

fn decode_envelope<T: DeserializeOwned>(state: &RpcState, body: &[u8]) -> Result<T, (StatusCode, String)> {
    let envelope: Envelope<T> = codec::decode(body, RPC_BYTES_MAX)
        .map_err(|err| (StatusCode::BAD_REQUEST, format!("undecodable RPC: {err}")))?;
    state.transport.admit(envelope.from, &envelope.group)?;
    Ok(envelope.rpc)
}

fn encode_answer<T: Serialize>(answer: &T) -> Response {
    let mut out = Vec::new();
    match codec::encode_into(answer, &mut out, RPC_BYTES_MAX) {
        Ok(()) => (StatusCode::OK, out).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

pub(crate) async fn append(State(state): State<RpcState>, body: Bytes) -> Response {
    match decode_envelope::<AppendEntriesRequest<TypeConfig>>(&state, &body) {
        Ok(rpc) => encode_answer(&state.raft.append_entries(rpc).await),
        Err(refused) => refused.into_response(),
    }
}

pub(crate) async fn vote(State(state): State<RpcState>, body: Bytes) -> Response {
    match decode_envelope::<VoteRequest<NodeId>>(&state, &body) {
        Ok(rpc) => encode_answer(&state.raft.vote(rpc).await),
        Err(refused) => refused.into_response(),
    }
}

pub(crate) async fn snapshot(State(state): State<RpcState>, body: Bytes) -> Response {
    match decode_envelope::<InstallSnapshotRequest<TypeConfig>>(&state, &body) {
        Ok(rpc) => encode_answer(&state.raft.install_snapshot(rpc).await),
        Err(refused) => refused.into_response(),
    }
}

/// The identity a group tag names, for messages.
pub(crate) fn describe_identity(identity: &Identity) -> String {
    format!("{}/{} ({})", identity.name, identity.environment, identity.id)
}
