//! The typed store: the generic store over the ELB state, driven by commands,
//! behind the guardrails.

use std::path::Path;

use parking_lot::Mutex;

use super::command::{Command, Outcome};
use super::error::ElbError;
use super::event::ElbEvent;
use super::guard::{load_balancer_changes, Alarm, AlarmKind, GuardStatus, Ledger, Observer};
use super::plan::plan_folded;
use super::quotas::Settings;
use super::state::ElbState;
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
/// let options = Options::default().create(Create::IfMissing).identity("us-east-1", "production");
/// let store = ElbStore::open(&dir, options, Settings::default())?;
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
    NoChange(Vec<Outcome>),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Stop {
        Stop::Refused(ElbError::Store(err))
    }
}

impl ElbStore {
    /// Opens the store in `dir` (or creates it, as `options` allow: see [`Create`](crate::Create)).
    pub fn open(dir: impl AsRef<Path>, options: Options, settings: Settings) -> Result<ElbStore, Error> {
        ElbStore::open_observed(dir, options, settings, None)
    }

    /// Opens the store in `dir` (or creates it, as `options` allow: see [`Create`](crate::Create)). passing every alarm to `observer`
    /// as it fires, including the refusal of this open if the store is not the
    /// one `options` names.
    pub fn open_observed(
        dir: impl AsRef<Path>,
        options: Options,
        settings: Settings,
        observer: Option<Observer>,
    ) -> Result<ElbStore, Error> {
        let store = match Store::open(dir, options) {
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
                return Err(err);
            }
        };
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
        let outcome = self.store.execute_folded(meta, |state, ctx| {
            let commands = commands(state, ctx);
            let (events, outcomes, after) = plan_folded(state, &commands, ctx, settings).map_err(Stop::Refused)?;
            if events.is_empty() {
                return Err(Stop::NoChange(outcomes));
            }
            let alarms = self.guard(&guard_meta, ctx, &events).map_err(Stop::Refused)?;
            // The planner already applied every event to its copy: adopt it.
            Ok((events, (outcomes, alarms), Some(after)))
        });
        match outcome {
            Ok((committed, (outcomes, alarms))) => {
                self.raise(&alarms);
                Ok(Applied { committed: Some(committed), outcomes, alarms })
            }
            Err(Stop::NoChange(outcomes)) => Ok(Applied { committed: None, outcomes, alarms: Vec::new() }),
            Err(Stop::Refused(err)) => Err(err),
        }
    }

    /// Runs the deletion guard on a transaction about to commit (inside
    /// `Store::execute`, so in commit order) and records it; returns the alarms
    /// it raises. Every writing path (commands, reverts) goes through here.
    pub(crate) fn guard(&self, meta: &TxnMeta, ctx: &TxnContext, events: &[ElbEvent]) -> Result<Vec<Alarm>, ElbError> {
        let changes = load_balancer_changes(events);
        let mut ledger = self.ledger()?;
        ledger.check(&self.settings.guard, meta, ctx.time, changes.1)?;
        Ok(ledger.record(ctx.seq, ctx.time, meta, changes, &self.settings.alarms, self.settings.guard.window))
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
    pub fn guard_status(&self) -> Result<GuardStatus, Error> {
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

    /// Closes the store, reporting any error.
    pub fn close(self) -> Result<(), Error> {
        self.store.close()
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
