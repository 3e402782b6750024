//! The archive's manifest: every object it holds, with the records or the
//! state each stands for, its size and its checksum (docs/FORMAT.md,
//! "Archive").

use serde::{Deserialize, Serialize};

/// The manifest's format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// The object the manifest itself is kept in, under the archive's prefix.
pub const MANIFEST_KEY: &str = "manifest.json";

/// What an archive holds: one JSON object, rewritten whole (an object store
/// replaces an object atomically) after the objects it lists are uploaded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The id of the store archived (32 hex digits, as `pitr info` shows it).
    pub store_id: String,
    /// The store's name.
    pub name: String,
    /// The store's environment.
    pub environment: String,
    /// How many times the manifest was written.
    pub generation: u64,
    /// The last transaction the archive holds without a gap from its first.
    pub archived_seq: u64,
    /// That transaction's commit time, nanoseconds since the Unix epoch.
    pub archived_time_ns: u64,
    /// With a retention: the snapshot the kept history starts from (its
    /// seq); sealed segments wholly at or before it and older snapshots are
    /// not archived again. 0: the archive keeps everything.
    #[serde(default)]
    pub kept_from_snapshot: u64,
    /// Every object, in the order they were uploaded.
    pub objects: Vec<ArchivedObject>,
}

/// What an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// The store's `IDENTITY` file.
    Identity,
    /// The store's `RESTORED_FROM` file.
    RestoredFrom,
    /// A sealed log segment, whole.
    Segment,
    /// Bytes of the active segment: whole records from `offset` on.
    Part,
    /// A snapshot file.
    Snapshot,
}

/// One object of the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedObject {
    /// Its key under the archive's prefix.
    pub key: String,
    /// What it is.
    pub kind: ObjectKind,
    /// For a segment or a part: the first seq of the segment it belongs to.
    pub segment: u64,
    /// For a part: where its bytes start in the segment file.
    pub offset: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// The first and last transaction whose records it holds (a snapshot:
    /// its seq, twice; 0 and 0 for a file with no records).
    pub first_seq: u64,
    /// See `first_seq`.
    pub last_seq: u64,
    /// The last transaction's commit time (ns since the epoch), 0 if none.
    pub time_ns: u64,
    /// SHA-256 of its bytes, in hex.
    pub sha256: String,
}

impl ArchivedObject {
    /// An object of `kind` at `key`, with no records, size or checksum yet.
    pub fn new(key: String, kind: ObjectKind) -> ArchivedObject {
        ArchivedObject {
            key,
            kind,
            segment: 0,
            offset: 0,
            bytes: 0,
            first_seq: 0,
            last_seq: 0,
            time_ns: 0,
            sha256: String::new(),
        }
    }

    /// Whether it holds log records.
    pub fn is_log(&self) -> bool {
        matches!(self.kind, ObjectKind::Segment | ObjectKind::Part)
    }
}

impl Manifest {
    /// An empty manifest for a store.
    pub fn new(store_id: String, name: String, environment: String) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            store_id,
            name,
            environment,
            generation: 0,
            archived_seq: 0,
            archived_time_ns: 0,
            kept_from_snapshot: 0,
            objects: Vec::new(),
        }
    }

    /// The object of `kind` with `key`, if listed.
    pub fn object(&self, key: &str) -> Option<&ArchivedObject> {
        self.objects.iter().find(|o| o.key == key)
    }

    /// The log objects that the archive reads a segment from: its whole
    /// object if it has one, else its parts by offset.
    pub fn log_objects(&self) -> Vec<&ArchivedObject> {
        let sealed: std::collections::BTreeSet<u64> =
            self.objects.iter().filter(|o| o.kind == ObjectKind::Segment).map(|o| o.segment).collect();
        let mut log: Vec<&ArchivedObject> = self
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Segment || (o.kind == ObjectKind::Part && !sealed.contains(&o.segment)))
            .collect();
        log.sort_by_key(|o| (o.segment, o.offset));
        log
    }

    /// The end of the archived bytes of the segment starting at `segment`
    /// (0 if none is archived), and whether it is archived whole.
    pub fn segment_end(&self, segment: u64) -> (u64, bool) {
        let mut end = 0;
        for object in self.objects.iter().filter(|o| o.is_log() && o.segment == segment) {
            if object.kind == ObjectKind::Segment {
                return (object.bytes, true);
            }
            end = end.max(object.offset.saturating_add(object.bytes));
        }
        (end, false)
    }

    /// The ranges of transactions missing between the first archived record
    /// and the last, as (first missing, last missing).
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut last: Option<u64> = None;
        for object in self.log_objects() {
            if object.first_seq == 0 {
                continue;
            }
            if let Some(last) = last {
                if object.first_seq > last.saturating_add(1) {
                    gaps.push((last + 1, object.first_seq - 1));
                }
            }
            last = Some(last.map_or(object.last_seq, |l| l.max(object.last_seq)));
        }
        gaps
    }

    /// The first transaction archived, if any.
    pub fn first_seq(&self) -> Option<u64> {
        self.log_objects().iter().map(|o| o.first_seq).find(|&s| s > 0)
    }

    /// The last transaction held with no gap before it from the first, and
    /// its time.
    pub fn contiguous_end(&self) -> (u64, u64) {
        let mut end: (u64, u64) = (0, 0);
        for object in self.log_objects() {
            if object.first_seq == 0 {
                continue;
            }
            if end.0 != 0 && object.first_seq > end.0.saturating_add(1) {
                break;
            }
            if object.last_seq > end.0 {
                end = (object.last_seq, object.time_ns);
            }
        }
        end
    }

    /// Total bytes of every object.
    pub fn bytes(&self) -> u64 {
        self.objects.iter().fold(0u64, |sum, o| sum.saturating_add(o.bytes))
    }

    /// Why the manifest cannot describe an archive, if it cannot: an object
    /// whose records run backwards or whose bytes end past `u64::MAX`, or
    /// a key listed twice.
    pub fn problem(&self) -> Option<String> {
        let mut keys = std::collections::HashSet::new();
        for object in &self.objects {
            if !keys.insert(object.key.as_str()) {
                return Some(format!("{} is listed twice", object.key));
            }
            if object.first_seq > object.last_seq {
                return Some(format!("{} holds transactions {} to {}", object.key, object.first_seq, object.last_seq));
            }
            if object.offset.checked_add(object.bytes).is_none() {
                return Some(format!("{} ends past the largest offset", object.key));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(kind: ObjectKind, segment: u64, offset: u64, bytes: u64, seqs: (u64, u64)) -> ArchivedObject {
        ArchivedObject {
            key: format!("{kind:?}-{segment}-{offset}"),
            kind,
            segment,
            offset,
            bytes,
            first_seq: seqs.0,
            last_seq: seqs.1,
            time_ns: seqs.1 * 10,
            sha256: String::new(),
        }
    }

    #[test]
    fn a_sealed_segment_stands_for_its_parts_and_gaps_are_named() {
        let mut m = Manifest::new("00".into(), "n".into(), "e".into());
        m.objects.push(log(ObjectKind::Part, 1, 0, 100, (1, 5)));
        m.objects.push(log(ObjectKind::Part, 1, 100, 50, (6, 7)));
        assert_eq!(m.segment_end(1), (150, false));
        assert_eq!(m.contiguous_end(), (7, 70));
        m.objects.push(log(ObjectKind::Segment, 1, 0, 200, (1, 9)));
        assert_eq!(m.segment_end(1), (200, true));
        assert_eq!(m.log_objects().len(), 1, "the whole segment replaces its parts");
        m.objects.push(log(ObjectKind::Part, 12, 0, 80, (12, 14)));
        assert_eq!(m.gaps(), vec![(10, 11)]);
        assert_eq!(m.contiguous_end(), (9, 90));
        assert_eq!(m.first_seq(), Some(1));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);
    }
}
