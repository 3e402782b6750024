#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod codec;
pub mod elb;
#[cfg(feature = "testing")]
pub mod fuzzing;
mod identity;
pub mod io;
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
    salvage, verify, Committed, Create, Damage, Error, OpenMode, OpenReport, Options, Point, Poison, RestoreReport,
    Result, SalvageReport, SnapshotRetention, StateMachine, Store, SyncPolicy, Transaction, Transactions, TxnContext,
    TxnMeta, VerifyReport, View, ACTOR_BYTES_MAX, DEFAULT_ENVIRONMENT, DEFAULT_NAME, IDENTITY_FILE, LOCK_FILE,
    REASON_BYTES_MAX, RECORD_BYTES_MAX_DEFAULT, RESTORED_FROM_FILE, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX,
    SNAPSHOT_BYTES_MAX_DEFAULT, SNAPSHOT_EVERY_EVENTS_DEFAULT,
};
pub use wal::{
    decode_frame, Frame, FrameProblem, HeaderProblem, SegmentHeader, SegmentInfo, TornTail, WalError,
    FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
