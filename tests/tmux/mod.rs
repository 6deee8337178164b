//! A real terminal for the interactive tests (tests/zonecfg.rs, tests/zlogin.rs): a tmux
//! session on a private server (`tmux -L runz-test-<pid>-<tag>`), typed into with send-keys and
//! read with capture-pane. tmux is a full terminal: it answers the programs' queries (a
//! shell's cursor position request) as a user's terminal does. The server, and what runs in
//! it, is killed on drop.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// What a terminal test waits for at most.
pub const WAIT: Duration = Duration::from_secs(15);

pub struct Tmux {
    socket: String,
    /// The server's socket file, which kill-server leaves behind.
    path: Option<std::path::PathBuf>,
}

impl Tmux {
    /// Runs `cmd` (argv) in a new 200x50 terminal with `env` added; when it ends, the shell
    /// that ran it prints `[exit status N]` and the pane stays to be read.
    pub fn start(tag: &str, cmd: &[&str], env: &[(&str, &str)]) -> Tmux {
        let mut t = Tmux {
            socket: format!("runz-test-{}-{tag}", std::process::id()),
            path: None,
        };
        let quoted: Vec<String> = cmd.iter().map(|a| format!("'{a}'")).collect();
        let script = format!("{}; echo \"[exit status $?]\"; sleep 60", quoted.join(" "));
        let mut first = Command::new("tmux");
        // The server starts with this environment: the command inherits it.
        first.envs(env.iter().copied());
        t.run(
            first,
            &[
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "200",
                "-y",
                "50",
                "sh",
                "-c",
                &script,
            ],
        );
        let path = t.tmux(&["display-message", "-p", "#{socket_path}"]);
        t.path = Some(path.trim().into());
        t
    }

    fn run(&self, mut cmd: Command, args: &[&str]) -> String {
        let out = cmd
            .args(["-L", &self.socket])
            .args(args)
            .env("TERM", "xterm")
            .output()
            .expect("tmux (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn tmux(&self, args: &[&str]) -> String {
        self.run(Command::new("tmux"), args)
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses keys by tmux name (`Enter`, `Tab`, `Up`, `C-c`, `C-d`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// The screen and its scrollback, trailing blanks trimmed.
    pub fn screen(&self) -> String {
        let s = self.tmux(&["capture-pane", "-p", "-t", "t", "-S", "-500"]);
        s.lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_end()
            .to_string()
    }

    /// Waits (at most [`WAIT`]) until `done` holds of the screen; returns it.
    pub fn wait(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(start.elapsed() < WAIT, "waited for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen's last line is `line`.
    pub fn wait_last(&self, line: &str) -> String {
        self.wait(&format!("last line {line:?}"), |s| {
            s.lines().last() == Some(line)
        })
    }

    /// Waits until `text` is on the screen `n` times.
    pub fn wait_count(&self, text: &str, n: usize) -> String {
        self.wait(&format!("{n} times {text:?}"), |s| {
            s.matches(text).count() >= n
        })
    }

    /// The command's exit status once it ended.
    pub fn exit_status(&self) -> i32 {
        let s = self.wait("the command's end", |s| s.contains("[exit status "));
        let st = s
            .split("[exit status ")
            .nth(1)
            .unwrap()
            .split(']')
            .next()
            .unwrap();
        st.parse()
            .unwrap_or_else(|_| panic!("status {st:?}; screen:\n{s}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}
