//! Progress bars on stderr for import and pull: one line per layer, bytes done / total,
//! redrawn in place at most ten times a second. Off (nothing written at all) unless the
//! caller says stderr is a terminal. Hand-rolled: one bar at a time needs no more than a
//! carriage return, and indicatif would bring a terminal-handling stack for that.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

const WIDTH: usize = 30;
const EVERY: Duration = Duration::from_millis(100);

/// One bar.
pub struct Bar {
    enabled: bool,
    label: String,
    total: Option<u64>,
    done: u64,
    drawn: Option<Instant>,
}

impl Bar {
    /// A bar for `label`; `total` when the size is known. Draws nothing when not `enabled`.
    pub fn new(enabled: bool, label: impl Into<String>, total: Option<u64>) -> Bar {
        let mut b = Bar {
            enabled,
            label: label.into(),
            total: total.filter(|&t| t > 0),
            done: 0,
            drawn: None,
        };
        b.draw(true);
        b
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        self.draw(false);
    }

    /// The line as it is drawn (without the carriage return).
    pub fn line(&self) -> String {
        match self.total {
            Some(total) => {
                let frac = (self.done as f64 / total as f64).min(1.0);
                let full = (frac * WIDTH as f64) as usize;
                format!(
                    "{} [{}{}] {} / {}",
                    self.label,
                    "=".repeat(full),
                    " ".repeat(WIDTH - full),
                    human(self.done),
                    human(total)
                )
            }
            None => format!("{} {}", self.label, human(self.done)),
        }
    }

    fn draw(&mut self, force: bool) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if !force && self.drawn.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        self.drawn = Some(now);
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", self.line());
        let _ = err.flush();
    }
}

impl Drop for Bar {
    /// The last state, and a newline: the next bar starts on its own line.
    fn drop(&mut self) {
        if self.enabled {
            self.draw(true);
            let _ = writeln!(io::stderr());
        }
    }
}

/// A reader that moves a bar as bytes pass.
pub struct ProgressReader<R> {
    inner: R,
    bar: Bar,
}

impl<R: Read> ProgressReader<R> {
    pub fn new(inner: R, bar: Bar) -> Self {
        ProgressReader { inner, bar }
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.add(n as u64);
        Ok(n)
    }
}

pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_counts_what_passes_and_draws_done_over_total() {
        let data = vec![1u8; 3 * 1024 * 1024];
        let mut r = ProgressReader::new(&data[..], Bar::new(false, "layer 1/1", Some(6 << 20)));
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.bar.done, 3 << 20);
        let line = r.bar.line();
        assert!(line.starts_with("layer 1/1 [==============="), "{line}");
        assert!(line.ends_with("] 3.0 MiB / 6.0 MiB"), "{line}");
        assert_eq!(Bar::new(false, "x", None).line(), "x 0 B");
    }
}
