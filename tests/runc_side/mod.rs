//! Runs runc 1.1.5 (/usr/sbin/runc) on a test's bundle, next to runz, so the runc_compat_*
//! tests can compare what each runtime makes the container see.
//!
//! runc gets its own `--root` (`<runz root>-runc`, so it carries the test prefix) and the same
//! container id and cgroupsPath; the runtimes are run one after the other, never together.
//! Dropping the guard deletes runc's container and its state dir.
#![allow(dead_code)] // each runc_compat_* test file uses part of it

use super::common::Bundle;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the reference runtime is installed (Debian's runc 1.1.5).
pub const RUNC: &str = "/usr/sbin/runc";

/// The longest one runc call may take before it is killed and the test fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// runc on one bundle; `None` from [`Runc::new`] when runc is not installed.
pub struct Runc<'a> {
    b: &'a Bundle,
    root: PathBuf,
    calls: usize,
}

impl<'a> Runc<'a> {
    /// runc for bundle `b`, or None (with a note) when runc is not installed.
    pub fn new(b: &'a Bundle) -> Option<Runc<'a>> {
        if !Path::new(RUNC).exists() {
            eprintln!("note: {RUNC} is not installed; only runz is checked");
            return None;
        }
        let mut root = b.root.clone().into_os_string();
        root.push("-runc");
        Some(Runc {
            b,
            root: PathBuf::from(root),
            calls: 0,
        })
    }

    /// `runc --root R ARGS...`, stdin /dev/null, output captured through files (a container
    /// process that keeps them open cannot block us); killed after [`TIMEOUT`].
    pub fn call(&mut self, args: &[&str]) -> Output {
        self.calls += 1;
        let logs = self.b.dir.join("logs");
        fs::create_dir_all(&logs).expect("logs dir");
        let stem = logs.join(format!("runc-{}", self.calls));
        let out_path = stem.with_extension("out");
        let err_path = stem.with_extension("err");
        let mut child = Command::new(RUNC)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).expect("runc stdout file"))
            .stderr(fs::File::create(&err_path).expect("runc stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {RUNC}: {e}"));
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for runc") {
                break status;
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("runc {} did not finish within {TIMEOUT:?}", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: fs::read(&out_path).unwrap_or_default(),
            stderr: fs::read(&err_path).unwrap_or_default(),
        }
    }

    /// Writes the bundle's spec, then `runc run --bundle DIR ID`.
    pub fn run(&mut self) -> Output {
        self.b.write();
        let dir = self.b.dir.to_str().expect("utf-8 bundle dir").to_string();
        let id = self.b.id.clone();
        self.call(&["run", "--bundle", &dir, &id])
    }
}

impl Drop for Runc<'_> {
    fn drop(&mut self) {
        if self.root.exists() {
            let id = self.b.id.clone();
            let _ = self.call(&["delete", "--force", &id]);
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// What one run showed: exit code, stdout, stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Seen {
    fn from(o: Output) -> Seen {
        Seen {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs the bundle with runz, then (if installed) with runc; returns both.
pub fn run_both(b: &Bundle) -> (Seen, Option<Seen>) {
    let runz = Seen::from(b.run());
    let runc = Runc::new(b).map(|mut r| Seen::from(r.run()));
    (runz, runc)
}

/// A host path as the &str a JSON spec takes.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
