//! Progress of long work (replaying the log, indexing history, verifying,
//! restoring), reported to a callback given in [`Options::progress`]. The
//! store draws nothing itself: a tool turns the reports into a progress bar, a
//! service into a log line or a metric.
//!
//! [`Options::progress`]: crate::Options::progress

use std::fmt;
use std::sync::Arc;

/// What long work is under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Work {
    /// Replaying transactions onto a snapshot or a checkpoint: opening a
    /// store, or reading a point in the past.
    Replay,
    /// Reading the log's record positions, a segment at a time, as far as history is read.
    Index,
    /// Checking every record and snapshot.
    Verify,
    /// Copying transactions into a new store.
    Restore,
    /// Copying a damaged log, up to its first damage, into a new store.
    Salvage,
}

impl Work {
    /// The work in a word or two, for a progress line.
    pub fn as_str(self) -> &'static str {
        match self {
            Work::Replay => "replaying",
            Work::Index => "indexing",
            Work::Verify => "verifying",
            Work::Restore => "restoring",
            Work::Salvage => "salvaging",
        }
    }
}

/// One report: `done` of `total` units (transactions, or segments for
/// [`Work::Verify`] and [`Work::Salvage`]). The last report of a piece of work
/// has `done == total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is under way.
    pub work: Work,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
}

/// The callback of [`Options::progress`](crate::Options::progress).
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressFn {
    /// Wraps a callback.
    pub fn new(f: impl Fn(Progress) + Send + Sync + 'static) -> ProgressFn {
        ProgressFn(Arc::new(f))
    }
}

impl fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressFn")
    }
}

/// Reports one piece of work: at most once per `STEP` units, and at the end.
pub(crate) struct Reporter<'a> {
    callback: Option<&'a ProgressFn>,
    work: Work,
    total: u64,
    next: u64,
}

/// Units between reports: often enough for a bar to move, rarely enough to cost nothing.
const STEP: u64 = 1024;

impl<'a> Reporter<'a> {
    pub(crate) fn new(callback: Option<&'a ProgressFn>, work: Work, total: u64) -> Reporter<'a> {
        let reporter = Reporter { callback, work, total, next: 0 };
        reporter.send(0);
        reporter
    }

    /// `done` units are done.
    pub(crate) fn at(&mut self, done: u64) {
        if done >= self.next {
            self.next = done.saturating_add(STEP.max(self.total / 200));
            self.send(done.min(self.total));
        }
    }

    /// The work is done.
    pub(crate) fn finish(self) {
        self.send(self.total);
    }

    fn send(&self, done: u64) {
        if let Some(callback) = self.callback {
            (callback.0)(Progress { work: self.work, done, total: self.total });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn reports_start_steps_and_end_and_nothing_without_a_callback() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let callback = ProgressFn::new(move |p| sink.lock().push(p.done));
        let mut reporter = Reporter::new(Some(&callback), Work::Replay, 3000);
        for done in 1..=3000 {
            reporter.at(done);
        }
        reporter.finish();
        assert_eq!(*seen.lock(), vec![0, 1, 1025, 2049, 3000]);
        let mut silent = Reporter::new(None, Work::Verify, 10);
        silent.at(5);
        silent.finish();
    }
}
