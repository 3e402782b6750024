//! The typed store: the generic store over the ELB state, driven by commands,
//! behind the guardrails.

use std::path::Path;

use parking_lot::Mutex;

use super::command::{Command, Outcome};
use super::error::ElbError;
use super::event::{ElbEvent, EntityKey, EntityKind};
use super::guard::{load_balancer_changes, Alarm, AlarmKind, GuardStatus, Ledger, Observer};
use super::ids::{ListenerId, LoadBalancerId, TargetGroupId, TrustStoreId};
use super::plan::plan_folded;
use super::quotas::Settings;
use super::state::ElbState;
use super::validate::invalid;
use crate::store::{Committed, Error, Options, Store, TxnContext, TxnMeta, View};

/// What executing a transaction of commands did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The committed transaction, or `None` when every command was a no-op
    /// (nothing is written then).
    pub committed: Option<Committed>,
    /// One outcome per command.
    pub outcomes: Vec<Outcome>,
    /// Alarms this transaction raised (already passed to the observer).
    pub alarms: Vec<Alarm>,
    /// The ids of the resources the create commands named, by kind and
    /// name (an identical retry of a create gives the existing resource's).
    pub created: Vec<(EntityKind, String, EntityKey)>,
}

impl Applied {
    /// The load balancer a `CreateLoadBalancer` of this name gave.
    pub fn load_balancer(&self, name: &str) -> Option<LoadBalancerId> {
        self.find(EntityKind::LoadBalancer, name).and_then(|key| match key {
            EntityKey::LoadBalancer(id) => Some(*id),
            _ => None,
        })
    }

    /// The target group a `CreateTargetGroup` of this name gave.
    pub fn target_group(&self, name: &str) -> Option<TargetGroupId> {
        self.find(EntityKind::TargetGroup, name).and_then(|key| match key {
            EntityKey::TargetGroup(id) => Some(*id),
            _ => None,
        })
    }

    /// The trust store a `CreateTrustStore` of this name gave.
    pub fn trust_store(&self, name: &str) -> Option<TrustStoreId> {
        self.find(EntityKind::TrustStore, name).and_then(|key| match key {
            EntityKey::TrustStore(id) => Some(*id),
            _ => None,
        })
    }

    /// The listener a `CreateListener` on this port of this load balancer gave.
    pub fn listener(&self, load_balancer: LoadBalancerId, port: u16) -> Option<ListenerId> {
        self.find(EntityKind::Listener, &format!("{load_balancer}:{port}")).and_then(|key| match key {
            EntityKey::Listener(id) => Some(*id),
            _ => None,
        })
    }

    fn find(&self, kind: EntityKind, name: &str) -> Option<&EntityKey> {
        self.created.iter().find(|(k, n, _)| *k == kind && n == name).map(|(_, _, key)| key)
    }
}

/// What each create command of a transaction gave, by name.
fn created_by_name(commands: &[Command], outcomes: &[Outcome]) -> Vec<(EntityKind, String, EntityKey)> {
    commands
        .iter()
        .zip(outcomes)
        .filter_map(|(command, outcome)| match (command, outcome) {
            (Command::CreateLoadBalancer(c), Outcome::LoadBalancerCreated(id)) => {
                Some((EntityKind::LoadBalancer, c.name.clone(), EntityKey::LoadBalancer(*id)))
            }
            (Command::CreateTargetGroup(c), Outcome::TargetGroupCreated(id)) => {
                Some((EntityKind::TargetGroup, c.name.clone(), EntityKey::TargetGroup(*id)))
            }
            (Command::CreateTrustStore(c), Outcome::TrustStoreCreated(id)) => {
                Some((EntityKind::TrustStore, c.name.clone(), EntityKey::TrustStore(*id)))
            }
            (Command::CreateListener(c), Outcome::ListenerCreated(id)) => {
                let port = c.port.unwrap_or(6081);
                Some((EntityKind::Listener, format!("{}:{port}", c.load_balancer), EntityKey::Listener(*id)))
            }
            (Command::CreateRule(c), Outcome::RuleCreated(id)) => {
                Some((EntityKind::Rule, format!("{}:{}", c.listener, c.priority), EntityKey::Rule(*id)))
            }
            _ => None,
        })
        .collect()
}

/// The resources a committed transaction's events created, named as
/// [`Applied::created`] names them: what a create command gave, read back
/// from the log (a replica answering a retried write it did not apply since
/// it opened).
#[cfg(feature = "replication")]
pub(crate) fn created_in(events: &[ElbEvent]) -> Vec<(EntityKind, String, EntityKey)> {
    use super::event::Entity;
    events
        .iter()
        .filter_map(|event| match event {
            ElbEvent::Created(entity) => Some(entity),
            _ => None,
        })
        .filter_map(|entity| {
            let name = match entity {
                Entity::LoadBalancer(lb) => lb.name.clone(),
                Entity::TargetGroup(tg) => tg.name.clone(),
                Entity::TrustStore(ts) => ts.name.clone(),
                Entity::Listener(l) => format!("{}:{}", l.load_balancer, l.port),
                Entity::Rule(r) => format!("{}:{}", r.listener, r.priority),
                Entity::Target(_) => return None,
            };
            Some((entity.key().kind(), name, entity.key()))
        })
        .collect()
}

/// Alarms kept for [`ElbStore::alarms`].
const ALARMS_KEPT_MAX: usize = 1000;

/// The ELB state store: commands in, validated and guarded events logged,
/// typed state out.
///
/// ```
/// use elbstore::elb::{fleet, ElbStore, Settings};
/// use elbstore::{Create, Options, TxnMeta};
///
/// let dir = std::env::temp_dir().join(format!("elbstore-elb-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let options = Options::default().create(Create::IfMissing).identity("elb-use1", "production");
/// let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1"))?;
/// let applied = store.execute_with(TxnMeta::new("svc:api", "CreateLoadBalancer lb-0"), |_, ctx| {
///     fleet::reference_commands(0, ctx.seq)
/// })?;
/// assert_eq!(applied.committed.unwrap().seq, 1);
/// let view = store.read();
/// let lb = view.load_balancer_by_name(&fleet::account(0), "lb-0").unwrap();
/// assert_eq!(view.listeners_of(lb.id).count(), 2);
/// # drop(view);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), elbstore::elb::ElbError>(())
/// ```
pub struct ElbStore {
    store: Store<ElbState>,
    settings: Settings,
    /// Built on first use (the first guarded write or status query), so opening
    /// a store, read-only tools above all, never reads the log for it.
    ledger: Mutex<Option<Ledger>>,
    observer: Option<Observer>,
    fired: Mutex<Vec<Alarm>>,
    pub(crate) entity_index: Mutex<super::history::EntityIndex>,
}

impl std::fmt::Debug for ElbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElbStore").field("store", &self.store).field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Ends a transaction early without it being an error.
enum Stop {
    Refused(ElbError),
    NoChange(Vec<Outcome>, Vec<(EntityKind, String, EntityKey)>),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Stop {
        Stop::Refused(ElbError::Store(err))
    }
}

impl ElbStore {
    /// Opens the store in `dir` (or creates it, as `options` allow: see
    /// [`Create`](crate::Create)). The region of `settings` must agree with
    /// the one the store's load balancers were made in; without one, theirs
    /// is taken ([`ElbError::RegionMismatch`], [`ElbError::RegionUnknown`]
    /// when a command needs one and the store has none).
    pub fn open(dir: impl AsRef<Path>, options: Options, settings: Settings) -> Result<ElbStore, ElbError> {
        ElbStore::open_observed(dir, options, settings, None)
    }

    /// Like [`ElbStore::open`], passing every alarm to `observer` as it
    /// fires, including the refusal of this open if the store is not the one
    /// `options` names.
    pub fn open_observed(
        dir: impl AsRef<Path>,
        options: Options,
        mut settings: Settings,
        observer: Option<Observer>,
    ) -> Result<ElbStore, ElbError> {
        let store: Store<ElbState> = match Store::open(dir, options) {
            Ok(store) => store,
            Err(err) => {
                if let (Error::WrongStore { expected_name, expected_environment, found, .. }, Some(observer)) =
                    (&err, &observer)
                {
                    observer(&Alarm {
                        kind: AlarmKind::WrongStore {
                            expected: format!("{expected_name}/{expected_environment}"),
                            found: format!("{}/{} ({})", found.name, found.environment, found.id),
                        },
                        time: crate::clock::Clock::now(&crate::clock::SystemClock),
                        actors: Vec::new(),
                        transactions: Vec::new(),
                    });
                }
                return Err(ElbError::Store(err));
            }
        };
        if let Some(region) = &settings.region {
            if !super::arn::is_region(region) {
                return Err(invalid("settings.region", region, "is not a region code such as us-east-1"));
            }
        }
        let recorded = store.read().state().region().map(str::to_owned);
        match (&settings.region, recorded) {
            (Some(asked), Some(recorded)) if *asked != recorded => {
                return Err(ElbError::RegionMismatch { settings: asked.clone(), store: recorded });
            }
            (None, Some(recorded)) => settings.region = Some(recorded),
            _ => {}
        }
        Ok(ElbStore {
            store,
            settings,
            ledger: Mutex::new(None),
            observer,
            fired: Mutex::new(Vec::new()),
            entity_index: Mutex::default(),
        })
    }

    /// Validates `commands` against the latest state and commits them as one
    /// transaction, all or nothing, subject to the deletion guard.
    pub fn execute(&self, meta: TxnMeta, commands: Vec<Command>) -> Result<Applied, ElbError> {
        self.execute_with(meta, move |_, _| commands)
    }

    /// Like [`ElbStore::execute`], with the commands built from the latest
    /// state and the transaction's context (its sequence number gives the ids
    /// of the resources it creates, so commands can name them).
    pub fn execute_with(
        &self,
        meta: TxnMeta,
        commands: impl FnOnce(&ElbState, &TxnContext) -> Vec<Command>,
    ) -> Result<Applied, ElbError> {
        let settings = &self.settings;
        let guard_meta = meta.clone();
        let outcome = self.store.execute_framed(
            meta,
            |state, ctx| {
                let commands = commands(state, ctx);
                let (events, outcomes, after) = plan_folded(state, &commands, ctx, settings).map_err(Stop::Refused)?;
                let created = created_by_name(&commands, &outcomes);
                if events.is_empty() {
                    return Err(Stop::NoChange(outcomes, created));
                }
                let changes = self.guard(&guard_meta, ctx.time, &events).map_err(Stop::Refused)?;
                // The planner already applied every event to its copy: adopt it.
                Ok((events, (outcomes, changes, Vec::new(), created), Some(after)))
            },
            |ctx, (_, changes, alarms, _)| *alarms = self.record_guarded(&guard_meta, ctx, *changes),
        );
        match outcome {
            Ok((committed, (outcomes, _, alarms, created))) => {
                self.raise(&alarms);
                Ok(Applied { committed: Some(committed), outcomes, alarms, created })
            }
            Err(Stop::NoChange(outcomes, created)) => {
                Ok(Applied { committed: None, outcomes, alarms: Vec::new(), created })
            }
            Err(Stop::Refused(err)) => Err(err),
        }
    }

    /// Runs the deletion guard's check on a transaction about to commit
    /// (inside the store's commit, under its head lock, so in commit order);
    /// returns the load balancers it creates and deletes, for
    /// [`ElbStore::record_guarded`] to record once the transaction is framed.
    /// Every writing path (commands, reverts) goes through here.
    pub(crate) fn guard(
        &self,
        meta: &TxnMeta,
        time: crate::clock::Timestamp,
        events: &[ElbEvent],
    ) -> Result<(usize, usize), ElbError> {
        let changes = load_balancer_changes(events);
        self.ledger()?.check(&self.settings.guard, meta, time, changes.1)?;
        Ok(changes)
    }

    /// Records a transaction the guard let through, once the store has framed
    /// it for the log (still in commit order): a transaction refused after
    /// the guard's check (its record over the size limit) is not counted.
    /// Returns the alarms it raises.
    pub(crate) fn record_guarded(&self, meta: &TxnMeta, ctx: &TxnContext, changes: (usize, usize)) -> Vec<Alarm> {
        let mut slot = self.ledger.lock();
        // The check built it; nothing else removes it.
        let Some(ledger) = slot.as_mut() else { return Vec::new() };
        ledger.record(ctx.seq, ctx.time, meta, changes, &self.settings.alarms, self.settings.guard.window)
    }

    /// The guard's verdict on `events` by `meta` if they were committed now,
    /// recording nothing: what a dry run asks.
    pub(crate) fn guard_check(&self, meta: &TxnMeta, events: &[ElbEvent]) -> Result<(), ElbError> {
        let now = self.read().time().checked_next().unwrap_or(self.read().time()).max(self.store.clock_now());
        self.guard(meta, now, events).map(|_| ())
    }

    /// Passes alarms of an acknowledged transaction to the observer and keeps them.
    pub(crate) fn raise(&self, alarms: &[Alarm]) {
        if alarms.is_empty() {
            return;
        }
        if let Some(observer) = &self.observer {
            alarms.iter().for_each(|alarm| observer(alarm));
        }
        let mut fired = self.fired.lock();
        fired.extend_from_slice(alarms);
        let excess = fired.len().saturating_sub(ALARMS_KEPT_MAX);
        fired.drain(..excess);
    }

    /// The alarms fired since this store was opened, oldest first (the last 1000).
    pub fn alarms(&self) -> Vec<Alarm> {
        self.fired.lock().clone()
    }

    /// The guards' view of the recent past. The first call on a store opened
    /// by this process reads the log's last window (an hour by default).
    pub fn guard_status(&self) -> Result<GuardStatus, ElbError> {
        let now = self.read().time().max(crate::clock::Clock::now(&crate::clock::SystemClock));
        Ok(self.ledger()?.status(now, &self.settings.alarms))
    }

    /// The ledger, rebuilt from the log's recent past on first use.
    fn ledger(&self) -> Result<parking_lot::MappedMutexGuard<'_, Ledger>, Error> {
        let mut slot = self.ledger.lock();
        if slot.is_none() {
            *slot = Some(rebuild_ledger(&self.store, &self.settings)?);
        }
        Ok(parking_lot::MutexGuard::map(slot, |ledger| ledger.as_mut().expect("built above")))
    }

    /// The state as of the last acknowledged transaction.
    pub fn read(&self) -> View<ElbState> {
        self.store.read()
    }

    /// The generic store underneath: log, snapshots, identity, time travel.
    pub fn store(&self) -> &Store<ElbState> {
        &self.store
    }

    /// The region, quotas, guard and alarm settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store's region: the settings', or the one its load balancers name.
    pub fn region(&self) -> Option<&str> {
        self.settings.region.as_deref()
    }

    /// A resource's ARN as the API gives it (`None` for targets, resources
    /// that do not exist, or a store whose region is not known).
    pub fn arn(&self, key: &EntityKey) -> Option<String> {
        self.read().state().arn(self.region()?, key)
    }

    /// The resource an ARN names, if it exists now (every part of the ARN
    /// must agree with it, the region included).
    pub fn resolve_arn(&self, arn: &str) -> Option<EntityKey> {
        self.read().state().resolve_arn(self.region()?, arn)
    }

    /// Closes the store, reporting any error.
    pub fn close(self) -> Result<(), ElbError> {
        self.store.close().map_err(ElbError::Store)
    }
}

/// The ledger for the guard and alarm windows, from the log's recent past.
fn rebuild_ledger(store: &Store<ElbState>, settings: &Settings) -> Result<Ledger, Error> {
    let view = store.read();
    let window = settings.alarms.window.max(settings.guard.window);
    let mut recent = Vec::new();
    if view.seq() > 0 {
        let since = view.time().as_nanos().saturating_sub(u64::try_from(window.as_nanos()).unwrap_or(u64::MAX));
        for txn in store.transactions_after(crate::clock::Timestamp(since)) {
            let txn = txn?;
            if txn.seq > view.seq() {
                break;
            }
            let (created, deleted) = load_balancer_changes(&txn.events);
            if created + deleted > 0 {
                recent.push((txn.seq, txn.time, txn.meta.actor, created, deleted));
            }
        }
    }
    Ok(Ledger::rebuild(view.counts().load_balancers, recent, &settings.alarms))
}
