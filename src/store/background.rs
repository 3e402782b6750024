//! Work done off the commit path: snapshots and interval fsyncs.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::commit::Head;
use super::error::{panic_message, Error, Result};
use super::machine::StateMachine;
use super::options::{SnapshotRetention, SyncPolicy};
use super::{Inner, View};
use crate::snapshot::{self, SnapshotHeader, SnapshotInfo};

/// Tells the sync thread to stop.
type Shutdown = Arc<(Mutex<bool>, Condvar)>;

/// The store's background threads.
pub(crate) struct Background<S: StateMachine> {
    inner: Arc<Inner<S>>,
    snapshotter: Option<JoinHandle<()>>,
    ticker: Option<(JoinHandle<()>, Shutdown)>,
}

impl<S: StateMachine> Background<S> {
    pub(crate) fn start(inner: &Arc<Inner<S>>) -> Background<S> {
        let (sender, receiver) = mpsc::channel::<View<S>>();
        *inner.snapshot_requests.lock() = Some(sender);
        let worker = inner.clone();
        let snapshotter = std::thread::Builder::new()
            .name("elbstore-snapshot".into())
            .spawn(move || {
                for view in receiver {
                    // A panic in the state's `Serialize` must not end the
                    // thread: snapshots would stop for good, unnoticed.
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.write_snapshot(&view)))
                            .unwrap_or_else(|payload| {
                                let path = worker.dir.join(snapshot::snapshot_file_name(view.seq));
                                let message = panic_message(payload.as_ref());
                                Err(Error::Snapshot(snapshot::SnapshotError::Panicked { path, message }))
                            });
                    *worker.last_snapshot_error.lock() = outcome.err().and_then(|err| match err {
                        Error::Snapshot(err) => Some(Arc::new(err)),
                        _ => None,
                    });
                    worker.snapshot_busy.store(false, Ordering::Release);
                }
            })
            .expect("spawn snapshot thread");
        let ticker = match inner.sync {
            SyncPolicy::Interval(period) => Some(start_ticker(inner.clone(), period)),
            SyncPolicy::Always | SyncPolicy::Never => None,
        };
        Background { inner: inner.clone(), snapshotter: Some(snapshotter), ticker }
    }

    /// Stops the threads after the snapshot in progress, if any, is written.
    pub(crate) fn stop(mut self) {
        // Dropping the sender ends the snapshot thread's loop.
        self.inner.snapshot_requests.lock().take();
        if let Some(handle) = self.snapshotter.take() {
            let _ = handle.join();
        }
        if let Some((handle, shutdown)) = self.ticker.take() {
            *shutdown.0.lock() = true;
            shutdown.1.notify_all();
            let _ = handle.join();
        }
    }
}

fn start_ticker<S: StateMachine>(inner: Arc<Inner<S>>, period: Duration) -> (JoinHandle<()>, Shutdown) {
    let shutdown = Arc::new((Mutex::new(false), Condvar::new()));
    let flag = shutdown.clone();
    let handle = std::thread::Builder::new()
        .name("elbstore-sync".into())
        .spawn(move || loop {
            let mut stopped = flag.0.lock();
            if !*stopped {
                flag.1.wait_for(&mut stopped, period);
            }
            if *stopped {
                return;
            }
            drop(stopped);
            if inner.sync_log().is_err() {
                return;
            }
        })
        .expect("spawn sync thread");
    (handle, shutdown)
}

impl<S: StateMachine> Inner<S> {
    /// Whether the leader should hand its view to the snapshot thread.
    pub(crate) fn snapshot_due(&self, head: &mut Head<S>) -> bool {
        let Some(every) = self.options.snapshot_every_events else { return false };
        if head.events_since_snapshot < every || self.snapshot_busy.load(Ordering::Acquire) {
            return false;
        }
        head.events_since_snapshot = 0;
        self.snapshot_busy.store(true, Ordering::Release);
        true
    }

    pub(crate) fn request_snapshot(&self, view: View<S>) {
        let sent = self.snapshot_requests.lock().as_ref().is_some_and(|s| s.send(view).is_ok());
        if !sent {
            self.snapshot_busy.store(false, Ordering::Release);
        }
    }

    /// Writes a snapshot of `view`. The log is made durable through the view's
    /// sequence number first, so no snapshot is ever ahead of the durable log.
    pub(crate) fn write_snapshot(&self, view: &View<S>) -> Result<SnapshotInfo> {
        let _guard = self.snapshot_lock.lock();
        // One of an older schema at this seq is replaced (atomically, by the
        // rename): opens would pass it over and replay the log every time.
        let current = u32::from(S::SCHEMA_VERSION);
        if let Some(existing) = self.snapshots.read().iter().find(|s| s.seq == view.seq && s.schema == current) {
            return Ok(existing.clone());
        }
        self.sync_log()?;
        let header = SnapshotHeader {
            store_id: self.identity.id,
            seq: view.seq,
            time: view.time,
            schema: S::SCHEMA_VERSION.into(),
        };
        let info =
            snapshot::write_snapshot(&self.fs, &self.dir, header, view.state(), self.options.snapshot_bytes_max)?;
        let mut snapshots = self.snapshots.write();
        snapshots.retain(|s| s.seq != info.seq);
        snapshots.push(info.clone());
        snapshots.sort_by_key(|s| s.seq);
        if let SnapshotRetention::KeepLast(keep) = self.options.snapshot_retention {
            let excess = snapshots.len().saturating_sub(keep.get());
            let removed: Vec<SnapshotInfo> = snapshots.drain(..excess).collect();
            drop(snapshots);
            for old in &removed {
                self.fs.remove_file(&old.path).map_err(super::error::io_err("remove", &old.path))?;
            }
            if !removed.is_empty() {
                self.fs.sync_dir(&self.dir).map_err(super::error::io_err("fsync directory", &self.dir))?;
            }
        }
        Ok(info)
    }
}
