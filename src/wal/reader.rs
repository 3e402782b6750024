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

/// Where a scan reads one segment's bytes: the whole segment in memory, or a
/// [`Window`] that reads it a piece at a time.
pub(crate) trait SegmentBytes {
    /// Where the segment ends (a window's end moves back if the file was cut
    /// while it was read).
    fn end(&self) -> usize;
    /// Makes the bytes from `offset` on, where a record is due, hold that
    /// record whole (its header, then the length the header gives), or the
    /// rest of the segment when that is shorter. A frame's decode then says
    /// what is wrong with it, whichever way the segment is read. `offset`
    /// never goes back.
    fn fill(&mut self, offset: usize) -> Result<(), WalError>;
    /// The bytes from `offset` on, after [`SegmentBytes::fill`] at `offset`.
    fn from(&self, offset: usize) -> &[u8];
}

impl SegmentBytes for &[u8] {
    fn end(&self) -> usize {
        self.len()
    }

    fn fill(&mut self, _offset: usize) -> Result<(), WalError> {
        Ok(())
    }

    fn from(&self, offset: usize) -> &[u8] {
        &self[offset..]
    }
}

/// Scans the records of one segment after its header, checking checksums,
/// sequence continuity and timestamp order, and calls `visit` for each valid
/// record. `prev` is the last record of the previous segment, when known.
/// A frame that does not decode ends the scan (reported in `damage`); the
/// caller decides whether that is a torn tail or corruption.
pub(crate) fn scan_segment(
    path: &Path,
    mut bytes: impl SegmentBytes,
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
    while offset < bytes.end() {
        bytes.fill(offset)?;
        if offset >= bytes.end() {
            // A window that found the file ending here, on a record's end
            // (cut since its length was taken): the segment ends here, as a
            // scan of the file read whole then would find.
            break;
        }
        let frame = match decode_frame(bytes.from(offset), payload_bytes_max) {
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

/// A piece of one segment in memory: the bytes from file offset `base`, read
/// a piece at a time into one buffer. The buffer is reused from piece to
/// piece and from segment to segment, so reading a segment costs no fresh
/// memory past its largest record: memory a process touches for the first
/// time costs more than the reading (BENCHMARKS.md, "What the open touches").
#[derive(Default)]
pub(crate) struct Window {
    path: PathBuf,
    bytes: Vec<u8>,
    base: u64,
    /// The segment's length when the window was opened on it, or where the
    /// file was found to end since.
    end: u64,
}

impl Window {
    /// Opens the window on `path`, `end` bytes long, at `start`; the buffer
    /// keeps its memory.
    pub(crate) fn open(&mut self, path: &Path, start: u64, end: u64) {
        self.path = path.to_path_buf();
        self.bytes.clear();
        self.base = start;
        self.end = end;
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Reads until the buffer holds the record due at `at` whole (its header,
    /// then the length the header gives), or the rest of the segment when
    /// that is shorter. `at` never goes back. A file shorter than when the
    /// window was opened ends the window there.
    pub(crate) fn fill(&mut self, fs: &dyn FileSystem, at: u64) -> Result<(), WalError> {
        debug_assert!(at >= self.base, "a window does not go back");
        loop {
            if at - self.base >= self.bytes.len() as u64 {
                // Nothing read from `at` on (a cursor that knows where its
                // first record starts skips what lies before it).
                self.bytes.clear();
                self.base = at;
            }
            let pos = (at - self.base) as usize;
            let have = self.bytes.len() - pos;
            let left = usize::try_from(self.end.saturating_sub(at)).unwrap_or(usize::MAX);
            let mut need = FRAME_HEADER_BYTES;
            if have >= FRAME_HEADER_BYTES {
                need = need.saturating_add(le_u32(&self.bytes[pos + 4..pos + 8]) as usize);
            }
            let need = need.min(left);
            if have >= need {
                return Ok(());
            }
            // Only now are the records before `at` dropped: a record already
            // in the buffer costs no copy.
            self.bytes.drain(..pos);
            self.base = at;
            let want = need.max(READ_CHUNK_BYTES).min(left) - have;
            fs.read_range_into(&self.path, at + have as u64, want, &mut self.bytes)
                .map_err(io_err("read", &self.path))?;
            if self.bytes.len() == have {
                // The file is shorter than when the window was opened: it ends here.
                self.end = at + have as u64;
                return Ok(());
            }
        }
    }

    /// The bytes read from `at` on (after [`Window::fill`] at `at`).
    pub(crate) fn from(&self, at: u64) -> &[u8] {
        &self.bytes[usize::try_from(at - self.base).unwrap_or(usize::MAX).min(self.bytes.len())..]
    }

    /// The window as the bytes a scan reads, through `fs`.
    pub(crate) fn reading<'a>(&'a mut self, fs: &'a dyn FileSystem) -> WindowBytes<'a> {
        WindowBytes { fs, window: self }
    }
}

/// A [`Window`] read through a file system, for [`scan_segment`].
pub(crate) struct WindowBytes<'a> {
    fs: &'a dyn FileSystem,
    window: &'a mut Window,
}

impl SegmentBytes for WindowBytes<'_> {
    fn end(&self) -> usize {
        usize::try_from(self.window.end).unwrap_or(usize::MAX)
    }

    fn fill(&mut self, offset: usize) -> Result<(), WalError> {
        self.window.fill(self.fs, offset as u64)
    }

    fn from(&self, offset: usize) -> &[u8] {
        self.window.from(offset as u64)
    }
}

/// Reads records in sequence order from `from_seq` through `to_seq`, a
/// piece of one segment in memory at a time. The range must be one the log holds (at most
/// what the store published): a log that ends first is
/// [`WalError::LogEndsEarly`], naming where it ends.
pub(crate) struct LogCursor {
    fs: Arc<dyn FileSystem>,
    segments: Vec<SegmentInfo>,
    index: usize,
    /// The segment being read; the next record starts at `at` in it.
    window: Window,
    at: u64,
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
            window: Window::default(),
            at: 0,
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
            if self.at >= self.window.end() {
                let loaded = self.load_next_segment().unwrap_or_else(|| {
                    // The range was promised (it is at most what the store
                    // published), so a log that ends first lost records.
                    let path = if self.window.path().as_os_str().is_empty() {
                        self.segments.last().map_or_else(PathBuf::new, |s| s.path.clone())
                    } else {
                        self.window.path().to_path_buf()
                    };
                    Err(WalError::LogEndsEarly { path, offset: self.window.end(), expected: self.next_seq })
                });
                if let Err(err) = loaded {
                    return self.fail(err);
                }
                continue;
            }
            if let Err(err) = self.window.fill(self.fs.as_ref(), self.at) {
                return self.fail(err);
            }
            if self.at >= self.window.end() {
                // The segment was cut here since it was loaded: on to the
                // next one, or `LogEndsEarly` at its real length.
                continue;
            }
            let offset = self.at as usize;
            let frame = match decode_frame(self.window.from(self.at), self.payload_bytes_max) {
                Ok(frame) => frame,
                Err(problem) => return self.fail(WalError::bad_frame(self.window.path(), offset, problem)),
            };
            self.at += frame.encoded_bytes() as u64;
            if frame.seq < self.next_seq {
                continue;
            }
            if frame.seq != self.next_seq {
                let err = WalError::SequenceGap {
                    path: self.window.path().to_path_buf(),
                    offset: offset as u64,
                    expected: self.next_seq,
                    found: frame.seq,
                };
                return self.fail(err);
            }
            self.next_seq += 1;
            return Some(f(self.window.path(), offset, &frame));
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
        // A known start offset (one this cursor reported for a record
        // earlier) applies to the first segment loaded only.
        self.at = self.start_offset.take().unwrap_or(SEGMENT_HEADER_BYTES as u64);
        self.window.open(&segment.path, self.at, end);
        Some(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::StoreId;
    use crate::io::SimFs;
    use crate::wal::writer::LogWriter;

    /// Records of every size around the read chunk, one larger than it.
    const SIZES: [usize; 8] =
        [100, READ_CHUNK_BYTES - 40, 7, READ_CHUNK_BYTES + 12_345, 1, 300_000, READ_CHUNK_BYTES / 2, 33];
    const LIMIT: u32 = 4 << 20;

    /// A segment of records of `SIZES`, seq 1 on.
    fn segment_of_sizes() -> (Arc<dyn FileSystem>, SegmentInfo) {
        let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new());
        let dir = Path::new("/store");
        fs.create_dir_all(dir).unwrap();
        let mut writer = LogWriter::open(fs.clone(), dir, StoreId(1), None, 0).unwrap();
        let segment = writer.start_segment(1, Timestamp(1)).unwrap();
        let payload = |seq: u64, len: usize| -> Vec<u8> { (0..len).map(|i| (i as u64 ^ seq) as u8).collect() };
        let mut frames = Vec::new();
        for (i, &len) in SIZES.iter().enumerate() {
            let seq = i as u64 + 1;
            crate::wal::append_frame(
                &mut frames,
                seq,
                Timestamp(seq + 1),
                LIMIT,
                |out| {
                    out.extend_from_slice(&payload(seq, len));
                    Ok::<_, ()>(())
                },
                |_| (),
            )
            .unwrap();
        }
        writer.append(&mut frames, SIZES.len() as u64).unwrap();
        writer.sync().unwrap();
        (fs, segment)
    }

    /// A file system holding `bytes` at `path`.
    fn holding(path: &Path, bytes: &[u8]) -> SimFs {
        let fs = SimFs::new();
        fs.create_dir_all(path.parent().unwrap()).unwrap();
        let mut file = fs.create_new(path).unwrap();
        file.write_all(bytes).unwrap();
        file.sync_data().unwrap();
        fs
    }

    /// What a scan of `bytes` finds: each record's offset, number and
    /// payload, then how it ended.
    fn scan(bytes: impl SegmentBytes, header: &SegmentHeader) -> (Vec<(usize, u64, Vec<u8>)>, String) {
        let mut records = Vec::new();
        let scanned = scan_segment(Path::new("/store/x"), bytes, header, None, LIMIT, |offset, frame| {
            records.push((offset, frame.seq, frame.payload.to_vec()));
            Ok(())
        });
        (records, format!("{scanned:?}"))
    }

    /// A scan that reads the segment a piece at a time finds what a scan of
    /// the whole segment does: every record, and the same damage at the same
    /// offset, wherever the segment ends or a byte goes bad.
    #[test]
    fn a_scan_through_a_window_finds_what_a_scan_of_the_whole_segment_does() {
        let (fs, segment) = segment_of_sizes();
        let whole = fs.read_file(&segment.path).unwrap();
        let header = SegmentHeader::decode(&whole).unwrap();
        let mut window = Window::default();
        let mut through_window = |fs: &dyn FileSystem, len: u64| {
            window.open(&segment.path, SEGMENT_HEADER_BYTES as u64, len);
            scan(window.reading(fs), &header)
        };
        let (records, ended) = scan(whole.as_slice(), &header);
        assert_eq!(records.len(), SIZES.len(), "{ended}");
        assert_eq!(through_window(fs.as_ref(), whole.len() as u64), (records.clone(), ended));
        // Cut at, just before and just after each record's start and header.
        let mut cuts: Vec<usize> = records
            .iter()
            .flat_map(|&(offset, _, _)| {
                [offset - 1, offset, offset + 1, offset + FRAME_HEADER_BYTES - 1, offset + FRAME_HEADER_BYTES + 1]
            })
            .chain([whole.len() - 1, READ_CHUNK_BYTES, READ_CHUNK_BYTES + 1])
            .collect();
        cuts.dedup();
        for &cut in &cuts {
            // The file cut after the window took its length: the window
            // finds the end where the file's scan does.
            let cut_fs = holding(&segment.path, &whole[..cut]);
            let expected = scan(&whole[..cut], &header);
            assert_eq!(through_window(&cut_fs, whole.len() as u64), expected, "cut at {cut} under the window");
        }
        for cut in cuts {
            let cut_fs = holding(&segment.path, &whole[..cut]);
            let expected = scan(&whole[..cut], &header);
            assert!(expected.1.contains("Truncated") || expected.1.contains("damage: None"), "{cut}: {}", expected.1);
            assert_eq!(through_window(&cut_fs, cut as u64), expected, "cut at {cut}");
        }
        // A bad byte in a header or a payload, in the first piece and past it.
        for (offset, _, _) in &records {
            for at in [offset + 5, offset + FRAME_HEADER_BYTES + 3] {
                let mut bad = whole.clone();
                bad[at] ^= 0x40;
                let bad_fs = holding(&segment.path, &bad);
                let expected = scan(bad.as_slice(), &header);
                assert!(!expected.1.contains("damage: None"), "{at}: {}", expected.1);
                assert_eq!(through_window(&bad_fs, bad.len() as u64), expected, "bad byte at {at}");
            }
        }
    }

    /// A cursor from the start, and one from each record's offset, hands back
    /// every record whole, with the offsets a whole-segment scan gives.
    #[test]
    fn records_across_read_chunks_come_back_whole_at_their_offsets() {
        let (fs, segment) = segment_of_sizes();
        let (sizes, limit) = (SIZES, LIMIT);
        let whole = fs.read_file(&segment.path).unwrap();
        let header = SegmentHeader::decode(&whole).unwrap();
        let mut expected = Vec::new();
        scan_segment(&segment.path, whole.as_slice(), &header, None, limit, |offset, frame| {
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
