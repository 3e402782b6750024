//! Forensics: what each transaction did, every version of one resource, who
//! deleted something, and the difference between two points.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::ElbError;
use super::event::{ElbEvent, Entity, EntityKey, EntityKind, HistoryDecoder};
use super::state::ElbState;
use super::store::ElbStore;
use crate::clock::Timestamp;
use crate::store::{Error, IndexedPieces, IndexedTxn, Piece, Point, Transaction, TxnMeta, View};

/// What one transaction created, changed and deleted, per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Resources created, per kind.
    pub created: BTreeMap<EntityKind, usize>,
    /// Resources changed, per kind.
    pub changed: BTreeMap<EntityKind, usize>,
    /// Resources deleted, per kind.
    pub deleted: BTreeMap<EntityKind, usize>,
}

impl Summary {
    /// Summarizes a transaction's events.
    pub fn of(events: &[ElbEvent]) -> Summary {
        let mut summary = Summary::default();
        for event in events {
            let map = match event {
                ElbEvent::Created(_) => &mut summary.created,
                ElbEvent::Updated { .. } => &mut summary.changed,
                ElbEvent::Deleted(_) => &mut summary.deleted,
            };
            *map.entry(event.key().kind()).or_default() += 1;
        }
        summary
    }

    /// Total resources created.
    pub fn created_total(&self) -> usize {
        self.created.values().sum()
    }

    /// Total resources changed.
    pub fn changed_total(&self) -> usize {
        self.changed.values().sum()
    }

    /// Total resources deleted.
    pub fn deleted_total(&self) -> usize {
        self.deleted.values().sum()
    }
}

/// Which transactions [`ElbStore::history`] returns. Every field narrows.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    /// The first point (exclusive: transactions after it); `None` from the start.
    pub from: Option<Point>,
    /// The last point (inclusive); `None` to the end.
    pub to: Option<Point>,
    /// Only this actor's transactions.
    pub actor: Option<String>,
    /// Only transactions touching this resource.
    pub entity: Option<EntityKey>,
}

/// One version of a resource: the event that made it and its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// The transaction's sequence number.
    pub seq: u64,
    /// Its commit time.
    pub time: Timestamp,
    /// Who and why.
    pub meta: TxnMeta,
    /// The event (its `after` is this version; `None` for the deletion).
    pub event: ElbEvent,
}

/// What is known of a resource that may no longer exist.
// One is returned per question and none are kept in bulk: the size of the
// larger variant costs nothing that boxing it would save.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// It exists now.
    Live(Entity),
    /// It was deleted: by whom, when, in which transaction and why, and its last value.
    Deleted(Version),
    /// It never existed in this store's history.
    Unknown,
}

/// A resource changed between two points, with the fields that differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Modified {
    /// The value at the first point.
    pub before: Entity,
    /// The value at the second point.
    pub after: Entity,
    /// The fields that differ.
    pub fields: Vec<FieldChange>,
}

/// One field's values at two points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field, e.g. `attributes`.
    pub field: &'static str,
    /// Its value before, as text.
    pub before: String,
    /// Its value after, as text.
    pub after: String,
}

/// The difference between two points in history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// The first point's sequence number.
    pub from_seq: u64,
    /// The second point's sequence number.
    pub to_seq: u64,
    /// Resources that exist at the second point but not the first.
    pub created: Vec<Entity>,
    /// Resources that exist at both with different values.
    pub modified: Vec<Modified>,
    /// Resources that exist at the first point but not the second.
    pub deleted: Vec<Entity>,
}

/// Counts per kind in a [`Diff`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffCounts {
    /// Created.
    pub created: usize,
    /// Modified.
    pub modified: usize,
    /// Deleted.
    pub deleted: usize,
}

impl Diff {
    /// Counts per kind.
    pub fn counts(&self) -> BTreeMap<EntityKind, DiffCounts> {
        let mut out: BTreeMap<EntityKind, DiffCounts> = BTreeMap::new();
        for e in &self.created {
            out.entry(e.key().kind()).or_default().created += 1;
        }
        for m in &self.modified {
            out.entry(m.after.key().kind()).or_default().modified += 1;
        }
        for e in &self.deleted {
            out.entry(e.key().kind()).or_default().deleted += 1;
        }
        out
    }
}

macro_rules! changed_fields {
    ($before:expr, $after:expr, $out:expr, [$($field:ident),* $(,)?]) => {{
        $(
            if $before.$field != $after.$field {
                $out.push(FieldChange {
                    field: stringify!($field),
                    before: format!("{:?}", $before.$field),
                    after: format!("{:?}", $after.$field),
                });
            }
        )*
    }};
}

/// The fields that differ between two values of the same resource.
pub fn field_changes(before: &Entity, after: &Entity) -> Vec<FieldChange> {
    let mut out = Vec::new();
    match (before, after) {
        (Entity::LoadBalancer(b), Entity::LoadBalancer(a)) => changed_fields!(
            b,
            a,
            out,
            [
                name,
                load_balancer_type,
                scheme,
                ip_address_type,
                vpc_id,
                subnets,
                security_groups,
                state,
                dns_name,
                created,
                attributes,
                tags
            ]
        ),
        (Entity::Listener(b), Entity::Listener(a)) => {
            changed_fields!(b, a, out, [port, protocol, certificates, ssl_policy, default_actions, tags])
        }
        (Entity::Rule(b), Entity::Rule(a)) => changed_fields!(b, a, out, [priority, conditions, actions, tags]),
        (Entity::TargetGroup(b), Entity::TargetGroup(a)) => {
            changed_fields!(b, a, out, [name, protocol, port, vpc_id, target_type, health_check, attributes, tags])
        }
        (Entity::Target(b), Entity::Target(a)) => changed_fields!(b, a, out, [availability_zone, health]),
        _ => {}
    }
    out
}

/// Resource -> where each event that touched it is: its transaction and the
/// event's bytes in that transaction's payload, for seqs 1..=`through`; and
/// where each transaction's metadata is. Each place carries the checksum of
/// its bytes, taken when the record was read whole, so a history reads and
/// checks only those bytes.
#[derive(Debug, Default)]
pub(crate) struct EntityIndex {
    through: u64,
    events: std::collections::HashMap<EntityKey, Places>,
    /// The payload head of each transaction from `heads_from` on.
    heads: Vec<Piece>,
    heads_from: u64,
}

/// One event's place in the log: its transaction and its bytes there (for an
/// event of an older schema, the bytes of the old event it was upcast from).
#[derive(Clone, Debug, PartialEq, Eq)]
struct EventAt {
    seq: u64,
    piece: Piece,
}

/// The places of one resource's events, oldest first. Most resources have
/// one (their creation) or a few: the first is kept inline, so a resource
/// with one event costs no allocation of its own.
#[derive(Debug)]
enum Places {
    One(EventAt),
    Many(Vec<EventAt>),
}

impl Places {
    fn as_slice(&self) -> &[EventAt] {
        match self {
            Places::One(at) => std::slice::from_ref(at),
            Places::Many(all) => all,
        }
    }

    /// Adds the place of a later event, unless it is the last one's (the
    /// events one old event upcasts to share its bytes: one place).
    fn push(&mut self, at: EventAt) {
        if self.as_slice().last() == Some(&at) {
            return;
        }
        match self {
            Places::One(first) => *self = Places::Many(vec![first.clone(), at]),
            Places::Many(all) => all.push(at),
        }
    }
}

impl EntityIndex {
    /// Where the payload head of transaction `seq` is, if it was indexed.
    fn head(&self, seq: u64) -> Option<&Piece> {
        self.heads.get(usize::try_from(seq.checked_sub(self.heads_from)?).ok()?)
    }
}

/// The sequence number from which a resource's history can start: resources
/// with ids were created by the transaction their id names.
fn first_possible_seq(key: &EntityKey) -> u64 {
    match key {
        EntityKey::LoadBalancer(id) => id.created_seq(),
        EntityKey::Listener(id) => id.created_seq(),
        EntityKey::Rule(id) => id.created_seq(),
        EntityKey::TargetGroup(id) => id.created_seq(),
        EntityKey::Target(key) => key.target_group.created_seq(),
        EntityKey::TrustStore(id) => id.created_seq(),
    }
}

impl ElbStore {
    /// The state as of `point`: after a transaction, just before one, or at
    /// a time (the last transaction committed at or before it). The same
    /// view [`ElbStore::read`] gives for the present; a point outside the
    /// log is [`Error::PointOutOfRange`] inside [`ElbError::Store`].
    ///
    /// The first call builds an index of the log (sequence number to time
    /// and byte offset); each state comes from the nearest snapshot or
    /// in-memory checkpoint before the point plus a replay of the log after it.
    pub fn state_at(&self, point: Point) -> Result<View<ElbState>, ElbError> {
        Ok(self.store().state_at(point)?)
    }

    fn seq_of(&self, point: Option<Point>, default: u64) -> Result<u64, Error> {
        match point {
            Some(point) => self.store().resolve(point).map(|(seq, _)| seq),
            None => Ok(default),
        }
    }

    /// The transactions matching `filter`, streamed from the log (one segment
    /// in memory at a time).
    pub fn history(
        &self,
        filter: HistoryFilter,
    ) -> Result<impl Iterator<Item = Result<Transaction<ElbEvent>, ElbError>> + '_, ElbError> {
        let last = self.read().seq();
        let from = self.seq_of(filter.from, 0)?;
        let to = self.seq_of(filter.to, last)?;
        let start = filter.entity.as_ref().map_or(1, first_possible_seq).max(from + 1);
        Ok(self
            .store()
            .transactions(start..=to)
            .filter(move |txn| match txn {
                Err(_) => true,
                Ok(txn) => {
                    filter.actor.as_ref().is_none_or(|a| txn.meta.actor == *a)
                        && filter.entity.as_ref().is_none_or(|k| txn.events.iter().any(|e| e.key() == *k))
                }
            })
            .map(|txn| txn.map_err(ElbError::Store)))
    }

    /// Every version of one resource, oldest first. The first call builds an
    /// in-memory index (resource -> its events' transactions, byte ranges and
    /// their checksums) from the log, checking each record whole; later calls
    /// catch it up and read back only each transaction's metadata and this
    /// resource's events, checked against the index's checksums.
    pub fn entity_history(&self, key: &EntityKey) -> Result<Vec<Version>, ElbError> {
        // One read per transaction, however many of its events touch the
        // resource, and one open of each segment for all of them.
        let wanted = self.touching(key)?;
        let mut decoder = HistoryDecoder::default();
        let read = self.store().transactions_pieces(&wanted, |piece, limit| decoder.decode(piece, limit))?;
        let mut versions = Vec::with_capacity(wanted.len());
        for (IndexedPieces { seq, .. }, (time, meta, events, upcast)) in wanted.into_iter().zip(read) {
            let mismatch = || ElbError::Store(Error::IndexMismatch { seq, key: key.to_string() });
            let mut mine = Vec::with_capacity(events.len());
            for event in events {
                if event.key() == *key {
                    mine.push(event);
                } else if !upcast {
                    // Current schema: every piece is one event of this resource.
                    return Err(mismatch());
                }
                // Upcast: the old event may have stood for other resources' events too.
            }
            let Some(last) = mine.pop() else { return Err(mismatch()) };
            versions.extend(mine.into_iter().map(|event| Version { seq, time, meta: meta.clone(), event }));
            versions.push(Version { seq, time, meta, event: last });
        }
        Ok(versions)
    }

    /// The transactions whose events touched `key`, with where their
    /// metadata and those events are, from the entity index.
    fn touching(&self, key: &EntityKey) -> Result<Vec<IndexedPieces>, Error> {
        let last = self.read().seq();
        let mut index = self.entity_index.lock();
        if index.through < last {
            for txn in self.store().transactions_indexed(index.through + 1..=last) {
                let IndexedTxn { seq, head, events } = txn?;
                if index.heads.is_empty() {
                    index.heads_from = seq;
                }
                // Sequence numbers are gapless; a gap would only leave heads no event names.
                let next = index.heads_from + index.heads.len() as u64;
                index.heads.extend((next..seq).map(|_| Piece { span: 0..0, crc: 0 }));
                index.heads.push(head);
                for (event, piece) in events {
                    let at = EventAt { seq, piece };
                    match index.events.entry(event.key()) {
                        std::collections::hash_map::Entry::Occupied(mut places) => places.get_mut().push(at),
                        std::collections::hash_map::Entry::Vacant(places) => {
                            places.insert(Places::One(at));
                        }
                    }
                }
                index.through = seq;
            }
        }
        let mut wanted: Vec<IndexedPieces> = Vec::new();
        for at in index.events.get(key).map(Places::as_slice).unwrap_or_default() {
            match wanted.last_mut() {
                Some(w) if w.seq == at.seq => w.events.push(at.piece.clone()),
                _ => {
                    let mismatch = || Error::IndexMismatch { seq: at.seq, key: key.to_string() };
                    let head = index.head(at.seq).cloned().ok_or_else(mismatch)?;
                    wanted.push(IndexedPieces { seq: at.seq, head, events: vec![at.piece.clone()] });
                }
            }
        }
        Ok(wanted)
    }

    /// A resource by key, and if it is gone, who deleted it, when and why.
    pub fn lookup(&self, key: &EntityKey) -> Result<Lookup, ElbError> {
        if let Some(entity) = self.read().entity(key) {
            return Ok(Lookup::Live(entity));
        }
        let versions = self.entity_history(key)?;
        Ok(match versions.into_iter().last() {
            Some(version) if matches!(version.event, ElbEvent::Deleted(_)) => Lookup::Deleted(version),
            _ => Lookup::Unknown,
        })
    }

    /// A load balancer by account and name; if none has that name now, the
    /// most recent deletion of one that had it.
    pub fn lookup_load_balancer(&self, account: &str, name: &str) -> Result<Lookup, ElbError> {
        if let Some(lb) = self.read().load_balancer_by_name(account, name) {
            return Ok(Lookup::Live(Entity::LoadBalancer(lb.clone())));
        }
        let mut found = Lookup::Unknown;
        for txn in self.store().transactions(..) {
            let txn = txn?;
            for event in &txn.events {
                if let ElbEvent::Deleted(Entity::LoadBalancer(lb)) = event {
                    if lb.account == account && lb.name == name {
                        let version =
                            Version { seq: txn.seq, time: txn.time, meta: txn.meta.clone(), event: event.clone() };
                        found = Lookup::Deleted(version);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Resources created, modified (field by field) and deleted between two
    /// points, from the events in between (streamed; memory grows with the
    /// number of resources touched, not with the log).
    pub fn diff(&self, from: Point, to: Point) -> Result<Diff, ElbError> {
        let (a, _) = self.store().resolve(from)?;
        let (b, _) = self.store().resolve(to)?;
        let (low, high) = (a.min(b), a.max(b));
        // Per resource: its value at `low` (from the first event's `before`)
        // and at `high` (from the last event's `after`).
        let mut touched: BTreeMap<EntityKey, (Option<Entity>, Option<Entity>)> = BTreeMap::new();
        for txn in self.store().transactions(low + 1..=high) {
            for event in txn?.events {
                let entry = touched.entry(event.key()).or_insert_with(|| (event.before().cloned(), None));
                entry.1 = event.after().cloned();
            }
        }
        let mut diff = Diff { from_seq: a, to_seq: b, ..Diff::default() };
        for (_, (old, new)) in touched {
            let (old, new) = if a <= b { (old, new) } else { (new, old) };
            match (old, new) {
                (None, Some(new)) => diff.created.push(new),
                (Some(old), None) => diff.deleted.push(old),
                (Some(old), Some(new)) if old != new => {
                    let fields = field_changes(&old, &new);
                    diff.modified.push(Modified { before: old, after: new, fields });
                }
                _ => {}
            }
        }
        Ok(diff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64, start: u32) -> EventAt {
        EventAt { seq, piece: Piece { span: start..start + 4, crc: seq as u32 } }
    }

    /// One place is kept inline, later ones in order, and a place equal to
    /// the last (events upcast from one old event) is kept once.
    #[test]
    fn places_keep_the_first_inline_and_the_rest_in_order_once() {
        let mut places = Places::One(at(3, 10));
        places.push(at(3, 10));
        assert!(matches!(places, Places::One(_)));
        places.push(at(3, 20));
        places.push(at(9, 10));
        places.push(at(9, 10));
        assert_eq!(places.as_slice(), [at(3, 10), at(3, 20), at(9, 10)]);
    }
}
