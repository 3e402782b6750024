//! The off-machine archive: a store whose disk is lost comes back from its
//! archive; uploads that fail are retried and never lose an object's place;
//! a tampered or foreign archive is refused.

#![cfg(feature = "archive")]

mod common;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::TempDir;
use elbstore::archive::{self, ArchiveError, Archiver, ArchiverOptions, ObjectKind, Retention, Target};
use elbstore::elb::{fleet, ElbState, ElbStore, Settings};
use elbstore::{Create, Options, Point, SyncPolicy, TxnMeta};
use futures::stream::BoxStream;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions,
};

fn open(dir: &std::path::Path, options: Options) -> ElbStore {
    ElbStore::open(dir, options.create(Create::IfMissing), Settings::in_region("us-east-1")).unwrap()
}

fn build(store: &ElbStore, range: Range<u64>) {
    for i in range {
        store
            .execute_with(TxnMeta::new("svc:provisioner", format!("build {i}")), |_, ctx| {
                fleet::reference_commands(i, ctx.seq)
            })
            .unwrap();
    }
}

fn restore_meta() -> TxnMeta {
    TxnMeta::new("ops:oncall", "the disk is gone")
}

/// The disk is lost after the archive caught up: a restore from the archive
/// holds every transaction, in the same order with the same state, and
/// takes new writes. Small segments and snapshots, so the archive holds
/// sealed segments, parts of the active one and snapshots.
#[test]
fn a_lost_disk_comes_back_from_the_archive_whole_and_takes_new_writes() {
    let dir = TempDir::new("archive-lost-disk");
    let (store_dir, out) = (dir.join("store"), dir.join("restored"));
    let archive_dir = dir.join("archive");
    let url = format!("file://{}", archive_dir.display());
    let options = Options::default().segment_bytes(64 * 1024).snapshot_every_events(Some(500));
    let store = open(&store_dir, options);
    let target = Target::open(&url).unwrap();
    let archiver =
        Archiver::start(store.store(), target.clone(), ArchiverOptions::default().interval(Duration::from_millis(5)))
            .unwrap();
    build(&store, 0..40);
    let (middle, middle_time) = (store.read().seq(), store.read().time());
    let middle_digest = store.read().state().digest();
    build(&store, 40..80);
    store.store().snapshot().unwrap();
    build(&store, 80..90);
    let status = archiver.flush().unwrap();
    let head = store.read().seq();
    assert_eq!((status.archived_seq, status.lag_transactions(), status.lag()), (head, 0, Duration::ZERO));
    assert_eq!(status.consecutive_failures, 0);
    let head_digest = store.read().state().digest();
    let (segments, snapshots) = (store.store().segments().len(), store.store().snapshots().len());
    assert!(segments > 2 && snapshots >= 2, "{segments} segments, {snapshots} snapshots");
    archiver.stop();
    let (name, id) = (store.store().identity().name.clone(), store.store().identity().id);
    store.close().unwrap();

    let manifest = target.manifest().unwrap().unwrap();
    let kinds = |kind| manifest.objects.iter().filter(|o| o.kind == kind).count();
    assert_eq!(kinds(ObjectKind::Segment), segments - 1, "every sealed segment once");
    assert!(kinds(ObjectKind::Part) >= 1, "the active segment in parts");
    assert_eq!(kinds(ObjectKind::Snapshot), snapshots);
    assert_eq!(kinds(ObjectKind::Identity), 1);
    let status = archive::status(&target).unwrap();
    assert_eq!((status.first_seq, status.archived_seq, status.gaps.clone()), (Some(1), head, vec![]));

    std::fs::remove_dir_all(&store_dir).unwrap();
    let restored = archive::restore::<ElbState>(&target, Point::Seq(head), &out, &restore_meta()).unwrap();
    assert_eq!(restored.seq, head);
    assert!(restored.restore.verified.ok());
    let back = ElbStore::open(&out, Options::default(), Settings::in_region("us-east-1")).unwrap();
    assert_eq!(back.read().seq(), head);
    assert_eq!(back.read().state().digest(), head_digest);
    assert_eq!(back.store().identity().name, name, "the store's name and environment, a new id");
    assert_ne!(back.store().identity().id, id);
    build(&back, 90..91);
    assert_eq!(back.read().seq(), head + 1, "it takes new writes");
    drop(back);

    // Any earlier point the archive holds, by seq.
    let earlier = dir.join("earlier");
    archive::restore::<ElbState>(&target, Point::Seq(middle), &earlier, &restore_meta()).unwrap();
    let at_middle = ElbStore::open(&earlier, Options::default(), Settings::in_region("us-east-1")).unwrap();
    assert_eq!((at_middle.read().seq(), at_middle.read().state().digest()), (middle, middle_digest));
    // And by time.
    let by_time = dir.join("by-time");
    let restored = archive::restore::<ElbState>(&target, Point::Time(middle_time), &by_time, &restore_meta()).unwrap();
    assert_eq!((restored.seq, restored.time), (middle, middle_time));

    // The whole archive checks out, and a sample restore verifies.
    let report = archive::verify::<ElbState>(&target, &dir.join("scratch")).unwrap();
    assert_eq!(report.objects_checked, manifest.objects.len());
    assert_eq!(report.sample.seq, head);
}

/// An archive is refused for a store it does not belong to, and a restore
/// from an archive whose objects were changed names the object.
#[test]
fn a_foreign_or_tampered_archive_is_refused() {
    let dir = TempDir::new("archive-refusals");
    let archive_dir = dir.join("archive");
    let url = format!("file://{}", archive_dir.display());
    let store = open(&dir.join("one"), Options::default());
    build(&store, 0..5);
    let archiver = Archiver::start(store.store(), Target::open(&url).unwrap(), ArchiverOptions::default()).unwrap();
    archiver.flush().unwrap();
    archiver.stop();
    let other = open(&dir.join("two"), Options::default());
    match Archiver::start(other.store(), Target::open(&url).unwrap(), ArchiverOptions::default()) {
        Err(ArchiveError::Foreign { archive, expected, .. }) => {
            assert_eq!(archive, store.store().identity().id.to_string());
            assert_eq!(expected, other.store().identity().id.to_string());
        }
        other => panic!("expected Foreign, got {:?}", other.map(|_| ())),
    }
    assert!(matches!(
        archive::status(&Target::open(&format!("file://{}", dir.join("none").display())).unwrap()),
        Err(ArchiveError::Empty { .. })
    ));

    // One byte of the first part changed.
    let target = Target::open(&url).unwrap();
    let manifest = target.manifest().unwrap().unwrap();
    let part = manifest.objects.iter().find(|o| o.kind == ObjectKind::Part).unwrap();
    let path = archive_dir.join(&part.key);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    match archive::restore::<ElbState>(&target, Point::Seq(1), &dir.join("out"), &restore_meta()) {
        Err(ArchiveError::Tampered { key, .. }) => assert_eq!(key, part.key),
        other => panic!("expected Tampered, got {:?}", other.map(|r| r.seq)),
    }
    assert!(!dir.join("out").exists(), "nothing restored");
    assert!(matches!(archive::verify::<ElbState>(&target, &dir.join("scratch")), Err(ArchiveError::Tampered { .. })));
}

/// An object store whose uploads fail while `failing` is set (every other
/// one, by a counter), for the fault test.
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn ObjectStore>,
    failing: AtomicBool,
    puts: AtomicU64,
}

impl std::fmt::Display for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let n = self.puts.fetch_add(1, Ordering::Relaxed);
        if self.failing.load(Ordering::Relaxed) && n.is_multiple_of(2) {
            return Err(object_store::Error::Generic { store: "faulty", source: "injected upload failure".into() });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &ObjectPath, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &ObjectPath, to: &ObjectPath, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Uploads fail half the time while commits go on: commits are never
/// slowed or refused, failures are counted and reported, every object
/// listed is in the archive with its bytes, and once the faults stop the
/// archive catches up and restores the store whole.
#[test]
fn failing_uploads_are_retried_and_the_archive_catches_up() {
    let dir = TempDir::new("archive-faults");
    let faulty = Arc::new(Faulty {
        inner: Arc::new(object_store::memory::InMemory::new()),
        failing: AtomicBool::new(true),
        puts: AtomicU64::new(0),
    });
    let target = Target::with_store(faulty.clone(), "archive", "memory://faulty").unwrap();
    let options = Options::default().segment_bytes(32 * 1024).snapshot_every_events(Some(300)).sync(SyncPolicy::Always);
    let store = open(&dir.join("store"), options);
    let archiver_options = ArchiverOptions { backoff_max: Duration::from_millis(20), ..ArchiverOptions::default() }
        .interval(Duration::from_millis(2));
    let archiver = Archiver::start(store.store(), target.clone(), archiver_options).unwrap();
    for round in 0..10u64 {
        build(&store, round * 5..round * 5 + 5);
        let _ = archiver.flush();
        // Whatever the manifest lists is there, whole, without a gap: the
        // archive as it stands restores and verifies.
        if target.manifest().unwrap().is_some_and(|m| m.archived_seq > 0) {
            let report = archive::verify::<ElbState>(&target, &dir.join("scratch"))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(report.sample.verified.ok());
        }
    }
    let failing = archiver.status();
    assert!(
        failing.failures > 0 && failing.last_error.as_deref().is_some_and(|e| e.contains("injected")),
        "{failing:?}"
    );
    faulty.failing.store(false, Ordering::Relaxed);
    let head = store.read().seq();
    let caught_up = archiver.flush().unwrap();
    assert_eq!((caught_up.archived_seq, caught_up.consecutive_failures), (head, 0), "{caught_up:?}");
    let digest = store.read().state().digest();
    archiver.stop();
    store.close().unwrap();
    let out = dir.join("restored");
    archive::restore::<ElbState>(&target, Point::Seq(head), &out, &restore_meta()).unwrap();
    let back = ElbStore::open(&out, Options::default(), Settings::in_region("us-east-1")).unwrap();
    assert_eq!(back.read().state().digest(), digest);
}

/// An archiver that stops (or crashes) and starts again goes on from the
/// manifest: nothing is uploaded twice but the manifest, and nothing is lost.
#[test]
fn an_archiver_resumes_from_the_manifest_after_a_restart() {
    let dir = TempDir::new("archive-resume");
    let target = Target::memory();
    let store = open(&dir.join("store"), Options::default());
    build(&store, 0..5);
    let first = Archiver::start(store.store(), target.clone(), ArchiverOptions::default()).unwrap();
    let before = first.flush().unwrap();
    first.stop();
    build(&store, 5..8);
    let second = Archiver::start(store.store(), target.clone(), ArchiverOptions::default()).unwrap();
    let after = second.flush().unwrap();
    assert_eq!(after.archived_seq, store.read().seq());
    assert_eq!(after.uploads, 1, "one new part: {after:?} after {before:?}");
    // Commits just before the store closes reach the archive in the last pass.
    build(&store, 8..10);
    let head = store.read().seq();
    store.close().unwrap();
    let last = second.stop();
    assert_eq!((last.archived_seq, last.acked_seq), (head, head), "{last:?}");
    // A store opened read-only cannot say what is durable: no archiver for it.
    let reader = ElbStore::open(
        dir.join("store"),
        Options::default().mode(elbstore::OpenMode::ReadOnly),
        Settings::in_region("us-east-1"),
    )
    .unwrap();
    assert!(matches!(
        Archiver::start(reader.store(), target.clone(), ArchiverOptions::default()),
        Err(ArchiveError::ReadOnlyStore { .. })
    ));
}

/// With a retention, sealed segments wholly before the newest snapshot
/// committed before the cut-off go (and are not shipped again), older
/// snapshots too; a restore at the head starts from the kept snapshot,
/// verifies and takes new writes; a point before it is out of range.
#[test]
fn retention_drops_what_no_kept_snapshot_needs() {
    let dir = TempDir::new("archive-retention");
    let target = Target::memory();
    let options = Options::default().segment_bytes(16 * 1024).snapshot_every_events(None);
    let store = open(&dir.join("store"), options);
    build(&store, 0..10);
    store.store().snapshot().unwrap();
    build(&store, 10..30);
    let kept = store.store().snapshot().unwrap().seq;
    build(&store, 30..40);
    std::thread::sleep(Duration::from_millis(50));
    build(&store, 40..45);
    let retention = Retention::KeepFor(Duration::from_millis(40));
    let archiver =
        Archiver::start(store.store(), target.clone(), ArchiverOptions::default().retention(retention)).unwrap();
    archiver.flush().unwrap();
    let status = archive::status(&target).unwrap();
    assert_eq!(status.snapshots, vec![kept], "the older snapshot went: {status:?}");
    assert!(status.first_seq.unwrap() > 1 && status.first_seq.unwrap() <= kept + 1, "{status:?}");
    assert_eq!(status.archived_seq, store.read().seq());
    // Another pass ships nothing again.
    let uploads = archiver.status().uploads;
    let again = archiver.flush().unwrap();
    assert_eq!(again.uploads, uploads, "dropped segments are not shipped again");
    assert_eq!(archive::status(&target).unwrap().first_seq, status.first_seq);
    archiver.stop();
    let head = store.read().seq();
    let digest = store.read().state().digest();
    store.close().unwrap();

    let out = dir.join("restored");
    let restored = archive::restore::<ElbState>(&target, Point::Seq(head), &out, &restore_meta()).unwrap();
    assert!(restored.restore.verified.ok());
    let back = ElbStore::open(&out, Options::default(), Settings::in_region("us-east-1")).unwrap();
    assert_eq!(back.read().state().digest(), digest);
    build(&back, 45..46);
    assert_eq!(back.read().seq(), head + 1);
    // It names the archive it came from, and its history starts at the kept
    // snapshot, with that snapshot's time; the feed too.
    let provenance = std::fs::read_to_string(out.join(elbstore::RESTORED_FROM_FILE)).unwrap();
    assert!(provenance.contains("source_dir: memory://"), "{provenance}");
    let floor = back.store().snapshots()[0].clone();
    assert_eq!(back.store().resolve(Point::Seq(floor.seq)).unwrap(), (floor.seq, floor.time));
    assert!(matches!(back.store().resolve(Point::Before(floor.seq)), Err(elbstore::Error::PointOutOfRange { .. })));
    assert!(matches!(back.store().subscribe(1), Err(elbstore::Error::PointOutOfRange { .. })));
    let mut feed = back.store().subscribe(floor.seq + 1).unwrap();
    assert_eq!(feed.try_recv().unwrap().map(|t| t.seq), Some(floor.seq + 1));
    drop(back);
    // It keeps verifying when its own snapshot retention removes the base.
    let keep_one = Options::default().snapshot_retention(elbstore::SnapshotRetention::KeepLast(1.try_into().unwrap()));
    let back = ElbStore::open(&out, keep_one, Settings::in_region("us-east-1")).unwrap();
    build(&back, 46..48);
    back.store().snapshot().unwrap();
    build(&back, 48..49);
    assert!(back.store().snapshots().iter().all(|s| s.seq > floor.seq), "the base snapshot is gone");
    drop(back);
    assert!(
        elbstore::verify::<ElbState>(&out, Options::default()).unwrap().ok(),
        "the restored store verifies after new writes"
    );
    match archive::restore::<ElbState>(&target, Point::Seq(kept - 1), &dir.join("too-early"), &restore_meta()) {
        Err(ArchiveError::Store(elbstore::Error::PointOutOfRange { first, .. })) => {
            assert_eq!(first.map(|f| f.0), Some(kept))
        }
        other => panic!("expected PointOutOfRange, got {:?}", other.map(|r| r.seq)),
    }
}
