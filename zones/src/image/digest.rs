//! Content digests (`sha256:<64 hex>`): parsing, hashing a file, hashing a stream as it is read.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::ImageError;

/// A validated `sha256:<hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parse `sha256:<64 lowercase hex>`; other algorithms are refused by name.
    pub fn parse(text: &str) -> Result<Digest, ImageError> {
        let bad = |why: &str| ImageError::BadDigest {
            digest: text.to_string(),
            why: why.to_string(),
        };
        let (algo, hex) = text
            .split_once(':')
            .ok_or_else(|| bad("expected ALGO:HEX"))?;
        if algo != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("expected 64 lowercase hex digits"));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    pub fn from_sha256(hash: &[u8]) -> Digest {
        Digest {
            hex: hash.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of everything in `path`.
    pub fn of_file(path: &Path) -> io::Result<Digest> {
        let mut r = HashingReader::new(fs::File::open(path)?);
        io::copy(&mut r, &mut io::sink())?;
        Ok(r.digest())
    }

    pub fn of_bytes(data: &[u8]) -> Digest {
        Digest::from_sha256(&Sha256::digest(data))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest of everything read so far.
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(&self.hasher.clone().finalize())
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Read (and hash) whatever is left, e.g. the zero blocks after a tar's end marker.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_and_refuses_others() {
        let d = Digest::of_bytes(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        let e = Digest::parse("sha512:00").unwrap_err().to_string();
        assert!(e.contains("sha512:00") && e.contains("only sha256"), "{e}");
        assert!(Digest::parse("sha256:XYZ").is_err());
        assert!(Digest::parse("nocolon").is_err());
    }

    #[test]
    fn hashing_reader_matches_one_shot_digest() {
        let data = vec![7u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.digest(), Digest::of_bytes(&data));
        assert_eq!(r.count(), 100_000);
    }
}
