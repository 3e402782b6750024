//! Reading records back: scanning one segment, and a cursor over the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io_err, WalError};
use super::record::{decode_frame, Frame, FrameProblem, FRAME_HEADER_BYTES};
use super::segment::{SegmentHeader, SegmentInfo, SEGMENT_HEADER_BYTES};
use crate::clock::Timestamp;
use crate::identity::le_u32;
use crate::io::FileSystem;

/// The previous record, carried across segment boundaries to check continuity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Last {
    pub seq: u64,
    pub time: Timestamp,
}

/// How a scan of one segment ended.
#[derive(Debug)]
pub(crate) struct Scanned {
    /// The last valid record, if the segment holds any.
    pub last: Option<Last>,
    /// Where the first invalid frame starts and what is wrong with it, if the
    /// scan stopped before the end of the bytes.
    pub damage: Option<(usize, FrameProblem)>,
}

/// Scans the records of one segment after its header, checking checksums,
/// sequence continuity and timestamp order, and calls `visit` for each valid
/// record. `prev` is the last record of the previous segment, when known.
/// A frame that does not decode ends the scan (reported in `damage`); the
/// caller decides whether that is a torn tail or corruption.
pub(crate) fn scan_segment(
    path: &Path,
    bytes: &[u8],
    header: &SegmentHeader,
    prev: Option<Last>,
    payload_bytes_max: u32,
    mut visit: impl FnMut(usize, &Frame<'_>) -> Result<(), WalError>,
) -> Result<Scanned, WalError> {
    if let Some(prev) = prev {
        if header.first_seq != prev.seq + 1 {
            return Err(WalError::SequenceGap {
                path: path.to_path_buf(),
                offset: 0,
                expected: prev.seq + 1,
                found: header.first_seq,
            });
        }
    }
    let mut offset = SEGMENT_HEADER_BYTES;
    let mut expected = header.first_seq;
    let mut last: Option<Last> = None;
    let mut prev_time = prev.map(|p| p.time);
    while offset < bytes.len() {
        let frame = match decode_frame(&bytes[offset..], payload_bytes_max) {
            Ok(frame) => frame,
            // A whole, valid record is never damage, whatever its length.
            Err(problem @ FrameProblem::OverLimit { .. }) => return Err(WalError::bad_frame(path, offset, problem)),
            Err(problem) => return Ok(Scanned { last, damage: Some((offset, problem)) }),
        };
        if frame.seq != expected {
            return Err(WalError::SequenceGap {
                path: path.to_path_buf(),
                offset: offset as u64,
                expected,
                found: frame.seq,
            });
        }
        if let Some(previous) = prev_time {
            if frame.time <= previous {
                return Err(WalError::TimeWentBackwards {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    seq: frame.seq,
                    previous,
                    found: frame.time,
                });
            }
        }
        visit(offset, &frame)?;
        last = Some(Last { seq: frame.seq, time: frame.time });
        prev_time = Some(frame.time);
        expected += 1;
        offset += frame.encoded_bytes();
    }
    Ok(Scanned { last, damage: None })
}

/// How much of a segment a [`LogCursor`] reads at a time (more when one
/// record is larger): the buffer is reused, so reading a segment costs no
/// fresh memory, and a cursor that starts late in a segment or stops early
/// reads little more than its records.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// Reads records in sequence order from `from_seq` through `to_seq`, a
/// piece of one segment in memory at a time. The range must be one the log holds (at most
/// what the store published): a log that ends first is
/// [`WalError::LogEndsEarly`], naming where it ends.
pub(crate) struct LogCursor {
    fs: Arc<dyn FileSystem>,
    segments: Vec<SegmentInfo>,
    index: usize,
    path: PathBuf,
    /// Bytes of the segment from file offset `base`; the next record starts
    /// at `pos` in them.
    bytes: Vec<u8>,
    base: u64,
    pos: usize,
    /// The segment's length when it was loaded.
    end: u64,
    next_seq: u64,
    to_seq: u64,
    payload_bytes_max: u32,
    start_offset: Option<u64>,
}

impl LogCursor {
    /// A cursor over `segments` (sorted by first sequence number).
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        segments: Vec<SegmentInfo>,
        from_seq: u64,
        to_seq: u64,
        payload_bytes_max: u32,
    ) -> LogCursor {
        let from_seq = from_seq.max(1);
        // The last segment whose first record is at or before `from_seq`.
        let index = segments.partition_point(|s| s.first_seq <= from_seq).saturating_sub(1);
        LogCursor {
            fs,
            segments,
            index,
            path: PathBuf::new(),
            bytes: Vec::new(),
            base: 0,
            pos: 0,
            end: 0,
            next_seq: from_seq,
            to_seq,
            payload_bytes_max,
            start_offset: None,
        }
    }

    /// A cursor whose first record, `from_seq`, is known to start at byte
    /// `offset` of its segment: no scan from the segment's start.
    pub(crate) fn new_at(
        fs: Arc<dyn FileSystem>,
        segments: Vec<SegmentInfo>,
        from_seq: u64,
        offset: u64,
        to_seq: u64,
        payload_bytes_max: u32,
    ) -> LogCursor {
        let mut cursor = LogCursor::new(fs, segments, from_seq, to_seq, payload_bytes_max);
        cursor.start_offset = Some(offset);
        cursor
    }

    /// Hands the next record to `f`, or returns `None` past `to_seq`.
    pub(crate) fn next_with<T>(
        &mut self,
        f: impl FnOnce(&Path, usize, &Frame<'_>) -> Result<T, WalError>,
    ) -> Option<Result<T, WalError>> {
        loop {
            if self.next_seq > self.to_seq {
                return None;
            }
            if self.at() >= self.end {
                let loaded = self.load_next_segment().unwrap_or_else(|| {
                    // The range was promised (it is at most what the store
                    // published), so a log that ends first lost records.
                    let path = if self.path.as_os_str().is_empty() {
                        self.segments.last().map_or_else(PathBuf::new, |s| s.path.clone())
                    } else {
                        self.path.clone()
                    };
                    Err(WalError::LogEndsEarly { path, offset: self.end, expected: self.next_seq })
                });
                if let Err(err) = loaded {
                    return self.fail(err);
                }
                continue;
            }
            if let Err(err) = self.fill() {
                return self.fail(err);
            }
            if self.at() >= self.end {
                // The segment was cut here since it was loaded: on to the
                // next one, or `LogEndsEarly` at its real length.
                continue;
            }
            let offset = self.at() as usize;
            let frame = match decode_frame(&self.bytes[self.pos..], self.payload_bytes_max) {
                Ok(frame) => frame,
                Err(problem) => return self.fail(WalError::bad_frame(&self.path, offset, problem)),
            };
            self.pos += frame.encoded_bytes();
            if frame.seq < self.next_seq {
                continue;
            }
            if frame.seq != self.next_seq {
                let err = WalError::SequenceGap {
                    path: self.path.clone(),
                    offset: offset as u64,
                    expected: self.next_seq,
                    found: frame.seq,
                };
                return self.fail(err);
            }
            self.next_seq += 1;
            return Some(f(&self.path, offset, &frame));
        }
    }

    /// Ends the cursor with `err`: every later call returns `None`.
    fn fail<T>(&mut self, err: WalError) -> Option<Result<T, WalError>> {
        self.to_seq = 0;
        Some(Err(err))
    }

    /// Loads the next segment; `None` when there is none left.
    fn load_next_segment(&mut self) -> Option<Result<(), WalError>> {
        let segment = self.segments.get(self.index)?.clone();
        self.index += 1;
        let end = match self.fs.file_len(&segment.path).map_err(io_err("stat", &segment.path)) {
            Ok(end) => end,
            Err(err) => return Some(Err(err)),
        };
        if end < SEGMENT_HEADER_BYTES as u64 {
            let problem = super::segment::HeaderProblem::Truncated { file_bytes: end };
            return Some(Err(WalError::BadHeader { path: segment.path, problem }));
        }
        self.path = segment.path;
        self.end = end;
        self.bytes.clear();
        self.pos = 0;
        // A known start offset (one this cursor reported for a record
        // earlier) applies to the first segment loaded only.
        self.base = self.start_offset.take().unwrap_or(SEGMENT_HEADER_BYTES as u64);
        Some(Ok(()))
    }

    /// Where the next record starts in its segment.
    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Reads until the buffer holds the next record whole (its header, then
    /// the length the header gives), or the rest of the segment when that is
    /// shorter: then the frame's decode says what is wrong, as when the
    /// whole segment was read at once.
    fn fill(&mut self) -> Result<(), WalError> {
        loop {
            let have = self.bytes.len() - self.pos;
            let left = usize::try_from(self.end.saturating_sub(self.at())).unwrap_or(usize::MAX);
            let mut need = FRAME_HEADER_BYTES;
            if have >= FRAME_HEADER_BYTES {
                let payload_bytes = le_u32(&self.bytes[self.pos + 4..self.pos + 8]) as usize;
                need = need.saturating_add(payload_bytes);
            }
            let need = need.min(left);
            if have >= need {
                return Ok(());
            }
            self.bytes.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
            let want = need.max(READ_CHUNK_BYTES).min(left) - have;
            let before = self.bytes.len();
            self.fs
                .read_range_into(&self.path, self.base + have as u64, want, &mut self.bytes)
                .map_err(io_err("read", &self.path))?;
            if self.bytes.len() == before {
                // The file is shorter than when it was loaded: it ends here.
                self.end = self.base + self.bytes.len() as u64;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::StoreId;
    use crate::io::SimFs;
    use crate::wal::writer::LogWriter;

    /// Records of every size around the read chunk, one larger than it: a
    /// cursor from the start, and one from each record's offset, hands back
    /// every record whole, with the offsets a whole-segment scan gives.
    #[test]
    fn records_across_read_chunks_come_back_whole_at_their_offsets() {
        let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new());
        let dir = Path::new("/store");
        fs.create_dir_all(dir).unwrap();
        let mut writer = LogWriter::open(fs.clone(), dir, StoreId(1), None, 0).unwrap();
        let segment = writer.start_segment(1, Timestamp(1)).unwrap();
        let limit = 4 << 20;
        let sizes = [100, READ_CHUNK_BYTES - 40, 7, READ_CHUNK_BYTES + 12_345, 1, 300_000, READ_CHUNK_BYTES / 2, 33];
        let payload = |seq: u64, len: usize| -> Vec<u8> { (0..len).map(|i| (i as u64 ^ seq) as u8).collect() };
        let mut frames = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let seq = i as u64 + 1;
            crate::wal::append_frame(
                &mut frames,
                seq,
                Timestamp(seq + 1),
                limit,
                |out| {
                    out.extend_from_slice(&payload(seq, len));
                    Ok::<_, ()>(())
                },
                |_| (),
            )
            .unwrap();
        }
        writer.append(&mut frames, sizes.len() as u64).unwrap();
        writer.sync().unwrap();
        let whole = fs.read_file(&segment.path).unwrap();
        let header = SegmentHeader::decode(&whole).unwrap();
        let mut expected = Vec::new();
        scan_segment(&segment.path, &whole, &header, None, limit, |offset, frame| {
            expected.push((offset, frame.seq, frame.payload.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(expected.len(), sizes.len());
        let last = sizes.len() as u64;
        let read = |mut cursor: LogCursor| {
            let mut got = Vec::new();
            while let Some(item) = cursor.next_with(|_, offset, frame| Ok((offset, frame.seq, frame.payload.to_vec())))
            {
                got.push(item.unwrap());
            }
            got
        };
        let segments = vec![segment.clone()];
        assert_eq!(read(LogCursor::new(fs.clone(), segments.clone(), 1, last, limit)), expected);
        for (i, (offset, seq, _)) in expected.iter().enumerate() {
            let from = LogCursor::new_at(fs.clone(), segments.clone(), *seq, *offset as u64, last, limit);
            assert_eq!(read(from), expected[i..], "from seq {seq}");
            let skipping = LogCursor::new(fs.clone(), segments.clone(), *seq, *seq, limit);
            assert_eq!(read(skipping), expected[i..=i], "seq {seq} alone");
        }
        for (i, &(offset, seq, ref payload)) in expected.iter().enumerate() {
            assert_eq!(payload.len(), sizes[i], "seq {seq} at {offset}");
        }

        // Cut from outside at a record's end while a cursor is in the first
        // piece: the records before the cut, then the log ends there.
        let mut cursor = LogCursor::new(fs.clone(), segments, 1, last, limit);
        let first = cursor.next_with(|_, _, frame| Ok(frame.seq)).unwrap().unwrap();
        assert_eq!(first, 1);
        let cut = expected[5].0 as u64;
        fs.open_append(&segment.path).unwrap().set_len(cut).unwrap();
        let mut seqs = vec![first];
        let ended = loop {
            match cursor.next_with(|_, _, frame| Ok(frame.seq)) {
                Some(Ok(seq)) => seqs.push(seq),
                Some(Err(err)) => break err,
                None => panic!("the log cannot end without a word"),
            }
        };
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert!(matches!(ended, WalError::LogEndsEarly { offset, expected: 6, .. } if offset == cut), "{ended:?}");
    }
}
