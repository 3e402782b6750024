//! Transactions: a batch of events with who made it and why.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Who made a transaction, and why. Stored in the log with its events, in
/// the record layout docs/FORMAT.md gives (not through this type's serde
/// derive, which is for reports and other formats).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnMeta {
    /// The person or process responsible, e.g. `ops:alice` or `svc:health-checker`.
    pub actor: String,
    /// Why the change was made, in words an operator can read later.
    pub reason: String,
    /// The change ticket that authorised it, if any.
    pub ticket: Option<String>,
    /// Who approved a change that a guard demands approval for.
    pub approved_by: Option<String>,
    /// The earlier transactions this one reverts, in increasing order: set by
    /// a revert on its compensating transaction, empty for any other. Readers
    /// of the log and of the change feed see which transactions a change
    /// undoes without comparing events.
    #[serde(default)]
    pub reverts: Vec<u64>,
    /// Where a replicated log placed this transaction: the log id of the
    /// entry it applies, set by a replica's state machine (`None` for a
    /// transaction committed to a single store). A replica learns from its
    /// newest transaction's origin how far it had applied the replicated log.
    #[serde(default)]
    pub origin: Option<Origin>,
}

/// The place of a transaction in a replicated log: the term and node of the
/// leader that appended the entry, the entry's index, and which of the
/// entry's requests it is (an entry may carry several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    /// The leader's term.
    pub term: u64,
    /// The leader's node id.
    pub node: u64,
    /// The entry's index in the replicated log.
    pub index: u64,
    /// The request's place among the entry's requests, from 0.
    pub part: u32,
    /// The id the client gave the write, which its retries share (`None`
    /// when it gave none): a replica applies a write whose id a recent
    /// transaction carries no second time.
    pub request: Option<RequestId>,
}

/// A client's id for one write: the client's random id and the write's
/// number among its writes. Every retry of the write carries the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    /// The client, by a random id it chose.
    pub client: u64,
    /// The write's number among the client's.
    pub serial: u64,
}

impl TxnMeta {
    /// The checks a commit applies to its metadata (an actor and a reason
    /// that are not blank, each field within its limit), for a caller that
    /// wants to refuse bad metadata before any work.
    pub fn check(&self) -> super::Result<()> {
        super::commit::check_meta(self)
    }

    /// Metadata with an actor and a reason, no ticket and no approval.
    pub fn new(actor: impl Into<String>, reason: impl Into<String>) -> TxnMeta {
        TxnMeta {
            actor: actor.into(),
            reason: reason.into(),
            ticket: None,
            approved_by: None,
            reverts: Vec::new(),
            origin: None,
        }
    }

    /// Adds a change ticket.
    pub fn with_ticket(mut self, ticket: impl Into<String>) -> TxnMeta {
        self.ticket = Some(ticket.into());
        self
    }

    /// Adds an approval: the ticket that authorises the change and who approved it.
    pub fn with_approval(mut self, ticket: impl Into<String>, approver: impl Into<String>) -> TxnMeta {
        self.ticket = Some(ticket.into());
        self.approved_by = Some(approver.into());
        self
    }

    /// Marks the transaction as the revert of `seqs` (any order; duplicates
    /// are dropped). A commit refuses a mark that names sequence number 0 or
    /// a transaction not before its own.
    pub fn with_reverts(mut self, seqs: impl IntoIterator<Item = u64>) -> TxnMeta {
        let mut reverts: Vec<u64> = seqs.into_iter().collect();
        reverts.sort_unstable();
        reverts.dedup();
        self.reverts = reverts;
        self
    }

    /// Sets where a replicated log placed the transaction.
    pub fn with_origin(mut self, origin: Origin) -> TxnMeta {
        self.origin = Some(origin);
        self
    }
}

/// What a command sees of the transaction it is about to become part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnContext {
    /// The sequence number the transaction will have if it commits.
    pub seq: u64,
    /// The commit timestamp it will have if it commits.
    pub time: Timestamp,
}

/// A transaction that is durable (under `SyncPolicy::Always`) and visible to readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Committed {
    /// Its sequence number: gapless and strictly increasing from 1.
    pub seq: u64,
    /// Its commit timestamp: strictly increasing with `seq`.
    pub time: Timestamp,
}

/// A transaction read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction<E> {
    /// Its sequence number.
    pub seq: u64,
    /// Its commit timestamp.
    pub time: Timestamp,
    /// Who made it and why.
    pub meta: TxnMeta,
    /// Its events, in the order they were applied.
    pub events: Vec<E>,
}
