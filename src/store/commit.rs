//! The commit path: validate and append under the head lock, then group commit.
//!
//! A writer runs its command against the head state (which already includes
//! every transaction appended before it, durable or not), frames its record
//! into the pending buffer and applies its events to the head state, all under
//! the head lock. It then waits for a commit group to cover its record. The
//! first waiter that finds no group in flight becomes the leader: it takes
//! every pending record and a clone of the head state, writes the records,
//! fsyncs once, publishes the cloned state to readers and wakes the group.
//! While the leader waits on the disk, other writers keep appending; they form
//! the next group. A large transaction stages its records and the state
//! after them before releasing the head lock, so the group that takes them
//! needs no head lock: a writer planning the next large batch under that
//! lock does not hold back the previous one's write and fsync. A failed
//! write or fsync poisons the store: every waiter and every later writer
//! gets `Error::Poisoned`, and readers keep seeing the last durable state.

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::MutexGuard;

use super::error::{Error, Poison, Result};
use super::machine::StateMachine;
use super::options::SyncPolicy;
use super::txn::{Committed, TxnContext, TxnMeta};
use super::{payload, Inner, View};
use crate::clock::Timestamp;
use crate::wal::{self, WalError, SEGMENT_HEADER_BYTES};

/// The longest actor, ticket or approver, in bytes.
pub const ACTOR_BYTES_MAX: usize = 256;
/// The longest reason, in bytes.
pub const REASON_BYTES_MAX: usize = 4096;

/// Records framed but not yet handed to the log writer.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// Whether a new segment starts with this chunk's first record.
    pub new_segment: bool,
    pub first_seq: u64,
    pub first_time: Timestamp,
    pub last_seq: u64,
    /// Where the chunk starts in its segment.
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The writer-side state: everything appended, durable or not.
pub(crate) struct Head<S> {
    pub state: S,
    pub next_seq: u64,
    pub last_time: Timestamp,
    pub chunks: Vec<Chunk>,
    /// The planned size of the active segment including pending chunks;
    /// `None` before the first segment exists.
    pub active_segment_bytes: Option<u64>,
    pub events_since_snapshot: u64,
}

/// Events in a transaction from which its appender stages the state after
/// it for the commit group (`Inner::stage`): such a transaction takes long
/// to plan, and a leader waiting for the head lock behind the next one
/// would not start its write and fsync until that one is planned.
pub(crate) const STAGE_STATE_EVENTS_MIN: usize = 64;

/// Records appended whole and the state after the last of them, waiting for
/// the next commit group's leader.
pub(crate) struct Staged<S> {
    chunks: Vec<Chunk>,
    /// The state after the last staged record, when its transaction staged
    /// it (else the leader clones the head): what the group publishes.
    view: Option<View<S>>,
    /// A snapshot of the group's state is due.
    snapshot_due: bool,
}

impl<S> Default for Staged<S> {
    fn default() -> Staged<S> {
        Staged { chunks: Vec::new(), view: None, snapshot_due: false }
    }
}

/// Appends `more` to `chunks`, each chunk that goes on in the same segment
/// joined to the one before, so a group writes each segment's records in
/// one piece.
fn join(chunks: &mut Vec<Chunk>, more: impl IntoIterator<Item = Chunk>) {
    for chunk in more {
        match chunks.last_mut() {
            Some(last) if !chunk.new_segment => {
                last.bytes.extend_from_slice(&chunk.bytes);
                last.last_seq = chunk.last_seq;
            }
            _ => chunks.push(chunk),
        }
    }
}

impl<S> Staged<S> {
    /// Everything staged, leaving the stage empty.
    fn take(&mut self) -> (Vec<Chunk>, Option<View<S>>, bool) {
        (std::mem::take(&mut self.chunks), self.view.take(), std::mem::take(&mut self.snapshot_due))
    }
}

/// Where the pending records ended before a transaction was framed.
#[derive(Clone, Copy)]
pub(crate) struct PendingMark {
    chunks: usize,
    last_chunk: Option<(usize, u64)>,
    active_segment_bytes: Option<u64>,
}

impl<S: Clone> Head<S> {
    /// The head as a view: the state after every record appended.
    fn view(&self) -> View<S> {
        View { seq: self.next_seq - 1, time: self.last_time, state: Arc::new(self.state.clone()) }
    }
}

impl<S> Head<S> {
    pub(crate) fn pending_mark(&self) -> PendingMark {
        PendingMark {
            chunks: self.chunks.len(),
            last_chunk: self.chunks.last().map(|c| (c.bytes.len(), c.last_seq)),
            active_segment_bytes: self.active_segment_bytes,
        }
    }

    /// Takes out whatever was framed after `mark`.
    pub(crate) fn undo_to(&mut self, mark: PendingMark) {
        self.chunks.truncate(mark.chunks);
        if let (Some(chunk), Some((bytes, last_seq))) = (self.chunks.last_mut(), mark.last_chunk) {
            chunk.bytes.truncate(bytes);
            chunk.last_seq = last_seq;
        }
        self.active_segment_bytes = mark.active_segment_bytes;
    }
}

/// The state of commit groups.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    /// Every transaction up to this one is acknowledged and visible.
    pub acked_seq: u64,
    /// Whether a leader is writing a group now.
    pub leader_active: bool,
    /// Writers parked until their transaction is acknowledged: (seq, thread).
    /// A leader wakes only the writers its group acknowledged and the one
    /// that is to lead next, not every writer (with 64 writers on 2 cores,
    /// waking all of them for every group costs more than the group).
    pub waiters: Vec<(u64, std::thread::Thread)>,
    /// The failure that poisoned the store, if any.
    pub poison: Option<Arc<Poison>>,
}

/// Removes from the waiters, after a group, those to wake: every writer whose
/// transaction is now acknowledged (all of them if the store is poisoned), and
/// the one with the lowest pending transaction, to lead the next group.
fn take_woken(groups: &mut Groups) -> Vec<std::thread::Thread> {
    let (acked, poisoned) = (groups.acked_seq, groups.poison.is_some());
    let mut woken = Vec::new();
    groups.waiters.retain(|(seq, waiter)| {
        let wake = poisoned || *seq <= acked;
        if wake {
            woken.push(waiter.clone());
        }
        !wake
    });
    let next = groups.waiters.iter().enumerate().min_by_key(|(_, (seq, _))| *seq).map(|(i, _)| i);
    if let Some(next) = next {
        woken.push(groups.waiters.swap_remove(next).1);
    }
    woken
}

pub(crate) fn check_meta(meta: &TxnMeta) -> Result<()> {
    if meta.actor.trim().is_empty() {
        return Err(Error::MissingAttribution { field: "actor" });
    }
    if meta.reason.trim().is_empty() {
        return Err(Error::MissingAttribution { field: "reason" });
    }
    let fields = [
        ("actor", meta.actor.len(), ACTOR_BYTES_MAX),
        ("reason", meta.reason.len(), REASON_BYTES_MAX),
        ("ticket", meta.ticket.as_ref().map_or(0, String::len), ACTOR_BYTES_MAX),
        ("approved_by", meta.approved_by.as_ref().map_or(0, String::len), ACTOR_BYTES_MAX),
    ];
    for (field, bytes, limit) in fields {
        if bytes > limit {
            return Err(Error::FieldTooLong { field, bytes, limit });
        }
    }
    Ok(())
}

/// A revert mark names only transactions before the one it is on.
pub(crate) fn check_reverts(meta: &TxnMeta, seq: u64) -> Result<()> {
    match meta.reverts.iter().find(|&&reverts| reverts == 0 || reverts >= seq) {
        Some(&reverts) => Err(Error::RevertsNotEarlier { seq, reverts }),
        None => Ok(()),
    }
}

impl<S: StateMachine> Inner<S> {
    pub(crate) fn poisoned_error(&self) -> Option<Error> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        let cause = self.groups.lock().poison.clone()?;
        Some(Error::Poisoned { cause })
    }

    /// Appends one transaction to the head and returns its place; the caller
    /// then waits for it with [`Inner::wait_acked`].
    /// When `f` returns the state after its events (it may have computed it
    /// anyway while validating), the head adopts it instead of applying the
    /// events a second time.
    pub(crate) fn append<R, E: From<Error>>(
        &self,
        meta: &TxnMeta,
        f: impl FnOnce(&S, &TxnContext) -> Result<(Vec<S::Event>, R, Option<S>), E>,
        framed: impl FnOnce(&TxnContext, &mut R),
    ) -> Result<(Committed, R), E> {
        check_meta(meta)?;
        let mut head = self.lock_head()?;
        let Some(earliest) = head.last_time.checked_next() else {
            return Err(Error::TimeExhausted { last: head.last_time }.into());
        };
        let ctx = TxnContext { seq: head.next_seq, time: self.clock.now().max(earliest) };
        check_reverts(meta, ctx.seq)?;
        let mut count = 0;
        let appended = self.guarded(&mut head, |head| {
            let (events, result, folded) = f(&head.state, &ctx)?;
            count = events.len();
            if events.is_empty() {
                return Err(Error::EmptyTransaction.into());
            }
            self.push(head, meta, &events, ctx, folded)?;
            let mut result = result;
            framed(&ctx, &mut result);
            Ok((Committed { seq: ctx.seq, time: ctx.time }, result))
        });
        if appended.is_ok() {
            self.stage(&mut head, count);
        }
        appended
    }

    /// After a transaction of [`STAGE_STATE_EVENTS_MIN`] events or more
    /// from `append` (not `import`),
    /// hands the head's pending records and a clone of the state they lead
    /// to to the next commit group, which then needs no head lock to start;
    /// called with the head lock held, after the transaction was appended
    /// whole (a failed or panicking one leaves nothing pending). A smaller
    /// one leaves its records pending in the head, for the leader to take
    /// with a clone of the head (one clone per group, not per transaction: a
    /// clone shared with the head makes the head's next change copy its
    /// paths).
    fn stage(&self, head: &mut Head<S>, events: usize) {
        if events < STAGE_STATE_EVENTS_MIN || head.chunks.is_empty() {
            return;
        }
        // Cloning is the state machine's code: a panic poisons the store (so
        // nothing staged or pending is written from then on), naming this
        // transaction, and goes on unwinding in this writer.
        let view = match panic::catch_unwind(AssertUnwindSafe(|| head.view())) {
            Ok(view) => view,
            Err(payload) => {
                self.poison(Poison::panic(head.next_seq - 1, payload.as_ref()));
                panic::resume_unwind(payload)
            }
        };
        let snapshot_due = self.snapshot_due(head);
        let replaced = {
            let mut staged = self.staged.lock();
            join(&mut staged.chunks, head.chunks.drain(..));
            staged.snapshot_due |= snapshot_due;
            staged.view.replace(view)
        };
        // A replaced state shares nearly all its nodes with the head:
        // dropped after the staging lock, which the leader takes, is released.
        drop(replaced);
    }

    /// Appends a transaction copied from another store's log, keeping its
    /// sequence number and time (restores); `at` is where it was read (its
    /// segment and byte offset), for errors. The caller waits for it as usual.
    pub(crate) fn import(&self, txn: &super::Transaction<S::Event>, at: (&Path, u64)) -> Result<()> {
        let mut head = self.lock_head()?;
        let (path, offset) = (at.0.to_path_buf(), at.1);
        if txn.seq != head.next_seq {
            let (expected, found) = (head.next_seq, txn.seq);
            return Err(Error::Wal(WalError::SequenceGap { path, offset, expected, found }));
        }
        if txn.time <= head.last_time {
            let (seq, previous, found) = (txn.seq, head.last_time, txn.time);
            return Err(Error::Wal(WalError::TimeWentBackwards { path, offset, seq, previous, found }));
        }
        let ctx = TxnContext { seq: txn.seq, time: txn.time };
        // Not staged: a restore has no writer planning under the head lock
        // to overlap with, and staging each large transaction would clone
        // the state for each, only for the next to replace it.
        self.guarded(&mut head, |head| self.push(head, &txn.meta, &txn.events, ctx, None))
    }

    /// The head, once no earlier failure or panic has poisoned the store. The
    /// check repeats under the lock: a panic may have poisoned the store while
    /// this writer waited for it.
    fn lock_head(&self) -> Result<MutexGuard<'_, Head<S>>> {
        if let Some(err) = self.poisoned_error() {
            return Err(err);
        }
        let head = self.head.lock();
        match self.poisoned_error() {
            Some(err) => Err(err),
            None => Ok(head),
        }
    }

    /// Runs `body`, which may call code that is not the store's (the caller's
    /// closure, `Serialize`, `apply`), on the head. If it panics, what it
    /// framed is taken back out of the pending records, the store is poisoned
    /// before the head lock is released (no other writer builds on a state
    /// that may be half-applied), every waiter is woken, and the panic goes on
    /// unwinding in the caller's thread.
    fn guarded<T>(&self, head: &mut Head<S>, body: impl FnOnce(&mut Head<S>) -> T) -> T {
        let mark = head.pending_mark();
        match panic::catch_unwind(AssertUnwindSafe(|| body(&mut *head))) {
            Ok(outcome) => outcome,
            Err(payload) => {
                head.undo_to(mark);
                self.poison(Poison::panic(head.next_seq, payload.as_ref()));
                panic::resume_unwind(payload)
            }
        }
    }

    /// Frames one transaction into the pending records and applies it to the
    /// head state (or adopts `folded`, the state with its events applied).
    fn push(
        &self,
        head: &mut Head<S>,
        meta: &TxnMeta,
        events: &[S::Event],
        ctx: TxnContext,
        folded: Option<S>,
    ) -> Result<()> {
        let Some(next_seq) = head.next_seq.checked_add(1) else {
            return Err(Error::SequenceExhausted { last: head.next_seq - 1 });
        };
        self.frame_into_head(head, meta, events, ctx)?;
        match folded {
            Some(state) => head.state = state,
            None => {
                for event in events {
                    head.state.apply(event);
                }
            }
        }
        head.state.committed();
        head.next_seq = next_seq;
        head.last_time = ctx.time;
        head.events_since_snapshot += events.len() as u64;
        Ok(())
    }

    /// Frames one record into the pending chunks. A segment is sealed once it
    /// holds `segment_bytes` or more, so a segment exceeds that size by at most
    /// one record. On error nothing pending changes.
    fn frame_into_head(&self, head: &mut Head<S>, meta: &TxnMeta, events: &[S::Event], ctx: TxnContext) -> Result<()> {
        let limit = self.record_bytes_max;
        let needs_segment = head.active_segment_bytes.is_none_or(|bytes| bytes >= self.segment_bytes);
        let pushed = needs_segment || head.chunks.is_empty();
        if pushed {
            let offset = match head.active_segment_bytes {
                Some(bytes) if !needs_segment => bytes,
                _ => SEGMENT_HEADER_BYTES as u64,
            };
            head.chunks.push(Chunk {
                new_segment: needs_segment,
                first_seq: ctx.seq,
                first_time: ctx.time,
                last_seq: ctx.seq,
                offset,
                bytes: Vec::new(),
            });
        }
        let chunk = head.chunks.last_mut().expect("a chunk exists");
        let framed = wal::append_frame(
            &mut chunk.bytes,
            ctx.seq,
            ctx.time,
            limit,
            |out| {
                payload::encode_into::<S>(meta, events, out, limit).map_err(|source| {
                    if source.is_size_limit() {
                        Error::RecordTooLarge { seq: ctx.seq, bytes: limit as usize + 1, limit }
                    } else {
                        Error::Unencodable { seq: ctx.seq, source }
                    }
                })
            },
            |bytes| Error::RecordTooLarge { seq: ctx.seq, bytes, limit },
        );
        match framed {
            Ok(framed) => {
                chunk.last_seq = ctx.seq;
                let base =
                    if needs_segment { SEGMENT_HEADER_BYTES as u64 } else { head.active_segment_bytes.unwrap_or(0) };
                head.active_segment_bytes = Some(base + framed as u64);
                Ok(())
            }
            Err(err) => {
                if pushed {
                    head.chunks.pop();
                }
                Err(err)
            }
        }
    }

    /// Poisons the store (keeping the first cause) and wakes every waiter.
    /// Returns the cause that stands.
    fn poison(&self, cause: Poison) -> Arc<Poison> {
        let mut groups = self.groups.lock();
        let cause = self.poison_locked(&mut groups, cause);
        let woken = take_woken(&mut groups);
        drop(groups);
        woken.iter().for_each(std::thread::Thread::unpark);
        cause
    }

    fn poison_locked(&self, groups: &mut Groups, cause: Poison) -> Arc<Poison> {
        let cause = groups.poison.get_or_insert_with(|| Arc::new(cause)).clone();
        self.poisoned.store(true, Ordering::Release);
        // The mark will not move again: subscribers stop waiting for it.
        self.feed.stop();
        cause
    }

    /// Blocks until `seq` is acknowledged (or the store is poisoned), leading
    /// a commit group when no other writer is.
    pub(crate) fn wait_acked(&self, seq: u64) -> Result<()> {
        let mut groups = self.groups.lock();
        loop {
            if groups.acked_seq >= seq {
                return Ok(());
            }
            if let Some(cause) = &groups.poison {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if groups.leader_active {
                let me = std::thread::current();
                groups.waiters.push((seq, me.clone()));
                drop(groups);
                // An unpark between the push and here is kept as a token, so
                // no wake-up is lost; a spurious one just checks again.
                std::thread::park();
                groups = self.groups.lock();
                groups.waiters.retain(|(_, waiter)| waiter.id() != me.id());
                continue;
            }
            groups.leader_active = true;
            drop(groups);
            // A panic while leading (cloning the state is the state machine's
            // code) must not leave `leader_active` set: every writer would
            // wait for a leader that is gone.
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| self.lead_group()));
            groups = self.groups.lock();
            groups.leader_active = false;
            let (mut panicked, mut wake_feed) = (None, false);
            match outcome {
                Ok(Ok(Some((acked, moved)))) => {
                    groups.acked_seq = groups.acked_seq.max(acked);
                    wake_feed = moved;
                }
                // Poisoned before the group started: the loop reports it.
                Ok(Ok(None)) => {}
                Ok(Err(err)) => {
                    self.poison_locked(&mut groups, err);
                }
                Err(payload) => {
                    // The group's first transaction; the head lock is not
                    // taken here (an appender that panics holds it and then
                    // takes this one).
                    let seq = groups.acked_seq + 1;
                    self.poison_locked(&mut groups, Poison::panic(seq, payload.as_ref()));
                    panicked = Some(payload);
                }
            }
            let woken = take_woken(&mut groups);
            drop(groups);
            woken.iter().for_each(std::thread::Thread::unpark);
            // The subscribers after the writers and the next leader: on a
            // busy machine a woken subscriber may take the CPU, and the
            // group's writers should not wait for it.
            if wake_feed {
                self.feed.wake();
            }
            if let Some(payload) = panicked {
                panic::resume_unwind(payload);
            }
            groups = self.groups.lock();
        }
    }

    /// Writes every pending record, makes it durable per the sync policy and
    /// publishes the state that includes exactly those records; returns the
    /// last seq acknowledged and whether the durable mark moved (its
    /// subscribers are woken by the caller). Writes nothing once the store
    /// is poisoned.
    fn lead_group(&self) -> std::result::Result<Option<(u64, bool)>, Poison> {
        let mut writer_slot = self.writer.lock();
        let writer = writer_slot.as_mut().expect("read-write stores have a log writer");
        let (mut chunks, view, snapshot_due) = {
            // Staged records come before the head's pending ones, and the
            // staged state covers exactly them. Only whole transactions are
            // staged or pending (an appender that panics poisons the store
            // before it releases the head lock), and once the store is
            // poisoned no group writes.
            let mut staged = self.staged.lock();
            if self.poisoned.load(Ordering::Acquire) {
                return Ok(None);
            }
            // A large transaction's state staged: the group starts without
            // waiting for a writer planning under the head lock; what is
            // pending in the head goes with the next group.
            if staged.view.is_some() {
                let (chunks, view, snapshot_due) = staged.take();
                (chunks, view.expect("checked above"), snapshot_due)
            } else {
                drop(staged);
                let mut head = self.head.lock();
                let mut staged = self.staged.lock();
                if self.poisoned.load(Ordering::Acquire) {
                    return Ok(None);
                }
                // Whatever was staged meanwhile, then the head's pending
                // records, and the head after them all.
                let (mut chunks, replaced, staged_due) = staged.take();
                drop(staged);
                join(&mut chunks, head.chunks.drain(..));
                let snapshot_due = staged_due | self.snapshot_due(&mut head);
                let view = head.view();
                drop(head);
                drop(replaced);
                (chunks, view, snapshot_due)
            }
        };
        let io = |err| Poison::Io(err);
        // Subscribers that keep up read the group from memory.
        let offer = self.feed.has_subscribers();
        let mut written = Vec::new();
        // The segment each chunk goes to, for the subscribers' positions.
        let mut segment = if offer { self.segments.read().last().cloned() } else { None };
        for chunk in &mut chunks {
            if chunk.new_segment {
                let info = writer.start_segment(chunk.first_seq, chunk.first_time).map_err(io)?;
                if offer {
                    segment = Some(info.clone());
                }
                self.segments.write().push(info);
            }
            writer.append(&mut chunk.bytes, chunk.last_seq).map_err(io)?;
            if let Some(segment) = segment.clone() {
                written.push(super::feed::Recent {
                    segment,
                    offset: chunk.offset,
                    first_seq: chunk.first_seq,
                    last_seq: chunk.last_seq,
                    bytes: std::mem::take(&mut chunk.bytes),
                });
            }
        }
        match self.sync {
            SyncPolicy::Always => writer.sync().map_err(io)?,
            SyncPolicy::Interval(_) | SyncPolicy::Never => {}
        }
        let durable = writer.durable_seq();
        drop(writer_slot);
        let acked = view.seq;
        // The replaced view is dropped after the lock is released: freeing the
        // nodes only it held must not keep readers waiting.
        let replaced = std::mem::replace(&mut *self.published.write(), view.clone());
        let previous = replaced.seq;
        drop(replaced);
        // Subscribers see what is durable and published, never more.
        self.feed.offer(written);
        let moved = self.feed.raise(durable.min(acked));
        let every = self.options.checkpoint_every;
        if view.seq / every > previous / every {
            let max = self.options.checkpoints_max;
            self.history.checkpoints.lock().insert(view.seq, view.state.clone(), super::history::HEAD_LINEAGE, max);
        }
        if snapshot_due {
            self.request_snapshot(view);
        }
        Ok(Some((acked, moved)))
    }

    /// Makes every record written so far durable (for `SyncPolicy::Interval`,
    /// before a snapshot, and on close). A failure poisons the store.
    pub(crate) fn sync_log(&self) -> Result<()> {
        if let Some(err) = self.poisoned_error() {
            return Err(err);
        }
        let mut writer_slot = self.writer.lock();
        let Some(writer) = writer_slot.as_mut() else { return Ok(()) };
        if let Err(err) = writer.sync() {
            drop(writer_slot);
            return Err(Error::Poisoned { cause: self.poison(Poison::Io(err)) });
        }
        let durable = writer.durable_seq();
        drop(writer_slot);
        // A group written but not yet published stays unoffered until it is.
        self.feed.advance(durable.min(self.published.read().seq));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SimFs;
    use crate::store::testing::Sum;
    use crate::store::{Create, Options, Store};

    /// The leader keeps the state it publishes as a history checkpoint each
    /// time the published sequence number crosses a multiple of the spacing.
    #[test]
    fn published_states_are_checkpointed_at_every_multiple_of_the_spacing() {
        let options = Options::default()
            .file_system(Arc::new(SimFs::new()))
            .create(Create::IfMissing)
            .history_checkpoints(4, 100);
        let store = Store::<Sum>::open("/store", options).unwrap();
        for i in 0..10 {
            store.commit(TxnMeta::new("a", "b"), vec![i]).unwrap();
        }
        assert_eq!(store.inner.history.checkpoints.lock().seqs(), [4, 8]);
    }

    fn framed(head: &mut Head<()>, seq: u64, new_segment: bool) {
        if new_segment || head.chunks.is_empty() {
            head.chunks.push(Chunk { new_segment, first_seq: seq, last_seq: seq, ..Chunk::default() });
        }
        let chunk = head.chunks.last_mut().unwrap();
        chunk.bytes.extend_from_slice(&[seq as u8; 10]);
        chunk.last_seq = seq;
        head.active_segment_bytes = Some(head.active_segment_bytes.unwrap_or(0) + 10);
    }

    fn pending(head: &Head<()>) -> Vec<(bool, u64, u64, Vec<u8>)> {
        head.chunks.iter().map(|c| (c.new_segment, c.first_seq, c.last_seq, c.bytes.clone())).collect()
    }

    /// Whatever a panicking transaction framed is taken back out, whether it
    /// went into the last chunk or started a new one.
    #[test]
    fn undoing_to_a_mark_restores_the_pending_records_exactly() {
        let mut head = Head {
            state: (),
            next_seq: 1,
            last_time: Timestamp(0),
            chunks: Vec::new(),
            active_segment_bytes: None,
            events_since_snapshot: 0,
        };
        let empty = head.pending_mark();
        framed(&mut head, 1, true);
        framed(&mut head, 2, false);
        let (before, bytes) = (pending(&head), head.active_segment_bytes);
        for new_segment in [false, true] {
            let mark = head.pending_mark();
            framed(&mut head, 3, new_segment);
            assert_ne!(pending(&head), before);
            head.undo_to(mark);
            assert_eq!(
                (pending(&head), head.active_segment_bytes),
                (before.clone(), bytes),
                "new segment: {new_segment}"
            );
        }
        head.undo_to(empty);
        assert_eq!((pending(&head), head.active_segment_bytes), (Vec::new(), None));
    }
}
