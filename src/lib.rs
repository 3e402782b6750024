//! An event-sourced state store for the control-plane metadata of Elastic
//! Load Balancing v2: load balancers, listeners, rules, target groups,
//! targets and trust stores.
//!
//! Every change is a transaction of validated commands, written with who
//! made it and why to a checksummed write-ahead log, with snapshots of the
//! whole state written in the background. Nothing a normal operation does
//! erases history: any past state can be read back, any deletion explained
//! and any transaction reverted.
//!
//! A service links the crate and works through [`elb::ElbStore`]. The
//! sections below follow the path a service takes, in order; every example
//! runs as a test.
//!
//! # Open the store
//!
//! A store is created once, on purpose: [`Create::New`] requires a missing or
//! empty directory. Every later start opens it with [`Create::Never`], the
//! default, so a mistyped or lost data directory is an error instead of a
//! new, empty store. [`Options::identity`] names the store the process
//! means; a read-write open of any other store is refused before it writes.
//! [`Settings::in_region`](elb::Settings::in_region) gives the region (for
//! DNS names and ARNs) and the default quotas, deletion guard and alarms.
//!
//! ```
//! use elbstore::elb::{ElbError, ElbStore, Settings};
//! use elbstore::{Create, Options, SyncPolicy};
//!
//! let dir = std::env::temp_dir().join(format!("elbstore-doc-open-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let options = Options::default()
//!     .identity("elb-use1", "production") // the store this process means
//!     .sync(SyncPolicy::Always); // a commit returns only after its fsync
//!
//! // Provisioning, once: create the store.
//! ElbStore::open(&dir, options.clone().create(Create::New), Settings::in_region("us-east-1"))?.close()?;
//!
//! // Every start of the service: open the existing store, never create one.
//! let store = ElbStore::open(&dir, options.clone(), Settings::in_region("us-east-1"))?;
//! assert_eq!(store.region(), Some("us-east-1"));
//!
//! // A mistyped path is refused, and nothing is created there.
//! let typo = dir.with_extension("typo");
//! let err = ElbStore::open(&typo, options, Settings::in_region("us-east-1")).unwrap_err();
//! assert!(matches!(err, ElbError::Store(elbstore::Error::NotAStore { .. })), "{err}");
//! assert!(!typo.exists());
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ElbError>(())
//! ```
//!
//! Every method of `ElbStore` returns [`ElbError`](elb::ElbError): a refused
//! command, with [`code`](elb::ElbError::code) and
//! [`http_status`](elb::ElbError::http_status) as the ELBv2 API answers it,
//! or a failure of the store underneath ([`ElbError::Store`](elb::ElbError::Store)
//! wrapping [`Error`]).
//!
//! # Create resources
//!
//! [`execute`](elb::ElbStore::execute) validates a list of
//! [`Command`](elb::Command)s against the latest state and commits them as
//! one transaction, all or nothing, with a [`TxnMeta`]: the actor and the
//! reason are required, a change ticket is optional. A resource's id is
//! derived from the transaction that creates it (`seq` and the creation's
//! place in it), so a command can name a resource created earlier in the
//! same transaction; [`execute_with`](elb::ElbStore::execute_with) hands the
//! closure that builds the commands the transaction's sequence number for
//! that. Afterwards, [`Applied`](elb::Applied) gives the new ids by name.
//!
//! ```
//! # use elbstore::elb::{ElbStore, Settings};
//! # use elbstore::{Create, Options};
//! # let dir = std::env::temp_dir().join(format!("elbstore-doc-create-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let options = Options::default().identity("elb-use1", "production").create(Create::New);
//! # let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1"))?;
//! use elbstore::elb::{
//!     Command, CreateListener, CreateLoadBalancer, CreateTargetGroup, ElbError, LoadBalancerId, Protocol, Scheme,
//!     SubnetMapping, TargetGroupId, TargetSpec,
//! };
//! use elbstore::TxnMeta;
//!
//! const ACCOUNT: &str = "123456789012";
//! let subnets = vec![SubnetMapping::new("subnet-0a", "us-east-1a"), SubnetMapping::new("subnet-0b", "us-east-1b")];
//!
//! let meta = TxnMeta::new("svc:provisioner", "web tier for the shop").with_ticket("CHG-1001");
//! let applied = store.execute_with(meta, |_state, ctx| {
//!     // The n-th resource this transaction creates gets the id (ctx.seq, n).
//!     let lb = LoadBalancerId::new(ctx.seq, 0);
//!     let tg = TargetGroupId::new(ctx.seq, 1);
//!     vec![
//!         Command::CreateLoadBalancer(CreateLoadBalancer::new(ACCOUNT, "web", "vpc-0a1", subnets.clone())),
//!         Command::CreateTargetGroup(CreateTargetGroup {
//!             port: Some(8080),
//!             ..CreateTargetGroup::new(ACCOUNT, "web", "vpc-0a1")
//!         }),
//!         Command::CreateListener(CreateListener::forward(lb, Protocol::Http, 80, tg)),
//!         Command::RegisterTargets {
//!             target_group: tg,
//!             targets: vec![TargetSpec::new("i-0123456789abcdef0"), TargetSpec::new("i-0123456789abcdef1")],
//!         },
//!     ]
//! })?;
//! // Durable and visible to readers once `execute_with` returns.
//! let committed = applied.committed.expect("the transaction changed something");
//! let lb = applied.load_balancer("web").unwrap();
//! let tg = applied.target_group("web").unwrap();
//! let listener = applied.listener(lb, 80).unwrap();
//! assert_eq!((lb.created_seq(), tg.created_seq(), listener.created_seq()), (committed.seq, committed.seq, 1));
//!
//! // A refused transaction writes nothing; the error is the API's.
//! let other = CreateLoadBalancer {
//!     scheme: Scheme::Internal,
//!     ..CreateLoadBalancer::new(ACCOUNT, "web", "vpc-0a1", subnets)
//! };
//! let err = store.execute(TxnMeta::new("svc:provisioner", "another web"), vec![Command::CreateLoadBalancer(other)]);
//! let err = err.unwrap_err();
//! assert_eq!((err.code(), err.http_status()), ("DuplicateLoadBalancerName", 400));
//! assert_eq!(store.read().seq(), committed.seq);
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ElbError>(())
//! ```
//!
//! # Read the current state
//!
//! [`read`](elb::ElbStore::read) returns a [`View`]: the state as of the last
//! acknowledged transaction, never one that could still be lost. Taking one
//! costs a reference count; it does not change while it is held, and
//! writers never wait for it.
//!
//! ```
//! # use elbstore::elb::{ElbError, ElbStore, Settings};
//! # use elbstore::{Create, Options, TxnMeta};
//! # let dir = std::env::temp_dir().join(format!("elbstore-doc-read-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let options = Options::default().identity("elb-use1", "production").create(Create::New);
//! # let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1"))?;
//! # use elbstore::elb::{Command, CreateListener, CreateLoadBalancer, CreateTargetGroup, LoadBalancerId};
//! # use elbstore::elb::{Protocol, SubnetMapping, TargetGroupId, TargetSpec};
//! # const ACCOUNT: &str = "123456789012";
//! # let subnets = vec![SubnetMapping::new("subnet-0a", "us-east-1a"), SubnetMapping::new("subnet-0b", "us-east-1b")];
//! # let applied = store.execute_with(TxnMeta::new("svc:provisioner", "web tier"), |_, ctx| {
//! #     let (lb, tg) = (LoadBalancerId::new(ctx.seq, 0), TargetGroupId::new(ctx.seq, 1));
//! #     vec![
//! #         Command::CreateLoadBalancer(CreateLoadBalancer::new(ACCOUNT, "web", "vpc-0a1", subnets)),
//! #         Command::CreateTargetGroup(CreateTargetGroup::new(ACCOUNT, "web", "vpc-0a1")),
//! #         Command::CreateListener(CreateListener::forward(lb, Protocol::Http, 80, tg)),
//! #         Command::RegisterTargets {
//! #             target_group: tg,
//! #             targets: vec![TargetSpec::new("i-0123456789abcdef0"), TargetSpec::new("i-0123456789abcdef1")],
//! #         },
//! #     ]
//! # })?;
//! # let tg = applied.target_group("web").unwrap();
//! use elbstore::elb::EntityKey;
//!
//! let view = store.read();
//! assert_eq!(view.seq(), 1);
//! let counts = view.counts();
//! assert_eq!((counts.load_balancers, counts.listeners, counts.target_groups, counts.targets), (1, 1, 1, 2));
//!
//! let web = view.load_balancer_by_name(ACCOUNT, "web").unwrap();
//! assert_eq!(view.listeners_of(web.id).count(), 1);
//! assert_eq!(view.targets_of(tg).count(), 2);
//! assert_eq!(view.load_balancers_using(tg), [web.id]);
//!
//! // ARNs are derived from the id, name, type, account and region.
//! let arn = store.arn(&EntityKey::LoadBalancer(web.id)).unwrap();
//! assert_eq!(arn, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0000000000010000");
//! assert_eq!(store.resolve_arn(&arn), Some(EntityKey::LoadBalancer(web.id)));
//! # drop(view);
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ElbError>(())
//! ```
//!
//! # Watch for trouble
//!
//! The deletion guard refuses a transaction, or an actor within an hour,
//! deleting more load balancers than its limit without an approval
//! ([`TxnMeta::with_approval`]). Alarms fire on many deletions or a drop of
//! the fleet within a window ([`AlarmThresholds`](elb::AlarmThresholds)),
//! and on an open refused because the store is not the one named. A service
//! that wants them as they fire opens with
//! [`open_observed`](elb::ElbStore::open_observed) and an
//! [`Observer`](elb::Observer); an observer sees only acknowledged
//! transactions. [`alarms`](elb::ElbStore::alarms) keeps the recent ones and
//! [`guard_status`](elb::ElbStore::guard_status) gives the window's totals.
//!
//! There is no subscription to every change: a follower remembers the last
//! sequence number it has seen and reads the transactions after it with
//! [`history`](elb::ElbStore::history).
//!
//! ```
//! # use elbstore::elb::{ElbError, ElbStore};
//! # use elbstore::{Create, Options};
//! # let dir = std::env::temp_dir().join(format!("elbstore-doc-watch-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let options = Options::default().identity("elb-use1", "production").create(Create::New);
//! # use elbstore::elb::SubnetMapping;
//! # const ACCOUNT: &str = "123456789012";
//! # let subnets = vec![SubnetMapping::new("subnet-0a", "us-east-1a"), SubnetMapping::new("subnet-0b", "us-east-1b")];
//! use std::sync::{Arc, Mutex};
//!
//! use elbstore::elb::{Alarm, AlarmKind, Command, CreateLoadBalancer, HistoryFilter, Observer, Settings};
//! use elbstore::{Point, TxnMeta};
//!
//! let paged: Arc<Mutex<Vec<Alarm>>> = Arc::default();
//! let pager = Arc::clone(&paged);
//! let observer: Observer = Arc::new(move |alarm: &Alarm| pager.lock().unwrap().push(alarm.clone()));
//! let mut settings = Settings::in_region("us-east-1");
//! settings.alarms.deletions_in_window = 0; // page on any deletion (the default: more than 10 an hour)
//! let store = ElbStore::open_observed(&dir, options, settings, Some(observer))?;
//!
//! let create = CreateLoadBalancer::new(ACCOUNT, "web", "vpc-0a1", subnets);
//! let create = vec![Command::CreateLoadBalancer(create)];
//! let applied = store.execute(TxnMeta::new("svc:provisioner", "web tier"), create)?;
//! let lb = applied.load_balancer("web").unwrap();
//! let delete = vec![Command::DeleteLoadBalancer { load_balancer: lb }];
//! let gone = store.execute(TxnMeta::new("ops:alice", "retire web"), delete)?.committed.unwrap();
//!
//! let paged = paged.lock().unwrap();
//! let deletions = paged.iter().find(|alarm| matches!(alarm.kind, AlarmKind::Deletions { count: 1, .. })).unwrap();
//! assert_eq!(deletions.actors, ["ops:alice"]);
//! assert_eq!(deletions.transactions, [gone.seq]);
//! assert_eq!(store.alarms(), *paged);
//! assert_eq!(store.guard_status()?.deletions_in_window, 1);
//!
//! // Following changes: every transaction after the last one seen.
//! let mut seen = 0;
//! let after_seen = HistoryFilter { from: Some(Point::Seq(seen)), ..HistoryFilter::default() };
//! for txn in store.history(after_seen)? {
//!     let txn = txn?;
//!     println!("{} {} by {}: {} events", txn.seq, txn.time, txn.meta.actor, txn.events.len());
//!     seen = txn.seq;
//! }
//! assert_eq!(seen, store.read().seq());
//! # drop(paged);
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ElbError>(())
//! ```
//!
//! # Find out who deleted something
//!
//! A deletion is an event like any other, logged with its transaction's
//! actor, time, reason and ticket, and the resource's last value.
//! [`lookup_load_balancer`](elb::ElbStore::lookup_load_balancer) finds a load
//! balancer by account and name, live or deleted; [`lookup`](elb::ElbStore::lookup)
//! does the same for any resource by key, and
//! [`entity_history`](elb::ElbStore::entity_history) gives every version.
//!
//! ```
//! # use elbstore::elb::{ElbError, ElbStore, Settings};
//! # use elbstore::{Create, Options};
//! # let dir = std::env::temp_dir().join(format!("elbstore-doc-who-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let options = Options::default().identity("elb-use1", "production").create(Create::New);
//! # let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1"))?;
//! # use elbstore::elb::{CreateLoadBalancer, SubnetMapping};
//! # const ACCOUNT: &str = "123456789012";
//! # let subnets = vec![SubnetMapping::new("subnet-0a", "us-east-1a"), SubnetMapping::new("subnet-0b", "us-east-1b")];
//! # let create = CreateLoadBalancer::new(ACCOUNT, "web", "vpc-0a1", subnets);
//! # let create = vec![elbstore::elb::Command::CreateLoadBalancer(create)];
//! # let applied = store.execute(elbstore::TxnMeta::new("svc:provisioner", "web tier"), create)?;
//! # let lb = applied.load_balancer("web").unwrap();
//! use elbstore::elb::{Command, ElbEvent, Entity, EntityKey, Lookup};
//! use elbstore::TxnMeta;
//!
//! let meta = TxnMeta::new("maint:cleanup", "remove stale load balancers").with_ticket("CHG-2012");
//! let deleted = store.execute(meta, vec![Command::DeleteLoadBalancer { load_balancer: lb }])?;
//! let deleted = deleted.committed.unwrap();
//!
//! let Lookup::Deleted(version) = store.lookup_load_balancer(ACCOUNT, "web")? else { panic!("not deleted") };
//! assert_eq!((version.seq, version.time), (deleted.seq, deleted.time));
//! assert_eq!(version.meta.actor, "maint:cleanup");
//! assert_eq!(version.meta.reason, "remove stale load balancers");
//! assert_eq!(version.meta.ticket.as_deref(), Some("CHG-2012"));
//! let ElbEvent::Deleted(Entity::LoadBalancer(last)) = &version.event else { panic!("{:?}", version.event) };
//! assert_eq!((last.id, last.name.as_str()), (lb, "web"));
//!
//! assert_eq!(store.lookup(&EntityKey::LoadBalancer(lb))?, Lookup::Deleted(version));
//! assert_eq!(store.entity_history(&EntityKey::LoadBalancer(lb))?.len(), 2); // created, deleted
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ElbError>(())
//! ```
//!
//! # Read the past
//!
//! [`state_at`](elb::ElbStore::state_at) gives the state at any [`Point`]:
//! after a transaction, just before one, or at a time. [`diff`](elb::ElbStore::diff)
//! gives what was created, changed (field by field) and deleted between two
//! points. To undo, [`revert`](elb::ElbStore::revert) appends a transaction
//! that puts back what chosen transactions changed, keeping every later
//! change; [`Store::restore_to`] writes a copy of the store as of a point
//! into a new directory.
//!
//! ```
//! # use elbstore::elb::{ElbError, ElbStore, Settings};
//! # use elbstore::{Create, Options, TxnMeta};
//! # let dir = std::env::temp_dir().join(format!("elbstore-doc-past-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! # let options = Options::default().identity("elb-use1", "production").create(Create::New);
//! # let store = ElbStore::open(&dir, options, Settings::in_region("us-east-1"))?;
//! # use elbstore::elb::{Command, CreateLoadBalancer, SubnetMapping};
//! # const ACCOUNT: &str = "123456789012";
//! # let subnets = vec![SubnetMapping::new("subnet-0a", "us-east-1a"), SubnetMapping::new("subnet-0b", "us-east-1b")];
//! # let create = CreateLoadBalancer::new(ACCOUNT, "web", "vpc-0a1", subnets);
//! # let create = vec![Command::CreateLoadBalancer(create)];
//! # let applied = store.execute(TxnMeta::new("svc:provisioner", "web tier"), create)?;
//! # let (lb, created) = (applied.load_balancer("web").unwrap(), applied.committed.unwrap());
//! # let meta = TxnMeta::new("maint:cleanup", "remove stale load balancers");
//! # let deleted = store.execute(meta, vec![Command::DeleteLoadBalancer { load_balancer: lb }])?.committed.unwrap();
//! use elbstore::elb::EntityKind;
//! use elbstore::Point;
//!
//! let before = store.state_at(Point::Before(deleted.seq))?;
//! assert_eq!(before.load_balancer(lb).unwrap().name, "web");
//! assert_eq!(store.state_at(Point::Time(created.time))?.seq(), created.seq);
//! assert!(store.read().load_balancer(lb).is_none());
//!
//! let diff = store.diff(Point::Before(deleted.seq), Point::Seq(deleted.seq))?;
//! assert_eq!(diff.counts()[&EntityKind::LoadBalancer].deleted, 1);
//!
//! // A point outside the log is an error like any other of the store's.
//! let err = store.state_at(Point::Seq(deleted.seq + 1)).unwrap_err();
//! assert!(matches!(err, ElbError::Store(elbstore::Error::PointOutOfRange { .. })), "{err}");
//! # drop(before);
//! # store.close()?;
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ElbError>(())
//! ```
//!
//! # Other state machines
//!
//! `ElbStore` is the ELB model over the generic [`Store<S: StateMachine>`](Store):
//! the log, snapshots, group commit, recovery, identity and time travel,
//! for any state that is a pure fold of its events. Implement
//! [`StateMachine`] (`apply`, and `SCHEMA_VERSION` with the upcasters when
//! the events change shape), then [`Store::open`], [`Store::commit`] or
//! [`Store::execute`], [`Store::read`], [`Store::transactions`] and
//! [`Store::state_at`]; its methods return [`Error`]. The README has a
//! counter as an example; `ElbStore::store` gives the generic store under an
//! `ElbStore`.
//!
//! # Cargo features
//!
//! Both are on by default. A service needs neither:
//!
//! ```toml
//! [dependencies]
//! elbstore = { path = "../elbstore", default-features = false }
//! ```
//!
//! links only the store and the ELB model.
//!
//! - `testing`: what tests, benches and fuzzing use: the simulated file
//!   system `io::SimFs` (faults, crashes), `ManualClock`, the reference
//!   fleet generator `elb::fleet`, and the fuzz targets' entry points
//!   (`fuzzing`).
//! - `tools` (implies `testing`): the operator tools behind the example
//!   binaries (`pitr`, the incident replay, the load generator), in the
//!   module `tools`.
//!
//! # Modules
//!
//! - [`elb`]: the ELB model and its store: [`ElbStore`](elb::ElbStore),
//!   commands, errors, history, repair, the guard and alarms. This is the
//!   service's module.
//! - The crate root: the generic [`Store`] with its [`Options`], [`TxnMeta`],
//!   [`View`], [`Point`], [`Error`], the clock and the on-disk formats' types.
//! - [`io`]: the file-system seam ([`io::FileSystem`]). A service needs none of
//!   it: the real file system is the default; the simulated one is for tests.
//! - `tools` (feature `tools`) and `fuzzing` (feature `testing`): the
//!   operator tools and the fuzz targets' entry points, for the crate's own
//!   binaries and tests.
//!
//! `ARCHITECTURE.md` describes how the crate is built and `docs/FORMAT.md`
//! every byte it writes.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "api")]
pub mod api;
#[cfg(feature = "archive")]
pub mod archive;
mod clock;
mod codec;
pub mod elb;
/// For the fuzz targets and the tests that replay their corpora, not for
/// services (feature `testing`).
#[cfg(feature = "testing")]
pub mod fuzzing;
mod identity;
pub mod io;
#[cfg(feature = "replication")]
pub mod replication;
mod snapshot;
mod store;
#[cfg(feature = "tools")]
pub mod tools;
mod wal;

#[cfg(any(test, feature = "testing"))]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock, Timestamp};
pub use codec::{CodecError, OldBytes};
pub use identity::{Identity, IdentityProblem, StoreId, IDENTITY_FIELD_BYTES_MAX};
pub use snapshot::{
    FramingProblem, SnapshotError, SnapshotHeader, SnapshotInfo, SNAPSHOT_HEADER_BYTES, SNAPSHOT_TRAILER_BYTES,
};
pub use store::{
    salvage, verify, Committed, Create, Damage, Error, OpenMode, OpenReport, Options, Origin, Point, Poison, Progress,
    ProgressFn, RequestId, RestoreReport, Result, SalvageReport, SnapshotRetention, StateMachine, Store, Subscription,
    SyncPolicy, Transaction, Transactions, TxnContext, TxnMeta, VerifyReport, View, Work, ACTOR_BYTES_MAX,
    DEFAULT_ENVIRONMENT, DEFAULT_NAME, IDENTITY_FILE, LOCK_FILE, REASON_BYTES_MAX, RECORD_BYTES_MAX_DEFAULT,
    RESTORED_FROM_FILE, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SNAPSHOT_BYTES_MAX_DEFAULT,
    SNAPSHOT_EVERY_EVENTS_DEFAULT,
};
pub use wal::{
    decode_frame, Frame, FrameProblem, HeaderProblem, SegmentHeader, SegmentInfo, TornTail, WalError,
    FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
