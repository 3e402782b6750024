//! Salvaging a damaged log: the history up to the first damage, copied into
//! a new store.
//!
//! A store whose log is damaged in its synced region does not open (see the
//! recovery rules), so neither `restore_to` nor any history query can reach
//! it. `salvage` reads the files directly, read-only, with the same checks an
//! open makes, and stops at the first thing an open would refuse: a segment
//! that cannot be read, a bad header, a frame that fails its checksum, a gap
//! in sequence numbers, time going backwards, a payload that does not decode.
//! Everything before it is copied with its original sequence numbers, times,
//! metadata and events; what lies after it is counted, not copied.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::commit::check_meta;
use super::error::{io_err, Error, Result};
use super::machine::StateMachine;
use super::open::IDENTITY_FILE;
use super::options::{Create, OpenMode, Options};
use super::restore::{write_provenance, IMPORT_BATCH, RESTORED_FROM_FILE};
use super::verify::{verify, VerifyReport};
use super::{Reporter, Store, TxnMeta, Work};
use crate::clock::Timestamp;
use crate::identity::Identity;
use crate::io::FileSystem;
use crate::snapshot::SnapshotInfo;
use crate::wal::{self, frames_after, Last, SegmentHeader, SegmentInfo, WalError, SEGMENT_HEADER_BYTES};

/// What [`salvage`] copied and what it left behind.
#[derive(Debug)]
#[non_exhaustive]
pub struct SalvageReport {
    /// The new store's directory.
    pub dir: PathBuf,
    /// The last transaction copied (0 when none was).
    pub seq: u64,
    /// Its commit time (zero when none was copied).
    pub time: Timestamp,
    /// Transactions copied: 1 to `seq`.
    pub transactions: u64,
    /// The snapshot written in the new store at `seq` (none when nothing was copied).
    pub snapshot: Option<SnapshotInfo>,
    /// The first damage and what lies after it, not copied; `None` when the
    /// whole log was copied.
    pub damage: Option<Damage>,
    /// The verification of the new store.
    pub verified: VerifyReport,
    /// The provenance file written into the new store.
    pub provenance: PathBuf,
}

impl SalvageReport {
    /// Whether the whole log was copied: nothing was left behind.
    pub fn complete(&self) -> bool {
        self.damage.is_none()
    }
}

/// Where the source log is first damaged, and what was left behind there.
#[derive(Debug)]
#[non_exhaustive]
pub struct Damage {
    /// The segment.
    pub segment: PathBuf,
    /// The byte offset in it where the damage starts (0 for the segment as a
    /// whole: unreadable, a bad header, a segment that does not follow on).
    pub offset: u64,
    /// What is wrong, as an open of the source reports it.
    pub cause: WalError,
    /// Whether it is a torn tail: a damaged end of the last segment that no
    /// later frame says was durable. A writer's open would cut it (and keep
    /// it aside); it is not corruption.
    pub torn_tail: bool,
    /// Bytes of the log from the damage to the end, over every segment from
    /// the damaged one on.
    pub bytes_left: u64,
    /// Segments those bytes are in, the damaged one included.
    pub segments_left: usize,
    /// Whole frames whose checksum still passes among those bytes: records
    /// that exist but were not copied, because something before them is lost.
    pub frames_left: u64,
    /// Their sequence numbers, as runs of consecutive numbers.
    pub seqs_left: Vec<RangeInclusive<u64>>,
    /// The commit time of the latest of them.
    pub last_time_left: Option<Timestamp>,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.torn_tail { "torn tail" } else { "damage" };
        write!(
            f,
            "{kind} in {} at byte offset {}: {}; left behind: {} bytes in {} segments, {} whole records (sequence \
             numbers {})",
            self.segment.display(),
            self.offset,
            self.cause,
            self.bytes_left,
            self.segments_left,
            self.frames_left,
            runs_text(&self.seqs_left),
        )
    }
}

/// Sequence-number runs as text: `43-60,62`, or `none`.
fn runs_text(runs: &[RangeInclusive<u64>]) -> String {
    if runs.is_empty() {
        return "none".to_owned();
    }
    let parts: Vec<String> = runs
        .iter()
        .map(|r| if r.start() == r.end() { r.start().to_string() } else { format!("{}-{}", r.start(), r.end()) })
        .collect();
    parts.join(",")
}

/// Copies the history of the store in `dir`, from sequence number 1 up to
/// the first damage in its log, into a new store in `out`, and verifies it.
///
/// The source is read directly, strictly read-only (no lock, no cut of a
/// torn tail, no byte changed), so a store that no longer opens can be
/// salvaged. Its snapshots are not used: the new store is a replay from
/// sequence number 1, which is why a log whose first segments were removed
/// is refused ([`Error::LogStartsLate`]). `out` must be new or empty
/// ([`Error::DirectoryNotEmpty`]). The new store has the source's name and
/// environment and a new id, holds transactions 1 to the last one before the
/// damage with their original sequence numbers, times, metadata and events,
/// and a snapshot there; its `RESTORED_FROM` file says it is a salvage, of
/// which store, up to which transaction, where the damage is and what was
/// left behind, who did it and why (`meta`). `options` give the file system
/// and limits for both stores; a name given with [`Options::identity`] (or an
/// id with [`Options::expect_id`]) must be the source's.
pub fn salvage<S: StateMachine + PartialEq>(
    dir: impl AsRef<Path>,
    out: impl AsRef<Path>,
    options: Options,
    meta: &TxnMeta,
) -> Result<SalvageReport> {
    check_meta(meta)?;
    let (dir, out) = (dir.as_ref(), out.as_ref());
    let fs = options.fs.clone();
    let source = read_identity(&fs, dir)?;
    let name_differs = options.named && (source.name != options.name || source.environment != options.environment);
    if name_differs || options.expected_id.is_some_and(|id| id != source.id) {
        return Err(Error::WrongStore {
            path: dir.to_path_buf(),
            expected_name: options.name.clone(),
            expected_environment: options.environment.clone(),
            found: Box::new(source),
        });
    }
    if fs.exists(out).map_err(io_err("stat", out))? && !fs.list_dir(out).map_err(io_err("list", out))?.is_empty() {
        return Err(Error::DirectoryNotEmpty { path: out.to_path_buf() });
    }
    let segments = list_segments(&fs, dir)?;
    if let Some(first) = segments.first().filter(|s| s.first_seq != 1) {
        return Err(Error::LogStartsLate { path: first.path.clone(), first_seq: first.first_seq });
    }

    let mut target_options = options
        .clone()
        .identity(source.name.clone(), source.environment.clone())
        .mode(OpenMode::ReadWrite)
        .create(Create::New)
        .snapshot_every_events(None);
    target_options.expected_id = None;
    let target = Store::<S>::open(out, target_options)?;
    if !target.open_report().created {
        return Err(Error::DirectoryNotEmpty { path: out.to_path_buf() });
    }
    let progress = Reporter::new(options.progress.as_ref(), Work::Salvage, segments.len() as u64);
    let copied = copy_until_damage(&fs, &segments, source.id, &target, options.record_bytes_max, progress)?;
    let (seq, time) = copied.last.map_or((0, Timestamp(0)), |l| (l.seq, l.time));
    if seq > 0 {
        target.inner.wait_acked(seq)?;
    }
    let snapshot = if seq > 0 { Some(target.snapshot()?) } else { None };
    let damage = copied.damage.map(|found| left_behind(&fs, &segments, found));

    let provenance = out.join(RESTORED_FROM_FILE);
    let text = provenance_text(&source, dir, seq, time, damage.as_ref(), options.clock.now(), meta);
    write_provenance(&fs, &provenance, &text)?;
    target.close()?;
    let verified = verify::<S>(out, options.mode(OpenMode::ReadOnly))?;
    if let Some(problem) = verified.problems.into_iter().next() {
        return Err(problem);
    }
    let verified = VerifyReport { problems: Vec::new(), ..verified };
    Ok(SalvageReport { dir: out.to_path_buf(), seq, time, transactions: seq, snapshot, damage, verified, provenance })
}

pub(crate) fn read_identity(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<Identity> {
    if !fs.exists(dir).map_err(io_err("stat", dir))? {
        return Err(Error::NotAStore { path: dir.to_path_buf(), reason: "the directory does not exist" });
    }
    let path = dir.join(IDENTITY_FILE);
    if !fs.exists(&path).map_err(io_err("stat", &path))? {
        return Err(Error::NotAStore { path: dir.to_path_buf(), reason: "it has no IDENTITY file" });
    }
    let bytes = fs.read_file(&path).map_err(io_err("read", &path))?;
    Identity::decode(&bytes).map_err(|problem| Error::BadIdentity { path, problem })
}

fn list_segments(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<Vec<SegmentInfo>> {
    wal::list_segments(fs.as_ref(), dir).map_err(io_err("list", dir))
}

/// The first damage found: in `segments[index]`, at `offset`.
struct Found {
    index: usize,
    offset: u64,
    cause: WalError,
    torn_tail: bool,
    /// The sequence number of the record that was due there.
    expected: u64,
}

struct Copied {
    last: Option<Last>,
    damage: Option<Found>,
}

/// Scans the source's segments in order, with the checks an open makes,
/// importing every record into `target` until the first damage.
fn copy_until_damage<S: StateMachine>(
    fs: &Arc<dyn FileSystem>,
    segments: &[SegmentInfo],
    store_id: crate::identity::StoreId,
    target: &Store<S>,
    limit: u32,
    mut progress: Reporter<'_>,
) -> Result<Copied> {
    let mut last: Option<Last> = None;
    for (index, segment) in segments.iter().enumerate() {
        progress.at(index as u64);
        let path = &segment.path;
        let expected = last.map_or(segment.first_seq, |l| l.seq.saturating_add(1));
        let damaged = |offset: u64, cause: WalError, torn_tail: bool| {
            Ok(Copied { last, damage: Some(Found { index, offset, cause, torn_tail, expected }) })
        };
        let bytes = match fs.read_file(path) {
            Ok(bytes) => bytes,
            Err(source) => return damaged(0, WalError::Io { op: "read", path: path.clone(), source }, false),
        };
        let header = match wal::check_header(path, &bytes, store_id, segment.first_seq) {
            Ok(header) => header,
            Err(cause) => return damaged(0, cause, false),
        };
        // An import that fails is the new store's error, not damage in the
        // source: it is kept here and the scan is stopped with a stand-in.
        let mut import_failed: Option<Error> = None;
        let mut through = last;
        let scanned = wal::scan_segment(path, bytes.as_slice(), &header, last, limit, |offset, frame| {
            let txn = super::decode_transaction::<S>(path, offset, frame, limit)?;
            let imported = target.inner.import(&txn, (path, offset as u64)).and_then(|()| {
                if txn.seq % IMPORT_BATCH == 0 {
                    target.inner.wait_acked(txn.seq)?;
                }
                Ok(())
            });
            match imported {
                Ok(()) => {
                    through = Some(Last { seq: txn.seq, time: txn.time });
                    Ok(())
                }
                Err(err) => {
                    import_failed = Some(err);
                    Err(WalError::LogEndsEarly { path: path.clone(), offset: offset as u64, expected: frame.seq })
                }
            }
        });
        if let Some(err) = import_failed {
            return Err(err);
        }
        last = through;
        let expected = last.map_or(header.first_seq, |l| l.seq.saturating_add(1));
        let (offset, cause, torn_tail) = match scanned {
            // A record an open refuses whole: every record before it was copied.
            Err(cause) => (located(&cause).unwrap_or(0), cause, false),
            Ok(scanned) => match scanned.damage {
                Some((offset, problem)) => {
                    let last_segment = index + 1 == segments.len();
                    let torn_tail = wal::tail_frames(&bytes, offset, expected, last_segment).is_some();
                    let offset = offset as u64;
                    (offset, WalError::Corrupted { path: path.clone(), offset, problem }, torn_tail)
                }
                None if scanned.last.is_none() && index + 1 != segments.len() => {
                    (0, WalError::EmptySealedSegment { path: path.clone() }, false)
                }
                None => continue,
            },
        };
        return Ok(Copied { last, damage: Some(Found { index, offset, cause, torn_tail, expected }) });
    }
    progress.finish();
    Ok(Copied { last, damage: None })
}

/// The byte offset a log error names, if it names one.
fn located(err: &WalError) -> Option<u64> {
    match err {
        WalError::Corrupted { offset, .. }
        | WalError::RecordOverLimit { offset, .. }
        | WalError::SequenceGap { offset, .. }
        | WalError::TimeWentBackwards { offset, .. }
        | WalError::LogEndsEarly { offset, .. }
        | WalError::Undecodable { offset, .. }
        | WalError::NewerSchema { offset, .. } => Some(*offset),
        _ => None,
    }
}

/// Counts what lies from the damage to the end of the log: bytes, and the
/// whole frames that still pass their checksum, with their sequence numbers.
/// In the damaged segment the search starts at the damage, for the record
/// that was due there; in each later one after its header, for the sequence
/// number its name gives (its header may be the damage).
fn left_behind(fs: &Arc<dyn FileSystem>, segments: &[SegmentInfo], found: Found) -> Damage {
    let segment = segments[found.index].path.clone();
    let mut damage = Damage {
        segment,
        offset: found.offset,
        cause: found.cause,
        torn_tail: found.torn_tail,
        bytes_left: 0,
        segments_left: segments.len() - found.index,
        frames_left: 0,
        seqs_left: Vec::new(),
        last_time_left: None,
    };
    for (i, segment) in segments.iter().enumerate().skip(found.index) {
        let Ok(bytes) = fs.read_file(&segment.path) else {
            // Unreadable: its length is all that can be said of it.
            damage.bytes_left += fs.file_len(&segment.path).unwrap_or(0);
            continue;
        };
        let whole = found.offset == 0 || i != found.index;
        let (start, seq) = if whole {
            // The segment as a whole: its records start after its header, the
            // first with the number its header (or else its name) gives.
            let first = SegmentHeader::decode(&bytes).map_or(segment.first_seq, |h| h.first_seq);
            (SEGMENT_HEADER_BYTES, first)
        } else {
            (found.offset as usize, found.expected)
        };
        damage.bytes_left += if whole { bytes.len() } else { bytes.len().saturating_sub(start) } as u64;
        if start >= bytes.len() {
            continue;
        }
        frames_after(&bytes, start, seq, |_, frame| {
            damage.frames_left += 1;
            damage.last_time_left = damage.last_time_left.max(Some(frame.time));
            match damage.seqs_left.last_mut() {
                Some(run) if run.end().checked_add(1) == Some(frame.seq) => *run = *run.start()..=frame.seq,
                _ => damage.seqs_left.push(frame.seq..=frame.seq),
            }
        });
    }
    damage
}

fn provenance_text(
    source: &Identity,
    dir: &Path,
    seq: u64,
    time: Timestamp,
    damage: Option<&Damage>,
    now: Timestamp,
    meta: &TxnMeta,
) -> String {
    let one_line = |text: String| text.replace('\n', " ");
    let (damage_text, segment, offset, frames, seqs, bytes) = match damage {
        Some(d) => (
            one_line(format!("{}{}", if d.torn_tail { "torn tail: " } else { "" }, d.cause)),
            d.segment.display().to_string(),
            d.offset.to_string(),
            d.frames_left.to_string(),
            runs_text(&d.seqs_left),
            d.bytes_left.to_string(),
        ),
        None => ("none".to_owned(), String::new(), String::new(), "0".to_owned(), "none".to_owned(), "0".to_owned()),
    };
    format!(
        "kind: salvage\nsource_store_id: {}\nsource_name: {}\nsource_environment: {}\nsource_dir: {}\n\
         point: seq:{seq}\nseq: {seq}\ntime: {time}\ndamage: {damage_text}\ndamage_segment: {segment}\n\
         damage_offset: {offset}\nleft_behind_records: {frames}\nleft_behind_seqs: {seqs}\n\
         left_behind_bytes: {bytes}\nsalvaged_at: {now}\nactor: {}\nreason: {}\nticket: {}\napproved_by: {}\n",
        source.id,
        source.name,
        source.environment,
        dir.display(),
        meta.actor,
        one_line(meta.reason.clone()),
        meta.ticket.as_deref().unwrap_or(""),
        meta.approved_by.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::*;
    use crate::io::SimFs;
    use crate::store::testing::Sum;
    use crate::wal::{decode_frame, FrameProblem, HeaderProblem};

    const SOURCE: &str = "/source";
    const OUT: &str = "/salvaged";
    const RECORDS: u64 = 300;

    fn options(fs: &SimFs) -> Options {
        Options::default().file_system(Arc::new(fs.clone())).segment_bytes(4096)
    }

    fn meta() -> TxnMeta {
        TxnMeta::new("ops:alice", "salvage after a bad disk").with_ticket("INC-7")
    }

    /// A source of `RECORDS` transactions (transaction n adds n) over several
    /// segments, closed; its segments in order.
    fn source(fs: &SimFs) -> Vec<PathBuf> {
        let opts = options(fs).create(Create::New).identity("use1", "production");
        let store = Store::<Sum>::open(SOURCE, opts).unwrap();
        for n in 1..=RECORDS as i64 {
            store.commit(TxnMeta::new("svc:a", format!("add {n}")), vec![n]).unwrap();
        }
        let segments: Vec<PathBuf> = store.segments().into_iter().map(|s| s.path).collect();
        store.close().unwrap();
        assert!(segments.len() >= 4, "{} segments", segments.len());
        segments
    }

    /// (offset, seq) of every record in a segment.
    fn records(fs: &SimFs, segment: &Path) -> Vec<(usize, u64)> {
        let bytes = fs.read_raw(segment).unwrap();
        let mut out = Vec::new();
        let mut offset = SEGMENT_HEADER_BYTES;
        while offset < bytes.len() {
            let frame = decode_frame(&bytes[offset..], u32::MAX).unwrap();
            out.push((offset, frame.seq));
            offset += frame.encoded_bytes();
        }
        out
    }

    fn sum_through(seq: u64) -> i64 {
        (1..=seq as i64).sum()
    }

    fn snapshot_of_files(fs: &SimFs) -> Vec<(PathBuf, Vec<u8>)> {
        fs.files()
            .into_iter()
            .filter(|p| p.starts_with(SOURCE))
            .map(|p| (p.clone(), fs.read_raw(&p).unwrap()))
            .collect()
    }

    /// The salvaged store opens, holds exactly 1..=seq and says where it came from.
    fn check_salvaged(fs: &SimFs, seq: u64) -> String {
        let store = Store::<Sum>::open(OUT, options(fs).mode(OpenMode::ReadOnly)).unwrap();
        assert_eq!(store.read().seq(), seq);
        assert_eq!(store.read().0, sum_through(seq));
        let seqs: Vec<u64> = store.transactions(..).map(|t| t.unwrap().seq).collect();
        assert_eq!(seqs, (1..=seq).collect::<Vec<_>>());
        assert_eq!((store.identity().name.as_str(), store.identity().environment.as_str()), ("use1", "production"));
        let source_id = Identity::decode(&fs.read_raw(&Path::new(SOURCE).join(IDENTITY_FILE)).unwrap()).unwrap().id;
        assert_ne!(store.identity().id, source_id, "a new store id");
        String::from_utf8(fs.read_raw(&Path::new(OUT).join(RESTORED_FROM_FILE)).unwrap()).unwrap()
    }

    #[test]
    fn an_undamaged_log_is_copied_whole_and_nothing_is_left_behind() {
        let fs = SimFs::new();
        source(&fs);
        let before = snapshot_of_files(&fs);
        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert!(report.complete(), "{:?}", report.damage);
        assert_eq!((report.seq, report.transactions), (RECORDS, RECORDS));
        assert_eq!(report.snapshot.as_ref().map(|s| s.seq), Some(RECORDS));
        assert!(report.verified.ok());
        assert_eq!(report.verified.transactions, RECORDS);
        let provenance = check_salvaged(&fs, RECORDS);
        assert!(provenance.starts_with("kind: salvage\n"), "{provenance}");
        for line in
            ["seq: 300\n", "damage: none\n", "left_behind_records: 0\n", "actor: ops:alice\n", "ticket: INC-7\n"]
        {
            assert!(provenance.contains(line), "{line} in {provenance}");
        }
        assert_eq!(snapshot_of_files(&fs), before, "the source is unchanged");
    }

    #[test]
    fn a_bit_flip_in_a_sealed_segment_stops_the_copy_before_it_and_counts_what_follows() {
        let fs = SimFs::new();
        let segments = source(&fs);
        let victim = &segments[1];
        let in_victim = records(&fs, victim);
        let (offset, seq) = in_victim[in_victim.len() / 2];
        fs.flip_bit(victim, (offset as u64 + 40) * 8);
        let before = snapshot_of_files(&fs);
        assert!(Store::<Sum>::open(SOURCE, options(&fs).mode(OpenMode::ReadOnly)).is_err(), "the source does not open");

        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert_eq!((report.seq, report.transactions), (seq - 1, seq - 1));
        let damage = report.damage.as_ref().expect("damage");
        assert_eq!((&damage.segment, damage.offset), (victim, offset as u64));
        assert!(matches!(damage.cause, WalError::Corrupted { problem: FrameProblem::ChecksumMismatch { .. }, .. }));
        assert!(!damage.torn_tail);
        assert_eq!(damage.frames_left, RECORDS - seq, "every record after the damaged one still decodes");
        assert_eq!(damage.seqs_left, vec![seq + 1..=RECORDS]);
        assert_eq!(damage.segments_left, segments.len() - 1);
        let total: u64 = segments[1..].iter().map(|p| fs.read_raw(p).unwrap().len() as u64).sum();
        assert_eq!(damage.bytes_left, total - offset as u64);
        assert!(damage.last_time_left.is_some());
        let text = damage.to_string();
        assert!(text.contains(&victim.display().to_string()) && text.contains(&format!("offset {offset}")), "{text}");
        assert!(text.contains(&format!("{}-{RECORDS}", seq + 1)), "{text}");

        let provenance = check_salvaged(&fs, seq - 1);
        assert!(provenance.contains(&format!("damage_offset: {offset}\n")), "{provenance}");
        assert!(provenance.contains(&format!("left_behind_seqs: {}-{RECORDS}\n", seq + 1)), "{provenance}");
        assert_eq!(snapshot_of_files(&fs), before, "the source is unchanged");
    }

    #[test]
    fn a_missing_segment_is_a_gap_and_the_later_ones_are_counted() {
        let fs = SimFs::new();
        let segments = source(&fs);
        let last_before = records(&fs, &segments[1]).last().unwrap().1;
        let first_after = records(&fs, &segments[3])[0].1;
        fs.remove_raw(&segments[2]);
        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert_eq!(report.seq, last_before);
        let damage = report.damage.unwrap();
        assert_eq!((&damage.segment, damage.offset), (&segments[3], 0));
        assert!(matches!(damage.cause, WalError::SequenceGap { expected, found, .. }
            if expected == last_before + 1 && found == first_after));
        assert_eq!(damage.seqs_left, vec![first_after..=RECORDS]);
        assert_eq!(damage.segments_left, segments.len() - 3);
        check_salvaged(&fs, last_before);
    }

    #[test]
    fn a_damaged_segment_header_stops_the_copy_at_the_segment_before() {
        let fs = SimFs::new();
        let segments = source(&fs);
        let in_third = records(&fs, &segments[2]);
        fs.flip_bit(&segments[2], 8 * 20);
        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert_eq!(report.seq, in_third[0].1 - 1);
        let damage = report.damage.unwrap();
        assert!(matches!(damage.cause, WalError::BadHeader { problem: HeaderProblem::ChecksumMismatch, .. }));
        assert_eq!((&damage.segment, damage.offset), (&segments[2], 0));
        assert_eq!(damage.seqs_left, vec![in_third[0].1..=RECORDS], "the frames after a bad header still count");
        check_salvaged(&fs, in_third[0].1 - 1);
    }

    /// A record that passes its checksum but that this build cannot decode
    /// (here, one claiming a newer schema) ends the copy too; it is itself
    /// among the records left behind.
    #[test]
    fn a_record_that_does_not_decode_ends_the_copy_and_is_counted_as_left_behind() {
        let fs = SimFs::new();
        let segments = source(&fs);
        let (offset, seq) = records(&fs, &segments[2])[3];
        let mut bytes = fs.read_raw(&segments[2]).unwrap();
        let end = offset + decode_frame(&bytes[offset..], u32::MAX).unwrap().encoded_bytes();
        bytes[offset + 32] = 9;
        let crc = crc32fast::hash(&bytes[offset + 4..end]);
        bytes[offset..offset + 4].copy_from_slice(&crc.to_le_bytes());
        fs.write_raw(&segments[2], bytes);
        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert_eq!(report.seq, seq - 1);
        let damage = report.damage.unwrap();
        assert!(matches!(damage.cause, WalError::NewerSchema { seq: s, found: 9, .. } if s == seq));
        assert_eq!((&damage.segment, damage.offset), (&segments[2], offset as u64));
        assert_eq!(damage.seqs_left, vec![seq..=RECORDS]);
        check_salvaged(&fs, seq - 1);
    }

    /// The simulated file system, watched: every call that could change a
    /// file under `/source` is recorded, and reading `unreadable` fails.
    #[derive(Debug)]
    struct Watched {
        inner: SimFs,
        unreadable: Option<PathBuf>,
        writes_to_source: parking_lot::Mutex<Vec<String>>,
    }

    impl Watched {
        fn note(&self, op: &str, path: &Path) {
            if path.starts_with(SOURCE) {
                self.writes_to_source.lock().push(format!("{op} {}", path.display()));
            }
        }
    }

    impl FileSystem for Watched {
        fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
            self.note("create_dir_all", dir);
            self.inner.create_dir_all(dir)
        }
        fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
            self.inner.list_dir(dir)
        }
        fn exists(&self, path: &Path) -> std::io::Result<bool> {
            self.inner.exists(path)
        }
        fn file_len(&self, path: &Path) -> std::io::Result<u64> {
            self.inner.file_len(path)
        }
        fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            if self.unreadable.as_deref() == Some(path) {
                return Err(std::io::Error::other("injected read error"));
            }
            self.inner.read_file(path)
        }
        fn read_range(&self, path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            if self.unreadable.as_deref() == Some(path) {
                return Err(std::io::Error::other("injected read error"));
            }
            self.inner.read_range(path, offset, len)
        }
        fn map_file(&self, path: &Path) -> std::io::Result<crate::io::FileBytes> {
            self.inner.map_file(path)
        }
        fn create_new(&self, path: &Path) -> std::io::Result<Box<dyn crate::io::WritableFile>> {
            self.note("create_new", path);
            self.inner.create_new(path)
        }
        fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn crate::io::WritableFile>> {
            self.note("open_append", path);
            self.inner.open_append(path)
        }
        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            self.note("rename", from);
            self.note("rename", to);
            self.inner.rename(from, to)
        }
        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            self.note("remove_file", path);
            self.inner.remove_file(path)
        }
        fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
            self.note("sync_dir", dir);
            self.inner.sync_dir(dir)
        }
        fn try_lock_exclusive(&self, path: &Path) -> std::io::Result<Option<crate::io::LockGuard>> {
            self.note("try_lock_exclusive", path);
            self.inner.try_lock_exclusive(path)
        }
    }

    /// A segment that cannot be read at all ends the copy before it; its
    /// length still counts, and the records of the segments after it are
    /// counted. Not one call that could change a file of the source is made.
    #[test]
    fn an_unreadable_segment_ends_the_copy_and_the_source_is_never_written() {
        let fs = SimFs::new();
        let segments = source(&fs);
        let first = records(&fs, &segments[2])[0].1;
        let next_first = records(&fs, &segments[3])[0].1;
        let watched = Arc::new(Watched {
            inner: fs.clone(),
            unreadable: Some(segments[2].clone()),
            writes_to_source: parking_lot::Mutex::default(),
        });
        let opts = Options::default().file_system(watched.clone());
        let report = salvage::<Sum>(SOURCE, OUT, opts, &meta()).unwrap();
        assert_eq!(report.seq, first - 1);
        let damage = report.damage.unwrap();
        assert!(matches!(damage.cause, WalError::Io { op: "read", .. }), "{}", damage.cause);
        assert_eq!((&damage.segment, damage.offset), (&segments[2], 0));
        assert_eq!(damage.seqs_left, vec![next_first..=RECORDS]);
        let lengths: u64 = segments[2..].iter().map(|p| fs.read_raw(p).unwrap().len() as u64).sum();
        assert_eq!(damage.bytes_left, lengths);
        check_salvaged(&fs, first - 1);
        assert_eq!(*watched.writes_to_source.lock(), Vec::<String>::new());
    }

    #[test]
    fn a_torn_tail_is_left_behind_and_called_one() {
        let fs = SimFs::new();
        let segments = source(&fs);
        let last = segments.last().unwrap();
        let (offset, seq) = *records(&fs, last).last().unwrap();
        fs.truncate_raw(last, offset as u64 + 10);
        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert_eq!(report.seq, seq - 1);
        let damage = report.damage.unwrap();
        assert!(damage.torn_tail);
        assert_eq!((damage.frames_left, damage.bytes_left, damage.segments_left), (0, 10, 1));
        assert!(damage.seqs_left.is_empty());
        let provenance = check_salvaged(&fs, seq - 1);
        assert!(provenance.contains("damage: torn tail: "), "{provenance}");
    }

    #[test]
    fn a_non_empty_out_a_missing_source_and_another_store_are_refused() {
        let fs = SimFs::new();
        source(&fs);
        fs.write_raw(&Path::new(OUT).join("notes.txt"), b"keep".to_vec());
        match salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()) {
            Err(Error::DirectoryNotEmpty { path }) => assert_eq!(path, Path::new(OUT)),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(fs.read_raw(&Path::new(OUT).join("notes.txt")).unwrap(), b"keep");
        assert!(matches!(salvage::<Sum>(SOURCE, SOURCE, options(&fs), &meta()), Err(Error::DirectoryNotEmpty { .. })));
        assert!(matches!(salvage::<Sum>("/nowhere", "/fresh", options(&fs), &meta()), Err(Error::NotAStore { .. })));
        let wrong = options(&fs).identity("use1", "staging");
        assert!(matches!(salvage::<Sum>(SOURCE, "/fresh", wrong, &meta()), Err(Error::WrongStore { .. })));
        let anonymous = TxnMeta::new("ops:alice", " ");
        assert!(matches!(
            salvage::<Sum>(SOURCE, "/fresh", options(&fs), &anonymous),
            Err(Error::MissingAttribution { field: "reason" })
        ));
        assert!(!fs.files().iter().any(|p| p.starts_with("/fresh")), "nothing written on a refusal");
    }

    #[test]
    fn a_log_whose_first_segments_were_removed_is_refused_naming_where_it_starts() {
        let fs = SimFs::new();
        let segments = source(&fs);
        fs.remove_raw(&segments[0]);
        match salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()) {
            Err(err @ Error::LogStartsLate { .. }) => {
                let Error::LogStartsLate { ref path, first_seq } = err else { unreachable!() };
                assert_eq!(path, &segments[1]);
                assert!(first_seq > 1);
                let text = err.to_string();
                assert!(text.contains(&format!("sequence number {first_seq}")) && text.contains("removed"), "{text}");
            }
            other => panic!("expected LogStartsLate, got {other:?}"),
        }
        assert!(!fs.files().iter().any(|p| p.starts_with(OUT)), "nothing written on a refusal");
    }

    #[test]
    fn an_empty_log_salvages_to_an_empty_store() {
        let fs = SimFs::new();
        Store::<Sum>::open(SOURCE, options(&fs).create(Create::New).identity("use1", "production"))
            .unwrap()
            .close()
            .unwrap();
        let report = salvage::<Sum>(SOURCE, OUT, options(&fs), &meta()).unwrap();
        assert!(report.complete());
        assert_eq!((report.seq, report.snapshot.is_none()), (0, true));
        check_salvaged(&fs, 0);
    }
}
