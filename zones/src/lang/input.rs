//! Reading an input file a user names (`zonecfg -f FILE`, `import -j FILE`, `zoneadm
//! provision -f FILE`): a regular file only, checked on the open descriptor (opened
//! O_NONBLOCK, so a FIFO neither blocks the open nor the check), read up to a limit.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most of an input file that is read: far beyond any real configuration.
pub const INPUT_LIMIT: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: not a regular file; give a file (or - for standard input)")]
    NotRegular { path: String },
    #[error("{path}: larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: not UTF-8 text")]
    NotText { path: String },
}

/// The text of the regular file `path`, at most `limit` bytes.
pub fn read_file(path: &Path, limit: u64) -> Result<String, InputError> {
    let shown = || path.display().to_string();
    let io = |err| InputError::Io { path: shown(), err };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    if !file.metadata().map_err(io)?.is_file() {
        return Err(InputError::NotRegular { path: shown() });
    }
    let mut buf = Vec::new();
    file.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: shown(),
            limit,
        });
    }
    String::from_utf8(buf).map_err(|_| InputError::NotText { path: shown() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed even when the test fails.
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn only_regular_files_are_read_and_fifos_never_block() {
        let scratch =
            Scratch(std::env::temp_dir().join(format!("runz-test-input-{}", std::process::id())));
        let dir = &scratch.0;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_file(&fifo, 100).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("fifo: not a regular file; give a file (or - for standard input)"),
            "{e}"
        );
        assert!(matches!(
            read_file(dir, 100).unwrap_err(),
            InputError::NotRegular { .. }
        ));
        assert!(matches!(
            read_file(Path::new("/dev/zero"), 100).unwrap_err(),
            InputError::NotRegular { .. }
        ));
        let f = dir.join("big");
        std::fs::write(&f, "x".repeat(200)).unwrap();
        assert!(matches!(
            read_file(&f, 100).unwrap_err(),
            InputError::TooLarge { .. }
        ));
        assert_eq!(read_file(&f, 200).unwrap().len(), 200);
    }
}
