//! How far an archive may expand, and a reader that tells a truncated stream from a whole one.
//!
//! A layer or rootfs archive may unpack to at most `max(1 GiB, 100 x its size on disk)` bytes
//! (a gzip bomb of 1.5 MB stops at 1 GiB, a 50 MB layer may make 5 GB). `ZONES_UNPACK_LIMIT`
//! (bytes, with an optional K, M, G or T suffix) replaces the rule with a fixed limit. The
//! limit is checked while streaming, on the decompressed bytes read and on the bytes written
//! (a sparse tar entry writes more than it reads).

use std::io::{self, Read};

/// The environment variable that sets a fixed limit.
pub const LIMIT_ENV: &str = "ZONES_UNPACK_LIMIT";
/// The least any archive may expand to.
pub const FLOOR: u64 = 1 << 30;
/// How many times its own size an archive may expand to.
pub const RATIO: u64 = 100;

/// The most an archive of `input` bytes (unknown: None) may expand to.
pub fn expand_limit(input: Option<u64>) -> Result<u64, String> {
    if let Ok(text) = std::env::var(LIMIT_ENV) {
        return parse_size(&text)
            .ok_or_else(|| format!("{LIMIT_ENV}={text:?}: expected a byte count such as 20G"));
    }
    Ok(match input {
        Some(n) => FLOOR.max(n.saturating_mul(RATIO)),
        None => FLOOR.saturating_mul(64),
    })
}

/// `123`, `64K`, `512M`, `20G`, `1T`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, shift) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 10),
        (i, 'M' | 'm') => (&t[..i], 20),
        (i, 'G' | 'g') => (&t[..i], 30),
        (i, 'T' | 't') => (&t[..i], 40),
        _ => (t, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// The message of an expansion past the limit.
pub fn too_big(limit: u64) -> String {
    format!("expands beyond {limit} bytes (a decompression bomb?); set {LIMIT_ENV} to allow more")
}

/// Counts what passes through, fails past `limit`, and remembers whether the stream ended.
pub struct Guarded<R> {
    inner: R,
    limit: u64,
    count: u64,
    /// A read returned 0: the stream is at its end.
    pub ended: bool,
}

impl<R: Read> Guarded<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Guarded {
            inner,
            limit,
            count: 0,
            ended: false,
        }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.ended = true;
        }
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                too_big(self.limit),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_the_default_rule_holds() {
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999T"), None);
        if std::env::var(LIMIT_ENV).is_err() {
            // A 1.5 MB bomb stops at 1 GiB, not at 1.5 GiB.
            assert_eq!(expand_limit(Some(1_500_000)).unwrap(), FLOOR);
            assert!(expand_limit(Some(1_500_000)).unwrap() < 1_500_000_000);
            assert_eq!(expand_limit(Some(50 << 20)).unwrap(), 100 * (50 << 20));
        }
    }

    #[test]
    fn guarded_reader_stops_past_the_limit() {
        let data = vec![0u8; 10_000];
        let mut g = Guarded::new(&data[..], 4096);
        let e = io::copy(&mut g, &mut io::sink()).unwrap_err();
        assert!(e.to_string().contains("beyond 4096 bytes"), "{e}");
        let mut g = Guarded::new(&data[..], 10_000);
        io::copy(&mut g, &mut io::sink()).unwrap();
        assert!(g.ended);
    }
}
