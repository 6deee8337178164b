//! One battery of escape attempts against one target, and its grep-able summary line.

use std::io::Write;

/// The attempts made against one target: (name, blocked, detail).
#[derive(Default)]
pub struct Battery {
    pub results: Vec<(String, bool, String)>,
}

impl Battery {
    /// Records one attempt.
    pub fn check(&mut self, name: &str, blocked: bool, detail: impl Into<String>) {
        let detail = detail.into();
        eprintln!(
            "escape: {name}: {} ({detail})",
            if blocked { "blocked" } else { "NOT BLOCKED" }
        );
        self.results.push((name.to_string(), blocked, detail));
    }

    /// Prints `escape: TARGET attempts N, blocked N` and fails the test on any attempt
    /// that was not blocked.
    pub fn finish(self, target: &str) {
        let blocked = self.results.iter().filter(|r| r.1).count();
        // Straight to stderr, past the test harness's capture: CI's log shows the counts.
        let _ = writeln!(
            std::io::stderr(),
            "escape: {target} attempts {}, blocked {blocked}",
            self.results.len()
        );
        let escaped: Vec<String> = self
            .results
            .iter()
            .filter(|r| !r.1)
            .map(|r| format!("{}: {}", r.0, r.2))
            .collect();
        assert!(escaped.is_empty(), "not blocked: {escaped:#?}");
    }
}
