//! The write-ahead log: segment files of checksummed frames, one transaction
//! per frame. This layer moves bytes and sequence numbers; it knows nothing of
//! what the payloads mean.

mod error;
mod reader;
mod record;
mod recovery;
mod segment;
mod writer;

pub use error::WalError;
pub use record::{decode_frame, Frame, FrameProblem, FRAME_HEADER_BYTES};
pub use recovery::TornTail;
pub use segment::{HeaderProblem, SegmentHeader, SegmentInfo, SEGMENT_HEADER_BYTES};

pub(crate) use reader::{scan_segment, Last, LogCursor};
pub(crate) use record::{append_frame, frames_after};
pub(crate) use recovery::{check_header, make_durable, recover, tail_frames, TailRepair};
pub(crate) use segment::list_segments;
#[cfg(any(test, feature = "archive", feature = "replication"))]
pub(crate) use segment::segment_file_name;
pub(crate) use writer::LogWriter;
