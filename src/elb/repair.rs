//! Undoing transactions by appending compensating ones: history is never
//! rewritten, and every later change that does not conflict is kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::arn;
use super::event::{ElbEvent, Entity, EntityKey, EntityKind};
use super::ids::{ListenerId, LoadBalancerId, RuleId, TargetGroupId};
use super::integrity;
use super::model::{Action, LoadBalancer, TargetGroup};
use super::quotas::Quotas;
use super::state::ElbState;
use super::store::ElbStore;
use super::ElbError;
use crate::store::{Committed, Error, Point, StateMachine, TxnMeta};

/// Which transactions to revert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevertSelection {
    /// These transactions, by sequence number.
    Transactions(Vec<u64>),
    /// Every transaction of one actor after `from` up to and including `to`.
    Actor {
        /// The actor.
        actor: String,
        /// The start (exclusive).
        from: Point,
        /// The end (inclusive).
        to: Point,
    },
}

/// Whether to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevertMode {
    /// Compute and return the plan and conflicts; write nothing.
    DryRun,
    /// Write the compensating transaction (subject to [`OnConflict`]).
    Apply,
}

/// What to do when some resources conflict with later changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OnConflict {
    /// Write nothing at all.
    Abort,
    /// Revert every resource that does not conflict (and does not depend on
    /// one that does); leave the rest as they are.
    SkipConflicting,
}

/// Why a resource cannot be reverted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConflictReason {
    /// A later transaction changed or deleted it (its sequence number when
    /// known from the log).
    ChangedSince {
        /// The later transaction.
        seq: Option<u64>,
    },
    /// Another resource now has its name.
    NameTaken {
        /// The resource with the name.
        by: EntityKey,
    },
    /// Another listener now has its port.
    PortTaken {
        /// The listener.
        by: ListenerId,
    },
    /// Another rule now has its priority.
    PriorityTaken {
        /// The rule.
        by: RuleId,
    },
    /// Its parent (load balancer, listener or target group) would not exist.
    ParentMissing {
        /// The parent.
        parent: EntityKey,
    },
    /// A target group it forwards to would not exist.
    ReferenceMissing {
        /// The target group.
        target_group: TargetGroupId,
    },
    /// Removing it would orphan a resource that a later transaction made.
    StillUsed {
        /// The dependent resource.
        by: EntityKey,
    },
    /// Removing it is blocked by its deletion protection.
    DeletionProtected,
    /// A later transaction already set it back to its value before the
    /// reverted ones (an earlier revert, or a repair by hand).
    AlreadyUndone {
        /// That transaction.
        by: u64,
    },
    /// The state the revert would leave breaks a rule of the API that a
    /// command would be refused for: a quota, one load balancer per target
    /// group, protocols that do not fit.
    Refused {
        /// The API's error code, e.g. `TargetGroupAssociationLimit`.
        code: String,
        /// The refusal, as the command would get it.
        message: String,
    },
}

impl std::fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConflictReason::ChangedSince { seq: Some(seq) } => write!(f, "transaction {seq} changed it since"),
            ConflictReason::ChangedSince { seq: None } => write!(f, "it changed since"),
            ConflictReason::NameTaken { by } => write!(f, "its name is taken now, by {by}"),
            ConflictReason::PortTaken { by } => write!(f, "its port is in use now, by listener {by}"),
            ConflictReason::PriorityTaken { by } => write!(f, "its priority is in use now, by rule {by}"),
            ConflictReason::ParentMissing { parent } => write!(f, "{parent}, which it belongs to, would not exist"),
            ConflictReason::ReferenceMissing { target_group } => {
                write!(f, "target group {target_group}, which it forwards to, would not exist")
            }
            ConflictReason::StillUsed { by } => write!(f, "{by}, made later, still depends on it"),
            ConflictReason::DeletionProtected => write!(f, "its deletion protection is on"),
            ConflictReason::AlreadyUndone { by } => write!(f, "transaction {by} already set it back"),
            ConflictReason::Refused { code, message } => write!(f, "{message} ({code})"),
        }
    }
}

/// A resource that cannot be reverted, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The resource.
    pub key: EntityKey,
    /// Its name, port, priority or id, for people.
    pub label: String,
    /// Why.
    pub reason: ConflictReason,
}

/// What a revert would do or did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevertPlan {
    /// The transactions reverted.
    pub reverted_transactions: Vec<u64>,
    /// The compensating events, in the order they apply.
    pub events: Vec<ElbEvent>,
    /// Resources brought back into existence.
    pub restored: Vec<EntityKey>,
    /// Resources that could not be reverted.
    pub conflicts: Vec<Conflict>,
    /// The compensating transaction, when one was written.
    pub committed: Option<Committed>,
    /// Later transactions that already set resources back to their values
    /// before the reverted ones (an earlier revert, or a manual repair);
    /// those resources are [`ConflictReason::AlreadyUndone`] conflicts. When
    /// they are all there is, the transactions are already reverted.
    pub already_undone_by: Vec<u64>,
}

impl RevertPlan {
    /// Whether the chosen transactions are already reverted: nothing to
    /// write, and every conflict is a resource set back already.
    pub fn already_reverted(&self) -> bool {
        self.events.is_empty()
            && !self.conflicts.is_empty()
            && self.conflicts.iter().all(|c| matches!(c.reason, ConflictReason::AlreadyUndone { .. }))
    }

    /// Whether the plan writes (or wrote) a compensating transaction: there
    /// are events, and no conflict stops them under `on_conflict`.
    pub fn writes(&self, on_conflict: OnConflict) -> bool {
        !self.events.is_empty() && (on_conflict == OnConflict::SkipConflicting || self.conflicts.is_empty())
    }
}

/// What the chosen transactions did to one resource.
struct Change {
    /// Its value before the first chosen transaction touched it.
    before: Option<Entity>,
    /// Its value after the last chosen transaction touched it.
    after: Option<Entity>,
    /// An unchosen transaction that touched it after that.
    changed_since: Option<u64>,
}

enum Stop {
    Refused(ElbError),
    Plan(Box<RevertPlan>),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Stop {
        Stop::Refused(ElbError::Store(err))
    }
}

/// Parents before children when creating; the reverse when deleting.
fn creation_rank(kind: EntityKind) -> u8 {
    match kind {
        EntityKind::LoadBalancer => 0,
        EntityKind::TrustStore => 1,
        EntityKind::TargetGroup => 2,
        EntityKind::Listener => 3,
        EntityKind::Rule => 4,
        EntityKind::Target => 5,
    }
}

impl ElbStore {
    /// Reverts the selected transactions by appending one compensating
    /// transaction made by `meta`. Every resource they touched is set back to
    /// its value before them, unless a later transaction changed it since, or
    /// the result would break a rule (a name, port or priority taken since, a
    /// parent or target group gone, a dependent left behind, deletion
    /// protection): those are reported as conflicts. With
    /// [`OnConflict::Abort`] any conflict means nothing is written.
    pub fn revert(
        &self,
        selection: RevertSelection,
        meta: TxnMeta,
        mode: RevertMode,
        on_conflict: OnConflict,
    ) -> Result<RevertPlan, ElbError> {
        let chosen = self.select(selection)?;
        let Some(&first) = chosen.iter().next() else { return Ok(RevertPlan::default()) };
        let mut changes: BTreeMap<EntityKey, Change> = BTreeMap::new();
        let last = self.read().seq();
        for txn in self.store().transactions(first..=last) {
            let txn = txn?;
            let is_chosen = chosen.contains(&txn.seq);
            for event in &txn.events {
                let key = event.key();
                if is_chosen {
                    let change = changes.entry(key).or_insert_with(|| Change {
                        before: event.before().cloned(),
                        after: None,
                        changed_since: None,
                    });
                    change.after = event.after().cloned();
                } else if let Some(change) = changes.get_mut(&key) {
                    change.changed_since.get_or_insert(txn.seq);
                }
            }
        }
        let reverted: Vec<u64> = chosen.into_iter().collect();
        // The compensating transaction says what it reverts.
        let meta = meta.with_reverts(reverted.iter().copied());
        if mode == RevertMode::DryRun {
            // A plan against the latest acknowledged state; works on read-only
            // handles. It passes the checks the real run would: attribution
            // and size limits, then the guard when it would write.
            let quotas = &self.settings().quotas;
            let plan = plan_revert(self.read().state(), &changes, reverted, on_conflict, quotas);
            self.store().check_transaction(&meta, &plan.events)?;
            if plan.writes(on_conflict) {
                self.guard_check(&meta, &plan.events)?;
            }
            return Ok(plan);
        }
        let guard_meta = meta.clone();
        let outcome = self.store().execute_framed(
            meta,
            |state, ctx| {
                let plan = plan_revert(state, &changes, reverted.clone(), on_conflict, &self.settings().quotas);
                if !plan.writes(on_conflict) {
                    return Err(Stop::Plan(Box::new(plan)));
                }
                // A revert is a change like any other: the same guard and alarms.
                let changes = self.guard(&guard_meta, ctx.time, &plan.events).map_err(Stop::Refused)?;
                Ok((plan.events.clone(), (plan, changes, Vec::new()), None))
            },
            |ctx, (_, changes, alarms)| *alarms = self.record_guarded(&guard_meta, ctx, *changes),
        );
        match outcome {
            Ok((committed, (plan, _, alarms))) => {
                self.raise(&alarms);
                Ok(RevertPlan { committed: Some(committed), ..plan })
            }
            Err(Stop::Plan(plan)) => Ok(*plan),
            Err(Stop::Refused(err)) => Err(err),
        }
    }

    fn select(&self, selection: RevertSelection) -> Result<BTreeSet<u64>, ElbError> {
        match selection {
            RevertSelection::Transactions(seqs) => {
                let last = self.read().seq();
                for &seq in &seqs {
                    if seq == 0 || seq > last {
                        return Err(ElbError::Store(Error::PointOutOfRange {
                            point: Point::Seq(seq),
                            first: None,
                            last: None,
                        }));
                    }
                }
                Ok(seqs.into_iter().collect())
            }
            RevertSelection::Actor { actor, from, to } => {
                let filter = super::HistoryFilter { from: Some(from), to: Some(to), actor: Some(actor), entity: None };
                self.history(filter)?.map(|txn| txn.map(|t| t.seq)).collect()
            }
        }
    }
}

/// Works out the compensating events against `state` (the latest state).
fn plan_revert(
    state: &ElbState,
    changes: &BTreeMap<EntityKey, Change>,
    reverted_transactions: Vec<u64>,
    on_conflict: OnConflict,
    quotas: &Quotas,
) -> RevertPlan {
    let mut conflicts = Vec::new();
    let mut already_undone_by = BTreeSet::new();
    let mut candidates: BTreeMap<EntityKey, ElbEvent> = BTreeMap::new();
    for (key, change) in changes {
        let current = state.entity(key);
        let label = current
            .as_ref()
            .or(change.before.as_ref())
            .or(change.after.as_ref())
            .map_or_else(String::new, Entity::label);
        if let (Some(seq), true) = (change.changed_since, current == change.before) {
            // A later transaction set it back already: a conflict like any
            // change since (the plan is the same), named for what it is.
            already_undone_by.insert(seq);
            conflicts.push(Conflict { key: key.clone(), label, reason: ConflictReason::AlreadyUndone { by: seq } });
            continue;
        }
        if change.changed_since.is_some() || current != change.after {
            let reason = ConflictReason::ChangedSince { seq: change.changed_since };
            conflicts.push(Conflict { key: key.clone(), label, reason });
            continue;
        }
        let event = match (current, change.before.clone()) {
            (Some(now), Some(then)) if now == then => continue,
            (Some(now), Some(then)) => ElbEvent::Updated { before: now, after: then },
            (None, Some(then)) => ElbEvent::Created(then),
            (Some(now), None) => {
                if let Entity::LoadBalancer(lb) = &now {
                    if lb.deletion_protected() {
                        conflicts.push(Conflict { key: key.clone(), label, reason: ConflictReason::DeletionProtected });
                        continue;
                    }
                }
                ElbEvent::Deleted(now)
            }
            (None, None) => continue,
        };
        candidates.insert(key.clone(), event);
    }
    // Check the state the compensation would leave; drop what breaks a rule
    // and check again, since dropping one resource can strand another. The
    // checks look resources up by parent and user: build the indexes once,
    // so each round's copy carries them instead of building its own.
    state.build_indexes();
    loop {
        let mut scratch = state.clone();
        for event in candidates.values() {
            scratch.apply(event);
        }
        let mut broken = Vec::new();
        let mut checked = Checked::default();
        for (key, event) in &candidates {
            let reason =
                check(state, &scratch, key).or_else(|| rules_broken(state, &scratch, key, quotas, &mut checked));
            if let Some(reason) = reason {
                let label = event.after().or(event.before()).map_or_else(String::new, Entity::label);
                broken.push(Conflict { key: key.clone(), label, reason });
            }
        }
        if broken.is_empty() || on_conflict == OnConflict::Abort {
            conflicts.extend(broken);
            break;
        }
        for conflict in broken {
            candidates.remove(&conflict.key);
            conflicts.push(conflict);
        }
    }
    let mut events: Vec<ElbEvent> = candidates.into_values().collect();
    events.sort_by_key(|event| match event {
        ElbEvent::Created(e) => (0, creation_rank(e.key().kind())),
        ElbEvent::Updated { .. } => (1, 0),
        ElbEvent::Deleted(e) => (2, 5 - creation_rank(e.key().kind())),
    });
    let restored = events.iter().filter(|e| matches!(e, ElbEvent::Created(_))).map(ElbEvent::key).collect();
    let already_undone_by = already_undone_by.into_iter().collect();
    RevertPlan { reverted_transactions, events, restored, conflicts, committed: None, already_undone_by }
}

fn forwards_to_missing(scratch: &ElbState, actions: &[Action]) -> Option<ConflictReason> {
    actions
        .iter()
        .flat_map(Action::target_groups)
        .find(|tg| scratch.target_group(*tg).is_none())
        .map(|target_group| ConflictReason::ReferenceMissing { target_group })
}

/// Whether `key` is consistent in `scratch` (the state after compensation);
/// `original` is the state before it, for name uniqueness.
fn check(original: &ElbState, scratch: &ElbState, key: &EntityKey) -> Option<ConflictReason> {
    match key {
        EntityKey::LoadBalancer(id) => match scratch.load_balancer(*id) {
            Some(lb) => original
                .load_balancer_by_name(&lb.account, &lb.name)
                .filter(|other| other.id != *id && scratch.load_balancer(other.id).is_some())
                .map(|other| ConflictReason::NameTaken { by: EntityKey::LoadBalancer(other.id) }),
            None => {
                scratch.listeners_of(*id).next().map(|l| ConflictReason::StillUsed { by: EntityKey::Listener(l.id) })
            }
        },
        EntityKey::TargetGroup(id) => match scratch.target_group(*id) {
            Some(tg) => original
                .target_group_by_name(&tg.account, &tg.name)
                .filter(|other| other.id != *id && scratch.target_group(other.id).is_some())
                .map(|other| ConflictReason::NameTaken { by: EntityKey::TargetGroup(other.id) }),
            None => scratch
                .users_of(*id)
                .next()
                .cloned()
                .or_else(|| scratch.targets_of(*id).next().map(|t| EntityKey::Target(t.key.clone())))
                .map(|by| ConflictReason::StillUsed { by }),
        },
        EntityKey::Listener(id) => match scratch.listener(*id) {
            Some(listener) => {
                if scratch.load_balancer(listener.load_balancer).is_none() {
                    return Some(ConflictReason::ParentMissing {
                        parent: EntityKey::LoadBalancer(listener.load_balancer),
                    });
                }
                if let Some(other) =
                    scratch.listeners_of(listener.load_balancer).find(|o| o.id != *id && o.port == listener.port)
                {
                    return Some(ConflictReason::PortTaken { by: other.id });
                }
                forwards_to_missing(scratch, &listener.default_actions)
            }
            None => scratch.rules_of(*id).next().map(|r| ConflictReason::StillUsed { by: EntityKey::Rule(r.id) }),
        },
        EntityKey::Rule(id) => {
            let rule = scratch.rule(*id)?;
            if scratch.listener(rule.listener).is_none() {
                return Some(ConflictReason::ParentMissing { parent: EntityKey::Listener(rule.listener) });
            }
            if let Some(other) = scratch.rules_of(rule.listener).find(|o| o.id != *id && o.priority == rule.priority) {
                return Some(ConflictReason::PriorityTaken { by: other.id });
            }
            forwards_to_missing(scratch, &rule.actions)
        }
        EntityKey::Target(target) => {
            let parent = target.target_group;
            (scratch.target(target).is_some() && scratch.target_group(parent).is_none())
                .then_some(ConflictReason::ParentMissing { parent: EntityKey::TargetGroup(parent) })
        }
        EntityKey::TrustStore(id) => match scratch.trust_store(*id) {
            Some(ts) => original
                .trust_store_by_name(&ts.account, &ts.name)
                .filter(|other| other.id != *id && scratch.trust_store(other.id).is_some())
                .map(|other| ConflictReason::NameTaken { by: EntityKey::TrustStore(other.id) }),
            None => scratch
                .trust_store_users(*id)
                .next()
                .map(|l| ConflictReason::StillUsed { by: EntityKey::Listener(l.id) }),
        },
    }
}

/// What one pass over the candidates found of the API's rules, each checked
/// once: a load balancer's, an account's or a target group's verdict is the
/// same for every resource of it the revert touches.
#[derive(Default)]
struct Checked {
    load_balancers: HashMap<LoadBalancerId, Option<ConflictReason>>,
    accounts: HashMap<String, Option<ConflictReason>>,
    target_groups: HashMap<TargetGroupId, Option<ConflictReason>>,
}

fn refused(result: Result<(), ElbError>) -> Option<ConflictReason> {
    result.err().map(|err| ConflictReason::Refused { code: err.code().to_owned(), message: err.to_string() })
}

impl Checked {
    fn load_balancer(&mut self, scratch: &ElbState, lb: &LoadBalancer, quotas: &Quotas) -> Option<ConflictReason> {
        let verdict = self.load_balancers.entry(lb.id);
        verdict.or_insert_with(|| refused(integrity::load_balancer(scratch, lb, quotas))).clone()
    }

    fn account(&mut self, scratch: &ElbState, account: &str, quotas: &Quotas) -> Option<ConflictReason> {
        if let Some(verdict) = self.accounts.get(account) {
            return verdict.clone();
        }
        let verdict = refused(integrity::account(scratch, account, quotas));
        self.accounts.insert(account.to_owned(), verdict.clone());
        verdict
    }

    /// A group's targets against its own quota and its load balancers'.
    fn targets(&mut self, scratch: &ElbState, tg: &TargetGroup, quotas: &Quotas) -> Option<ConflictReason> {
        let verdict = self.target_groups.entry(tg.id);
        verdict
            .or_insert_with(|| {
                refused(integrity::target_group(scratch, tg, quotas).and_then(|()| {
                    let users = scratch.load_balancers_using(tg.id);
                    users
                        .iter()
                        .filter_map(|lb| scratch.load_balancer(*lb))
                        .try_for_each(|lb| integrity::forward_quotas(scratch, lb, quotas))
                }))
            })
            .clone()
    }
}

/// The API's cross-resource rules and quotas on `scratch`, the state the
/// compensation would leave, for the parts `key` touches: what a command
/// could not do, a revert does not write either.
fn rules_broken(
    original: &ElbState,
    scratch: &ElbState,
    key: &EntityKey,
    quotas: &Quotas,
    checked: &mut Checked,
) -> Option<ConflictReason> {
    let lb_of_listener = |id| scratch.listener(id).and_then(|l| scratch.load_balancer(l.load_balancer));
    match key {
        EntityKey::LoadBalancer(id) => match scratch.load_balancer(*id) {
            Some(lb) if original.load_balancer(*id).is_none() => {
                checked.account(scratch, &lb.account, quotas).or_else(|| checked.load_balancer(scratch, lb, quotas))
            }
            Some(lb) => checked.load_balancer(scratch, lb, quotas),
            // An application load balancer registered as a target stays.
            None => {
                let target = scratch.registrations_of(*id).next()?;
                Some(ConflictReason::StillUsed { by: EntityKey::Target(target.clone()) })
            }
        },
        EntityKey::Listener(id) => {
            let listener = scratch.listener(*id)?;
            let trust_store = listener.mutual_authentication.as_ref().and_then(|m| m.trust_store);
            if let Some(ts) = trust_store.filter(|ts| scratch.trust_store(*ts).is_none()) {
                return Some(ConflictReason::ParentMissing { parent: EntityKey::TrustStore(ts) });
            }
            checked.load_balancer(scratch, lb_of_listener(*id)?, quotas)
        }
        EntityKey::Rule(id) => checked.load_balancer(scratch, lb_of_listener(scratch.rule(*id)?.listener)?, quotas),
        EntityKey::TargetGroup(id) => match scratch.target_group(*id) {
            Some(tg) if original.target_group(*id).is_none() => checked.account(scratch, &tg.account, quotas),
            _ => None,
        },
        EntityKey::Target(key) => {
            scratch.target(key)?;
            if let Some(lb) = arn::load_balancer_id_of(&key.id).filter(|lb| scratch.load_balancer(*lb).is_none()) {
                return Some(ConflictReason::ParentMissing { parent: EntityKey::LoadBalancer(lb) });
            }
            checked.targets(scratch, scratch.target_group(key.target_group)?, quotas)
        }
        EntityKey::TrustStore(id) => match scratch.trust_store(*id) {
            Some(ts) if original.trust_store(*id).is_none() => checked.account(scratch, &ts.account, quotas),
            _ => None,
        },
    }
}
