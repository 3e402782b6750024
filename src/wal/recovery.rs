//! Opening the log: finding the segments, checking them, and deciding what a
//! damaged tail means.
//!
//! | where the first invalid frame is                  | what open does                           |
//! |---------------------------------------------------|------------------------------------------|
//! | nowhere                                           | nothing                                  |
//! | last segment, no later frame marks it durable     | torn tail: cut it off, keep the bytes aside (read-only: ignore it) |
//! | last segment, a later frame marks it durable      | `WalError::Corrupted` naming file and offset |
//! | any earlier (sealed) segment                      | `WalError::Corrupted` naming file and offset |
//!
//! Independently of frames: a header that does not parse, a segment of another
//! store, a name that disagrees with its header, a gap or repeat in sequence
//! numbers, a timestamp that does not increase, or an empty sealed segment is
//! a typed error naming the file and offset.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io_err, WalError};
use super::reader::{scan_segment, Last, Window};
use super::record::{after_damage, Frame};
use super::segment::{SegmentHeader, SegmentInfo, SEGMENT_HEADER_BYTES};
use crate::identity::StoreId;
use crate::io::FileSystem;

/// What to do with a torn tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TailRepair {
    /// Move the torn bytes to a side file and truncate the segment.
    Cut,
    /// Leave the files alone (read-only opens).
    Ignore,
}

/// A torn tail found at the end of the log when it was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment it was in.
    pub segment: PathBuf,
    /// The byte offset where the last whole record ended.
    pub offset: u64,
    /// How many bytes followed it.
    pub bytes: u64,
    /// Whole, valid frames among those bytes, after the damage: records
    /// written after the last fsync whose earlier neighbour never reached the
    /// disk. Under `SyncPolicy::Interval` or `Never` they may have been
    /// acknowledged; they are in the kept bytes.
    pub frames_cut: u64,
    /// Where those bytes were kept, when the open could write.
    pub kept_at: Option<PathBuf>,
}

/// The log as found by recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Every segment, in sequence order.
    pub segments: Vec<SegmentInfo>,
    /// The index in `segments` of the first segment read (the earlier ones are
    /// wholly covered by the snapshot).
    pub scanned_from: usize,
    /// The last record, if the scanned part of the log holds any.
    pub last: Option<Last>,
    /// The last sequence number in the log: the last scanned record, or, when
    /// the scan found none, the one before the first scanned segment's first
    /// (the sealed segments before it end there).
    pub last_seq: u64,
    /// The length of the last segment after any cut.
    pub last_segment_bytes: Option<u64>,
    /// The torn tail, if there was one.
    pub torn: Option<TornTail>,
}

/// Lists the segments in `dir`, checks every header, scans every record after
/// `after_seq` (and the records before it in the same segment) and calls
/// `visit` for each record after `after_seq`.
pub(crate) fn recover(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    store_id: StoreId,
    after_seq: u64,
    repair: TailRepair,
    payload_bytes_max: u32,
    mut visit: impl FnMut(&Path, usize, &Frame<'_>) -> Result<(), WalError>,
) -> Result<Recovered, WalError> {
    let segments = super::segment::list_segments(fs.as_ref(), dir).map_err(io_err("list", dir))?;
    let mut headers = Vec::with_capacity(segments.len());
    for segment in &segments {
        let bytes = fs.read_range(&segment.path, 0, SEGMENT_HEADER_BYTES).map_err(io_err("read", &segment.path))?;
        headers.push(check_header(&segment.path, &bytes, store_id, segment.first_seq)?);
    }
    let Some(first) = segments.first() else {
        return Ok(Recovered {
            segments,
            scanned_from: 0,
            last: None,
            last_seq: 0,
            last_segment_bytes: None,
            torn: None,
        });
    };
    // `after_seq` comes from a snapshot's header: any number a checksum
    // passes, up to u64::MAX, so the arithmetic saturates. A snapshot beyond
    // the log is then reported by the caller as the log ending behind it.
    let first_after = after_seq.saturating_add(1);
    if first.first_seq > first_after {
        return Err(WalError::SequenceGap {
            path: first.path.clone(),
            offset: 0,
            expected: first_after,
            found: first.first_seq,
        });
    }
    // Segments wholly covered by the snapshot are not read: their records are
    // already folded into it, and `verify` checks them.
    let start = segments.partition_point(|s| s.first_seq <= first_after) - 1;
    let implied_last_seq = segments[start].first_seq - 1;
    let mut last: Option<Last> = None;
    let mut torn = None;
    let mut last_segment_bytes = None;
    let last_index = segments.len() - 1;
    // Each segment is read a piece at a time into one buffer: memory the
    // system hands a process for the first time costs more to touch than the
    // reading itself (BENCHMARKS.md, "What the open touches").
    let mut window = Window::default();
    for (index, segment) in segments.iter().enumerate().skip(start) {
        let length = fs.file_len(&segment.path).map_err(io_err("stat", &segment.path))?;
        window.open(&segment.path, SEGMENT_HEADER_BYTES as u64, length);
        let header = &headers[index];
        let scanned = scan_segment(
            &segment.path,
            window.reading(fs.as_ref()),
            header,
            last,
            payload_bytes_max,
            |offset, frame| {
                if frame.seq > after_seq {
                    visit(&segment.path, offset, frame)?;
                }
                Ok(())
            },
        )?;
        // Where the segment ends: where the window found it to, which a
        // file cut since the listing moves back.
        let mut end = usize::try_from(window.end()).unwrap_or(usize::MAX);
        if let Some((offset, problem)) = scanned.damage {
            // Damage is rare: what follows it decides what it is, so the
            // segment is read whole, as far as the scan found it.
            let bytes = fs.read_range(&segment.path, 0, end).map_err(io_err("read", &segment.path))?;
            let expected = scanned.last.map_or(header.first_seq, |l| l.seq.saturating_add(1));
            if bytes.len() < offset {
                // Cut under the scan by another process: it ends before the
                // record the scan was looking at.
                let offset = bytes.len() as u64;
                return Err(WalError::LogEndsEarly { path: segment.path.clone(), offset, expected });
            }
            let Some(frames_cut) = tail_frames(&bytes, offset, expected, index == last_index) else {
                return Err(WalError::Corrupted { path: segment.path.clone(), offset: offset as u64, problem });
            };
            torn = Some(cut_tail(fs, dir, &segment.path, &bytes, offset, frames_cut, repair)?);
            end = offset;
        }
        if scanned.last.is_none() && index != last_index {
            return Err(WalError::EmptySealedSegment { path: segment.path.clone() });
        }
        if scanned.last.is_some() {
            last = scanned.last;
        }
        if index == last_index {
            last_segment_bytes = Some(end as u64);
        }
    }
    let last_seq = last.map_or(implied_last_seq, |l| l.seq.max(implied_last_seq));
    Ok(Recovered { segments, scanned_from: start, last, last_seq, last_segment_bytes, torn })
}

/// Makes durable everything recovery read: the segments from `scanned_from`
/// on and the directory's entries. A writer killed between its write and its
/// fsync leaves records in the page cache that a restarted process reads back
/// as if they were on disk; they must be on disk before anything that depends
/// on them is published, snapshotted or acknowledged.
pub(crate) fn make_durable(fs: &Arc<dyn FileSystem>, dir: &Path, recovered: &Recovered) -> Result<(), WalError> {
    for segment in &recovered.segments[recovered.scanned_from..] {
        let mut file = fs.open_append(&segment.path).map_err(io_err("open", &segment.path))?;
        file.sync_data().map_err(io_err("fsync", &segment.path))?;
    }
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
}

/// Decides what damage at `offset` of a segment's `bytes` is, where record
/// `expected` should start: a torn tail (`Some` with the number of whole,
/// valid frames after the damage, which are cut with it) or corruption
/// (`None`). Damage in a sealed segment is corruption: a segment is fsynced
/// before the next one is created. In the last segment, the record was
/// durable if a valid frame after it says so (its synced mark reaches it),
/// and then the damage is in the synced region; otherwise it lies in what was
/// written after the last fsync, where a power loss may keep a later write
/// and lose an earlier one.
pub(crate) fn tail_frames(bytes: &[u8], offset: usize, expected: u64, last_segment: bool) -> Option<u64> {
    if !last_segment {
        return None;
    }
    let after = after_damage(bytes, offset, expected);
    match after.synced_seq {
        Some(synced) if synced >= expected => None,
        _ => Some(after.frames),
    }
}

pub(crate) fn check_header(
    path: &Path,
    bytes: &[u8],
    store_id: StoreId,
    name_seq: u64,
) -> Result<SegmentHeader, WalError> {
    let header =
        SegmentHeader::decode(bytes).map_err(|problem| WalError::BadHeader { path: path.to_path_buf(), problem })?;
    if header.store_id != store_id {
        return Err(WalError::ForeignSegment { path: path.to_path_buf(), expected: store_id, found: header.store_id });
    }
    if header.first_seq != name_seq {
        return Err(WalError::NameMismatch { path: path.to_path_buf(), name_seq, header_seq: header.first_seq });
    }
    Ok(header)
}

/// Keeps the torn bytes in a side file, then truncates the segment to the end
/// of its last whole record. The side file is durable before the cut, so the
/// bytes are never destroyed.
fn cut_tail(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    segment: &Path,
    bytes: &[u8],
    offset: usize,
    frames_cut: u64,
    repair: TailRepair,
) -> Result<TornTail, WalError> {
    let mut torn = TornTail {
        segment: segment.to_path_buf(),
        offset: offset as u64,
        bytes: (bytes.len() - offset) as u64,
        frames_cut,
        kept_at: None,
    };
    if repair == TailRepair::Ignore {
        return Ok(torn);
    }
    let name = segment.file_name().and_then(|n| n.to_str()).unwrap_or("segment");
    let cut = &bytes[offset..];
    let base = format!("{name}.cut-{offset:020}");
    // Every cut is kept under a name of its own: a later tear at the same
    // offset (the first record after a cut, torn by the next crash) gets the
    // next free suffix. A side file that already holds exactly these bytes
    // was left by a crash between keeping them and truncating: reuse it, and
    // make sure it is durable (the crash may have come before its fsync).
    let mut n = 0u64;
    let kept_at = loop {
        let candidate = if n == 0 { dir.join(&base) } else { dir.join(format!("{base}.{n}")) };
        if !fs.exists(&candidate).map_err(io_err("stat", &candidate))? {
            let mut side = fs.create_new(&candidate).map_err(io_err("create", &candidate))?;
            side.write_all(cut).map_err(io_err("write", &candidate))?;
            side.sync_data().map_err(io_err("fsync", &candidate))?;
            break candidate;
        }
        if fs.read_file(&candidate).map_err(io_err("read", &candidate))? == cut {
            let mut side = fs.open_append(&candidate).map_err(io_err("open", &candidate))?;
            side.sync_data().map_err(io_err("fsync", &candidate))?;
            break candidate;
        }
        n += 1;
    };
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    let mut file = fs.open_append(segment).map_err(io_err("open", segment))?;
    file.set_len(offset as u64).map_err(io_err("truncate", segment))?;
    file.sync_data().map_err(io_err("fsync", segment))?;
    torn.kept_at = Some(kept_at);
    Ok(torn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::wal::record::{append_frame, seal_frames, FRAME_HEADER_BYTES};

    fn frame(seq: u64, synced_seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        append_frame(
            &mut out,
            seq,
            Timestamp(seq),
            1024,
            |o| {
                o.push(1);
                Ok::<_, ()>(())
            },
            |_| (),
        )
        .unwrap();
        seal_frames(&mut out, synced_seq);
        out
    }

    /// Record 10 was due at `damage`; what follows decides.
    fn segment_with(damage: usize, gap: usize, later: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xAB; damage];
        bytes.resize(damage + gap, 0);
        bytes.extend_from_slice(later);
        bytes
    }

    #[test]
    fn damage_is_a_torn_tail_unless_a_later_frame_says_it_was_durable() {
        let one = FRAME_HEADER_BYTES + 1;
        // A later record written when record 10 was durable: the damage is in the synced region.
        let vouched = segment_with(100, one, &frame(11, 10));
        assert_eq!(tail_frames(&vouched, 100, 10, true), None);
        // The same in a sealed segment, or with nothing after it.
        assert_eq!(tail_frames(&segment_with(100, one, &frame(11, 9)), 100, 10, false), None);
        assert_eq!(tail_frames(&segment_with(100, 40, &[]), 100, 10, true), Some(0));
        // Later records written before record 10 was durable: a hole in the
        // unsynced region, cut with them.
        let unsynced = segment_with(100, one, &[frame(11, 9), frame(12, 9)].concat());
        assert_eq!(tail_frames(&unsynced, 100, 10, true), Some(2));
        // A frame whose sequence number cannot fit its place does not count,
        // however durable it says record 10 was: 65 bytes hold one record.
        let misplaced = segment_with(100, 2 * one - 1, &frame(12, 11));
        assert_eq!(tail_frames(&misplaced, 100, 10, true), Some(0));
        let placed = segment_with(100, 2 * one, &frame(12, 11));
        assert_eq!(tail_frames(&placed, 100, 10, true), None);
    }
}
