//! Replication on Raft (feature `replication`): a group of 3 or 5 replicas
//! of one ELB store that agree on one log, on openraft.
//!
//! A write is a [`Request`] (commands, a revert) that the leader stamps with
//! its clock and appends to the replicated log ([`log`]); once a majority
//! holds it durably, every replica applies it to its own [`ElbStore`]
//! ([`machine`]) in log order: the same commands against the same state at
//! the same time give the same transaction, sequence number, ids and state
//! digest on every replica. Each replica's store is an ordinary store
//! (`pitr`, history, time travel, the change feed all read it), whose
//! transactions also name the log entry they apply ([`Origin`]).
//!
//! Layers: [`log`] and [`machine`] are openraft's storage; [`network`] is its
//! transport (HTTP/1 on hyper and axum); [`node`] runs a replica (the Raft
//! engine, the server, the group's admin commands); [`client`] is what a
//! service or tool uses to reach the group.
//!
//! [`ElbStore`]: crate::elb::ElbStore
//! [`Origin`]: crate::Origin

mod bundle;
pub mod client;
pub mod log;
pub mod machine;
pub mod network;
pub mod node;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::elb::{Command, EntityKey, EntityKind, OnConflict, Outcome};
use crate::store::{RequestId, TxnMeta};

pub use client::{ClientError, GroupClient};
pub use node::{Replica, ReplicaConfig, ReplicaError, Status};

openraft::declare_raft_types!(
    /// The Raft types of an elbstore group.
    pub TypeConfig:
        D = Proposal,
        R = Vec<Reply>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A replica's id in its group.
pub type NodeId = u64;

/// What a client asks the group to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Validate and commit `commands` as one transaction, like
    /// [`ElbStore::execute`](crate::elb::ElbStore::execute).
    Execute {
        /// Who and why.
        meta: TxnMeta,
        /// The commands.
        commands: Vec<Command>,
    },
    /// Create reference load balancers `first..end` of
    /// [`fleet`](crate::elb::fleet) in one transaction (their commands name
    /// the ids the transaction's sequence number gives, so they are built
    /// when the entry is applied).
    ReferenceFleet {
        /// Who and why.
        meta: TxnMeta,
        /// The first reference load balancer.
        first: u64,
        /// One past the last.
        end: u64,
    },
    /// Revert transactions, like [`ElbStore::revert`](crate::elb::ElbStore::revert).
    Revert {
        /// Who and why.
        meta: TxnMeta,
        /// The transactions, by sequence number.
        transactions: Vec<u64>,
        /// What a conflict does.
        on_conflict: OnConflict,
    },
}

impl Request {
    /// Who made the request and why.
    pub fn meta(&self) -> &TxnMeta {
        match self {
            Request::Execute { meta, .. } | Request::ReferenceFleet { meta, .. } | Request::Revert { meta, .. } => meta,
        }
    }
}

/// A client's write: the request and the id every retry of it carries, by
/// which a replica applies it at most once (see [`Reply::duplicate`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// The client's id for this write (`None`: no deduplication).
    pub id: Option<RequestId>,
    /// What to do.
    pub request: Request,
}

impl Write {
    /// A write without an id: a retry of it may apply again.
    pub fn once(request: Request) -> Write {
        Write { id: None, request }
    }
}

/// One entry of the replicated log's application data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    /// The group's first entry: every replica makes its store with this
    /// identity (the bytes of an `IDENTITY` file, docs/FORMAT.md).
    Init {
        /// The identity.
        identity: Vec<u8>,
    },
    /// Clients' requests that reached the leader together, with the
    /// commit time the leader gave them: each is its own transaction (or
    /// refusal), in order.
    Requests {
        /// The commit time asked for (a replica uses the previous commit's
        /// plus one nanosecond when this is not later).
        time: Timestamp,
        /// The writes.
        requests: Vec<Write>,
    },
}

impl Proposal {
    /// A group's first entry for a new store named `name` in `environment`
    /// (a new random id): every replica makes its store with this identity.
    pub fn init(name: &str, environment: &str) -> Proposal {
        let identity = crate::identity::Identity {
            id: crate::identity::StoreId::random(),
            name: name.to_owned(),
            environment: environment.to_owned(),
            created: crate::clock::Clock::now(&crate::clock::SystemClock),
        };
        Proposal::Init { identity: identity.encode() }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proposal::Init { .. } => write!(f, "init"),
            Proposal::Requests { requests, .. } => write!(f, "{} requests", requests.len()),
        }
    }
}

/// What applying one request gave (an entry's replies are one per request).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The transaction committed, if one was (`None` for a request that
    /// changed nothing, an init, or a refusal).
    pub seq: Option<u64>,
    /// Its commit time.
    pub time: Option<Timestamp>,
    /// The resources the request's create commands named: kind, name, id.
    pub created: Vec<(EntityKind, String, EntityKey)>,
    /// One outcome per command.
    pub outcomes: Vec<Outcome>,
    /// Alarms the transaction raised, as text.
    pub alarms: Vec<String>,
    /// Why the request was refused: the ELB error's code (an ELBv2 error
    /// code where there is one) and text. Every replica refuses alike.
    pub refused: Option<Refusal>,
    /// The write's id was one a recent transaction carries (a retry of a
    /// write that committed): nothing was applied, and `seq` and `time`
    /// name that transaction. `created`, `outcomes` and `alarms` are the
    /// first answer's when the answering replica applied the write since it
    /// last opened, else empty.
    #[serde(default)]
    pub duplicate: bool,
}

/// A request the store refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The error's code (`ElbError::code`).
    pub code: String,
    /// Its text.
    pub message: String,
    /// The HTTP status the ELBv2 API gives it (`ElbError::http_status`).
    pub status: u16,
    /// Whether the deletion guard refused it (an approval would let it through).
    pub guarded: bool,
}

impl Refusal {
    /// A refusal of the request as invalid (400).
    pub fn invalid(message: impl Into<String>) -> Refusal {
        Refusal { code: "ValidationError".into(), message: message.into(), status: 400, guarded: false }
    }

    /// The group cannot take the request yet (503).
    pub fn unavailable(message: impl Into<String>) -> Refusal {
        Refusal { code: "ServiceUnavailable".into(), message: message.into(), status: 503, guarded: false }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}
