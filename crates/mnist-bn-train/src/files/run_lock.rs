//! One writer per run directory: an advisory lock that dies with its process.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::TrainError;

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// Holds a run directory for this process: while it lives, [`RunDirLock::acquire`] on the same
/// directory fails in every other process (and in this one) with [`TrainError::Busy`], naming
/// the holder's process id.
///
/// The lock is the operating system's advisory file lock (`flock` on Unix) on
/// `<dir>/.lock`: it is released when the file is closed, so a process that dies, even by
/// `kill -9`, leaves no stale lock behind. The file itself stays, holding the last holder's
/// process id. On a file system without file locks the directory is not locked.
#[derive(Debug)]
pub struct RunDirLock {
    _file: File,
}

impl RunDirLock {
    /// Locks `dir` (which must exist) or says who holds it.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(TrainError::io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // A few bytes at most; a lock file that is not ours reads as "another process".
                let _ = Read::by_ref(&mut file).take(64).read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!("process {pid}"),
                    Err(_) => "another process".to_string(),
                };
                return Err(TrainError::Busy {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                return Ok(Self { _file: file });
            }
            Err(TryLockError::Error(error)) => return Err(TrainError::Io { path, error }),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(TrainError::io(&path))?;
        Ok(Self { _file: file })
    }

    /// Locks every run directory that holds `path`: `path` itself and each of its ancestors
    /// with a lock file of ours, one that holds a process id (only those: no lock file is
    /// created, and another program's `.lock` is left alone). A command that replaces a
    /// directory which may be, or lie inside, a run directory (`import --force`) holds these
    /// while it writes, so that it never replaces a live run's files.
    pub fn acquire_enclosing(path: &Path) -> Result<Vec<Self>, TrainError> {
        let absolute = std::path::absolute(path).map_err(TrainError::io(path))?;
        absolute
            .ancestors()
            .filter(|dir| {
                let mut holder = String::new();
                File::open(dir.join(LOCK_FILE))
                    .and_then(|f| f.take(64).read_to_string(&mut holder))
                    .is_ok_and(|_| holder.trim().parse::<u32>().is_ok())
            })
            .map(Self::acquire)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_held_directory_names_the_holder_and_a_dropped_one_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunDirLock::acquire(dir.path()).unwrap();
        let err = RunDirLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        drop(first);
        let again = RunDirLock::acquire(dir.path());
        assert!(again.is_ok(), "{again:?}");
    }

    #[test]
    fn the_run_directories_around_a_path_are_locked_and_no_lock_file_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let inside = run.join("plain").join("checkpoints");
        std::fs::create_dir_all(&inside).unwrap();
        // No run directory around it yet: nothing to lock, nothing created.
        assert!(RunDirLock::acquire_enclosing(&inside).unwrap().is_empty());
        assert!(!run.join(LOCK_FILE).exists() && !inside.join(LOCK_FILE).exists());
        let live = RunDirLock::acquire(&run).unwrap();
        for path in [&run, &inside, &inside.join("not yet")] {
            let msg = RunDirLock::acquire_enclosing(path).unwrap_err().to_string();
            assert!(msg.contains("in use by process"), "{msg}");
        }
        drop(live);
        // Another program's lock file, which holds no process id, is not ours to take.
        std::fs::write(inside.join(LOCK_FILE), "held by an editor").unwrap();
        let held = RunDirLock::acquire_enclosing(&inside).unwrap();
        assert_eq!(held.len(), 1);
        assert!(
            RunDirLock::acquire(&run).is_err(),
            "held while the command writes"
        );
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let msg = RunDirLock::acquire(&gone).unwrap_err().to_string();
        assert!(msg.contains("gone/.lock"), "{msg}");
    }
}
