//! Typed, filtered changes from the change feed: [`ElbStore::watch`].
//!
//! A [`Watch`] follows the store's [`Subscription`] and folds every
//! event into a state of its own, so it can tell which account and which
//! load balancer each event belongs to at the moment it happened (a
//! deleted listener's load balancer, a target's target group and the load
//! balancers that route to it), then hands out the events the filter keeps,
//! with the transaction's seq, time and metadata.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{ElbError, ElbEvent, ElbState, ElbStore, Entity, EntityKey, EntityKind, LoadBalancerId};
use crate::clock::Timestamp;
use crate::store::{Point, StateMachine, Subscription, Transaction, TxnMeta};

/// Which changes a [`Watch`] hands out; every field set must match (an
/// empty filter keeps everything).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchFilter {
    /// Only resources of this account.
    pub account: Option<String>,
    /// Only this load balancer and what it is made of: its listeners and
    /// their rules, the target groups it routes to and their targets.
    pub load_balancer: Option<LoadBalancerId>,
    /// Only resources of these kinds.
    pub kinds: Option<BTreeSet<EntityKind>>,
    /// Only these resources (from ARNs with [`ElbStore::resolve_arn`]).
    pub resources: Option<BTreeSet<EntityKey>>,
}

impl WatchFilter {
    /// Everything.
    pub fn all() -> WatchFilter {
        WatchFilter::default()
    }

    /// One account's resources.
    pub fn account(account: impl Into<String>) -> WatchFilter {
        WatchFilter { account: Some(account.into()), ..WatchFilter::default() }
    }

    /// One load balancer with its listeners, rules, target groups and targets.
    pub fn load_balancer(id: LoadBalancerId) -> WatchFilter {
        WatchFilter { load_balancer: Some(id), ..WatchFilter::default() }
    }

    /// Also only these kinds.
    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = EntityKind>) -> WatchFilter {
        self.kinds = Some(kinds.into_iter().collect());
        self
    }

    /// Also only these resources.
    pub fn with_resources(mut self, keys: impl IntoIterator<Item = EntityKey>) -> WatchFilter {
        self.resources = Some(keys.into_iter().collect());
        self
    }

    /// Whether `event` passes, judged in the states just before and just
    /// after it.
    fn keeps(&self, event: &ElbEvent, before: &ElbState, after: &ElbState) -> bool {
        let key = event.key();
        if self.kinds.as_ref().is_some_and(|kinds| !kinds.contains(&key.kind())) {
            return false;
        }
        if self.resources.as_ref().is_some_and(|keys| !keys.contains(&key)) {
            return false;
        }
        let entity = event.after().or(event.before());
        if let Some(account) = &self.account {
            let owner = entity.and_then(|e| account_of(e, after).or_else(|| account_of(e, before)));
            if owner.as_deref() != Some(account.as_str()) {
                return false;
            }
        }
        if let Some(lb) = self.load_balancer {
            if !entity.is_some_and(|e| part_of(e, lb, after) || part_of(e, lb, before)) {
                return false;
            }
        }
        true
    }
}

/// The account that owns `entity`, looked up in `state` for the kinds that
/// do not carry it.
fn account_of(entity: &Entity, state: &ElbState) -> Option<String> {
    match entity {
        Entity::LoadBalancer(lb) => Some(lb.account.clone()),
        Entity::TargetGroup(tg) => Some(tg.account.clone()),
        Entity::TrustStore(ts) => Some(ts.account.clone()),
        Entity::Listener(l) => state.load_balancer(l.load_balancer).map(|lb| lb.account.clone()),
        Entity::Rule(r) => {
            let listener = state.listener(r.listener)?;
            state.load_balancer(listener.load_balancer).map(|lb| lb.account.clone())
        }
        Entity::Target(t) => state.target_group(t.key.target_group).map(|tg| tg.account.clone()),
    }
}

/// Whether `entity` is part of load balancer `lb` in `state`.
fn part_of(entity: &Entity, lb: LoadBalancerId, state: &ElbState) -> bool {
    match entity {
        Entity::LoadBalancer(value) => value.id == lb,
        Entity::Listener(l) => l.load_balancer == lb,
        Entity::Rule(r) => state.listener(r.listener).is_some_and(|l| l.load_balancer == lb),
        Entity::TargetGroup(tg) => state.target_groups_of(lb).contains(&tg.id),
        Entity::Target(t) => state.target_groups_of(lb).contains(&t.key.target_group),
        Entity::TrustStore(_) => false,
    }
}

/// The events of one transaction that a watch keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The transaction's sequence number.
    pub seq: u64,
    /// Its commit time.
    pub time: Timestamp,
    /// Who made it and why.
    pub meta: TxnMeta,
    /// The events the filter keeps, in the order they were applied.
    pub events: Vec<ElbEvent>,
}

/// Typed changes from the change feed; see [`ElbStore::watch`].
pub struct Watch {
    feed: Subscription<ElbState>,
    filter: WatchFilter,
    state: ElbState,
}

impl Watch {
    /// The next transaction's kept events, waiting for it to become durable;
    /// transactions with nothing the filter keeps are passed over.
    pub fn recv(&mut self) -> Result<Change, ElbError> {
        loop {
            let txn = self.feed.recv()?;
            if let Some(change) = self.fold(txn) {
                return Ok(change);
            }
        }
    }

    /// [`Watch::recv`], waiting at most `timeout` in all (a timeout too long
    /// to represent waits without one).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Change>, ElbError> {
        let Some(deadline) = std::time::Instant::now().checked_add(timeout) else { return self.recv().map(Some) };
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(txn) = self.feed.recv_timeout(left)? else { return Ok(None) };
            if let Some(change) = self.fold(txn) {
                return Ok(Some(change));
            }
        }
    }

    /// The next kept change among the transactions durable now, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Change>, ElbError> {
        while let Some(txn) = self.feed.try_recv()? {
            if let Some(change) = self.fold(txn) {
                return Ok(Some(change));
            }
        }
        Ok(None)
    }

    /// The seq of the next transaction the watch will read (a consumer that
    /// persists it resumes there).
    pub fn next_seq(&self) -> u64 {
        self.feed.next_seq()
    }

    /// The state after every transaction read so far, which the watch
    /// judges relationships in.
    pub fn state(&self) -> &ElbState {
        &self.state
    }

    /// Applies the transaction event by event, judging each in the states
    /// just before and just after it (a cheap clone: the maps are shared),
    /// so a listener created and deleted within one transaction still ties
    /// its rules to its load balancer.
    fn fold(&mut self, txn: Transaction<ElbEvent>) -> Option<Change> {
        let mut events = Vec::new();
        for event in txn.events {
            let before = self.state.clone();
            self.state.apply(&event);
            if self.filter.keeps(&event, &before, &self.state) {
                events.push(event);
            }
        }
        (!events.is_empty()).then_some(Change { seq: txn.seq, time: txn.time, meta: txn.meta, events })
    }
}

impl ElbStore {
    /// Typed changes from `from_seq` on (1 is the first transaction), kept
    /// by `filter`, each with its transaction's seq, time, actor and reason,
    /// once durable; see [`Store::subscribe`](crate::Store::subscribe). A
    /// revert's compensating events arrive like any others.
    ///
    /// ```
    /// use elbstore::elb::{Command, CreateLoadBalancer, ElbStore, Settings, SubnetMapping, WatchFilter};
    /// use elbstore::{Create, Options, TxnMeta};
    /// # let dir = std::env::temp_dir().join(format!("elbstore-doc-watch-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let options = Options::default().create(Create::IfMissing);
    /// let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1"))?;
    /// let mut payments = store.watch(1, WatchFilter::account("111122223333"))?;
    /// let subnets = vec![SubnetMapping::new("subnet-0a", "us-east-1a"), SubnetMapping::new("subnet-0b", "us-east-1b")];
    /// let create = |account: &str, name: &str| {
    ///     let lb = CreateLoadBalancer::new(account, name, "vpc-0a1", subnets.clone());
    ///     store.execute(TxnMeta::new("ops:alice", "new service"), vec![Command::CreateLoadBalancer(lb)])
    /// };
    /// create("444455556666", "other-team")?;
    /// create("111122223333", "checkout")?;
    /// let change = payments.recv()?;
    /// assert_eq!((change.seq, change.meta.actor.as_str()), (2, "ops:alice"));
    /// assert_eq!(change.events.len(), 1, "the other account's load balancer is not shown");
    /// # drop(store);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), elbstore::elb::ElbError>(())
    /// ```
    pub fn watch(&self, from_seq: u64, filter: WatchFilter) -> Result<Watch, ElbError> {
        let feed = self.store().subscribe(from_seq)?;
        let start = from_seq.max(1) - 1;
        let head = self.read();
        let state = if start == head.seq() {
            head.state().clone()
        } else if start == 0 {
            ElbState::default()
        } else {
            self.store().state_at(Point::Seq(start))?.state().clone()
        };
        Ok(Watch { feed, filter, state })
    }
}
