//! The real file system, through `std::fs`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::{FileBytes, FileSystem, LockGuard, ReadAt, WritableFile};
#[cfg(unix)]
use std::sync::Arc;

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(names)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_range(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        // Reads into the spare capacity: no zeroing of the buffer first.
        let mut buf = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn read_range_into(&self, path: &Path, offset: u64, len: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        buf.reserve(len);
        file.take(len as u64).read_to_end(buf)?;
        Ok(())
    }

    #[cfg(unix)]
    fn read_ranges(&self, path: &Path, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        FileReader(File::open(path)?).read_ranges(ranges)
    }

    #[cfg(unix)]
    fn open_reader(&self, path: &Path) -> io::Result<Option<Arc<dyn ReadAt>>> {
        Ok(Some(Arc::new(FileReader(File::open(path)?))))
    }

    fn map_file(&self, path: &Path) -> io::Result<FileBytes> {
        FileBytes::map(&File::open(path)?)
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Box::new(RealFile { file }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.seek(SeekFrom::End(0))?;
        Ok(Box::new(RealFile { file }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn try_lock_exclusive(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(err)) => Err(err),
        }
    }
}

#[derive(Debug)]
struct RealFile {
    file: File,
}

impl WritableFile for RealFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        Ok(())
    }
}

/// A file kept open for positioned reads.
#[cfg(unix)]
#[derive(Debug)]
struct FileReader(File);

#[cfg(unix)]
impl ReadAt for FileReader {
    fn read_ranges(&self, ranges: &[(u64, usize)]) -> io::Result<Vec<Vec<u8>>> {
        use std::os::unix::fs::FileExt;
        ranges
            .iter()
            .map(|&(offset, len)| {
                let mut buf = vec![0u8; len];
                let mut filled = 0;
                while filled < len {
                    match self.0.read_at(&mut buf[filled..], offset + filled as u64) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                        Err(err) => return Err(err),
                    }
                }
                buf.truncate(filled);
                Ok(buf)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positioned reads give what `read_range` gives, each range its own,
    /// short when the file ends first.
    #[test]
    fn read_ranges_read_like_read_range() {
        let dir = std::env::temp_dir().join(format!("elbstore-real-ranges-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        fs::write(&path, &bytes).unwrap();
        let ranges = [(0, 10), (9_995, 10), (4_000, 3_000), (20_000, 5), (7, 0)];
        let read = RealFs.read_ranges(&path, &ranges).unwrap();
        for (&(offset, len), got) in ranges.iter().zip(&read) {
            assert_eq!(got, &RealFs.read_range(&path, offset, len).unwrap(), "at {offset}");
        }
        assert_eq!(read[1].len(), 5);
        // A reader kept open reads the same, and sees what is appended after it opened.
        let reader = RealFs.open_reader(&path).unwrap().expect("the real file system has readers");
        assert_eq!(reader.read_ranges(&ranges).unwrap(), read);
        fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[7; 10]).unwrap();
        assert_eq!(reader.read_ranges(&[(9_995, 10)]).unwrap()[0], [&bytes[9_995..], &[7; 5][..]].concat());
        assert!(RealFs.read_ranges(&dir.join("missing"), &ranges).is_err());
        assert!(RealFs.open_reader(&dir.join("missing")).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
