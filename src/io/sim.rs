//! A simulated, in-memory file system for crash and fault tests.
//!
//! It models what a POSIX file system promises and no more: written bytes are
//! durable only after `sync_data` on the file, and creations, renames and
//! removals (of files and of directories) are durable only after `sync_dir` on
//! their parent directory. A crash image shows what a machine would find after
//! losing power (or only the process) at that moment. Images compose: a
//! process-crash image keeps the page cache *and* what of it was never synced,
//! so a later power loss on that image can still lose it. Faults make chosen
//! calls fail with `EIO` or `ENOSPC`, once or from then on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FileBytes, FileSystem, LockGuard, WritableFile};

/// The error an injected fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// An I/O error (`EIO`).
    Eio,
    /// No space left on the device (`ENOSPC`).
    Enospc,
}

impl FaultKind {
    fn error(self) -> io::Error {
        match self {
            FaultKind::Eio => io::Error::from_raw_os_error(5),
            FaultKind::Enospc => io::Error::from_raw_os_error(28),
        }
    }
}

/// Whether an injected fault fires once or forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// Only the chosen call fails.
    Once,
    /// The chosen call and every later mutating call fail.
    Forever,
}

/// What a crash does to data that was written but not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss: only synced data and synced directory entries survive.
    DropUnsynced,
    /// The process dies but the machine stays up: everything written survives,
    /// including directory entries never synced. What was not synced stays not
    /// synced in the image (the page cache is not the disk), so a power loss
    /// composed after it (a crash image of the image) can still lose it.
    KeepUnsynced,
    /// Power loss where each file keeps its synced bytes plus a random-length
    /// prefix of what was appended after them. Deterministic for a seed.
    KeepRandomPrefix {
        /// The seed.
        seed: u64,
    },
    /// Power loss where each file's un-synced appended region survives as
    /// zeros of random length: the length reached the disk, the data did not.
    ZeroFilledTail {
        /// The seed.
        seed: u64,
    },
    /// Power loss where each un-synced write survives or not, independently:
    /// a later write can reach the disk while an earlier one does not, which
    /// leaves a hole of zeros. Namespace = durable namespace.
    KeepRandomWrites {
        /// The seed.
        seed: u64,
    },
    /// Power loss where each file's un-synced appended region survives as
    /// random bytes of random length (the length reached the disk, the blocks
    /// held stale data). Namespace = durable namespace.
    GarbageTail {
        /// The seed.
        seed: u64,
    },
    /// Power loss where every un-synced write is torn into the
    /// [`SIM_PAGE_BYTES`] pages it touches and each page survives or not,
    /// independently: a write that spans several pages can reach the disk out
    /// of page order, leaving holes of zeros inside one write. Namespace =
    /// durable namespace.
    KeepRandomPages {
        /// The seed.
        seed: u64,
    },
}

/// The page size [`CrashMode::KeepRandomPages`] tears writes into.
pub const SIM_PAGE_BYTES: usize = 4096;

impl CrashMode {
    /// Whether the image is of a power loss (only what reached the disk
    /// survives), as opposed to a process crash (the page cache survives).
    pub fn is_power_loss(self) -> bool {
        self != CrashMode::KeepUnsynced
    }
}

/// A simulated file system. Clones share the same files.
#[derive(Clone, Default)]
pub struct SimFs {
    shared: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    inodes: Vec<Inode>,
    visible: BTreeMap<PathBuf, usize>,
    durable: BTreeMap<PathBuf, usize>,
    dirs: BTreeSet<PathBuf>,
    /// The directories whose entry in their parent is durable (a root always is).
    durable_dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    calls: u64,
    mutating_calls: u64,
    faults: Vec<(u64, FaultKind, FaultMode)>,
    crash_after: Option<u64>,
    crashed: bool,
}

#[derive(Clone, Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
    /// The (offset, length) of each write since the last sync.
    pending: Vec<(usize, usize)>,
}

fn crash_error() -> io::Error {
    io::Error::other("simulated crash")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl State {
    fn begin_read(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crash_error());
        }
        self.calls += 1;
        Ok(())
    }

    /// Counts a mutating call and decides whether it fails.
    fn begin_write(&mut self) -> io::Result<()> {
        self.begin_read()?;
        self.mutating_calls += 1;
        let n = self.mutating_calls;
        if self.crash_after.is_some_and(|limit| n > limit) {
            self.crashed = true;
            return Err(crash_error());
        }
        for &(at, kind, mode) in &self.faults {
            if at == n || (mode == FaultMode::Forever && n > at) {
                return Err(kind.error());
            }
        }
        Ok(())
    }

    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.visible.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() && !self.dirs.contains(parent) => Err(not_found(parent)),
            _ => Ok(()),
        }
    }

    fn new_inode(&mut self, inode: Inode) -> usize {
        self.inodes.push(inode);
        self.inodes.len() - 1
    }
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// How many calls of any kind have been made.
    pub fn calls(&self) -> u64 {
        self.shared.lock().calls
    }

    /// How many mutating calls have been made; the next one has this number plus one.
    pub fn mutating_calls(&self) -> u64 {
        self.shared.lock().mutating_calls
    }

    /// Makes mutating call number `mutating_call` (counting from 1) fail with
    /// `kind`, without effect; with [`FaultMode::Forever`], every later
    /// mutating call fails too.
    pub fn fail_call(&self, mutating_call: u64, kind: FaultKind, mode: FaultMode) {
        self.shared.lock().faults.push((mutating_call, kind, mode));
    }

    /// Lets `mutating_calls` mutating calls in total succeed, then "kills the
    /// process": every later call of any kind fails without effect.
    pub fn crash_after(&self, mutating_calls: u64) {
        self.shared.lock().crash_after = Some(mutating_calls);
    }

    /// Whether the crash point set by [`SimFs::crash_after`] was reached.
    pub fn has_crashed(&self) -> bool {
        self.shared.lock().crashed
    }

    /// A new, independent file system holding what would be found after a
    /// crash now. It has no faults, no locks and fresh counters.
    pub fn crash_image(&self, mode: CrashMode) -> SimFs {
        let state = self.shared.lock();
        if mode == CrashMode::KeepUnsynced {
            // The machine stays up: the image is the page cache as it is,
            // with the same split between what is durable and what is not.
            let image = State {
                inodes: state.inodes.clone(),
                visible: state.visible.clone(),
                durable: state.durable.clone(),
                dirs: state.dirs.clone(),
                durable_dirs: state.durable_dirs.clone(),
                ..State::default()
            };
            return SimFs { shared: Arc::new(Mutex::new(image)) };
        }
        let seed = match mode {
            CrashMode::KeepRandomPrefix { seed }
            | CrashMode::ZeroFilledTail { seed }
            | CrashMode::GarbageTail { seed }
            | CrashMode::KeepRandomWrites { seed }
            | CrashMode::KeepRandomPages { seed } => seed,
            CrashMode::DropUnsynced | CrashMode::KeepUnsynced => 0,
        };
        let mut rng = SplitMix64(seed);
        // A directory survives when its entry and every ancestor's are durable.
        let dirs: BTreeSet<PathBuf> = state
            .dirs
            .iter()
            .filter(|d| d.ancestors().all(|a| a.parent().is_none() || state.durable_dirs.contains(a)))
            .cloned()
            .collect();
        let mut image = State { durable_dirs: dirs.clone(), dirs, ..State::default() };
        for (path, &id) in &state.durable {
            if path.parent().is_some_and(|parent| !parent.as_os_str().is_empty() && !image.dirs.contains(parent)) {
                continue;
            }
            let inode = &state.inodes[id];
            let data = match mode {
                CrashMode::DropUnsynced | CrashMode::KeepUnsynced => inode.synced.clone(),
                CrashMode::KeepRandomWrites { .. } | CrashMode::KeepRandomPages { .. }
                    if inode.data.starts_with(&inode.synced) =>
                {
                    let page =
                        if matches!(mode, CrashMode::KeepRandomPages { .. }) { SIM_PAGE_BYTES } else { usize::MAX };
                    let mut data = inode.synced.clone();
                    for &(offset, len) in &inode.pending {
                        let end = (offset + len).min(inode.data.len());
                        let mut start = offset;
                        while start < end {
                            let piece_end = end.min((start / page).saturating_add(1).saturating_mul(page));
                            if rng.below(2) == 0 {
                                if data.len() < piece_end {
                                    data.resize(piece_end, 0);
                                }
                                data[start..piece_end].copy_from_slice(&inode.data[start..piece_end]);
                            }
                            start = piece_end;
                        }
                    }
                    data
                }
                CrashMode::KeepRandomWrites { .. } | CrashMode::KeepRandomPages { .. } => inode.synced.clone(),
                CrashMode::KeepRandomPrefix { .. }
                | CrashMode::ZeroFilledTail { .. }
                | CrashMode::GarbageTail { .. } => {
                    if inode.data.starts_with(&inode.synced) {
                        let extra = inode.data.len() - inode.synced.len();
                        let keep = rng.below(extra as u64 + 1) as usize;
                        let mut data = inode.synced.clone();
                        if matches!(mode, CrashMode::ZeroFilledTail { .. }) {
                            data.resize(data.len() + keep, 0);
                        } else if matches!(mode, CrashMode::GarbageTail { .. }) {
                            data.extend((0..keep).map(|_| rng.next() as u8));
                        } else {
                            data.extend_from_slice(&inode.data[inode.synced.len()..inode.synced.len() + keep]);
                        }
                        data
                    } else if rng.below(2) == 0 {
                        inode.synced.clone()
                    } else {
                        inode.data.clone()
                    }
                }
            };
            let id = image.new_inode(Inode { synced: data.clone(), data, pending: Vec::new() });
            image.visible.insert(path.clone(), id);
            image.durable.insert(path.clone(), id);
        }
        SimFs { shared: Arc::new(Mutex::new(image)) }
    }

    /// The bytes of a file as a reader would see them now.
    pub fn read_raw(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.shared.lock();
        state.visible.get(path).map(|&id| state.inodes[id].data.clone())
    }

    /// Creates or replaces a file, durably, creating its directory if needed.
    pub fn write_raw(&self, path: &Path, bytes: Vec<u8>) {
        let mut state = self.shared.lock();
        if let Some(parent) = path.parent() {
            add_dir_all(&mut state.dirs, parent);
            add_dir_all(&mut state.durable_dirs, parent);
        }
        let id = state.new_inode(Inode { synced: bytes.clone(), data: bytes, pending: Vec::new() });
        state.visible.insert(path.to_path_buf(), id);
        state.durable.insert(path.to_path_buf(), id);
    }

    /// Flips one bit of a file (bit 0 is the lowest bit of byte 0), durably.
    pub fn flip_bit(&self, path: &Path, bit: u64) {
        self.edit_raw(path, |data| data[(bit / 8) as usize] ^= 1 << (bit % 8));
    }

    /// Truncates or zero-extends a file to `len` bytes, durably.
    pub fn truncate_raw(&self, path: &Path, len: u64) {
        self.edit_raw(path, |data| data.resize(len as usize, 0));
    }

    fn edit_raw(&self, path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut state = self.shared.lock();
        let id = *state.visible.get(path).unwrap_or_else(|| panic!("no file {}", path.display()));
        let inode = &mut state.inodes[id];
        edit(&mut inode.data);
        inode.synced = inode.data.clone();
        inode.pending.clear();
    }

    /// Removes a file, durably.
    pub fn remove_raw(&self, path: &Path) {
        let mut state = self.shared.lock();
        state.visible.remove(path);
        state.durable.remove(path);
    }

    /// Every visible file, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.shared.lock().visible.keys().cloned().collect()
    }
}

fn add_dir_all(dirs: &mut BTreeSet<PathBuf>, dir: &Path) {
    for ancestor in dir.ancestors() {
        if !ancestor.as_os_str().is_empty() {
            dirs.insert(ancestor.to_path_buf());
        }
    }
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("SimFs")
            .field("files", &state.visible.len())
            .field("mutating_calls", &state.mutating_calls)
            .field("crashed", &state.crashed)
            .finish_non_exhaustive()
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        // The new directories' entries are durable only once their parent
        // directory is synced.
        add_dir_all(&mut state.dirs, dir);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.shared.lock();
        state.begin_read()?;
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(state
            .visible
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut state = self.shared.lock();
        state.begin_read()?;
        Ok(state.visible.contains_key(path) || state.dirs.contains(path))
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        let mut state = self.shared.lock();
        state.begin_read()?;
        let id = state.inode(path)?;
        Ok(state.inodes[id].data.len() as u64)
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.shared.lock();
        state.begin_read()?;
        let id = state.inode(path)?;
        Ok(state.inodes[id].data.clone())
    }

    fn read_range(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut state = self.shared.lock();
        state.begin_read()?;
        let data = &state.inodes[state.inode(path)?].data;
        let start = (offset as usize).min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(data[start..end].to_vec())
    }

    fn map_file(&self, path: &Path) -> io::Result<FileBytes> {
        self.read_file(path).map(FileBytes::Owned)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        state.check_parent(path)?;
        if state.visible.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} exists", path.display())));
        }
        let id = state.new_inode(Inode::default());
        state.visible.insert(path.to_path_buf(), id);
        Ok(Box::new(SimFile { shared: self.shared.clone(), inode: id }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        let id = state.inode(path)?;
        Ok(Box::new(SimFile { shared: self.shared.clone(), inode: id }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        state.check_parent(to)?;
        let id = state.visible.remove(from).ok_or_else(|| not_found(from))?;
        state.visible.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        state.visible.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        let State { visible, durable, dirs, durable_dirs, .. } = &mut *state;
        durable.retain(|p, _| !in_dir(p));
        durable.extend(visible.iter().filter(|(p, _)| in_dir(p)).map(|(p, &id)| (p.clone(), id)));
        durable_dirs.extend(dirs.iter().filter(|d| in_dir(d)).cloned());
        Ok(())
    }

    fn try_lock_exclusive(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        state.check_parent(path)?;
        if !state.visible.contains_key(path) {
            let id = state.new_inode(Inode::default());
            state.visible.insert(path.to_path_buf(), id);
        }
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock { shared: self.shared.clone(), path: path.to_path_buf() })))
    }
}

struct SimFile {
    shared: Arc<Mutex<State>>,
    inode: usize,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("inode", &self.inode).finish()
    }
}

impl WritableFile for SimFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        let inode = &mut state.inodes[self.inode];
        inode.pending.push((inode.data.len(), buf.len()));
        inode.data.extend_from_slice(buf);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        let inode = &mut state.inodes[self.inode];
        inode.synced = inode.data.clone();
        inode.pending.clear();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.shared.lock();
        state.begin_write()?;
        state.inodes[self.inode].data.resize(len as usize, 0);
        Ok(())
    }
}

struct SimLock {
    shared: Arc<Mutex<State>>,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.shared.lock().locks.remove(&self.path);
    }
}

/// A small deterministic generator (splitmix64), so crash images repeat per seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        PathBuf::from("/store")
    }

    /// A file with `synced` bytes made durable (entry too) and `extra` appended after.
    fn file_with(fs: &SimFs, name: &str, synced: &[u8], extra: &[u8]) -> PathBuf {
        fs.create_dir_all(&dir()).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let path = dir().join(name);
        let mut file = fs.create_new(&path).unwrap();
        file.write_all(synced).unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(&dir()).unwrap();
        file.write_all(extra).unwrap();
        path
    }

    #[test]
    fn unsynced_appends_are_lost_on_power_loss_and_kept_on_process_crash() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"durable", b"+volatile");
        assert_eq!(fs.read_file(&path).unwrap(), b"durable+volatile");
        assert_eq!(fs.crash_image(CrashMode::DropUnsynced).read_raw(&path).unwrap(), b"durable");
        assert_eq!(fs.crash_image(CrashMode::KeepUnsynced).read_raw(&path).unwrap(), b"durable+volatile");
    }

    #[test]
    fn a_synced_file_in_an_unsynced_directory_disappears() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let path = dir().join("new");
        let mut file = fs.create_new(&path).unwrap();
        file.write_all(b"data").unwrap();
        file.sync_data().unwrap();
        assert_eq!(fs.crash_image(CrashMode::DropUnsynced).read_raw(&path), None);
        fs.sync_dir(&dir()).unwrap();
        assert_eq!(fs.crash_image(CrashMode::DropUnsynced).read_raw(&path).unwrap(), b"data");
    }

    #[test]
    fn a_rename_without_a_directory_sync_reverts() {
        let fs = SimFs::new();
        let old = file_with(&fs, "old", b"x", b"");
        let new = dir().join("new");
        fs.rename(&old, &new).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!((image.read_raw(&old), image.read_raw(&new)), (Some(b"x".to_vec()), None));
        fs.sync_dir(&dir()).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!((image.read_raw(&old), image.read_raw(&new)), (None, Some(b"x".to_vec())));
    }

    #[test]
    fn random_prefix_lies_between_durable_and_current_and_repeats_per_seed() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"0123", b"456789abcdef");
        let mut lengths = BTreeSet::new();
        for seed in 0..64 {
            let kept = fs.crash_image(CrashMode::KeepRandomPrefix { seed }).read_raw(&path).unwrap();
            assert!(kept.len() >= 4 && kept.len() <= 16);
            assert_eq!(kept[..], b"0123456789abcdef"[..kept.len()]);
            assert_eq!(kept, fs.crash_image(CrashMode::KeepRandomPrefix { seed }).read_raw(&path).unwrap());
            lengths.insert(kept.len());
        }
        assert!(lengths.len() > 5, "prefix lengths vary: {lengths:?}");
    }

    #[test]
    fn zero_filled_tail_keeps_the_length_but_not_the_data() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"0123", b"456789abcdef");
        let seed = (0..64)
            .find(|&seed| fs.crash_image(CrashMode::ZeroFilledTail { seed }).read_raw(&path).unwrap().len() > 4)
            .unwrap();
        let kept = fs.crash_image(CrashMode::ZeroFilledTail { seed }).read_raw(&path).unwrap();
        assert_eq!(&kept[..4], b"0123");
        assert!(kept[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn random_writes_can_leave_holes() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"0123", b"");
        let mut file = fs.open_append(&path).unwrap();
        for chunk in [b"aaaa", b"bbbb", b"cccc"] {
            file.write_all(chunk).unwrap();
        }
        let mut seen = BTreeSet::new();
        for seed in 0..64 {
            let kept = fs.crash_image(CrashMode::KeepRandomWrites { seed }).read_raw(&path).unwrap();
            assert_eq!(&kept[..4], b"0123");
            seen.insert(kept);
        }
        assert!(seen.contains(b"0123\0\0\0\0bbbb".as_slice()), "a later write without the earlier one: {seen:?}");
        assert!(seen.contains(b"0123aaaabbbbcccc".as_slice()));
    }

    #[test]
    fn random_pages_tear_one_write_out_of_page_order() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"0123", b"");
        let mut file = fs.open_append(&path).unwrap();
        // One write that touches three pages: the end of the first, all of the
        // second, the start of the third.
        let write: Vec<u8> = (0..2 * SIM_PAGE_BYTES).map(|i| (i % 251) as u8 + 1).collect();
        file.write_all(&write).unwrap();
        let mut shapes = BTreeSet::new();
        for seed in 0..64 {
            let kept = fs.crash_image(CrashMode::KeepRandomPages { seed }).read_raw(&path).unwrap();
            assert_eq!(&kept[..4], b"0123");
            let pages: Vec<bool> = [4, SIM_PAGE_BYTES, 2 * SIM_PAGE_BYTES]
                .iter()
                .map(|&at| kept.get(at).is_some_and(|&b| b == write[at - 4]))
                .collect();
            // A page either holds exactly the write's bytes or zeros.
            for (i, &b) in kept.iter().enumerate().skip(4) {
                assert!(b == write[i - 4] || b == 0, "seed {seed}: byte {i}");
            }
            shapes.insert(pages);
        }
        assert!(shapes.contains(&vec![false, true, false]), "a middle page without the first: {shapes:?}");
        assert!(shapes.contains(&vec![true, true, true]));
    }

    #[test]
    fn a_process_crash_image_keeps_unsynced_data_unsynced() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"durable", b"+cached");
        let after_process_crash = fs.crash_image(CrashMode::KeepUnsynced);
        assert_eq!(after_process_crash.read_raw(&path).unwrap(), b"durable+cached");
        // The page cache survived the process, not the power loss that follows.
        let after_power_loss = after_process_crash.crash_image(CrashMode::DropUnsynced);
        assert_eq!(after_power_loss.read_raw(&path).unwrap(), b"durable");
        // An unsynced directory entry is still unsynced in the image.
        let entry = dir().join("entry-only");
        let mut file = fs.create_new(&entry).unwrap();
        file.write_all(b"x").unwrap();
        file.sync_data().unwrap();
        let image = fs.crash_image(CrashMode::KeepUnsynced);
        assert!(image.read_raw(&entry).is_some());
        assert!(image.crash_image(CrashMode::DropUnsynced).read_raw(&entry).is_none());
    }

    #[test]
    fn a_new_directory_is_lost_with_its_files_until_its_parent_is_synced() {
        let fs = SimFs::new();
        fs.create_dir_all(Path::new("/data")).unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        let store = Path::new("/data/store");
        fs.create_dir_all(store).unwrap();
        let path = store.join("f");
        let mut file = fs.create_new(&path).unwrap();
        file.write_all(b"x").unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(store).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.read_raw(&path), None, "the file's directory was never made durable in /data");
        assert!(!image.exists(store).unwrap());
        assert!(image.exists(Path::new("/data")).unwrap());
        fs.sync_dir(Path::new("/data")).unwrap();
        let image = fs.crash_image(CrashMode::DropUnsynced);
        assert_eq!(image.read_raw(&path).unwrap(), b"x");
    }

    #[test]
    fn garbage_tail_keeps_the_length_with_other_bytes() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"0123", &[7u8; 64]);
        let kept = fs.crash_image(CrashMode::GarbageTail { seed: 3 }).read_raw(&path).unwrap();
        assert_eq!(&kept[..4], b"0123");
        assert!(kept.len() > 4 && kept[4..].iter().any(|&b| b != 7), "{kept:?}");
    }

    #[test]
    fn a_fault_fires_once_or_forever_without_effect() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"", b"");
        let mut file = fs.open_append(&path).unwrap();
        let next = fs.mutating_calls() + 1;
        fs.fail_call(next, FaultKind::Eio, FaultMode::Once);
        assert_eq!(file.write_all(b"lost").unwrap_err().raw_os_error(), Some(5));
        file.write_all(b"kept").unwrap();
        assert_eq!(fs.read_raw(&path).unwrap(), b"kept");
        let next = fs.mutating_calls() + 1;
        fs.fail_call(next, FaultKind::Enospc, FaultMode::Forever);
        for _ in 0..3 {
            assert_eq!(file.write_all(b"x").unwrap_err().raw_os_error(), Some(28));
        }
        assert_eq!(fs.read_raw(&path).unwrap(), b"kept");
        assert_eq!(fs.read_file(&path).unwrap(), b"kept", "reads still work");
    }

    #[test]
    fn after_the_crash_point_every_call_fails_without_effect() {
        let fs = SimFs::new();
        let path = file_with(&fs, "a", b"", b"");
        let mut file = fs.open_append(&path).unwrap();
        fs.crash_after(fs.mutating_calls() + 1);
        file.write_all(b"last").unwrap();
        assert!(!fs.has_crashed());
        assert!(file.sync_data().is_err());
        assert!(fs.has_crashed());
        assert!(fs.read_file(&path).is_err());
        assert_eq!(fs.read_raw(&path).unwrap(), b"last");
        assert_eq!(fs.crash_image(CrashMode::DropUnsynced).read_raw(&path).unwrap(), b"");
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        let lock = dir().join("LOCK");
        let guard = fs.try_lock_exclusive(&lock).unwrap();
        assert!(guard.is_some());
        assert!(fs.try_lock_exclusive(&lock).unwrap().is_none());
        drop(guard);
        assert!(fs.try_lock_exclusive(&lock).unwrap().is_some());
    }

    #[test]
    fn calls_are_counted() {
        let fs = SimFs::new();
        fs.create_dir_all(&dir()).unwrap();
        fs.list_dir(&dir()).unwrap();
        assert_eq!((fs.calls(), fs.mutating_calls()), (2, 1));
        assert_eq!(fs.list_dir(Path::new("/missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(fs.create_new(Path::new("/missing/a")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
