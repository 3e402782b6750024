//! Reading records back: scanning one segment, and a cursor over the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io_err, WalError};
use super::record::{decode_frame, Frame, FrameProblem};
use super::segment::{SegmentHeader, SegmentInfo, SEGMENT_HEADER_BYTES};
use crate::clock::Timestamp;
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

/// Reads records in sequence order from `from_seq` through `to_seq`, one
/// segment in memory at a time. The range must be one the log holds (at most
/// what the store published): a log that ends first is
/// [`WalError::LogEndsEarly`], naming where it ends.
pub(crate) struct LogCursor {
    fs: Arc<dyn FileSystem>,
    segments: Vec<SegmentInfo>,
    index: usize,
    path: PathBuf,
    bytes: Vec<u8>,
    offset: usize,
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
            offset: 0,
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
            if self.offset >= self.bytes.len() {
                let loaded = self.load_next_segment().unwrap_or_else(|| {
                    // The range was promised (it is at most what the store
                    // published), so a log that ends first lost records.
                    let path = if self.path.as_os_str().is_empty() {
                        self.segments.last().map_or_else(PathBuf::new, |s| s.path.clone())
                    } else {
                        self.path.clone()
                    };
                    Err(WalError::LogEndsEarly { path, offset: self.bytes.len() as u64, expected: self.next_seq })
                });
                if let Err(err) = loaded {
                    self.to_seq = 0;
                    return Some(Err(err));
                }
                continue;
            }
            let frame = match decode_frame(&self.bytes[self.offset..], self.payload_bytes_max) {
                Ok(frame) => frame,
                Err(problem) => {
                    let err = WalError::bad_frame(&self.path, self.offset, problem);
                    self.to_seq = 0;
                    return Some(Err(err));
                }
            };
            let offset = self.offset;
            self.offset += frame.encoded_bytes();
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
                self.to_seq = 0;
                return Some(Err(err));
            }
            self.next_seq += 1;
            return Some(f(&self.path, offset, &frame));
        }
    }

    /// Loads the next segment; `None` when there is none left.
    fn load_next_segment(&mut self) -> Option<Result<(), WalError>> {
        let segment = self.segments.get(self.index)?.clone();
        self.index += 1;
        let bytes = match self.fs.read_file(&segment.path).map_err(io_err("read", &segment.path)) {
            Ok(bytes) => bytes,
            Err(err) => return Some(Err(err)),
        };
        if bytes.len() < SEGMENT_HEADER_BYTES {
            let problem = super::segment::HeaderProblem::Truncated { file_bytes: bytes.len() as u64 };
            return Some(Err(WalError::BadHeader { path: segment.path, problem }));
        }
        self.path = segment.path;
        self.bytes = bytes;
        // A known start offset (one this cursor reported for a record
        // earlier) applies to the first segment loaded only.
        self.offset = self.start_offset.take().map_or(SEGMENT_HEADER_BYTES, |o| o as usize);
        Some(Ok(()))
    }
}
