//! The runc side of the runc_compat_* tests: one bundle (tests/common's [`Bundle`], whose Drop
//! removes the rootfs, the cgroups and runz's state) run by runc 1.1 and by runz in turn, never
//! both at once (they share the bundle's cgroupsPath), and what each printed, for comparison.
//! runc keeps its state in `<runz root>-runc`, removed (after `runc delete --force`) on Drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{self, Bundle, RUNZ_TIMEOUT};

/// The reference: Debian's runc 1.1 (scripts/install-deps.sh installs it).
pub const RUNC: &str = "/usr/sbin/runc";

/// Which runtime a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    Runc,
    Runz,
}

pub const BOTH: [Rt; 2] = [Rt::Runc, Rt::Runz];

/// What one call printed and how it ended.
#[derive(Debug, Clone)]
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The error message without the runtime's framing: runc's logrus line
    /// (`time=... level=error msg="runc run failed: X"`) and runz's `runz: error: X` both give
    /// X; `exec failed: ` is dropped too. Empty when nothing was logged at error level.
    pub fn error(&self) -> String {
        for line in self.stderr.lines() {
            if let Some(m) = line.strip_prefix("runz: error: ") {
                return strip_verbs(m).to_string();
            }
            if line.contains("level=error") {
                if let Some(q) = line.split_once(" msg=").map(|(_, m)| m) {
                    return strip_verbs(&go_unquote(q)).to_string();
                }
            }
        }
        String::new()
    }

    /// The warning messages, framing removed (see [`Out::error`]).
    pub fn warnings(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|line| {
                if let Some(m) = line.strip_prefix("runz: warning: ") {
                    return Some(m.to_string());
                }
                if line.contains("level=warning") {
                    return line.split_once(" msg=").map(|(_, m)| go_unquote(m));
                }
                None
            })
            .collect()
    }
}

fn strip_verbs(m: &str) -> &str {
    let mut m = m;
    for p in [
        "runc run failed: ",
        "runc create failed: ",
        "runc start failed: ",
        "exec failed: ",
    ] {
        m = m.strip_prefix(p).unwrap_or(m);
    }
    m
}

/// A Go-quoted string (`"a \"b\"\n"`) unquoted; anything else as is.
fn go_unquote(q: &str) -> String {
    let Some(inner) = q.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return q.to_string();
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

/// A bundle for both runtimes.
pub struct Pair {
    pub b: Bundle,
    pub runc_root: PathBuf,
    calls: AtomicUsize,
}

impl Pair {
    /// A new bundle (see [`Bundle::new`]); panics when runc is missing: these tests compare.
    pub fn new(name: &str) -> Pair {
        assert!(
            Path::new(RUNC).exists(),
            "{RUNC} is missing: the runc_compat tests compare runz with runc 1.1 (apt-get install runc)"
        );
        let b = Bundle::new(name);
        let runc_root = PathBuf::from(format!("{}-runc", b.root.display()));
        Pair {
            b,
            runc_root,
            calls: AtomicUsize::new(0),
        }
    }

    /// `RT --root ROOT ARGS...` with stdin /dev/null, killed after [`RUNZ_TIMEOUT`].
    pub fn call(&self, rt: Rt, args: &[&str]) -> Out {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let logs = self.b.dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let (bin, root) = match rt {
            Rt::Runc => (Path::new(RUNC), &self.runc_root),
            Rt::Runz => (common::runz_bin(), &self.b.root),
        };
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("--root").arg(root).args(args);
        let stem = logs.join(format!("pair-{n}-{rt:?}"));
        let out = common::run_with_timeout(&mut cmd, &stem, RUNZ_TIMEOUT)
            .unwrap_or_else(|e| panic!("{rt:?} {}: {e}", args.join(" ")));
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes the spec, then `run --bundle DIR ID` in the foreground (the container is
    /// deleted afterwards, also when it failed).
    pub fn run(&self, rt: Rt) -> Out {
        self.b.write();
        let dir = self.b.dir.to_str().unwrap();
        let out = self.call(rt, &["run", "--bundle", dir, &self.b.id]);
        self.call(rt, &["delete", "--force", &self.b.id]);
        out
    }

    /// [`Pair::run`] with runc, then with runz.
    pub fn run_both(&self) -> (Out, Out) {
        (self.run(Rt::Runc), self.run(Rt::Runz))
    }

    /// With each runtime in turn: `run -d` the bundle, call `f`, `delete --force`. Returns
    /// what `f` returned for runc, then for runz.
    pub fn detached<T>(&self, mut f: impl FnMut(Rt) -> T) -> (T, T) {
        self.b.write();
        let dir = self.b.dir.to_str().unwrap().to_string();
        let mut results = Vec::new();
        for rt in BOTH {
            let out = self.call(rt, &["run", "-d", "--bundle", &dir, &self.b.id]);
            assert_eq!(out.code, Some(0), "{rt:?} run -d: {out:?}");
            results.push(f(rt));
            let out = self.call(rt, &["delete", "--force", &self.b.id]);
            assert_eq!(out.code, Some(0), "{rt:?} delete --force: {out:?}");
        }
        let runz = results.pop().unwrap();
        (results.pop().unwrap(), runz)
    }

    /// `exec ID ARGS...` (ARGS may start with exec's flags).
    pub fn exec(&self, rt: Rt, flags: &[&str], args: &[&str]) -> Out {
        let mut all = vec!["exec"];
        all.extend_from_slice(flags);
        all.push(&self.b.id);
        all.extend_from_slice(args);
        self.call(rt, &all)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::process::Command::new(RUNC)
            .arg("--root")
            .arg(&self.runc_root)
            .args(["delete", "--force", &self.b.id])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.runc_root);
    }
}
