//! The typed store: the generic store over the ELB state, driven by commands.

use std::path::Path;

use super::command::{Command, Outcome};
use super::error::ElbError;
use super::plan::plan;
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
}

/// The ELB state store: commands in, validated events logged, typed state out.
///
/// ```
/// use elbstore::elb::{fleet, ElbStore, Settings};
/// use elbstore::{Options, TxnMeta};
///
/// let dir = std::env::temp_dir().join(format!("elbstore-elb-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let store = ElbStore::open(&dir, Options::default(), Settings::default())?;
/// let applied = store.execute_with(TxnMeta::new("svc:api", "CreateLoadBalancer lb-0"), |_, ctx| {
///     fleet::reference_commands(0, ctx.seq)
/// })?;
/// assert_eq!(applied.committed.unwrap().seq, 1);
/// let view = store.read();
/// let lb = view.load_balancer_by_name(&fleet::account(0), "lb-0").unwrap();
/// assert_eq!(view.listeners_of(lb.id).count(), 2);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), elbstore::elb::ElbError>(())
/// ```
#[derive(Debug)]
pub struct ElbStore {
    store: Store<ElbState>,
    settings: Settings,
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
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: Options, settings: Settings) -> Result<ElbStore, Error> {
        Ok(ElbStore { store: Store::open(dir, options)?, settings })
    }

    /// Validates `commands` against the latest state and commits them as one
    /// transaction, all or nothing.
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
        let outcome = self.store.execute(meta, |state, ctx| {
            let commands = commands(state, ctx);
            let (events, outcomes) = plan(state, &commands, ctx, settings).map_err(Stop::Refused)?;
            if events.is_empty() {
                return Err(Stop::NoChange(outcomes));
            }
            Ok((events, outcomes))
        });
        match outcome {
            Ok((committed, outcomes)) => Ok(Applied { committed: Some(committed), outcomes }),
            Err(Stop::NoChange(outcomes)) => Ok(Applied { committed: None, outcomes }),
            Err(Stop::Refused(err)) => Err(err),
        }
    }

    /// The state as of the last acknowledged transaction.
    pub fn read(&self) -> View<ElbState> {
        self.store.read()
    }

    /// The generic store underneath: log, snapshots, identity.
    pub fn store(&self) -> &Store<ElbState> {
        &self.store
    }

    /// The region and quotas.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Closes the store, reporting any error.
    pub fn close(self) -> Result<(), Error> {
        self.store.close()
    }
}
