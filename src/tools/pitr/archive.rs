//! The verbs on an off-machine archive: its status, its verification, and
//! the copy a restore starts from.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::open_read;
use crate::archive::{self, ArchiveError, Target};
use crate::clock::SystemClock;
use crate::elb::{ElbState, ElbStore};
use crate::tools::cli::{Status, ToolError, Verdict};
use crate::tools::progress::Bar;
use crate::tools::report::{plural, time_text};
use crate::Clock;

impl From<ArchiveError> for ToolError {
    fn from(err: ArchiveError) -> ToolError {
        match err {
            ArchiveError::Store(err) => ToolError::from(err),
            ArchiveError::Url { .. } => ToolError::usage(err.to_string()),
            ArchiveError::Empty { .. } | ArchiveError::Foreign { .. } => {
                ToolError::new(Status::Refused, err.to_string())
            }
            ArchiveError::Tampered { .. } | ArchiveError::Gap { .. } | ArchiveError::Manifest { .. } => ToolError::new(
                Status::Damaged,
                format!(
                    "{err}; the archive cannot be trusted as it is: restore from the store itself or another archive"
                ),
            ),
            _ => ToolError::failed(err.to_string()),
        }
    }
}

/// A copy of an archive staged as a store directory, open read-only;
/// removed when dropped (the store closes first: fields drop in order).
pub(super) struct Staged {
    pub store: ElbStore,
    _copy: archive::Staged,
}

/// Downloads the archive at `url` beside `near` (every object checked) and
/// opens the copy read-only.
pub(super) fn staged(url: &str, near: &Path, bar: &Bar, err: &mut dyn Write) -> Result<Staged, ToolError> {
    let target = Target::open(url)?;
    let copy = archive::Staged::beside(near, "archive");
    if bar.notes() {
        let _ = writeln!(err, "downloading {url} ...");
    }
    archive::download(&target, copy.path())?;
    let store = open_read(copy.path(), bar)?;
    Ok(Staged { store, _copy: copy })
}

#[derive(Serialize)]
struct StatusDoc {
    url: String,
    store_id: String,
    name: String,
    environment: String,
    first_seq: Option<u64>,
    archived_seq: u64,
    archived_time: Option<String>,
    age_ms: u64,
    objects: usize,
    bytes: u64,
    snapshots: Vec<u64>,
    gaps: Vec<GapDoc>,
    generation: u64,
}

#[derive(Serialize)]
struct GapDoc {
    from_seq: u64,
    to_seq: u64,
}

pub(super) fn status(url: &str) -> Result<Verdict, ToolError> {
    let target = Target::open(url)?;
    let status = archive::status(&target)?;
    let age_ms = if status.archived_seq == 0 {
        0
    } else {
        SystemClock.now().as_nanos().saturating_sub(status.archived_time.as_nanos()) / 1_000_000
    };
    let doc = StatusDoc {
        url: status.url,
        store_id: status.store_id,
        name: status.name,
        environment: status.environment,
        first_seq: status.first_seq,
        archived_seq: status.archived_seq,
        archived_time: (status.archived_seq > 0).then(|| time_text(status.archived_time)).flatten(),
        age_ms,
        objects: status.objects,
        bytes: status.bytes,
        snapshots: status.snapshots,
        gaps: status.gaps.iter().map(|&(from_seq, to_seq)| GapDoc { from_seq, to_seq }).collect(),
        generation: status.generation,
    };
    let span = match doc.first_seq {
        Some(first) => format!("transactions {first} to {}", doc.archived_seq),
        None => "no transactions yet".to_owned(),
    };
    let mut text = format!(
        "archive of {}/{} ({}): {span}, the last committed {} ({} ms ago); {} in {} bytes, {}\n",
        doc.name,
        doc.environment,
        doc.store_id,
        doc.archived_time.as_deref().unwrap_or("-"),
        doc.age_ms,
        plural(doc.objects, "object"),
        doc.bytes,
        plural(doc.snapshots.len(), "snapshot"),
    );
    for gap in &doc.gaps {
        text += &format!("  GAP: transactions {} to {} are missing\n", gap.from_seq, gap.to_seq);
    }
    Ok(Verdict::new(&doc, text))
}

#[derive(Serialize)]
struct VerifyArchiveDoc {
    ok: bool,
    url: String,
    objects_checked: usize,
    bytes_checked: u64,
    archived_seq: u64,
    sample_restore_seq: u64,
    duration_ms: u64,
}

pub(super) fn verify(url: &str, bar: &Bar, err: &mut dyn Write) -> Result<Verdict, ToolError> {
    let target = Target::open(url)?;
    if bar.notes() {
        let _ = writeln!(err, "verifying {url} ...");
    }
    let started = Instant::now();
    let scratch = std::env::temp_dir().join(format!("elbstore-archive-verify-{}", std::process::id()));
    let report = archive::verify::<ElbState>(&target, &scratch)?;
    let doc = VerifyArchiveDoc {
        ok: report.sample.verified.ok(),
        url: url.to_owned(),
        objects_checked: report.objects_checked,
        bytes_checked: report.bytes_checked,
        archived_seq: report.status.archived_seq,
        sample_restore_seq: report.sample.seq,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let text = format!(
        "sound: {} ({} bytes) match the manifest, no gap; transactions up to {} restored and verified\n",
        plural(doc.objects_checked, "object"),
        doc.bytes_checked,
        doc.sample_restore_seq
    );
    Ok(Verdict::new(&doc, text))
}
